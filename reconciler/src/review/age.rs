//! How old a grant is: the commit that added it, from the repository's git history. A grant
//! younger than the review's window has not had the chance to be used (DOMAIN.md §11, 5).

use crate::load;
use crate::model::{Object, ObjectId};
use crate::source::{self, Change, SourceError};
use std::path::Path;

/// The commit that added `grant` (as it is in HEAD), walking back while an older version of its
/// file still holds the grant; `None` when HEAD does not hold its file (not committed yet).
pub fn added(path: &Path, grant: &Object) -> Result<Option<Change>, SourceError> {
    let file = &grant.origin.file;
    let holds = |bytes: &[u8], id: &ObjectId| {
        let snapshot =
            source::Snapshot { files: vec![source::SourceFile { path: file.clone(), bytes: bytes.to_vec() }], ..Default::default() };
        load::load(snapshot).state.objects.iter().any(|o| o.id == *id)
    };
    let repo = git2::Repository::discover(path)?;
    let in_head = repo
        .head()
        .and_then(|h| h.peel_to_tree())
        .and_then(|tree| tree.get_path(&Path::new(&source::path_in_repository(path)).join(file)))
        .and_then(|entry| repo.find_blob(entry.id()))
        .is_ok_and(|blob| holds(blob.content(), &grant.id));
    if !in_head {
        return Ok(None);
    }
    source::last_change(path, "HEAD", file, |older, _| holds(older, &grant.id)).map(Some)
}
