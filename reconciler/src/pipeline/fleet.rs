//! The fleet: one repository's desired state for each cluster its `mcp-gitops.yaml` declares
//! (`clusters:`, docs/fleet.md). The repository is loaded once; each cluster's slice is taken
//! from it (`load::slice`) and validated; each problem says which clusters have it. A repository
//! without `clusters:` is none of this module's business: its callers go on as before.

use super::Error;
use super::desired::{self, Allowed, Beside, WorkTree};
use crate::cache::Cache;
use crate::load::{self, CONFIG_FILE, slice};
use crate::model::{DesiredState, Diagnostic, RepoConfig, diagnostic};
use crate::source::Snapshot;
use jiff::Timestamp;
use std::collections::HashMap;
use std::path::Path;

/// A failure to take a repository's clusters: the command line names a cluster it does not
/// declare (a usage mistake), or the pipeline failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("--cluster {name:?}: {message}")]
    UnknownCluster { name: String, message: String },
    #[error(transparent)]
    Pipeline(#[from] Error),
}

impl FleetError {
    pub fn is_usage(&self) -> bool {
        matches!(self, FleetError::UnknownCluster { .. })
    }
}

impl From<crate::source::SourceError> for FleetError {
    fn from(e: crate::source::SourceError) -> Self {
        FleetError::Pipeline(e.into())
    }
}

/// One cluster's desired state.
pub struct ClusterState {
    pub name: String,
    pub state: DesiredState,
}

/// The clusters to take of `config`: `only`, or every one it declares. `None` when it declares
/// none and none is asked for; an error when `only` is not one of them.
pub fn chosen(config: &RepoConfig, only: Option<&str>) -> Result<Option<Vec<String>>, FleetError> {
    match only {
        None if config.clusters.is_empty() => Ok(None),
        None => Ok(Some(slice::names(config))),
        Some(name) if config.cluster(name).is_some() => Ok(Some(vec![name.to_string()])),
        Some(name) => {
            let unknown = slice::unknown(config, name);
            Err(FleetError::UnknownCluster { name: name.to_string(), message: format!("{} ({})", unknown.message, unknown.hint) })
        }
    }
}

/// The configuration in `snapshot`, read on its own (its problems are reported by the load).
pub fn config_of(snapshot: &Snapshot) -> RepoConfig {
    let text = snapshot.files.iter().find(|f| f.path == CONFIG_FILE).and_then(|f| std::str::from_utf8(&f.bytes).ok());
    text.map(|text| load::config(text).0).unwrap_or_default()
}

/// `snapshot` as each cluster of `names` has it, loaded (the repository once) and validated,
/// with the repository as loaded without a cluster; policy directories are read `beside` it.
pub fn states(
    snapshot: Snapshot,
    beside: &impl Beside,
    names: &[String],
    allowed: &Allowed,
    now: Timestamp,
    cache: &Cache,
) -> Result<(DesiredState, Vec<ClusterState>), Error> {
    let (label, revision) = (snapshot.label.clone(), snapshot.revision.clone());
    // A cluster with its own default namespace is loaded again: keep the files for it.
    let config = config_of(&snapshot);
    let own_namespace = |name: &String| config.cluster(name).is_some_and(|c| c.default_namespace.is_some());
    let again = if names.iter().any(own_namespace) { snapshot.files.clone() } else { Vec::new() };
    let whole = load::load_cached(snapshot, cache);
    let mut clusters = Vec::with_capacity(names.len());
    for name in names {
        let loaded = slice::of(&whole, name).unwrap_or_else(|| {
            let snapshot = Snapshot {
                label: label.clone(),
                revision: revision.clone(),
                files: again.clone(),
                cluster: Some(name.clone()),
                ..Snapshot::default()
            };
            load::load(snapshot)
        });
        let policies = desired::policy_directories(&loaded.state.config.policies.directories, beside, allowed)?;
        clusters.push(ClusterState { name: name.clone(), state: desired::validated(loaded, policies, now, cache) });
    }
    Ok((whole.state, clusters))
}

/// The work tree at `path` validated for each cluster its `mcp-gitops.yaml` declares (`only`:
/// that one), as one state: the repository's objects and files, and every cluster's problems,
/// each once, naming the clusters that have it. `None` when the repository declares no
/// clusters and none is asked for.
pub fn validated(
    path: &Path,
    allowed: &Allowed,
    now: Timestamp,
    cache: &Cache,
    only: Option<&str>,
) -> Result<Option<DesiredState>, FleetError> {
    let tree = WorkTree { path, rev: None };
    let snapshot = tree.read("")?;
    let Some(names) = chosen(&config_of(&snapshot), only)? else { return Ok(None) };
    let (whole, clusters) = states(snapshot, &tree, &names, allowed, now, cache)?;
    let mut state = match only {
        // One cluster: its objects, not the repository's.
        Some(_) => clusters.first().map(|c| c.state.clone()).unwrap_or(whole),
        None => whole,
    };
    state.diagnostics = merged(&clusters);
    Ok(Some(state))
}

/// Every cluster's diagnostics, each problem once with the names of the clusters that have it.
pub fn merged(clusters: &[ClusterState]) -> Vec<Diagnostic> {
    let mut found: Vec<Diagnostic> = Vec::new();
    let mut at: HashMap<(String, usize, usize, bool), usize> = HashMap::new();
    for cluster in clusters {
        for d in &cluster.state.diagnostics {
            match at.get(&(d.fingerprint(), d.line, d.column, d.is_error())) {
                Some(&i) => found[i].clusters.push(cluster.name.clone()),
                None => {
                    at.insert((d.fingerprint(), d.line, d.column, d.is_error()), found.len());
                    found.push(Diagnostic { clusters: vec![cluster.name.clone()], ..d.clone() });
                }
            }
        }
    }
    diagnostic::sort(&mut found);
    found
}
