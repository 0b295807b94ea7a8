//! Starting a repository: `init` writes the layout a platform repository starts from (the
//! configuration with owner and trust stubs, the CI recipe), `import` (own file) writes what a
//! cluster already holds as the repository's files, `break_glass` (own file) writes and commits
//! emergency access. None ever overwrites a file.

pub mod break_glass;
pub mod import;

use std::path::{Path, PathBuf};

/// The forge whose CI recipe `init` writes (examples/ci/).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ci {
    Github,
    Gitlab,
    None,
}

/// Why a repository cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("{} already exist{}; nothing was written (move {} away, or start in another directory)", list(.0), if .0.len() == 1 { "s" } else { "" }, if .0.len() == 1 { "it" } else { "them" })]
    Exists(Vec<PathBuf>),
    #[error("cannot write {}: {source}", file.display())]
    Write { file: PathBuf, source: std::io::Error },
}

fn list(files: &[PathBuf]) -> String {
    files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
}

const CONFIG: &str = include_str!("templates/mcp-gitops.yaml");
const ALLOWED_SIGNERS: &str = include_str!("templates/allowed_signers");
const README: &str = include_str!("templates/README.md");
const GITHUB: [(&str, &str); 2] = [
    (".github/workflows/mcp-gitops.yml", include_str!("../../../examples/ci/github/mcp-gitops.yml")),
    (".github/workflows/mcp-gitops-merge.yml", include_str!("../../../examples/ci/github/mcp-gitops-merge.yml")),
];
const GITLAB: (&str, &str) = (".gitlab-ci.yml", include_str!("../../../examples/ci/gitlab/.gitlab-ci.yml"));

/// The files of a new repository, relative to its root: the configuration (objects limited to
/// `namespaces` when any are given), the trust stub, a README and the CI recipe of `ci`.
pub fn starting_files(namespaces: &[String], ci: Ci) -> Vec<(&'static str, String)> {
    let allowed = if namespaces.is_empty() {
        "# allowedNamespaces: [mcp-team-payments, mcp-team-support]".to_string()
    } else {
        format!("allowedNamespaces: [{}]", namespaces.join(", "))
    };
    let mut files = vec![
        ("mcp-gitops.yaml", CONFIG.replace("__ALLOWED_NAMESPACES__", &allowed)),
        (".mcp-gitops/allowed_signers", ALLOWED_SIGNERS.to_string()),
        ("README.md", README.to_string()),
    ];
    match ci {
        Ci::Github => files.extend(GITHUB.iter().map(|(path, text)| (*path, text.to_string()))),
        Ci::Gitlab => files.push((GITLAB.0, GITLAB.1.to_string())),
        Ci::None => {}
    }
    files
}

/// Writes `files` under `dir` (created when missing) unless one of them exists: then nothing is
/// written. Returns the paths written.
pub fn write_new<S: AsRef<str>>(dir: &Path, files: &[(S, String)]) -> Result<Vec<PathBuf>, ScaffoldError> {
    let paths: Vec<PathBuf> = files.iter().map(|(path, _)| dir.join(path.as_ref())).collect();
    let existing: Vec<PathBuf> = paths.iter().filter(|p| p.symlink_metadata().is_ok()).cloned().collect();
    if !existing.is_empty() {
        return Err(ScaffoldError::Exists(existing));
    }
    for (file, (_, text)) in paths.iter().zip(files) {
        let write = || -> std::io::Result<()> {
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            // create_new: a file that appeared since the check is not overwritten either.
            std::io::Write::write_all(&mut std::fs::File::create_new(file)?, text.as_bytes())
        };
        write().map_err(|source| ScaffoldError::Write { file: file.clone(), source })?;
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_fence_the_configuration_and_none_leaves_it_open() {
        let fenced = starting_files(&["mcp-team-a".into(), "mcp-team-b".into()], Ci::None);
        assert!(fenced[0].1.contains("\nallowedNamespaces: [mcp-team-a, mcp-team-b]\n"));
        let open = starting_files(&[], Ci::Gitlab);
        assert!(!open[0].1.lines().any(|l| l.starts_with("allowedNamespaces")));
        assert_eq!(open.last().map(|f| f.0), Some(".gitlab-ci.yml"));
    }

    #[test]
    fn an_existing_file_stops_every_write() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README.md"), "mine").unwrap();
        let files = starting_files(&[], Ci::Github);
        match write_new(dir.path(), &files) {
            Err(ScaffoldError::Exists(found)) => assert_eq!(found, vec![dir.path().join("README.md")]),
            other => panic!("expected Exists, got {other:?}"),
        }
        assert!(!dir.path().join("mcp-gitops.yaml").exists());
        assert_eq!(std::fs::read_to_string(dir.path().join("README.md")).unwrap(), "mine");
    }
}
