//! The desired state: a repository's files loaded, the policy directories its `mcp-gitops.yaml`
//! names read beside it and added, and everything validated. One way for every reader: a
//! directory or a git revision (the CLI), the daemon's mirror. What the cache has is taken, what
//! is made is kept there.

use super::Error;
use crate::cache::Cache;
use crate::load::{self, Loaded};
use crate::model::DesiredState;
use crate::source::{self, Snapshot, SourceError};
use crate::validate;
use jiff::Timestamp;
use std::path::Path;

/// The repository under `path` (its policy directories too), loaded and validated: as the work
/// tree has it, or with `rev` as the tree of that git revision has it. With `loaded`, the state
/// as loaded from `path` alone (no policy directory, not validated) is kept there too: what a
/// plan's base can share (`load::state_sharing`).
pub fn of_path(
    path: &Path,
    rev: Option<&str>,
    now: Timestamp,
    loaded: Option<&mut DesiredState>,
    cache: &Cache,
) -> Result<DesiredState, Error> {
    if let Some(rev) = rev
        && !source::resolve_revision_in(path, rev)
    {
        return Err(Error::NotARevision { rev: rev.to_string(), path: path.to_path_buf() });
    }
    let read = |dir: &Path| match rev {
        Some(rev) => source::from_git(dir, rev),
        None => source::from_dir(dir),
    };
    of_snapshot(read(path)?, |dir| read(&path.join(dir)), now, loaded, cache)
}

/// `snapshot` loaded, with the policy directories its `mcp-gitops.yaml` names read by
/// `read_beside` (given each directory as written there), and validated; `loaded` as `of_path`.
pub fn of_snapshot(
    snapshot: Snapshot,
    read_beside: impl Fn(&str) -> Result<Snapshot, SourceError>,
    now: Timestamp,
    loaded: Option<&mut DesiredState>,
    cache: &Cache,
) -> Result<DesiredState, Error> {
    let repository = load::load_cached(snapshot, cache);
    if let Some(loaded) = loaded {
        *loaded = repository.state.clone();
    }
    let policies = policy_directories(&repository.state.config.policies.directories, read_beside)?;
    Ok(validated(repository, policies, now, cache))
}

/// The policy directories `directories` (from `mcp-gitops.yaml`), each read with `read_beside`.
pub fn policy_directories(
    directories: &[String],
    read_beside: impl Fn(&str) -> Result<Snapshot, SourceError>,
) -> Result<Vec<(String, Snapshot)>, Error> {
    directories
        .iter()
        .map(|dir| {
            read_beside(dir).map(|snapshot| (dir.clone(), snapshot)).map_err(|source| Error::PolicyDirectory { dir: dir.clone(), source })
        })
        .collect()
}

/// `repository` with the policy directories `policies` added, validated.
pub fn validated(mut repository: Loaded, policies: Vec<(String, Snapshot)>, now: Timestamp, cache: &Cache) -> DesiredState {
    for (dir, snapshot) in policies {
        load::add_policies(&mut repository, &dir, snapshot);
    }
    validate::validate_cached(repository, now, cache)
}
