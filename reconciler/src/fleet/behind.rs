//! How far each cluster is behind the branch, in a local clone: the commits its live revision
//! lacks, and what catching up would change — the plan (object and access changes, as
//! `plan --base` computes them) of the branch tip against the live revision, each read at the
//! directory the cluster's daemon follows. Clusters at the same revision share one plan.

use super::Row;
use crate::load;
use crate::pipeline::desired::{self, Allowed};
use crate::plan::{self, AccessChange, Work};
use crate::source;
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
/// known, against `branch` of the clone at `repo`; a cluster that cannot be compared says why.
pub fn compare(repo: &Path, branch: &str, rows: Vec<Row>, now: Timestamp, allowed: &Allowed) -> Vec<Row> {
    let mut plans: HashMap<(String, String), Result<Pending, String>> = HashMap::new();
    rows.into_iter()
        .map(|mut row| {
            if !row.reachable || row.revision.is_empty() {
                return row;
            }
            let compared = source::commits_between(repo, &row.revision, branch)
                .map_err(|e| format!("revision {} is not in {} (fetch?): {e}", row.revision, repo.display()))
                .and_then(|behind| {
                    let key = (row.path.clone(), row.revision.clone());
                    let pending = plans.entry(key).or_insert_with(|| pending(&repo.join(&row.path), &row.revision, branch, now, allowed));
                    Ok((behind, pending.clone()?))
                });
            match compared {
                Ok((behind, pending)) => {
                    row.behind_commits = Some(behind);
                    row.pending = Some(pending);
                }
                Err(error) => row.error = format!("cannot compare with {branch}: {error}"),
            }
            row
        })
        .collect()
}

/// The plan of `branch` against `live`, both read at `dir`: the tip validated as a daemon
/// validates it, the live revision loaded as `plan --base` loads its base.
fn pending(dir: &Path, live: &str, branch: &str, now: Timestamp, allowed: &Allowed) -> Result<Pending, String> {
    let tip = desired::of_path(dir, Some(branch), allowed, now, None, &crate::cache::Cache::off()).map_err(|e| e.to_string())?;
    let mut base = load::load(source::from_git(dir, live).map_err(|e| e.to_string())?).state;
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
