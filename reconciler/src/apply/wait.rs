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

/// Where a server stands, as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    phase: String,
    /// The revision the operator wrote, and why its document is not the predicted one.
    revision: String,
    policy: Result<(), String>,
}

pub async fn wait(cluster: &Cluster, expectations: &[Expectation], timeout: Duration) -> Result<(), String> {
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
            let waiting: Vec<String> = still.iter().map(|(e, seen)| waiting_for(e, seen)).collect();
            return Err(format!(
                "timed out after {}s waiting for the operator to take the change: {}",
                timeout.as_secs(),
                waiting.join("; ")
            ));
        }
        pending = still.into_iter().map(|(expectation, _)| expectation).collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn waiting_for(expectation: &Expectation, seen: &Seen) -> String {
    let phase = if seen.phase.is_empty() { "no status yet" } else { seen.phase.as_str() };
    let mut line = format!("{}/{}: phase {phase} (want Ready)", expectation.server.namespace, expectation.server.name);
    if let (Some(predicted), Err(why)) = (&expectation.policy, &seen.policy) {
        let have = if seen.revision.is_empty() { "none" } else { seen.revision.as_str() };
        line.push_str(&format!(", policy revision {have}: {why} (predicted {} for the sorted rendering)", predicted.revision));
    }
    line
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
        Ok(Some(text)) => serde_json::from_str::<PolicyDocument>(&text).map_err(|e| format!("it is not a policy document ({e})")),
        Ok(None) => Err("no policy written yet".to_string()),
        Err(e) => Err(format!("cannot read it ({e})")),
    };
    match written {
        Ok(document) => {
            let policy = written_as_predicted(predicted, &document).map_err(str::to_string);
            Seen { phase, revision: document.revision, policy }
        }
        Err(why) => Seen { phase, revision: String::new(), policy: Err(why) },
    }
}
