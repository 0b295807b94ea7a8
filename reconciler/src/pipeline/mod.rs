//! The pipeline as a use: what the CLI and the daemon both do with the stages, written once.
//! `desired` builds the desired state from any reader (a directory, a git revision, the
//! daemon's mirror); `plan` plans it against a base (a directory or a git revision, with
//! `incremental` doing only the work a change needs) or against the live cluster; `apply` is
//! the apply checklist (gate on errors, guards, apply, tally); `access` answers questions about
//! one server's rendered policy; `ratchet` judges the desired state's built-in policy findings
//! against a base; `review` judges grants by the gateway's records. Front ends add only what is
//! their own: arguments, rendering and
//! exit codes (cli); triggers, leadership and status (daemon). Nothing here prints.

pub mod access;
pub mod apply;
pub mod desired;
mod expiring;
pub mod fleet;
mod incremental;
pub mod plan;
pub mod ratchet;
pub mod review;

use crate::model::DesiredState;
use crate::model::live::Provenance;
use crate::plan::Plan;
use crate::source::{self, SourceError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A plan with what its renderers read.
pub struct Planned {
    pub plan: Plan,
    /// The desired state the plan was made of: every diagnostic and file text; its objects are
    /// those the change reaches alone when the plan is partial.
    pub desired: DesiredState,
    /// The texts of the base's files, kept when its problems are shown with their lines.
    pub base_sources: BTreeMap<String, Arc<str>>,
}

/// A failure to run the pipeline (not a finding about the repository, which is a diagnostic).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("policy directory {dir} (from mcp-gitops.yaml): {source}")]
    PolicyDirectory { dir: String, source: SourceError },
    #[error(
        "policy directory {dir} (from mcp-gitops.yaml) is {}, outside the repository: a repository cannot make mcp-gitops read outside itself; to allow it, pass --allow-policy-dir {}",
        place.display(), place.display()
    )]
    PolicyDirectoryOutside { dir: String, place: PathBuf },
    #[error("--revision {rev:?} is not a commit of the git repository that holds {}", path.display())]
    NotARevision { rev: String, path: PathBuf },
    #[error("--base {base:?} is neither a directory nor a git revision of the repository that holds {}{hint}", path.display())]
    NotABase { base: String, path: PathBuf, hint: String },
    #[error("--base {base:?} is not a directory, and {} is in no git repository to read it as a revision of", path.display())]
    NoRepository { base: String, path: PathBuf },
    #[error("{0}")]
    Cluster(String),
    #[error("{0}")]
    NoCluster(String),
    #[error("{0} — to plan a pull request offline, pass --base DIR|REV")]
    NoClusterToPlan(String),
    #[error("cannot read the cluster: {0}")]
    ClusterRead(String),
}

impl Error {
    /// `--base` names neither a directory nor a revision of the repository at `path`: says
    /// whether there is a repository at all, and the closest branch or tag when one is near.
    fn not_a_base(path: &Path, base: &str) -> Error {
        let (base, path) = (base.to_string(), path.to_path_buf());
        match source::reference_names(&path) {
            None => Error::NoRepository { base, path },
            Some(names) => {
                let hint = crate::model::spelling::did_you_mean(&base, names.iter().map(String::as_str));
                Error::NotABase { base, path, hint }
            }
        }
    }
}

/// The provenance of what is applied from `path`, when it is in a git work tree.
pub fn checkout_provenance(path: &Path) -> Option<Provenance> {
    source::checkout_revision(path).map(|revision| Provenance { revision, root: source::path_in_repository(path), signer: String::new() })
}

/// A one-shot command's process exits right after it: its repository-sized values are left to
/// the OS, which takes the memory back at once, instead of being freed one allocation at a time
/// (a tenth of a `validate` or `plan` of 21,000 objects). Never on the daemon's paths.
pub fn left_to_the_os<T>(value: T) {
    std::mem::forget(value);
}
