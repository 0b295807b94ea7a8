//! Source: the YAML files of a repository snapshot, read from a directory or from the tree of a
//! git revision (no checkout). Owns file discovery, the size cap and the symlink rule (both
//! readers refuse every symlink that would be read, and follow none); knows
//! nothing about YAML. Problems with single files become diagnostics; failing to open the source
//! at all is an error.

mod dir;
mod git;
pub mod live_tools;
pub mod mirror;
mod redact;
mod remote;
pub mod root;

pub use dir::from_dir;
pub use git::{
    Change, LastChange, Listing, blob_id, checkout_revision, commit_id_in, commits_between, from_git, last_change, list_git,
    path_in_repository, reference_names, resolve_revision_in, snapshot_of,
};

use crate::model::{Code, Diagnostic, Pos};
use sha2::{Digest, Sha256};

/// Where a directory named by the repository (a policy directory) lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// In the repository: the repository may name it.
    Inside,
    /// On this machine, outside the repository (canonical path): read only when whoever runs
    /// mcp-gitops allows it.
    Outside(std::path::PathBuf),
}

/// Where `dir`, as the repository at `path` names it, lies: inside the git work tree that holds
/// `path` (else inside `path` itself), or outside. A directory that does not exist is inside:
/// reading it fails as usual.
pub fn place_beside(path: &std::path::Path, dir: &str) -> Place {
    let root = git2::Repository::discover(path).ok().and_then(|repo| repo.workdir().map(std::path::Path::to_path_buf));
    let root = root.unwrap_or_else(|| path.to_path_buf());
    match (std::fs::canonicalize(root), std::fs::canonicalize(path.join(dir))) {
        (Ok(root), Ok(target)) if !target.starts_with(&root) => Place::Outside(target),
        _ => Place::Inside,
    }
}

/// Files over this size are refused with a diagnostic instead of being read.
pub const MAX_FILE_SIZE: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to the snapshot root, `/`-separated.
    pub path: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Snapshot {
    /// Where the files came from, for people: a directory path or `<repo>@<rev>`.
    pub label: String,
    /// The commit id for git, or a digest of the file contents for a directory.
    pub revision: String,
    pub files: Vec<SourceFile>,
    pub diagnostics: Vec<Diagnostic>,
    /// The cluster of `clusters:` (mcp-gitops.yaml) whose slice to load; `None`: every file.
    pub cluster: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is not a directory")]
    NotADirectory { path: String },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error(
        "{url}: credentials would be sent over plain http://, readable by anyone on the way; use https://, or pass --allow-insecure-http for a server on a network you trust"
    )]
    InsecureHttp { url: String },
    #[error("the pinned revision {pin} is not on branch {branch}{}", if *.directory { " (a directory source has no revisions to pin)" } else { "" })]
    PinNotOnBranch { pin: String, branch: String, directory: bool },
}

pub fn is_manifest(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

fn oversize(path: &str, size: u64) -> Diagnostic {
    Diagnostic::error(
        Code::YamlSyntax,
        path,
        Pos { line: 1, column: 1 },
        format!("file is {:.1} MiB, over the {} MiB cap; it was not read", size as f64 / 1048576.0, MAX_FILE_SIZE / 1048576),
    )
    .hint("split the file, or move data that is not a manifest out of the repository")
}

fn outside(path: &str, target: &str) -> Diagnostic {
    Diagnostic::error(
        Code::PathOutsideRepo,
        path,
        Pos { line: 1, column: 1 },
        format!("symlink points outside the repository ({target}); it was not followed"),
    )
    .hint("replace the symlink with the file itself, or point it at a file inside the repository")
}

fn symlink(path: &str, target: &str) -> Diagnostic {
    Diagnostic::error(
        Code::SymlinkNotFollowed,
        path,
        Pos { line: 1, column: 1 },
        format!(
            "symlink to {target}; mcp-gitops follows no symlinks: through a link, an edit of one file changes what another path declares, out of sight of the signers who guard that path"
        ),
    )
    .hint("replace the symlink with the file itself, or remove it")
}

/// A digest of the snapshot's files, used as the revision of a directory source.
fn content_digest(files: &[SourceFile]) -> String {
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(file.path.as_bytes());
        hasher.update([0]);
        hasher.update((file.bytes.len() as u64).to_le_bytes());
        hasher.update(&file.bytes);
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}
