//! A snapshot of the tree of one git revision, read from the object database (no checkout).

use super::{MAX_FILE_SIZE, Snapshot, SourceError, SourceFile, is_manifest, outside, oversize, symlink};
use git2::{ObjectType, Repository, Tree, TreeWalkMode, TreeWalkResult};
use std::path::{Component, Path, PathBuf};

/// Reads the files under `dir` (a directory inside a git work tree) as they are at `rev`.
pub fn from_git(dir: &Path, rev: &str) -> Result<Snapshot, SourceError> {
    let repo = Repository::discover(dir)?;
    let subdir = subdir_in_repo(&repo, dir)?;
    let commit = repo.revparse_single(rev)?.peel_to_commit()?;
    snapshot_of(&repo, &commit, &subdir, format!("{}@{rev}", dir.display()))
}

/// The files under `subdir` of `commit`'s tree. A `subdir` the commit does not have gives an
/// empty snapshot (a pull request that adds the directory plans against nothing).
pub fn snapshot_of(repo: &Repository, commit: &git2::Commit, subdir: &Path, label: String) -> Result<Snapshot, SourceError> {
    let mut snapshot = Snapshot { label, revision: commit.id().to_string(), ..Snapshot::default() };
    let root_tree = commit.tree()?;
    let tree = if subdir.as_os_str().is_empty() {
        root_tree
    } else {
        match root_tree.get_path(subdir) {
            Ok(entry) => entry.to_object(repo)?.peel_to_tree()?,
            Err(_) => return Ok(snapshot),
        }
    };
    collect(repo, &tree, &mut snapshot)?;
    snapshot.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(snapshot)
}

/// Whether `rev` names a commit in the repository that contains `dir`.
pub fn resolve_revision_in(dir: &Path, rev: &str) -> bool {
    commit_id_in(dir, rev).is_some()
}

/// The full id of the commit `rev` names in the repository that contains `dir`.
pub fn commit_id_in(dir: &Path, rev: &str) -> Option<String> {
    let repo = Repository::discover(dir).ok()?;
    repo.revparse_single(rev).and_then(|o| o.peel_to_commit()).ok().map(|c| c.id().to_string())
}

/// How many commits `to` has that `from` has not (`git rev-list --count from..to`), in the
/// repository that contains `dir`: how far a cluster at `from` is behind a branch at `to`.
pub fn commits_between(dir: &Path, from: &str, to: &str) -> Result<usize, SourceError> {
    let repo = Repository::discover(dir)?;
    let commit = |rev: &str| repo.revparse_single(rev).and_then(|o| o.peel_to_commit()).map(|c| c.id());
    let (ahead, _) = repo.graph_ahead_behind(commit(to)?, commit(from)?)?;
    Ok(ahead)
}

/// The branch and tag names of the repository that contains `dir` (`main`, `origin/main`,
/// `v1.2`), for "did you mean" when a revision does not resolve; `None` when `dir` is in no git
/// repository.
pub fn reference_names(dir: &Path) -> Option<Vec<String>> {
    let repo = Repository::discover(dir).ok()?;
    let references = repo.references().ok()?;
    let names = references.flatten().filter_map(|r| r.shorthand().ok().map(String::from)).collect();
    Some(names)
}

/// The commit a work tree's `dir` is at, for the provenance of what `apply` applies from it:
/// HEAD's id, with `-dirty` when files under `dir` differ from it (changed, added, untracked).
/// `None` outside a git work tree, or on an unborn branch.
pub fn checkout_revision(dir: &Path) -> Option<String> {
    let repo = Repository::discover(dir).ok()?;
    let head = repo.head().ok()?.peel_to_commit().ok()?.id();
    let subdir = subdir_in_repo(&repo, dir).ok()?;
    let mut options = git2::StatusOptions::new();
    options.include_untracked(true).recurse_untracked_dirs(true).exclude_submodules(true);
    if !subdir.as_os_str().is_empty() {
        options.pathspec(&subdir);
    }
    let dirty = !repo.statuses(Some(&mut options)).ok()?.is_empty();
    Some(if dirty { format!("{head}-dirty") } else { head.to_string() })
}

/// Where `dir` sits in the git work tree that contains it, as a prefix for its files' paths
/// (`"platform/"`, or `""` at the root or outside any repository): what CI annotations need.
pub fn path_in_repository(dir: &Path) -> String {
    let Ok(repo) = Repository::discover(dir) else { return String::new() };
    match subdir_in_repo(&repo, dir) {
        Ok(sub) if !sub.as_os_str().is_empty() => format!("{}/", sub.to_string_lossy().replace('\\', "/")),
        _ => String::new(),
    }
}

/// A commit, as the provenance of what it changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Change {
    pub commit: String,
    /// The first line of its message.
    pub summary: String,
    pub author: String,
    /// The commit time, RFC 3339.
    pub time: String,
    /// Whether it carries a signature (not checked here: `mcp-gitops verify` checks it).
    pub signed: bool,
}

/// Where an object of a revision comes from: its file and line, and the commit that last changed it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LastChange {
    /// `MCPAccessGrant team-payments/refunds`.
    pub object: String,
    /// `platform/teams/payments/grants.yaml:12`, the path in the repository.
    pub source: String,
    #[serde(flatten)]
    pub change: Change,
}

/// The commit that last changed what `file` (under `dir`, as it is at `rev`) holds, walking
/// back from `rev` the way `git log` simplifies history: through a parent where the file's
/// content is the `same` (a blob both sides have, or `same(older, newer)` says so) when there
/// is one, and stopping at the first commit where it is not (or the file is absent from each
/// parent: added, or moved from elsewhere).
pub fn last_change(dir: &Path, rev: &str, file: &str, same: impl Fn(&[u8], &[u8]) -> bool) -> Result<Change, SourceError> {
    let repo = Repository::discover(dir)?;
    let path = subdir_in_repo(&repo, dir)?.join(file);
    let blob_at = |commit: &git2::Commit| commit.tree().ok().and_then(|t| t.get_path(&path).ok()).map(|e| e.id());
    let content = |id: git2::Oid| repo.find_blob(id).map(|b| b.content().to_vec()).ok();
    let mut commit = repo.revparse_single(rev)?.peel_to_commit()?;
    let Some(mut blob) = blob_at(&commit) else {
        return Err(git2::Error::from_str(&format!("{} is not in {rev}", path.display())).into());
    };
    loop {
        let unchanged = commit.parents().find_map(|parent| {
            let older = blob_at(&parent)?;
            let kept = older == blob || matches!((content(older), content(blob)), (Some(a), Some(b)) if same(&a, &b));
            kept.then_some((parent, older))
        });
        match unchanged {
            Some((parent, older)) => (commit, blob) = (parent, older),
            None => break,
        }
    }
    Ok(Change::of(&commit))
}

impl Change {
    /// `commit`, as the provenance of what it changed.
    pub fn of(commit: &git2::Commit) -> Change {
        let time = commit.time();
        Change {
            commit: commit.id().to_string(),
            summary: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()).into_owned(),
            author: String::from_utf8_lossy(commit.author().email_bytes()).into_owned(),
            time: jiff::Timestamp::from_second(time.seconds()).map(|t| t.to_string()).unwrap_or_default(),
            signed: commit.header_field_bytes("gpgsig").is_ok(),
        }
    }
}

fn subdir_in_repo(repo: &Repository, dir: &Path) -> Result<PathBuf, SourceError> {
    let io = |source| SourceError::Io { path: dir.display().to_string(), source };
    let workdir = repo.workdir().ok_or_else(|| git2::Error::from_str("bare repositories are not supported as a plan source"))?;
    let workdir = std::fs::canonicalize(workdir).map_err(io)?;
    let dir = std::fs::canonicalize(dir).map_err(io)?;
    Ok(dir.strip_prefix(&workdir).map(Path::to_path_buf).unwrap_or_default())
}

fn collect(repo: &Repository, tree: &Tree, snapshot: &mut Snapshot) -> Result<(), SourceError> {
    read_entries(repo, tree, &list(tree)?, snapshot)
}

/// `(path, blob id, mode)` of each manifest of `tree`, in the walk's order.
fn list(tree: &Tree) -> Result<Vec<(String, git2::Oid, i32)>, SourceError> {
    let mut found = Vec::new();
    tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
        let name = entry.name().unwrap_or_default();
        // Every link is listed: one to a directory has any name, and is refused all the same.
        if entry.kind() == Some(ObjectType::Blob) && (is_manifest(name) || entry.filemode() == LINK) {
            found.push((format!("{parent}{name}"), entry.id(), entry.filemode()));
        }
        TreeWalkResult::Ok
    })?;
    Ok(found)
}

fn read_entries(repo: &Repository, tree: &Tree, entries: &[(String, git2::Oid, i32)], snapshot: &mut Snapshot) -> Result<(), SourceError> {
    let odb = repo.odb()?;
    // The size from the object's header: an oversize blob is refused without being read.
    let size = |id: git2::Oid| odb.read_header(id).map(|(size, _)| size as u64);
    for (path, id, mode) in entries.iter().cloned() {
        if mode != LINK && size(id)? > MAX_FILE_SIZE {
            snapshot.diagnostics.push(oversize(&path, size(id)?));
            continue;
        }
        let blob = repo.find_blob(id)?;
        if mode == LINK {
            // As the directory reader: a link that would be read (a directory, or a manifest by
            // its name or its target's) is refused, and none is followed.
            let target = String::from_utf8_lossy(blob.content()).into_owned();
            let read = is_manifest(&path) || is_manifest(&target);
            match resolve_link(&path, &target) {
                Some(resolved) if read || tree.get_path(Path::new(&resolved)).is_ok_and(|e| e.kind() == Some(ObjectType::Tree)) => {
                    snapshot.diagnostics.push(symlink(&path, &resolved))
                }
                None if read => snapshot.diagnostics.push(outside(&path, &target)),
                _ => {}
            }
            continue;
        }
        push_blob(snapshot, path, blob.content(), blob.size());
    }
    Ok(())
}

/// The mode of a symbolic link in a git tree.
const LINK: i32 = 0o120000;

/// The manifests of one revision's tree under a directory, listed but not read: a plan's base
/// compares its files by blob id and reads only those it needs (`read`).
pub struct Listing {
    repo: Repository,
    tree: Option<git2::Oid>,
    /// `<dir>@<rev>`, as `from_git` labels its snapshot.
    pub label: String,
    /// The commit id.
    pub revision: String,
    entries: Vec<(String, git2::Oid, i32)>,
}

/// Lists what `from_git(dir, rev)` would read.
pub fn list_git(dir: &Path, rev: &str) -> Result<Listing, SourceError> {
    let repo = Repository::discover(dir)?;
    let subdir = subdir_in_repo(&repo, dir)?;
    let (revision, tree, entries) = {
        let commit = repo.revparse_single(rev)?.peel_to_commit()?;
        let root_tree = commit.tree()?;
        let tree = if subdir.as_os_str().is_empty() {
            Some(root_tree)
        } else {
            root_tree.get_path(&subdir).ok().map(|entry| entry.to_object(&repo).and_then(|o| o.peel_to_tree())).transpose()?
        };
        let entries = tree.as_ref().map(list).transpose()?.unwrap_or_default();
        (commit.id().to_string(), tree.map(|t| t.id()), entries)
    };
    Ok(Listing { repo, tree, label: format!("{}@{rev}", dir.display()), revision, entries })
}

impl Listing {
    /// The snapshot `from_git` makes, of the entries whose path `wanted` picks alone.
    pub fn read(&self, wanted: impl Fn(&str) -> bool) -> Result<Snapshot, SourceError> {
        let mut snapshot = Snapshot { label: self.label.clone(), revision: self.revision.clone(), ..Snapshot::default() };
        let Some(tree) = self.tree else { return Ok(snapshot) };
        let entries: Vec<_> = self.entries.iter().filter(|(path, _, _)| wanted(path)).cloned().collect();
        read_entries(&self.repo, &self.repo.find_tree(tree)?, &entries, &mut snapshot)?;
        snapshot.files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(snapshot)
    }

    /// The path of each entry, with its blob id when it is a file (a symbolic link is `None`:
    /// what it reads is another file's).
    pub fn blob_ids(&self) -> impl Iterator<Item = (&str, Option<git2::Oid>)> {
        self.entries.iter().map(|(path, id, mode)| (path.as_str(), (*mode != LINK).then_some(*id)))
    }
}

/// The id git gives a file of `bytes` (`git hash-object`), with git's detection of SHA-1
/// collision attacks: `None` for bytes made to collide, which then match no blob.
pub fn blob_id(bytes: &[u8]) -> Option<git2::Oid> {
    git2::Oid::hash_object(git2::ObjectType::Blob, bytes).ok()
}

fn push_blob(snapshot: &mut Snapshot, path: String, content: &[u8], size: usize) {
    if size as u64 > MAX_FILE_SIZE {
        snapshot.diagnostics.push(oversize(&path, size as u64));
    } else {
        snapshot.files.push(SourceFile { path, bytes: content.to_vec() });
    }
}

/// Resolves a symlink target relative to the link's directory; `None` when it leaves the tree.
fn resolve_link(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<String> = link.split('/').map(String::from).collect();
    parts.pop();
    for component in Path::new(target).components() {
        match component {
            Component::Normal(c) => parts.push(c.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::{blob_id, resolve_link};

    #[test]
    fn a_blob_id_is_the_one_git_gives_the_bytes() {
        // `printf 'hello\n' | git hash-object --stdin`, and the empty blob every git knows.
        assert_eq!(blob_id(b"hello\n").map(|id| id.to_string()).as_deref(), Some("ce013625030ba8dba906f756967f9e9ca394464a"));
        assert_eq!(blob_id(b"").map(|id| id.to_string()).as_deref(), Some("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"));
    }

    #[test]
    fn links_that_climb_out_are_refused() {
        assert_eq!(resolve_link("a/b.yaml", "c.yaml").as_deref(), Some("a/c.yaml"));
        assert_eq!(resolve_link("a/b.yaml", "../c.yaml").as_deref(), Some("c.yaml"));
        assert_eq!(resolve_link("a/b.yaml", "../../c.yaml"), None);
        assert_eq!(resolve_link("b.yaml", "/etc/passwd"), None);
    }
}
