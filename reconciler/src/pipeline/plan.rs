//! Plans of the desired state: against a base (a directory, or a git revision with the work the
//! change needs, else every object) and against the live cluster.

use super::desired::{self, Allowed};
use super::{Error, Planned, checkout_provenance, incremental};
use crate::apply;
use crate::cache::Cache;
use crate::cluster::{Cluster, ClusterError};
use crate::load;
use crate::model::DesiredState;
use crate::model::live::{ApplySet, LiveState};
use crate::plan::{self, Plan, Work};
use crate::source;
use crate::validate;
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The cluster a plan or an apply reads: where to connect, and the inventory's namespace.
#[derive(Debug, Clone)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub inventory_namespace: String,
}

/// The plan of the work tree at `path` against `base`, a directory or a git revision of its
/// repository. With `Work::Changed` a git base is planned with the work the change needs when
/// `plan::partial` can (`incremental`). With `keep_base_sources` the base's file texts are kept
/// when it has problems; `allowed` as `desired::of_path`. For one-shot commands: the values it
/// is done with are left to the OS.
pub fn against_base(
    path: &Path,
    base: &str,
    allowed: &Allowed,
    now: Timestamp,
    work: Work,
    cache: &Cache,
    keep_base_sources: bool,
) -> Result<Planned, Error> {
    if work == Work::Changed
        && !Path::new(base).is_dir()
        && let Some(planned) = incremental::against_git(path, base, allowed, now, cache)?
    {
        return Ok(planned);
    }
    let mut loaded = DesiredState::default();
    let mut desired = desired::of_path(path, None, allowed, now, (work == Work::Changed).then_some(&mut loaded), cache)?;
    super::ratchet::against_base(&mut desired, path, base, allowed, now, cache)?;
    let (base_snapshot, base_kind) = base_snapshot(path, base)?;
    // The base's own problems are not this change's: load it, do not validate it. What it could
    // not load is reported apart (`base_diagnostics`). It shares most files with the desired
    // state: those are taken, not parsed again.
    let mut base = match work {
        Work::Changed => load::state_sharing(base_snapshot, &loaded, cache),
        Work::All => load::load(base_snapshot).state,
    };
    super::left_to_the_os(loaded);
    // Compared at the same time as the desired state: a grant that expired in both is disabled
    // in both, not an update.
    validate::expiry::expire(&mut base, now);
    let plan = plan::plan(&base, base_kind, &desired, now, work);
    let base_sources = if !plan.base_diagnostics.is_empty() && keep_base_sources { base.sources.clone() } else { BTreeMap::new() };
    super::left_to_the_os(base);
    Ok(Planned { plan, desired, base_sources })
}

/// The files of `base`, a directory or a git revision of the repository that holds `path`, and
/// which of the two it is.
pub(super) fn base_snapshot(path: &Path, base: &str) -> Result<(source::Snapshot, &'static str), Error> {
    if Path::new(base).is_dir() {
        // A directory below a repository's mcp-gitops.yaml stands for that repository, as PATH does.
        Ok((source::from_dir(&source::root::find(Path::new(base)).path)?, "directory"))
    } else if source::resolve_revision_in(path, base) {
        Ok((source::from_git(path, base)?, "git"))
    } else {
        Err(Error::not_a_base(path, base))
    }
}

/// Connects to `target` and reads the live state of the three kinds and the inventory.
pub async fn live(target: &Target) -> Result<(Cluster, ApplySet, LiveState), Error> {
    let cluster = Cluster::connect(target.kubeconfig.as_deref(), target.context.as_deref()).await.map_err(|e| match e {
        ClusterError::NotConfigured => Error::NoCluster(e.to_string()),
        e => Error::Cluster(e.to_string()),
    })?;
    let applyset = ApplySet::new(&target.inventory_namespace);
    let state = cluster.live_state(&applyset).await.map_err(|e| Error::ClusterRead(apply::describe(&e)))?;
    Ok((cluster, applyset, state))
}

/// The plan of `desired` (read from the work tree at `path`) against the live state of `target`.
pub async fn against_cluster(target: &Target, path: &Path, desired: &DesiredState, now: Timestamp) -> Result<Plan, Error> {
    let (_, applyset, state) = live(target).await.map_err(|e| match e {
        Error::NoCluster(message) => Error::NoClusterToPlan(message),
        e => e,
    })?;
    let plan = plan::live::plan(&state, desired, &applyset, checkout_provenance(path).as_ref(), now);
    super::left_to_the_os(state);
    Ok(plan)
}

/// Why the approvals of a saved plan cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read {}: {source}", file.display())]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{} is not a JSON plan: {source}", file.display())]
    NotJson { file: PathBuf, source: serde_json::Error },
    #[error("{} is not a format_version {} plan", file.display(), plan::FORMAT_VERSION)]
    FormatVersion { file: PathBuf },
    #[error("{} has no approvals (a plan made by an older mcp-gitops): make it again", file.display())]
    NoApprovals { file: PathBuf },
}

/// The approvals the JSON plan saved in `file` (`plan --out`) requires.
pub fn saved_approvals(file: &Path) -> Result<plan::Approvals, SavedPlanError> {
    let text = std::fs::read_to_string(file).map_err(|source| SavedPlanError::Read { file: file.into(), source })?;
    let saved: serde_json::Value = serde_json::from_str(&text).map_err(|source| SavedPlanError::NotJson { file: file.into(), source })?;
    if saved["format_version"] != plan::FORMAT_VERSION {
        return Err(SavedPlanError::FormatVersion { file: file.into() });
    }
    serde_json::from_value(saved["approvals"].clone()).map_err(|_| SavedPlanError::NoApprovals { file: file.into() })
}
