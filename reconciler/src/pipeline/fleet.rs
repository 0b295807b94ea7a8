//! The fleet: one repository's desired state for each cluster its `mcp-gitops.yaml` declares
//! (`clusters:`, docs/fleet.md). The repository is loaded once; each cluster's slice is taken
//! from it (`load::slice`) and validated; each problem says which clusters have it. A repository
//! without `clusters:` is none of this module's business: its callers go on as before.

use super::desired::{self, Allowed, Beside, WorkTree};
use super::{Error, Planned};
use crate::cache::Cache;
use crate::load::{self, CONFIG_FILE, Loaded, slice};
use crate::model::{DesiredState, Diagnostic, RepoConfig, diagnostic};
use crate::plan::{self, Work, fleet::ClusterPlan};
use crate::source::Snapshot;
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// A failure to take a repository's clusters: the command line names a cluster it does not
/// declare (a usage mistake), or the pipeline failed.
#[derive(Debug, thiserror::Error)]
pub enum SliceError {
    #[error("--cluster {name:?}: {message}")]
    UnknownCluster { name: String, message: String },
    #[error("the repository declares clusters ({0}): name the one to plan against the live cluster with --cluster NAME")]
    ClusterNeeded(String),
    #[error(transparent)]
    Pipeline(#[from] Error),
}

impl SliceError {
    pub fn is_usage(&self) -> bool {
        matches!(self, SliceError::UnknownCluster { .. } | SliceError::ClusterNeeded(_))
    }
}

impl From<crate::source::SourceError> for SliceError {
    fn from(e: crate::source::SourceError) -> Self {
        SliceError::Pipeline(e.into())
    }
}

/// One cluster's desired state.
pub struct ClusterState {
    pub name: String,
    pub state: DesiredState,
}

/// The clusters to take of `config`: `only`, or every one it declares. `None` when it declares
/// none and none is asked for; an error when `only` is not one of them.
pub fn chosen(config: &RepoConfig, only: Option<&str>) -> Result<Option<Vec<String>>, SliceError> {
    match only {
        None if config.clusters.is_empty() => Ok(None),
        None => Ok(Some(slice::names(config))),
        Some(name) if config.cluster(name).is_some() => Ok(Some(vec![name.to_string()])),
        Some(name) => {
            let unknown = slice::unknown(config, name);
            Err(SliceError::UnknownCluster { name: name.to_string(), message: format!("{} ({})", unknown.message, unknown.hint) })
        }
    }
}

/// The configuration in `snapshot`, read on its own (its problems are reported by the load).
pub fn config_of(snapshot: &Snapshot) -> RepoConfig {
    let text = snapshot.files.iter().find(|f| f.path == CONFIG_FILE).and_then(|f| std::str::from_utf8(&f.bytes).ok());
    text.map(|text| load::config(text).0).unwrap_or_default()
}

/// The configuration of the work tree at `path`, read from its `mcp-gitops.yaml` alone, as a
/// snapshot of the tree has it (a symbolic link is not followed): enough to tell whether the
/// repository declares clusters without reading every file of a repository that declares none,
/// which its own validation or plan then reads.
fn config_at(path: &Path) -> RepoConfig {
    let file = path.join(CONFIG_FILE);
    let text = std::fs::symlink_metadata(&file).ok().filter(|m| m.is_file()).and_then(|_| std::fs::read_to_string(&file).ok());
    text.map(|text| load::config(&text).0).unwrap_or_default()
}

/// `snapshot` loaded once, and each cluster of `names`'s slice of it: taken from the whole
/// (`slice::of`), or loaded again for a cluster with a default namespace of its own. A cluster
/// the snapshot does not declare (a base from before it was added) has every file.
fn sliced(snapshot: Snapshot, names: &[String], cache: &Cache) -> (Loaded, Vec<(String, Loaded)>) {
    let (label, revision) = (snapshot.label.clone(), snapshot.revision.clone());
    let config = config_of(&snapshot);
    let own_namespace = |name: &String| config.cluster(name).is_some_and(|c| c.default_namespace.is_some());
    let again = if names.iter().any(own_namespace) { snapshot.files.clone() } else { Vec::new() };
    let whole = load::load_cached(snapshot, cache);
    let slices = names
        .iter()
        .map(|name| {
            let cluster = config.cluster(name).map(|_| name.clone());
            let loaded = match &cluster {
                None => whole.clone(),
                Some(name) => slice::of(&whole, name).unwrap_or_else(|| {
                    let (label, revision, files) = (label.clone(), revision.clone(), again.clone());
                    load::load(Snapshot { label, revision, files, cluster: cluster.clone(), ..Snapshot::default() })
                }),
            };
            (name.clone(), loaded)
        })
        .collect();
    (whole, slices)
}

/// `snapshot` as each cluster of `names` has it, loaded (the repository once) and validated,
/// with the repository as loaded without a cluster, whose diagnostics are what no cluster sees
/// (`slice::outside`); policy directories are read `beside` it.
pub fn states(
    snapshot: Snapshot,
    beside: &impl Beside,
    names: &[String],
    allowed: &Allowed,
    now: Timestamp,
    cache: &Cache,
) -> Result<(DesiredState, Vec<ClusterState>), Error> {
    let (mut whole, slices) = sliced(snapshot, names, cache);
    whole.state.diagnostics = slice::outside(&whole);
    let mut clusters = Vec::with_capacity(names.len());
    for (name, loaded) in slices {
        let policies = desired::policy_directories(&loaded.state.config.policies.directories, beside, allowed)?;
        clusters.push(ClusterState { name, state: desired::validated(loaded, policies, now, cache) });
    }
    Ok((whole.state, clusters))
}

/// The plan of the work tree at `path` against `base` (a directory or a git revision of its
/// repository) for each cluster its `mcp-gitops.yaml` declares (`only`: that one), and their
/// union (`plan::fleet`). `None` when the repository declares no clusters and none is asked for.
pub fn plan_against_base(
    path: &Path,
    base: &str,
    allowed: &Allowed,
    now: Timestamp,
    cache: &Cache,
    only: Option<&str>,
) -> Result<Option<Planned>, SliceError> {
    if chosen(&config_at(path), only)?.is_none() {
        return Ok(None);
    }
    let tree = WorkTree { path, rev: None };
    let snapshot = tree.read("")?;
    let Some(names) = chosen(&config_of(&snapshot), only)? else { return Ok(None) };
    let (_, mut desired) = states(snapshot, &tree, &names, allowed, now, cache)?;
    let (base_snapshot, base_kind) = super::plan::base_snapshot(path, base)?;
    let (_, bases) = sliced(base_snapshot, &names, &Cache::off());
    let root = crate::source::root::find(Path::new(base)).path;
    let base_tree = match base_kind {
        "directory" => WorkTree { path: &root, rev: None },
        _ => WorkTree { path, rev: Some(base) },
    };
    let mut plans = Vec::with_capacity(names.len());
    let mut base_sources = BTreeMap::new();
    for (cluster, (_, base_loaded)) in desired.iter_mut().zip(bases) {
        ratchet(&mut cluster.state, &base_loaded, &base_tree, base, allowed, now);
        let mut base = base_loaded.state;
        // Compared at the same time as the desired state (as `plan::against_base`).
        crate::validate::expiry::expire(&mut base, now);
        let plan = plan::plan(&base, base_kind, &cluster.state, now, Work::Changed);
        base_sources.extend(base.sources.into_iter().filter(|_| !plan.base_diagnostics.is_empty()));
        let cluster_name = cluster.state.config.cluster_name().to_string();
        plans.push(ClusterPlan { name: cluster.name.clone(), cluster_name, plan });
    }
    let diagnostics = merged(plans.iter().map(|p| (p.name.as_str(), p.plan.diagnostics.as_slice())));
    let Some(plan) = plan::fleet::union(plans, diagnostics) else { return Ok(None) };
    let mut state = DesiredState { diagnostics: plan.diagnostics.clone(), ..DesiredState::default() };
    for cluster in desired {
        state.sources.extend(cluster.state.sources);
    }
    Ok(Some(Planned { plan, desired: state, base_sources }))
}

/// The ratchet of `plan::against_base`, for one cluster: a built-in policy's violation the
/// cluster's slice of the base already has is a warning. The base slice is validated only when
/// the desired state has such an error; a base whose policy directories cannot be read passes
/// nothing on.
fn ratchet(desired: &mut DesiredState, base: &Loaded, beside: &WorkTree, name: &str, allowed: &Allowed, now: Timestamp) {
    if !crate::validate::ratchet::needs_base(desired) {
        return;
    }
    let Ok(policies) = desired::policy_directories(&base.state.config.policies.directories, beside, allowed) else { return };
    let validated = desired::validated(base.clone(), policies, now, &Cache::off());
    crate::validate::ratchet::inherit(desired, &validated, &format!("the base ({name})"));
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
) -> Result<Option<DesiredState>, SliceError> {
    if chosen(&config_at(path), only)?.is_none() {
        return Ok(None);
    }
    let tree = WorkTree { path, rev: None };
    let snapshot = tree.read("")?;
    let Some(names) = chosen(&config_of(&snapshot), only)? else { return Ok(None) };
    let (mut whole, clusters) = states(snapshot, &tree, &names, allowed, now, cache)?;
    let mut diagnostics = merged(clusters.iter().map(|c| (c.name.as_str(), c.state.diagnostics.as_slice())));
    let mut state = match only {
        // One cluster: its objects, not the repository's.
        Some(_) => clusters.into_iter().next().map_or(whole, |c| c.state),
        None => {
            diagnostics.append(&mut whole.diagnostics);
            diagnostic::sort(&mut diagnostics);
            whole
        }
    };
    state.diagnostics = diagnostics;
    Ok(Some(state))
}

/// Every cluster's diagnostics (by cluster name), each problem once with the names of the
/// clusters that have it.
pub fn merged<'a>(clusters: impl Iterator<Item = (&'a str, &'a [Diagnostic])>) -> Vec<Diagnostic> {
    let mut found: Vec<Diagnostic> = Vec::new();
    let mut at: HashMap<(String, usize, usize, bool), usize> = HashMap::new();
    for (name, diagnostics) in clusters {
        for d in diagnostics {
            match at.get(&(d.fingerprint(), d.line, d.column, d.is_error())) {
                Some(&i) => found[i].clusters.push(name.to_string()),
                None => {
                    at.insert((d.fingerprint(), d.line, d.column, d.is_error()), found.len());
                    found.push(Diagnostic { clusters: vec![name.to_string()], ..d.clone() });
                }
            }
        }
    }
    diagnostic::sort(&mut found);
    found
}

/// The desired state to plan against a live cluster: the work tree at `path` as the cluster
/// `only` has it (`validated`), which a repository with `clusters:` must name. `None` when the
/// repository declares no clusters and none is asked for.
pub fn for_live_cluster(
    path: &Path,
    allowed: &Allowed,
    now: Timestamp,
    cache: &Cache,
    only: Option<&str>,
) -> Result<Option<DesiredState>, SliceError> {
    if only.is_none() {
        let config = config_at(path);
        if !config.clusters.is_empty() {
            return Err(SliceError::ClusterNeeded(slice::names(&config).join(", ")));
        }
    }
    validated(path, allowed, now, cache, only)
}

#[cfg(test)]
mod tests {
    use crate::model::{Code, Diagnostic, Pos};

    #[test]
    fn a_problem_several_clusters_have_is_one_naming_them_all() {
        let at = |line| Pos { line, column: 1 };
        let base = Diagnostic::error(Code::UnknownServer, "base/g.yaml", at(3), "no server");
        let prod = Diagnostic::warning(Code::GrantExpired, "clusters/prod/g.yaml", at(1), "expired");
        let (dev, everywhere) = (vec![base.clone()], vec![base.clone(), prod.clone()]);
        let found = super::merged([("dev", dev.as_slice()), ("prod", everywhere.as_slice())].into_iter());
        let found: Vec<(&str, Vec<String>)> = found.iter().map(|d| (d.file.as_str(), d.clusters.clone())).collect();
        assert_eq!(
            found,
            [("base/g.yaml", vec!["dev".to_string(), "prod".to_string()]), ("clusters/prod/g.yaml", vec!["prod".to_string()])]
        );
    }
}
