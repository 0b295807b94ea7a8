//! Verify through the operator (`apply --wait`): each changed server reaches phase Ready and its
//! `<server>-gateway-policy` ConfigMap holds the predicted policy. The operator renders grants
//! and sessions in its cache's list order, which is not stable, so "predicted" is judged by
//! content (the same tools, grants and sessions, as sets, and a revision that is the hash of
//! what was written), never by equality with the predicted revision string.

use crate::cluster::Cluster;
use crate::gateway::PolicyDocument;
use crate::gateway::revision::written_as_predicted;
use crate::model::{Kind, ObjectId};
use std::time::{Duration, Instant};

/// What to wait for on one server.
#[derive(Debug, Clone)]
pub struct Expectation {
    pub server: ObjectId,
    /// The predicted policy document; `None` when the gateway is disabled (no policy expected).
    pub policy: Option<PolicyDocument>,
}

/// The operator did not take the change in time: the servers it had not brought to Ready with
/// the predicted policy.
#[derive(Debug, thiserror::Error)]
#[error(
    "timed out after {}s waiting for the operator to take the change: {}",
    .timeout.as_secs(),
    .pending.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
)]
pub struct TimedOut {
    pub timeout: Duration,
    pub pending: Vec<Pending>,
}

/// One server as last seen when the wait ended.
#[derive(Debug)]
pub struct Pending {
    pub server: ObjectId,
    /// Its phase; empty when the operator has written no status yet.
    pub phase: String,
    /// Why its policy is not the predicted one, when it is not.
    pub policy: Option<PolicyPending>,
}

/// A policy that is not (yet) the predicted one.
#[derive(Debug)]
pub struct PolicyPending {
    /// The revision the operator wrote; empty when it wrote none.
    pub written: String,
    /// The predicted revision (of the sorted rendering).
    pub predicted: String,
    pub why: PolicyMismatch,
}

/// Why the policy in the ConfigMap is not the predicted one.
#[derive(Debug, thiserror::Error)]
pub enum PolicyMismatch {
    #[error("no policy written yet")]
    NotWritten,
    #[error("cannot read it ({0})")]
    Unreadable(crate::cluster::ClusterError),
    #[error("it is not a policy document ({0})")]
    NotADocument(serde_json::Error),
    /// Its revision is not its content's hash, or its content differs from the prediction.
    #[error("{0}")]
    NotAsPredicted(&'static str),
}

impl std::fmt::Display for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phase = if self.phase.is_empty() { "no status yet" } else { self.phase.as_str() };
        write!(f, "{}/{}: phase {phase} (want Ready)", self.server.namespace, self.server.name)?;
        if let Some(PolicyPending { written, predicted, why }) = &self.policy {
            let have = if written.is_empty() { "none" } else { written.as_str() };
            write!(f, ", policy revision {have}: {why} (predicted {predicted} for the sorted rendering)")?;
        }
        Ok(())
    }
}

/// Where a server stands, as last seen.
#[derive(Debug)]
struct Seen {
    phase: String,
    /// The revision the operator wrote, and why its document is not the predicted one.
    revision: String,
    policy: Result<(), PolicyMismatch>,
}

pub async fn wait(cluster: &Cluster, expectations: &[Expectation], timeout: Duration) -> Result<(), TimedOut> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<Expectation> = expectations.to_vec();
    loop {
        let mut still = Vec::new();
        for expectation in pending {
            let seen = observe(cluster, &expectation).await;
            if seen.phase != "Ready" || seen.policy.is_err() {
                still.push((expectation, seen));
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let pending = still.into_iter().map(|(expectation, seen)| pending_of(expectation, seen)).collect();
            return Err(TimedOut { timeout, pending });
        }
        pending = still.into_iter().map(|(expectation, _)| expectation).collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn pending_of(expectation: Expectation, seen: Seen) -> Pending {
    let policy = match (expectation.policy, seen.policy) {
        (Some(predicted), Err(why)) => Some(PolicyPending { written: seen.revision, predicted: predicted.revision, why }),
        _ => None,
    };
    Pending { server: expectation.server, phase: seen.phase, policy }
}

async fn observe(cluster: &Cluster, expectation: &Expectation) -> Seen {
    let server = &expectation.server;
    let id = ObjectId { kind: Kind::Server, ..server.clone() };
    let phase = match cluster.get(&id).await {
        Ok(Some(object)) => object.pointer("/status/phase").and_then(|p| p.as_str()).unwrap_or_default().to_string(),
        _ => String::new(),
    };
    let Some(predicted) = &expectation.policy else { return Seen { phase, revision: String::new(), policy: Ok(()) } };
    let written = match cluster.configmap_data(&server.namespace, &format!("{}-gateway-policy", server.name), "policy.json").await {
        Ok(Some(text)) => serde_json::from_str::<PolicyDocument>(&text).map_err(PolicyMismatch::NotADocument),
        Ok(None) => Err(PolicyMismatch::NotWritten),
        Err(e) => Err(PolicyMismatch::Unreadable(e)),
    };
    match written {
        Ok(document) => {
            let policy = written_as_predicted(predicted, &document).map_err(PolicyMismatch::NotAsPredicted);
            Seen { phase, revision: document.revision, policy }
        }
        Err(why) => Seen { phase, revision: String::new(), policy: Err(why) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_names_each_server_and_why_its_policy_is_not_the_predicted_one() {
        let server = |name: &str| ObjectId { kind: Kind::Server, namespace: "mcp-team-a".into(), name: name.into() };
        let why = PolicyMismatch::NotWritten;
        let pending = vec![
            Pending {
                server: server("payments"),
                phase: String::new(),
                policy: Some(PolicyPending { written: String::new(), predicted: "sha256:ab".into(), why }),
            },
            Pending { server: server("ledger"), phase: "Error".into(), policy: None },
        ];
        assert_eq!(
            TimedOut { timeout: Duration::from_secs(30), pending }.to_string(),
            "timed out after 30s waiting for the operator to take the change: mcp-team-a/payments: phase no status yet (want Ready), \
             policy revision none: no policy written yet (predicted sha256:ab for the sorted rendering); mcp-team-a/ledger: phase Error (want Ready)"
        );
    }
}
