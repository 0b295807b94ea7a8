//! Freeze windows in the daemon: which windows bind a pass. Those of the live revision and those
//! of the revision being applied both do (a union), so that a commit cannot delete a window to walk
//! out of it. `crate::windows` says which one is open; `reconcile` holds what widens access.

use crate::model::{CONFIG_FILE, Window};
use crate::source::mirror::Mirror;
use crate::windows::{self, Open};
use jiff::Timestamp;
use std::path::Path;

/// The window open at `now` among those of `new` (the revision being applied) and of `mcp-gitops.yaml`
/// at `live` (the revision live in the cluster).
pub(super) fn open(mirror: &Mirror, live: &str, new: &[Window], now: Timestamp) -> Option<Open> {
    let mut binding = windows::read(new);
    binding.extend(windows::read(&at_revision(mirror, live)));
    windows::open(&binding, now)
}

/// The windows of `mcp-gitops.yaml` at `revision`: none from a directory source (it has no
/// history), before a first apply, or at a revision the mirror no longer holds (a force-push).
fn at_revision(mirror: &Mirror, revision: &str) -> Vec<Window> {
    let Some(repo) = mirror.repository().filter(|_| !revision.is_empty()) else { return Vec::new() };
    let path = format!("{}{CONFIG_FILE}", mirror.prefix());
    let text = git2::Oid::from_str(revision)
        .and_then(|id| repo.find_commit(id))
        .and_then(|commit| commit.tree())
        .and_then(|tree| tree.get_path(Path::new(&path)))
        .and_then(|entry| entry.to_object(repo))
        .and_then(|object| object.peel_to_blob())
        .map(|blob| String::from_utf8_lossy(blob.content()).into_owned());
    match text {
        Ok(text) => crate::load::config(&text).0.windows,
        Err(e) if e.code() == git2::ErrorCode::NotFound => Vec::new(),
        Err(e) => {
            tracing::warn!(revision, "cannot read the freeze windows of the live revision: {e}");
            Vec::new()
        }
    }
}
