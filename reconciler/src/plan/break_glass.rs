//! Whether a change is break-glass: it only creates grants (and sessions) that
//! `mcp-gitops break-glass` marked, each within `owners.breakGlass` at the plan's time. Such a
//! change needs no approval (`approvals check` says so); anything beyond the rules makes it an
//! ordinary change, with the usual approvals. Pure: no I/O.

use super::{Action, Change};
use crate::model::spelling::identity;
use crate::model::{DesiredState, Kind, Object, OwnerMap, Owners};
use crate::validate::break_glass::{self as rules, Limits, REASON, REQUESTER};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The plan's `approvals.break_glass`: present when the change creates a break-glass object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlass {
    /// Within `owners.breakGlass`: the change needs no approval.
    pub within_rules: bool,
    pub requester: String,
    pub reason: String,
    /// The break-glass objects, as `Kind/namespace/name`.
    pub objects: Vec<String>,
    /// When the last of them ends (RFC 3339).
    pub expires_at: String,
    /// By when someone other than the requester reviews it (`mcp-gitops.io/reviewed-by`).
    pub review_by: String,
    /// Why it is an ordinary change instead; empty when within the rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub beyond_rules: Vec<String>,
}

/// The break-glass judgement of `changes` (planned from `desired` at `now`), or `None` when the
/// change creates no object marked break-glass.
pub fn judge(owners: &Owners, desired: &DesiredState, changes: &[Change], now: Timestamp) -> Option<BreakGlass> {
    let changed: Vec<(&Change, Option<&Object>)> =
        changes.iter().filter(|c| c.action != Action::NoOp).map(|c| (c, desired.objects.iter().find(|o| o.id == c.id()))).collect();
    let opened: Vec<&Object> = changed
        .iter()
        .filter(|(c, _)| c.action == Action::Create)
        .filter_map(|(_, o)| *o)
        .filter(|o| o.id.kind != Kind::Server && rules::is_break_glass(o))
        .collect();
    let first = opened.first()?;
    let mut beyond = Vec::new();
    for (change, _) in changed.iter().filter(|(_, o)| !o.is_some_and(|o| opened.iter().any(|b| b.id == o.id))) {
        beyond.push(format!("the change also makes other changes ({} {})", change.action.as_str(), change.id()));
    }
    let requester = rules::annotation(first, REQUESTER).unwrap_or_default().to_string();
    let reason = rules::annotation(first, REASON).unwrap_or_default().to_string();
    let limits = Limits::of(owners.break_glass.as_ref()).map_err(|why| beyond.push(why)).ok();
    let map = OwnerMap::new(owners);
    let mut expires_at: Option<Timestamp> = None;
    for object in &opened {
        let mut refuse = |why: String| beyond.push(format!("{}: {why}", object.id));
        if rules::annotation(object, REQUESTER).unwrap_or_default() != requester {
            refuse(format!("its requester is not {requester}"));
        }
        if rules::annotation(object, REASON).unwrap_or_default() != reason {
            refuse(format!("its reason is not {reason:?}"));
        }
        if object.grant().is_some_and(|g| g.tool_rules.is_empty()) {
            refuse("it grants every tool of the server (break-glass names its tools in toolRules)".into());
        }
        let ends = rules::ends_at(object);
        expires_at = expires_at.max(ends);
        let Some(limits) = &limits else { continue };
        let owners_of_server: Vec<String> = crate::gateway::render::targets(object)
            .map(|(namespace, name)| map.of(&format!("{namespace}/{name}")).into_iter().collect())
            .unwrap_or_default();
        let refusals = [
            limits.requester_refused(&requester, &owners_of_server),
            limits.reason_refused(&reason),
            match ends {
                Some(ends) => limits.lifetime_refused(ends, now),
                None => Some("it has no expiry (a grant's mcp-gitops.io/expires-at, a session's spec.expiresAt)".into()),
            },
        ];
        refusals.into_iter().flatten().for_each(&mut refuse);
    }
    beyond.dedup();
    let review_within = limits.as_ref().map(|l| l.review_within);
    let review_by = expires_at.zip(review_within).and_then(|(at, within)| at.checked_add(within).ok());
    Some(BreakGlass {
        within_rules: beyond.is_empty(),
        requester,
        reason,
        objects: opened.iter().map(|o| o.id.to_string()).collect(),
        expires_at: expires_at.map(|at| at.to_string()).unwrap_or_default(),
        review_by: review_by.map(|at| at.to_string()).unwrap_or_default(),
        beyond_rules: beyond,
    })
}

/// Whether the change may pass as break-glass for `author` (the pull request's author, when
/// known): within the rules, and opened by its author — nobody opens break-glass in another's name.
pub fn passes(break_glass: &BreakGlass, author: Option<&str>) -> Result<(), String> {
    if !break_glass.within_rules {
        return Err(break_glass.beyond_rules.join("; "));
    }
    match author {
        Some(author) if identity(author) != identity(&break_glass.requester) => {
            Err(format!("the change's author {author} is not its requester {}", break_glass.requester))
        }
        _ => Ok(()),
    }
}
