//! A snapshot of a directory on disk.

use super::{MAX_FILE_SIZE, Snapshot, SourceError, SourceFile, content_digest, is_manifest, outside, oversize, symlink};
use crate::model::{Code, Diagnostic, Pos};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

pub fn from_dir(root: &Path) -> Result<Snapshot, SourceError> {
    let io = |source| SourceError::Io { path: root.display().to_string(), source };
    let canonical_root = fs::canonicalize(root).map_err(io)?;
    if !canonical_root.is_dir() {
        return Err(SourceError::NotADirectory { path: root.display().to_string() });
    }
    let mut walk = Walk { root: canonical_root.clone(), found: Vec::new() };
    walk.dir(&canonical_root, "")?;
    // Read on every core; the problems stay in the order the walk met them.
    let read = crate::parallel::ordered_map(&walk.found, 16, |found| match found {
        Found::File(path, rel_path) => read(path, rel_path),
        Found::Problem(d) => Err(Box::new(d.clone())),
    });
    let mut snapshot = Snapshot::default();
    for item in read {
        match item {
            Ok(file) => snapshot.files.push(file),
            Err(d) => snapshot.diagnostics.push(*d),
        }
    }
    snapshot.files.sort_by(|a, b| a.path.cmp(&b.path));
    snapshot.label = root.display().to_string();
    snapshot.revision = content_digest(&snapshot.files);
    Ok(snapshot)
}

struct Walk {
    root: PathBuf,
    /// The files to read and the problems met, in the walk's order.
    found: Vec<Found>,
}

impl Walk {
    fn dir(&mut self, dir: &Path, rel: &str) -> Result<(), SourceError> {
        let io = |source| SourceError::Io { path: dir.display().to_string(), source };
        let mut entries: Vec<_> = fs::read_dir(dir).map_err(io)?.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == ".git" {
                continue;
            }
            let rel_path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let Ok(meta) = entry.file_type() else { continue };
            let path = entry.path();
            if meta.is_symlink() {
                match fs::canonicalize(&path) {
                    // A link that would be read (a directory, or a manifest by its name or its
                    // target's) is refused, wherever it points: no link is followed.
                    Ok(target) if target.is_dir() || is_manifest(&name) || is_manifest(&target.to_string_lossy()) => {
                        let problem = match target.strip_prefix(&self.root) {
                            Ok(inside) => symlink(&rel_path, &inside.to_string_lossy()),
                            Err(_) => outside(&rel_path, &target.display().to_string()),
                        };
                        self.found.push(Found::Problem(problem));
                        continue;
                    }
                    Ok(_) => continue,
                    Err(_) => {
                        if is_manifest(&name) {
                            let target = fs::read_link(&path).map(|t| t.display().to_string()).unwrap_or_default();
                            self.found.push(Found::Problem(Diagnostic::warning(
                                Code::PathOutsideRepo,
                                &rel_path,
                                Pos { line: 1, column: 1 },
                                format!("dangling symlink to {target}; skipped"),
                            )));
                        }
                        continue;
                    }
                }
            }
            if meta.is_dir() {
                self.dir(&path, &rel_path)?;
            } else if is_manifest(&name) {
                self.found.push(Found::File(path, rel_path));
            }
        }
        Ok(())
    }
}

/// What the walk meets: a file to read, or a problem.
enum Found {
    File(PathBuf, String),
    Problem(Diagnostic),
}

/// The file at `path`, or why it is not read (too big, unreadable).
fn read(path: &Path, rel_path: &str) -> Result<SourceFile, Box<Diagnostic>> {
    let unreadable = |e: std::io::Error| {
        Box::new(Diagnostic::error(Code::YamlSyntax, rel_path, Pos { line: 1, column: 1 }, format!("cannot read file: {e}")))
    };
    let mut file = fs::File::open(path).map_err(unreadable)?;
    let size = file.metadata().map_err(unreadable)?.len();
    if size > MAX_FILE_SIZE {
        return Err(Box::new(oversize(rel_path, size)));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.read_to_end(&mut bytes).map_err(unreadable)?;
    Ok(SourceFile { path: rel_path.to_string(), bytes })
}
