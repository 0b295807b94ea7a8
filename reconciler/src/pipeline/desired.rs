//! The desired state: a repository's files loaded, the policy directories its `mcp-gitops.yaml`
//! names read beside it and added, and everything validated. One way for every reader: a
//! directory or a git revision (the CLI), the daemon's mirror. The repository alone never makes
//! mcp-gitops read outside itself: a policy directory outside it is read only when whoever runs
//! mcp-gitops allows it, and its files' lines are never shown. What the cache has is taken, what
//! is made is kept there.

use super::Error;
use crate::cache::Cache;
use crate::load::{self, Loaded};
use crate::model::DesiredState;
use crate::source::{self, Place, Snapshot, SourceError, mirror::Mirror};
use crate::validate;
use jiff::Timestamp;
use std::path::{Path, PathBuf};

/// What lies beside a repository: where a directory it names is, and its files.
pub trait Beside {
    fn place(&self, dir: &str) -> Place;
    fn read(&self, dir: &str) -> Result<Snapshot, SourceError>;
}

/// The repository in a directory, as the work tree has it or at a git revision.
pub struct WorkTree<'a> {
    pub path: &'a Path,
    pub rev: Option<&'a str>,
}

impl Beside for WorkTree<'_> {
    fn place(&self, dir: &str) -> Place {
        source::place_beside(self.path, dir)
    }

    fn read(&self, dir: &str) -> Result<Snapshot, SourceError> {
        let dir = self.path.join(dir);
        match self.rev {
            Some(rev) => source::from_git(&dir, rev),
            None => source::from_dir(&dir),
        }
    }
}

impl Beside for Mirror {
    fn place(&self, dir: &str) -> Place {
        self.place_beside(dir)
    }

    fn read(&self, dir: &str) -> Result<Snapshot, SourceError> {
        self.read_beside(dir)
    }
}

/// The directories outside the repository that whoever runs mcp-gitops lets its
/// `mcp-gitops.yaml` name as policy directories (`--allow-policy-dir`), with what is under them.
#[derive(Debug, Clone, Default)]
pub struct Allowed(Vec<PathBuf>);

impl Allowed {
    pub fn new(dirs: &[PathBuf]) -> Allowed {
        Allowed(dirs.iter().map(|dir| std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone())).collect())
    }

    fn allows(&self, place: &Path) -> bool {
        self.0.iter().any(|allowed| place.starts_with(allowed))
    }
}

/// A policy directory `mcp-gitops.yaml` names, as read.
pub struct PolicyDirectory {
    /// As `mcp-gitops.yaml` names it.
    pub dir: String,
    pub snapshot: Snapshot,
    /// Outside the repository (allowed): its files' lines are never shown.
    pub outside: bool,
}

/// The repository under `path` (its policy directories too), loaded and validated: as the work
/// tree has it, or with `rev` as the tree of that git revision has it. With `loaded`, the state
/// as loaded from `path` alone (no policy directory, not validated) is kept there too: what a
/// plan's base can share (`load::state_sharing`).
pub fn of_path(
    path: &Path,
    rev: Option<&str>,
    allowed: &Allowed,
    now: Timestamp,
    loaded: Option<&mut DesiredState>,
    cache: &Cache,
) -> Result<DesiredState, Error> {
    if let Some(rev) = rev
        && !source::resolve_revision_in(path, rev)
    {
        return Err(Error::NotARevision { rev: rev.to_string(), path: path.to_path_buf() });
    }
    let tree = WorkTree { path, rev };
    of_snapshot(tree.read("")?, &tree, allowed, now, loaded, cache)
}

/// `snapshot` loaded, with the policy directories its `mcp-gitops.yaml` names read beside it
/// (as `policy_directories`), and validated; `loaded` as `of_path`.
pub fn of_snapshot(
    snapshot: Snapshot,
    beside: &impl Beside,
    allowed: &Allowed,
    now: Timestamp,
    loaded: Option<&mut DesiredState>,
    cache: &Cache,
) -> Result<DesiredState, Error> {
    let repository = load::load_cached(snapshot, cache);
    if let Some(loaded) = loaded {
        *loaded = repository.state.clone();
    }
    let policies = policy_directories(&repository.state.config.policies.directories, beside, allowed)?;
    Ok(validated(repository, policies, now, cache))
}

/// The policy directories `directories` (from `mcp-gitops.yaml`), each read beside the
/// repository; one outside it is an error unless `allowed`.
pub fn policy_directories(directories: &[String], beside: &impl Beside, allowed: &Allowed) -> Result<Vec<PolicyDirectory>, Error> {
    directories
        .iter()
        .map(|dir| {
            let outside = match beside.place(dir) {
                Place::Inside => false,
                Place::Outside(place) if allowed.allows(&place) => true,
                Place::Outside(place) => return Err(Error::PolicyDirectoryOutside { dir: dir.clone(), place }),
            };
            let snapshot = beside.read(dir).map_err(|source| Error::PolicyDirectory { dir: dir.clone(), source })?;
            Ok(PolicyDirectory { dir: dir.clone(), snapshot, outside })
        })
        .collect()
}

/// `repository` with the policy directories `policies` added, validated.
pub fn validated(repository: Loaded, policies: Vec<PolicyDirectory>, now: Timestamp, cache: &Cache) -> DesiredState {
    validate::validate_cached(with_policies(repository, policies), now, cache)
}

/// `repository` with the policy directories `policies` added: what `validated` validates.
pub fn with_policies(mut repository: Loaded, policies: Vec<PolicyDirectory>) -> Loaded {
    for policy in policies {
        load::add_policies(&mut repository, &policy.dir, policy.snapshot, !policy.outside);
    }
    repository
}
