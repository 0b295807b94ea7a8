//! Verify through the operator (`apply --wait`): each changed server reaches phase Ready and its
//! `<server>-gateway-policy` ConfigMap carries the revision that rendering predicts.

use crate::cluster::Cluster;
use crate::gateway::PolicyDocument;
use crate::model::{Kind, ObjectId};
use std::time::{Duration, Instant};

/// What to wait for on one server.
#[derive(Debug, Clone)]
pub struct Expectation {
    pub server: ObjectId,
    /// The predicted policy revision; `None` when the gateway is disabled (no policy expected).
    pub revision: Option<String>,
}

/// Where a server stands, as last seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Seen {
    phase: String,
    revision: String,
}

pub async fn wait(cluster: &Cluster, expectations: &[Expectation], timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<(Expectation, Seen)> = expectations.iter().map(|e| (e.clone(), Seen::default())).collect();
    loop {
        let mut still = Vec::new();
        for (expectation, _) in pending {
            let seen = observe(cluster, &expectation.server).await;
            let ready = seen.phase == "Ready" && expectation.revision.as_ref().is_none_or(|r| *r == seen.revision);
            if !ready {
                still.push((expectation, seen));
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let waiting: Vec<String> = still
                .iter()
                .map(|(e, seen)| {
                    let phase = if seen.phase.is_empty() { "no status yet" } else { seen.phase.as_str() };
                    let mut line = format!("{}/{}: phase {phase} (want Ready)", e.server.namespace, e.server.name);
                    if let Some(want) = &e.revision {
                        let have = if seen.revision.is_empty() { "none" } else { seen.revision.as_str() };
                        line.push_str(&format!(", policy revision {have} (want {want})"));
                    }
                    line
                })
                .collect();
            return Err(format!(
                "timed out after {}s waiting for the operator to take the change: {}",
                timeout.as_secs(),
                waiting.join("; ")
            ));
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn observe(cluster: &Cluster, server: &ObjectId) -> Seen {
    let id = ObjectId { kind: Kind::Server, ..server.clone() };
    let phase = match cluster.get(&id).await {
        Ok(Some(object)) => object.pointer("/status/phase").and_then(|p| p.as_str()).unwrap_or_default().to_string(),
        _ => String::new(),
    };
    let revision = match cluster.configmap_data(&server.namespace, &format!("{}-gateway-policy", server.name), "policy.json").await {
        Ok(Some(text)) => serde_json::from_str::<PolicyDocument>(&text).map(|d| d.revision).unwrap_or_default(),
        _ => String::new(),
    };
    Seen { phase, revision }
}
