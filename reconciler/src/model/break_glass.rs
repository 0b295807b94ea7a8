//! `owners.breakGlass` in `mcp-gitops.yaml`: who may open emergency access without approvals,
//! for how long at most, with what reason, and by when someone else reviews it
//! (docs/access-lifecycle.md#break-glass). Plain data; the limits are read in
//! `validate::break_glass`.

use serde::Deserialize;

/// `owners.breakGlass`. Absent: no change is break-glass, and `mcp-gitops break-glass` refuses.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct BreakGlassRules {
    /// Who may open it: forge handles, emails or team names; the word `owners` stands for the
    /// owners of the server the grant is on. Empty: the server's owners.
    pub requesters: Vec<String>,
    /// The longest lifetime, as `1h` or `30m` (default 1h; never more than 24h).
    pub max_duration: Option<String>,
    /// A regular expression the reason must match (a ticket or incident id); a reason is always required.
    pub reason_pattern: Option<String>,
    /// How long after the grant expires its follow-up review may wait (default 24h).
    pub review_within: Option<String>,
}
