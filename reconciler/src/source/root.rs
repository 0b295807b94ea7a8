//! Where a repository starts and how its files are named to a person. A command given a
//! directory below the repository's `mcp-gitops.yaml` (run in `teams/`, say) works on the
//! repository that configuration belongs to, as cargo finds its `Cargo.toml` and ruff its
//! configuration: the search goes up to the git work tree's top or the filesystem's root. Text
//! reports name files relative to the current directory, so that a terminal can open them.

use crate::model::CONFIG_FILE;
use std::path::{Component, Path, PathBuf};

/// The repository a command works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// The repository's directory: the path the command was given, or the ancestor of it that
    /// holds `mcp-gitops.yaml` (`teams/..`, shown as `.`).
    pub path: PathBuf,
    /// Set when the configuration was found above the given path: that path.
    pub below: Option<PathBuf>,
}

/// The repository `path` belongs to: `path` itself when it holds `mcp-gitops.yaml`, has none
/// above it, or is the top of a git work tree; else the nearest ancestor that holds one.
pub fn find(path: &Path) -> Root {
    let as_given = Root { path: path.to_path_buf(), below: None };
    if path.join(CONFIG_FILE).is_file() {
        return as_given;
    }
    let Ok(start) = std::fs::canonicalize(path) else { return as_given };
    let mut lexical = path.to_path_buf();
    for dir in start.ancestors() {
        if dir != start && dir.join(CONFIG_FILE).is_file() {
            // The ancestor as the user would write it (`..`), unless a symlink on the way makes
            // that another directory.
            let same = std::fs::canonicalize(&lexical).is_ok_and(|found| found == dir);
            let path = if same { lexical } else { dir.to_path_buf() };
            return Root { path, below: Some(as_given.path) };
        }
        if dir.join(".git").exists() {
            break;
        }
        lexical = parent(&lexical);
    }
    as_given
}

impl Root {
    /// What a person is told when the configuration was found above the path they gave.
    pub fn note(&self) -> Option<String> {
        let below = self.below.as_ref()?;
        Some(format!(
            "using {}, found above {}: the repository is {}, and all of it is read (JSON names files relative to it)",
            self.path.join(CONFIG_FILE).display(),
            below.display(),
            self.path.display()
        ))
    }
}

/// `path`'s parent, written as short as it can be: `a/b` -> `a`, `a` -> `.`, `.` -> `..`.
fn parent(path: &Path) -> PathBuf {
    match path.components().next_back() {
        Some(Component::Normal(_)) => match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        },
        Some(Component::CurDir) | None => PathBuf::from(".."),
        _ => path.join(".."),
    }
}

/// How a report names the files of a repository to a person at a terminal: relative to the
/// current directory (absolute when the repository was named by an absolute path). Forge
/// formats and JSON keep naming them relative to the repository.
#[derive(Debug, Clone, Default)]
pub struct Shown {
    /// The repository and the current directory, canonical; none: names are shown as they are.
    places: Option<(PathBuf, PathBuf)>,
    /// The repository as given, when it was given as an absolute path.
    absolute: Option<PathBuf>,
}

impl Shown {
    /// Names relative to the repository, as they are.
    pub const AS_IS: Shown = Shown { places: None, absolute: None };

    /// Names for the repository at `root`, seen from the current directory.
    pub fn from_cwd(root: &Path) -> Shown {
        if root.is_absolute() {
            return Shown { places: None, absolute: Some(root.to_path_buf()) };
        }
        let places = std::env::current_dir().and_then(std::fs::canonicalize).ok().zip(std::fs::canonicalize(root).ok());
        Shown { places: places.map(|(cwd, root)| (root, cwd)), absolute: None }
    }

    /// `file` (relative to the repository, `/`-separated) as the person should see it.
    pub fn name(&self, file: &str) -> String {
        if let Some(root) = &self.absolute {
            return root.join(file).to_string_lossy().into_owned();
        }
        let Some((root, cwd)) = &self.places else { return file.to_string() };
        let target = root.join(file);
        for (ups, dir) in cwd.ancestors().enumerate() {
            if let Ok(rest) = target.strip_prefix(dir) {
                let mut name = "../".repeat(ups);
                name.push_str(&rest.to_string_lossy());
                return name;
            }
        }
        file.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_written_short() {
        assert_eq!(parent(Path::new("examples/platform/teams")), PathBuf::from("examples/platform"));
        assert_eq!(parent(Path::new("teams")), PathBuf::from("."));
        assert_eq!(parent(Path::new(".")), PathBuf::from(".."));
        assert_eq!(parent(Path::new("..")), PathBuf::from("../.."));
    }

    #[test]
    fn the_configuration_above_is_found_and_the_search_stops_at_the_work_tree() {
        let top = tempfile::tempdir().expect("tempdir");
        let repo = top.path().join("repo");
        std::fs::create_dir_all(repo.join("teams/payments")).expect("mkdir");
        std::fs::write(repo.join(CONFIG_FILE), "defaultNamespace: x\n").expect("write");
        let found = find(&repo.join("teams/payments"));
        assert_eq!(found.path, repo);
        assert_eq!(found.below, Some(repo.join("teams/payments")));
        assert_eq!(find(&repo), Root { path: repo.clone(), below: None });

        // A git work tree without a configuration is a repository of its own.
        let inner = repo.join("teams/vendored");
        std::fs::create_dir_all(inner.join(".git")).expect("mkdir");
        std::fs::create_dir_all(inner.join("sub")).expect("mkdir");
        assert_eq!(find(&inner.join("sub")).path, inner.join("sub"));
        assert_eq!(find(&inner).path, inner);
    }

    #[test]
    fn names_are_relative_to_the_current_directory() {
        let places = |root: &str, cwd: &str| Shown { places: Some((root.into(), cwd.into())), absolute: None };
        assert_eq!(places("/r", "/r").name("a/b.yaml"), "a/b.yaml");
        assert_eq!(places("/r", "/").name("a/b.yaml"), "r/a/b.yaml");
        assert_eq!(places("/r", "/r/a").name("a/b.yaml"), "b.yaml");
        assert_eq!(places("/r", "/r/c/d").name("a/b.yaml"), "../../a/b.yaml");
        assert_eq!(Shown::AS_IS.name("a/b.yaml"), "a/b.yaml");
    }
}
