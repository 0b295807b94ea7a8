//! `access review --write`: the review's proposals as one commit of the repository, for the
//! normal pull-request flow to plan and approve. A file that holds only proposed grants is
//! removed; a proposed grant that shares its file gets `spec.disabled: true`. Nothing else
//! changes: each edited file is loaded again and must hold the same objects, the proposed ones
//! disabled; the commit holds only these files; no proposal, no commit.

use super::Review;
use crate::load;
use crate::model::{DesiredState, Kind, Object};
use crate::source::{self, SourceError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot write {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the index has staged changes: commit or unstage them first, so that the review's commit holds only its own")]
    StagedChanges,
    #[error("{0} has uncommitted changes: commit or stash them first")]
    Uncommitted(String),
    #[error("cannot set spec.disabled on {grant} in {file} without changing anything else; remove or disable it by hand")]
    CannotEdit { grant: String, file: String },
}

/// The commit `--write` made, and what it changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Written {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Files removed (every object in them was a proposed grant), from the repository's root.
    pub removed: Vec<String>,
    /// Grants set to `spec.disabled: true`, as `NAMESPACE/NAME`.
    pub disabled: Vec<String>,
}

/// Writes and commits the proposals of `review` (made of `state`, read from `path`).
pub fn commit(path: &Path, state: &DesiredState, review: &Review) -> Result<Written, WriteError> {
    let proposed: Vec<&str> = review.proposals().map(|g| g.grant.as_str()).collect();
    let mut written = Written::default();
    if proposed.is_empty() {
        return Ok(written);
    }
    let repo = git2::Repository::discover(path)?;
    let head = repo.head()?.peel_to_commit()?;
    if repo.diff_tree_to_index(Some(&head.tree()?), None, None)?.deltas().len() > 0 {
        return Err(WriteError::StagedChanges);
    }
    let prefix = source::path_in_repository(path);
    let mut by_file: BTreeMap<&str, Vec<&Object>> = BTreeMap::new();
    for object in &state.objects {
        by_file.entry(object.origin.file.as_str()).or_default().push(object);
    }
    let is_proposed = |o: &Object| o.id.kind == Kind::Grant && proposed.contains(&format!("{}/{}", o.id.namespace, o.id.name).as_str());
    let mut index = repo.index()?;
    for (file, objects) in by_file.iter().filter(|(_, objects)| objects.iter().any(|o| is_proposed(o))) {
        let in_repo = PathBuf::from(format!("{prefix}{file}"));
        if !repo.status_file(&in_repo)?.is_empty() {
            return Err(WriteError::Uncommitted(in_repo.display().to_string()));
        }
        let on_disk = path.join(file);
        let io = |source| WriteError::Io { path: on_disk.display().to_string(), source };
        if objects.iter().all(|o| is_proposed(o)) {
            std::fs::remove_file(&on_disk).map_err(io)?;
            index.remove_path(&in_repo)?;
            written.removed.push(in_repo.display().to_string());
            continue;
        }
        let text = std::fs::read_to_string(&on_disk).map_err(io)?;
        let grants: Vec<&Object> = objects.iter().copied().filter(|o| is_proposed(o)).collect();
        let edited = disabled(file, &text, objects, &grants)?;
        std::fs::write(&on_disk, edited).map_err(io)?;
        index.add_path(&in_repo)?;
        written.disabled.extend(grants.iter().map(|g| format!("{}/{}", g.id.namespace, g.id.name)));
    }
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let signature = repo.signature()?;
    let mut message = format!(
        "access review: take back {} grant(s) no allowed call named in {} up to {}\n\n",
        proposed.len(),
        review.unused_for,
        review.at
    );
    for grant in review.proposals() {
        message.push_str(&format!("- {} ({}): {}\n", grant.grant, grant.verdict.words(), grant.why));
    }
    let id = repo.commit(Some("HEAD"), &signature, &signature, &message, &tree, &[&head])?;
    written.commit = Some(id.to_string());
    Ok(written)
}

/// `text` (the file `file`, holding `objects`) with `spec.disabled: true` in each of `grants`:
/// a line before the first key of its spec, or its `disabled:` line replaced; then checked by
/// loading it again.
fn disabled(file: &str, text: &str, objects: &[&Object], grants: &[&Object]) -> Result<String, WriteError> {
    let cannot =
        |grant: &Object| WriteError::CannotEdit { grant: format!("{}/{}", grant.id.namespace, grant.id.name), file: file.to_string() };
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut edits: Vec<(usize, bool, String)> = Vec::new();
    for grant in grants {
        let spec = grant.body.get("spec").and_then(|s| s.as_object()).ok_or_else(|| cannot(grant))?;
        let (at, replace) = match spec.get("disabled") {
            Some(_) => (grant.origin.key_pos("/spec/disabled"), true),
            None => {
                let first = spec.keys().map(|key| grant.origin.key_pos(&format!("/spec/{key}"))).min_by_key(|p| p.line);
                (first.ok_or_else(|| cannot(grant))?, false)
            }
        };
        let indent = " ".repeat(at.column.saturating_sub(1));
        edits.push((at.line, replace, format!("{indent}disabled: true")));
    }
    edits.sort_by_key(|edit| std::cmp::Reverse(edit.0));
    for (line, replace, new) in edits {
        let index = line.checked_sub(1).filter(|i| *i < lines.len()).ok_or_else(|| cannot(grants[0]))?;
        if replace {
            lines[index] = new;
        } else {
            lines.insert(index, new);
        }
    }
    let mut edited = lines.join("\n");
    if text.ends_with('\n') {
        edited.push('\n');
    }
    let snapshot = source::Snapshot {
        files: vec![source::SourceFile { path: file.to_string(), bytes: edited.clone().into_bytes() }],
        ..Default::default()
    };
    let reloaded = load::load(snapshot).state.objects;
    let same = reloaded.len() == objects.len()
        && objects.iter().all(|before| {
            let mut expected = (*before.body).clone();
            if grants.iter().any(|g| g.id == before.id) {
                expected["spec"]["disabled"] = serde_json::Value::Bool(true);
            }
            reloaded.iter().any(|after| after.id == before.id && *after.body == expected)
        });
    if !same {
        return Err(cannot(grants[0]));
    }
    Ok(edited)
}
