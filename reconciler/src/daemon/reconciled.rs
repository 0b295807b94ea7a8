//! How a reconcile ends: a closed set of results, each named once for /status, the metrics, the
//! logs, the inventory's status annotations and Events.

use serde::Serialize;

/// How one reconcile ended, named the same way in /status, the metrics, the logs, the inventory's
/// status annotations and Events: a new case cannot go unnamed in any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reconciled {
    /// The revision is live, and this pass wrote to the cluster.
    Applied,
    /// The revision is live; nothing needed writing.
    Unchanged,
    /// The revision has errors and is not applied.
    Invalid,
    /// A commit is not signed by an allowed signer.
    Unverified,
    /// A guard refused before anything was written.
    Refused,
    /// The cluster could not be read, or a change could not be applied.
    Failed,
    /// The repository could not be read.
    FetchFailed,
    /// `mcp-gitops daemon suspend` holds back changes of the revision (what only takes access
    /// away is applied under a soft suspension).
    Suspended,
    /// A freeze window of `mcp-gitops.yaml` is open: changes that widen access wait for its end
    /// (what only takes access away is applied).
    Held,
}

/// Every reason an Event of the daemon can carry: a result's (`Reconciled::event`), drift's and
/// break-glass's. What `--notifications` receivers may filter on.
pub const EVENT_REASONS: [&str; 11] = [
    "Applied",
    "InvalidRevision",
    "UnverifiedCommit",
    "PruneRefused",
    "ApplyFailed",
    "FetchFailed",
    "Suspended",
    "HeldByWindow",
    "DriftCorrected",
    "DriftDetected",
    "BreakGlass",
];

impl Reconciled {
    pub const ALL: [Reconciled; 9] = [
        Reconciled::Applied,
        Reconciled::Unchanged,
        Reconciled::Invalid,
        Reconciled::Unverified,
        Reconciled::Refused,
        Reconciled::Failed,
        Reconciled::FetchFailed,
        Reconciled::Suspended,
        Reconciled::Held,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reconciled::Applied => "applied",
            Reconciled::Unchanged => "unchanged",
            Reconciled::Invalid => "invalid",
            Reconciled::Unverified => "unverified",
            Reconciled::Refused => "refused",
            Reconciled::Failed => "failed",
            Reconciled::FetchFailed => "fetch_failed",
            Reconciled::Suspended => "suspended",
            Reconciled::Held => "held",
        }
    }

    /// Whether the revision attempted is live.
    pub fn succeeded(self) -> bool {
        matches!(self, Reconciled::Applied | Reconciled::Unchanged)
    }

    /// Whether the loop waits for the next trigger rather than backing off and trying again: a
    /// suspended or held pass did what it was told.
    pub fn settled(self) -> bool {
        self.succeeded() || self.held_on_purpose()
    }

    /// Whether the pass held changes back as told (a suspension, a freeze window): the daemon is
    /// ready though the revision is not live.
    pub fn held_on_purpose(self) -> bool {
        matches!(self, Reconciled::Suspended | Reconciled::Held)
    }

    /// The Event that says so (whether a warning, and its reason); none for a pass with nothing to tell.
    pub fn event(self) -> Option<(bool, &'static str)> {
        match self {
            Reconciled::Applied => Some((false, "Applied")),
            Reconciled::Unchanged => None,
            Reconciled::Invalid => Some((true, "InvalidRevision")),
            Reconciled::Unverified => Some((true, "UnverifiedCommit")),
            Reconciled::Refused => Some((true, "PruneRefused")),
            Reconciled::Failed => Some((true, "ApplyFailed")),
            Reconciled::FetchFailed => Some((true, "FetchFailed")),
            Reconciled::Suspended => Some((false, "Suspended")),
            Reconciled::Held => Some((false, "HeldByWindow")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_event_is_a_reason_receivers_may_name() {
        for result in Reconciled::ALL {
            if let Some((_, reason)) = result.event() {
                assert!(EVENT_REASONS.contains(&reason), "{reason} is missing from EVENT_REASONS");
            }
        }
    }
}
