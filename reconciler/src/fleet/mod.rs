//! `mcp-gitops fleet status`: where each cluster of a fleet stands, one row per kubeconfig
//! context. Each cluster is read in parallel (its own task and timeout) through `cluster` (the
//! inventory ConfigMap the daemon writes, and the grants and servers it applied); with a local
//! clone, `behind` compares each cluster's live revision with the branch tip there. A cluster
//! that cannot be read is a row that says why, never a failure of the whole command. Nothing
//! here prints: `render::fleet` renders a `Fleet`.

mod behind;

use crate::cluster::Cluster;
use crate::model::Kind;
use crate::model::live::{
    ApplySet, CLUSTER, Control, LAST_DRIFTED, LAST_MESSAGE, LAST_RESULT, LAST_RESULT_TIME, LiveObject, REVISION, SIGNED_BY, SOURCE_PATH,
};
use crate::pipeline::desired::Allowed;
use crate::validate::expiry::EXPIRES_AT;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

pub use behind::Pending;

/// The version of the JSON of `fleet status` (docs/fleet.md).
pub const FORMAT_VERSION: &str = "1";
/// How long one cluster may take to show its inventory before its row says it did not answer
/// (and as long again to list its grants and servers).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Time-bound grants that expire within this are listed as expiring.
pub const EXPIRING_WITHIN: SignedDuration = SignedDuration::from_hours(24);

/// What `fleet status` asks.
#[derive(Debug, Clone)]
pub struct Request {
    pub kubeconfig: Option<PathBuf>,
    /// The contexts to read; empty: every context of the kubeconfig.
    pub contexts: Vec<String>,
    pub inventory_namespace: String,
    /// A local clone and the branch (or any revision) to compare each live revision with.
    pub repo: Option<PathBuf>,
    pub branch: String,
    pub timeout: Duration,
    pub now: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fleet {
    pub format_version: &'static str,
    /// The revision compared against (`--branch`), and its commit; empty without `--repo`.
    pub branch: String,
    pub tip: String,
    pub clusters: Vec<Row>,
}

impl Fleet {
    /// Whether every cluster could be read.
    pub fn all_reachable(&self) -> bool {
        self.clusters.iter().all(|row| row.reachable)
    }
}

/// One cluster.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    pub context: String,
    /// The name its daemon records (`daemon --cluster`), else the context's.
    pub cluster: String,
    pub reachable: bool,
    /// Why it could not be read (`reachable` false); else what of it could not be read (its grants
    /// and servers) or compared with the branch.
    pub error: String,
    /// Whether a daemon has written the inventory there at all.
    pub inventory: bool,
    /// The revision live in the cluster (`last-applied-revision`).
    pub revision: String,
    /// Who signed it, as stamped on the objects it applied (`mcp-gitops.io/signed-by`); empty when
    /// it was not verified, or changed no grant or server.
    pub signed_by: String,
    /// The directory inside the repository its daemon follows (`--path`).
    pub path: String,
    /// What it is compared with: `--branch`, or its own `ref:` in `clusters:`; empty without `--repo`.
    pub follows: String,
    /// Commits on `follows` the live revision lacks; null without `--repo` (or when unknown).
    pub behind_commits: Option<usize>,
    /// What catching up with `follows` would change; null when not compared.
    pub pending: Option<Pending>,
    /// For a cluster that follows a ref of its own: the commits of `--branch` the live revision
    /// lacks, and what catching up with the branch would change (what it would gain); null
    /// otherwise.
    pub catch_up_commits: Option<usize>,
    pub catch_up: Option<Pending>,
    pub last_result: String,
    pub last_result_time: String,
    pub last_message: String,
    /// Objects the daemon last found changed outside git; null when it recorded nothing.
    pub drifted: Option<usize>,
    /// `soft` or `hard` while `daemon suspend` holds, else empty.
    pub suspended: String,
    pub suspension_note: String,
    /// The revision `daemon pin` set, else empty.
    pub pinned: String,
    /// Live time-bound grants that expire within 24 hours, soonest first.
    pub expiring: Vec<ExpiringGrant>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ExpiringGrant {
    pub expires_at: String,
    /// `NAMESPACE/NAME`.
    pub grant: String,
    pub in_minutes: i64,
}

/// Why `fleet status` cannot run at all (a row's own failure is in the row).
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("cannot read the kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("the kubeconfig has no context: name the clusters with --context")]
    NoContexts,
    #[error("comparing the clusters with the branch stopped: {0}")]
    Compare(String),
    #[error("--branch {branch:?} is not a revision of the repository at {}", repo.display())]
    NoBranch { branch: String, repo: PathBuf },
}

impl FleetError {
    /// A mistake in the command line (exit 64), rather than a failure to run.
    pub fn is_usage(&self) -> bool {
        matches!(self, FleetError::NoBranch { .. })
    }
}

/// Reads every cluster of `request` in parallel, then compares each with the branch.
pub async fn status(request: &Request, allowed: &Allowed) -> Result<Fleet, FleetError> {
    let tip = match &request.repo {
        Some(repo) => crate::source::commit_id_in(repo, &request.branch)
            .ok_or_else(|| FleetError::NoBranch { branch: request.branch.clone(), repo: repo.clone() })?,
        None => String::new(),
    };
    let contexts = if request.contexts.is_empty() { every_context(request)? } else { request.contexts.clone() };
    let reads: Vec<_> = contexts
        .into_iter()
        .map(|context| {
            let request = request.clone();
            let task = tokio::spawn({
                let context = context.clone();
                async move { read(&request, &context).await }
            });
            (context, task)
        })
        .collect();
    let mut rows = Vec::with_capacity(reads.len());
    for (context, task) in reads {
        let read = task.await.unwrap_or_else(|e| Err(format!("reading the cluster stopped: {e}")));
        rows.push(read.unwrap_or_else(|error| Row { cluster: context.clone(), context, error, ..Row::default() }));
    }
    if let Some(repo) = &request.repo {
        let (repo, branch, now, allowed) = (repo.clone(), request.branch.clone(), request.now, allowed.clone());
        rows = tokio::task::spawn_blocking(move || behind::compare(&repo, &branch, rows, now, &allowed))
            .await
            .map_err(|e| FleetError::Compare(e.to_string()))?;
    }
    Ok(Fleet {
        format_version: FORMAT_VERSION,
        branch: if tip.is_empty() { String::new() } else { request.branch.clone() },
        tip,
        clusters: rows,
    })
}

/// Every context of `--kubeconfig`, else of `KUBECONFIG` or `~/.kube/config`.
fn every_context(request: &Request) -> Result<Vec<String>, FleetError> {
    let config = match &request.kubeconfig {
        Some(path) => kube::config::Kubeconfig::read_from(path),
        None => kube::config::Kubeconfig::read(),
    }
    .map_err(|e| FleetError::Kubeconfig(e.to_string()))?;
    let contexts: Vec<String> = config.contexts.into_iter().map(|c| c.name).collect();
    if contexts.is_empty() { Err(FleetError::NoContexts) } else { Ok(contexts) }
}

/// One cluster's row: its inventory within `request.timeout`, then, within as long again, the
/// grants and servers its daemon applied (their signer and expiries). A fleet of large clusters
/// still shows where each stands when listing every grant takes longer than that.
async fn read(request: &Request, context: &str) -> Result<Row, String> {
    let within = request.timeout;
    let late = || format!("no answer within {} s", within.as_secs());
    let applyset = ApplySet::new(&request.inventory_namespace);
    let describe = |e: crate::cluster::ClusterError| crate::apply::describe(&e);
    let connected = async {
        let cluster = Cluster::connect(request.kubeconfig.as_deref(), Some(context)).await.map_err(|e| e.to_string())?;
        let inventory = cluster.inventory(&applyset).await.map_err(describe)?;
        Ok::<_, String>((cluster, inventory))
    };
    let (cluster, inventory) = tokio::time::timeout(within, connected).await.map_err(|_| late())??;
    let row = Row { context: context.to_string(), cluster: context.to_string(), reachable: true, ..Row::default() };
    let Some(inventory) = inventory else { return Ok(row) };
    let annotations = &inventory.annotations;
    let text = |key: &str| annotations.get(key).cloned().unwrap_or_default();
    let control = Control::of(annotations);
    let mut row = Row {
        cluster: annotations.get(CLUSTER).filter(|name| !name.is_empty()).cloned().unwrap_or(row.cluster),
        inventory: true,
        path: text(SOURCE_PATH),
        last_result: text(LAST_RESULT),
        last_result_time: text(LAST_RESULT_TIME),
        last_message: text(LAST_MESSAGE),
        drifted: annotations.get(LAST_DRIFTED).and_then(|count| count.parse().ok()),
        suspended: control.suspension.map(|s| s.as_str().to_string()).unwrap_or_default(),
        suspension_note: control.suspension_note,
        pinned: control.pin.unwrap_or_default(),
        revision: inventory.last_applied_revision,
        ..row
    };
    let listed = async { futures::try_join!(cluster.list(Kind::Grant), cluster.list(Kind::Server)).map_err(describe) };
    match tokio::time::timeout(within, listed).await.map_err(|_| late()).and_then(|listed| listed) {
        Ok((grants, servers)) => {
            let ours: Vec<&LiveObject> = grants.iter().chain(&servers).filter(|o| applyset.owns(o)).collect();
            row.signed_by = signers_of(&ours, &row.revision);
            row.expiring = expiring(&ours, request.now);
        }
        Err(why) => row.error = format!("the grants and servers were not read (no signer, no expiring grants): {why}"),
    }
    Ok(row)
}

/// The signers stamped on the objects applied at `revision` (one, unless the signing rules
/// changed between writes).
fn signers_of(objects: &[&LiveObject], revision: &str) -> String {
    let annotation = |o: &LiveObject, key: &str| o.body.pointer(&annotation_pointer(key)).and_then(|v| v.as_str()).map(String::from);
    let signers: BTreeSet<String> = objects
        .iter()
        .filter(|o| !revision.is_empty() && annotation(o, REVISION).as_deref() == Some(revision))
        .filter_map(|o| annotation(o, SIGNED_BY))
        .collect();
    signers.into_iter().collect::<Vec<_>>().join(", ")
}

/// The live grants that are still enabled and expire within `EXPIRING_WITHIN` of `now`.
fn expiring(objects: &[&LiveObject], now: Timestamp) -> Vec<ExpiringGrant> {
    let pointer = annotation_pointer(EXPIRES_AT);
    let mut found: Vec<ExpiringGrant> = objects
        .iter()
        .filter(|o| o.id.kind == Kind::Grant && o.body.pointer("/spec/disabled") != Some(&serde_json::Value::Bool(true)))
        .filter_map(|o| {
            let text = o.body.pointer(&pointer)?.as_str()?;
            let left = text.parse::<Timestamp>().ok()?.duration_since(now);
            (left > SignedDuration::ZERO && left <= EXPIRING_WITHIN).then(|| ExpiringGrant {
                expires_at: text.to_string(),
                grant: format!("{}/{}", o.id.namespace, o.id.name),
                in_minutes: left.as_secs() / 60,
            })
        })
        .collect();
    found.sort();
    found
}

fn annotation_pointer(key: &str) -> String {
    format!("/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ObjectId;
    use serde_json::json;

    fn grant(name: &str, annotations: serde_json::Value, disabled: bool) -> LiveObject {
        LiveObject {
            id: ObjectId { kind: Kind::Grant, namespace: "team".into(), name: name.into() },
            body: json!({"metadata": {"annotations": annotations}, "spec": {"disabled": disabled}}),
            resource_version: "1".into(),
        }
    }

    #[test]
    fn grants_that_expire_within_a_day_are_listed_soonest_first() {
        let now: Timestamp = "2026-11-25T00:00:00Z".parse().unwrap();
        let objects = [
            grant("later", json!({EXPIRES_AT: "2026-11-25T20:00:00Z"}), false),
            grant("soon", json!({EXPIRES_AT: "2026-11-25T01:30:00Z"}), false),
            grant("next-week", json!({EXPIRES_AT: "2026-12-01T00:00:00Z"}), false),
            grant("gone", json!({EXPIRES_AT: "2026-11-24T00:00:00Z"}), false),
            grant("off", json!({EXPIRES_AT: "2026-11-25T02:00:00Z"}), true),
            grant("forever", json!({}), false),
        ];
        let found = expiring(&objects.iter().collect::<Vec<_>>(), now);
        let names: Vec<(&str, i64)> = found.iter().map(|e| (e.grant.as_str(), e.in_minutes)).collect();
        assert_eq!(names, [("team/soon", 90), ("team/later", 1200)]);
    }

    #[test]
    fn the_signer_is_the_one_stamped_at_the_live_revision() {
        let objects = [
            grant("a", json!({REVISION: "abc", SIGNED_BY: "platform@fernhill.io"}), false),
            grant("b", json!({REVISION: "old", SIGNED_BY: "someone@else"}), false),
            grant("c", json!({REVISION: "abc"}), false),
        ];
        let objects: Vec<&LiveObject> = objects.iter().collect();
        assert_eq!(signers_of(&objects, "abc"), "platform@fernhill.io");
        assert_eq!(signers_of(&objects, "new"), "");
        assert_eq!(signers_of(&objects, ""), "");
    }
}
