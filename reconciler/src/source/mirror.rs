//! The daemon's source: a git repository (local, HTTPS or SSH, with the credentials of
//! `remote`) fetched into a bare cache (no checkout), or a plain directory read as it is. Each
//! `poll` returns the snapshot of the branch tip and what happened to the branch (new commit,
//! force-push, deleted).

pub use super::redact::redact;
use super::redact::redact_in;
pub use super::remote::{Credentials, sends_secrets_in_clear};
use super::{Snapshot, SourceError, from_dir, snapshot_of};
use git2::{FetchOptions, Oid, Repository};
use std::path::{Component, Path, PathBuf};

/// What a poll found.
#[derive(Debug)]
pub struct Poll {
    pub snapshot: Snapshot,
    /// The previous tip is not an ancestor of the new one: the branch was rewritten.
    pub force_pushed: bool,
}

pub enum Mirror {
    Git { repo: Repository, url: String, branch: String, path: PathBuf, tip: Option<Oid>, credentials: Credentials },
    Directory { path: PathBuf },
}

impl Mirror {
    /// `repo` is a git URL (https://, ssh://, `user@host:path`, file://, a local repository
    /// path) or a plain directory; git repositories are fetched into `cache`. Credentials for
    /// a plain http:// URL are refused unless `credentials.allow_insecure_http`.
    pub fn open(repo: &str, branch: &str, path: &str, cache: &Path, credentials: Credentials) -> Result<Mirror, SourceError> {
        if !credentials.allow_insecure_http && super::remote::sends_secrets_in_clear(repo, &credentials) {
            return Err(SourceError::InsecureHttp { url: redact(repo) });
        }
        let local = Path::new(repo);
        if local.is_dir() && Repository::open(local).is_err() {
            return Ok(Mirror::Directory { path: local.join(path) });
        }
        std::fs::create_dir_all(cache).map_err(|source| SourceError::Io { path: cache.display().to_string(), source })?;
        let mirror = match Repository::open_bare(cache) {
            Ok(repo) => repo,
            Err(_) => Repository::init_bare(cache)?,
        };
        Ok(Mirror::Git {
            repo: mirror,
            url: repo.to_string(),
            branch: branch.to_string(),
            path: PathBuf::from(path),
            tip: None,
            credentials,
        })
    }

    /// The fetched repository (none for a plain directory): its commits, for signature checks.
    pub fn repository(&self) -> Option<&Repository> {
        match self {
            Mirror::Git { repo, .. } => Some(repo),
            Mirror::Directory { .. } => None,
        }
    }

    /// Where the platform directory sits in the repository, as a prefix of its files' paths
    /// (`""` at the root, `"platform/"`).
    pub fn prefix(&self) -> String {
        let Mirror::Git { path, .. } = self else { return String::new() };
        path.components()
            .filter_map(|part| part.as_os_str().to_str().filter(|_| matches!(part, Component::Normal(_))))
            .map(|name| format!("{name}/"))
            .collect()
    }

    /// The source's place on this machine, when it has one (for filesystem events).
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            Mirror::Directory { path } => Some(path),
            Mirror::Git { url, .. } => {
                let path = Path::new(url.strip_prefix("file://").unwrap_or(url));
                path.is_dir().then_some(path)
            }
        }
    }

    /// Where the directory `dir`, named as `read_beside` takes it, lies: a relative one of a git
    /// source is read from the commit and never leads out of the repository.
    pub fn place_beside(&self, dir: &str) -> super::Place {
        match self {
            Mirror::Directory { path } => super::place_beside(path, dir),
            Mirror::Git { .. } if Path::new(dir).is_absolute() => {
                super::Place::Outside(std::fs::canonicalize(dir).unwrap_or_else(|_| PathBuf::from(dir)))
            }
            Mirror::Git { .. } => super::Place::Inside,
        }
    }

    /// The files of another directory of the revision last polled, named as `mcp-gitops.yaml`
    /// names its policy directories: relative to the platform directory (it may lead out of it,
    /// not out of the repository), or absolute (a directory on this machine, such as a mounted
    /// ConfigMap of organisation policies).
    pub fn read_beside(&self, dir: &str) -> Result<Snapshot, SourceError> {
        if Path::new(dir).is_absolute() {
            return from_dir(Path::new(dir));
        }
        match self {
            Mirror::Directory { path } => from_dir(&path.join(dir)),
            Mirror::Git { repo, path, tip, url, .. } => {
                let missing = |why: &str| SourceError::Git(git2::Error::from_str(&format!("{dir}: {why}")));
                let mut inside = PathBuf::new();
                for part in path.join(dir).components() {
                    match part {
                        Component::Normal(name) => inside.push(name),
                        Component::ParentDir if inside.pop() => {}
                        Component::CurDir => {}
                        _ => return Err(missing("leads out of the repository")),
                    }
                }
                let commit = repo.find_commit(tip.ok_or_else(|| missing("no revision was fetched yet"))?)?;
                if !inside.as_os_str().is_empty() && commit.tree()?.get_path(&inside).is_err() {
                    return Err(missing("no such directory at this revision"));
                }
                snapshot_of(repo, &commit, &inside, format!("{}@{}", redact(url), commit.id()))
            }
        }
    }

    /// The snapshot of `revision`, a commit the fetched repository holds (the live revision,
    /// that the ratchet judges the tip against); none for a plain directory, which keeps no
    /// history, or for a commit the repository does not hold.
    pub fn snapshot_at(&self, revision: &str) -> Option<Result<Snapshot, SourceError>> {
        let Mirror::Git { repo, path, url, .. } = self else { return None };
        let commit = Oid::from_str(revision).ok().and_then(|id| repo.find_commit(id).ok())?;
        Some(snapshot_of(repo, &commit, path, format!("{}@{}", redact(url), commit.id())))
    }

    /// Fetches the branch and reads its tip, or with `pin` that revision of the branch (the
    /// tip or one of its ancestors; anything else is refused).
    pub fn poll(&mut self, pin: Option<&str>) -> Result<Poll, SourceError> {
        match self {
            Mirror::Directory { .. } if pin.is_some() => {
                Err(SourceError::PinNotOnBranch { pin: pin.unwrap_or_default().into(), branch: String::new(), directory: true })
            }
            Mirror::Directory { path } => Ok(Poll { snapshot: from_dir(path)?, force_pushed: false }),
            Mirror::Git { repo, url, branch, path, tip, credentials } => {
                let refspec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
                let mut remote = repo.remote_anonymous(url).map_err(|e| git2::Error::from_str(&redact_in(e.message(), url)))?;
                let refusal = super::remote::Refusal::default();
                let mut options = FetchOptions::new();
                options.prune(git2::FetchPrune::On).remote_callbacks(super::remote::callbacks(url, credentials, &refusal)?);
                remote.fetch(&[refspec.as_str()], Some(&mut options), None).map_err(|e| {
                    // libgit2 may quote the URL, and a URL may carry credentials.
                    let message = refusal.take().unwrap_or_else(|| redact_in(e.message(), url));
                    SourceError::Git(git2::Error::from_str(&format!("fetching branch {branch}: {message}")))
                })?;
                let reference = repo.find_reference(&format!("refs/remotes/origin/{branch}")).map_err(|_| {
                    SourceError::Git(git2::Error::from_str(&format!("branch {branch} does not exist in the repository (deleted?)")))
                })?;
                let commit = reference.peel_to_commit()?;
                if let Some(pin) = pin {
                    let not_on_branch = || SourceError::PinNotOnBranch { pin: pin.into(), branch: branch.clone(), directory: false };
                    let pinned = Oid::from_str(pin).ok().and_then(|id| repo.find_commit(id).ok()).ok_or_else(not_on_branch)?;
                    if pinned.id() != commit.id() && !repo.graph_descendant_of(commit.id(), pinned.id()).unwrap_or(false) {
                        return Err(not_on_branch());
                    }
                    // A pin goes back on purpose: not a rewritten branch.
                    *tip = Some(pinned.id());
                    let snapshot = snapshot_of(repo, &pinned, path, format!("{}@{}", redact(url), pinned.id()))?;
                    return Ok(Poll { snapshot, force_pushed: false });
                }
                let force_pushed = match tip {
                    Some(previous) if *previous != commit.id() => !repo.graph_descendant_of(commit.id(), *previous).unwrap_or(false),
                    _ => false,
                };
                *tip = Some(commit.id());
                let snapshot = snapshot_of(repo, &commit, path, format!("{}@{branch}", redact(url)))?;
                Ok(Poll { snapshot, force_pushed })
            }
        }
    }
}
