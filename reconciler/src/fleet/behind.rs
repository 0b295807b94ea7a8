//! How far each cluster is behind the branch, in a local clone: the commits its live revision
//! lacks, and what catching up would change — the plan (object and access changes, as
//! `plan --base` computes them) of the branch tip against the live revision, each read at the
//! directory the cluster's daemon follows, as its cluster of `clusters:` has them; a cluster with
//! a `ref:` of its own is compared with that ref, and what the branch would add beside. Clusters
//! at the same revision share one plan.

use super::Row;
use crate::load;
use crate::model::RepoConfig;
use crate::pipeline::desired::{self, Allowed, Beside, WorkTree};
use crate::pipeline::fleet;
use crate::plan::{self, AccessChange, Work};
use crate::source::{self, Snapshot};
use crate::validate;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// What applying the branch tip over the live revision would change.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pending {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub widened: usize,
    pub narrowed: usize,
    pub changed: usize,
    /// Errors in the tip's desired state: a daemon applies nothing of it until they are fixed.
    pub errors: usize,
    pub access_changes: Vec<AccessChange>,
}

/// `rows` with `behind_commits` and `pending` filled in for each cluster whose live revision is
/// known, against `branch` of the clone at `repo` — or against the cluster's own `ref:` of
/// `clusters:`, with `catch_up` then saying what the branch would add; a cluster of `clusters:`
/// is compared on its slice. A cluster that cannot be compared says why.
pub fn compare(repo: &Path, branch: &str, rows: Vec<Row>, now: Timestamp, allowed: &Allowed) -> Vec<Row> {
    let mut plans: HashMap<Key, Result<Pending, String>> = HashMap::new();
    let mut configs: HashMap<String, RepoConfig> = HashMap::new();
    rows.into_iter()
        .map(|mut row| {
            if !row.reachable || row.revision.is_empty() {
                return row;
            }
            let dir = repo.join(&row.path);
            let config = configs.entry(row.path.clone()).or_insert_with(|| {
                WorkTree { path: &dir, rev: Some(branch) }.read("").map(|tip| fleet::config_of(&tip)).unwrap_or_default()
            });
            let spec = config.cluster(&row.cluster);
            let slice = spec.map(|c| c.name.clone());
            let follows = spec.and_then(|c| c.git_ref.clone()).unwrap_or_else(|| branch.to_string());
            let mut against = |target: &str| {
                let behind = source::commits_between(repo, &row.revision, target)
                    .map_err(|e| format!("revision {} is not in {} (fetch?): {e}", row.revision, repo.display()))?;
                let key = (row.path.clone(), slice.clone(), row.revision.clone(), target.to_string());
                let pending = plans.entry(key).or_insert_with(|| pending(&dir, slice.as_deref(), &row.revision, target, now, allowed));
                Ok::<_, String>((behind, pending.clone()?))
            };
            let compared = against(&follows).and_then(|own| {
                let catch_up = if follows == branch { None } else { Some(against(branch)?) };
                Ok((own, catch_up))
            });
            match compared {
                Ok(((behind, pending), catch_up)) => {
                    row.behind_commits = Some(behind);
                    row.pending = Some(pending);
                    (row.catch_up_commits, row.catch_up) = catch_up.unzip();
                }
                Err(error) => row.error = format!("cannot compare with {follows}: {error}"),
            }
            row.follows = follows;
            row
        })
        .collect()
}

/// A plan computed once per directory, cluster slice, live revision and target.
type Key = (String, Option<String>, String, String);

/// The plan of `target` against `live`, both read at `dir` as the cluster `slice` of
/// `clusters:` has them (every file without one): the target validated as a daemon validates
/// it, the live revision loaded as `plan --base` loads its base.
fn pending(dir: &Path, slice: Option<&str>, live: &str, target: &str, now: Timestamp, allowed: &Allowed) -> Result<Pending, String> {
    let tree = WorkTree { path: dir, rev: Some(target) };
    let snapshot = Snapshot { cluster: slice.map(String::from), ..tree.read("").map_err(|e| e.to_string())? };
    let tip = desired::of_snapshot(snapshot, &tree, allowed, now, None, &crate::cache::Cache::off()).map_err(|e| e.to_string())?;
    let base = source::from_git(dir, live).map_err(|e| e.to_string())?;
    let mut base = load::load(Snapshot { cluster: slice.map(String::from), ..base }).state;
    validate::expiry::expire(&mut base, now);
    let plan = plan::plan(&base, "git", &tip, now, Work::All);
    let summary = &plan.summary;
    Ok(Pending {
        create: summary.create,
        update: summary.update,
        delete: summary.delete,
        widened: summary.access_widened,
        narrowed: summary.access_narrowed,
        changed: summary.access_changed,
        errors: summary.errors,
        access_changes: plan.access_changes,
    })
}
