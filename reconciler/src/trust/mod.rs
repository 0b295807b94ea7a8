//! Trust: who signed each commit of a range. An SSH signature is checked against git's
//! `allowed_signers`, the way `git verify-commit` checks it (SSHSIG, namespace `git`, the
//! signer's key valid at the commit time); an OpenPGP signature against the `--pgp-keys`
//! (`openpgp`). The signer then meets the signing rules of `mcp-gitops.yaml` at the range's
//! base (identity binding, path-scoped signers). Reads commits and that one file from the
//! repository, and runs before anything of a revision is loaded.
//!
//! An SSH signature made with a certificate is checked against the `cert-authority` lines (`ssh`).

pub mod commit;
pub mod openpgp;
pub mod rules;
pub mod signers;
pub mod ssh;

use git2::{Oid, Repository, Sort};
use rules::Rules;
use serde::Serialize;
use signers::AllowedSigner;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A failure to check commits at all (the trust files or the repository cannot be read), as
/// opposed to a commit that is not trusted (a `Verdict`).
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A trust file or directory cannot be read.
    #[error("cannot read {path}: {source}")]
    ReadKeys { path: String, source: std::io::Error },
    /// A line of the allowed_signers file cannot be read.
    #[error("{file}:{line}: {why}")]
    AllowedSigners { file: String, line: usize, why: signers::LineError },
    /// A `--pgp-keys` file is not OpenPGP.
    #[error("{file}: not an OpenPGP public key ({source})")]
    NotAPgpKey { file: String, source: pgp::errors::Error },
    /// A `--pgp-keys` file is OpenPGP but holds no public key.
    #[error("{file}: holds no OpenPGP public key")]
    NoPgpKey { file: String },
    /// A revision of the range names no commit.
    #[error("cannot read the commits: {}", .source.message())]
    NotACommit { rev: String, source: git2::Error },
    /// The commits of the range cannot be read.
    #[error("cannot read the commits: {}", .0.message())]
    Git(#[from] git2::Error),
    /// `mcp-gitops.yaml` at the base cannot be read from the repository.
    #[error("cannot read {at}: {}", .source.message())]
    ReadRules { at: String, source: git2::Error },
    #[error("{at} is not UTF-8: the signing rules cannot be read")]
    RulesNotUtf8 { at: String },
    /// `mcp-gitops.yaml` at the base has an error: rules must not fail open.
    #[error("{file}:{line}:{column} at {commit}: {message}: the signing rules cannot be read")]
    InvalidRules { file: String, line: usize, column: usize, commit: String, message: String },
    /// A glob of `trust.signers[N].paths` (`rule`) is not valid.
    #[error("{at}: {rule}: {glob:?} is not a valid glob: {source}")]
    InvalidGlob { at: String, rule: String, glob: String, source: globset::Error },
    #[error("{at}: {rule}: {source}")]
    Globs { at: String, rule: String, source: globset::Error },
}

/// The keys commits may be signed with: git's allowed_signers lines and OpenPGP public keys.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    pub ssh: Vec<AllowedSigner>,
    pub pgp: Vec<openpgp::Certificate>,
}

impl Keys {
    /// Reads the trust files: an allowed_signers file and OpenPGP key files or directories.
    pub fn read(allowed_signers: Option<&Path>, pgp_keys: &[PathBuf]) -> Result<Keys, TrustError> {
        let ssh = match allowed_signers {
            Some(path) => {
                let file = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|source| TrustError::ReadKeys { path: file.clone(), source })?;
                signers::parse(&text, &file)?
            }
            None => Vec::new(),
        };
        Ok(Keys { ssh, pgp: openpgp::read(pgp_keys)? })
    }
}

/// Why a commit is not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    Unsigned,
    UnknownKey,
    BadSignature,
    KeyNotValid,
    PrincipalMismatch,
    PathNotAllowed,
    NotADescendant,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Unsigned => "unsigned",
            Failure::UnknownKey => "unknown_key",
            Failure::BadSignature => "bad_signature",
            Failure::KeyNotValid => "key_not_valid",
            Failure::PrincipalMismatch => "principal_mismatch",
            Failure::PathNotAllowed => "path_not_allowed",
            Failure::NotADescendant => "not_a_descendant",
        }
    }
}

/// Why a commit is refused: the failure, the signing key's fingerprint when it is known, and
/// the detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Refusal {
    pub failure: Failure,
    /// The signing key's fingerprint, empty when it is not known.
    pub key: String,
    pub detail: String,
}

impl Refusal {
    pub fn new(failure: Failure, key: impl Into<String>, detail: impl Into<String>) -> Refusal {
        Refusal { failure, key: key.into(), detail: detail.into() }
    }
}

/// One commit's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub commit: String,
    /// The first line of the message.
    pub summary: String,
    pub verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Failure>,
    /// The principals of the allowed_signers line that verified it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub principal: String,
    /// The signing key's fingerprint (`SHA256:...`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    pub detail: String,
}

/// Checks one commit: its signature against the keys, then the signer against the rules for the
/// files it changes (`changed`, paths in the repository; needed only when the rules scope
/// paths). `Ok((principals, fingerprint))`, or the failure with what is known of the key.
pub fn check(parts: &commit::SignedParts, keys: &Keys, rules: &Rules, changed: &[String]) -> Result<(String, String), Refusal> {
    let Some(armored) = &parts.signature else { return Err(Refusal::new(Failure::Unsigned, "", "the commit carries no signature")) };
    let (lines, fingerprint) = if armored.contains("BEGIN PGP SIGNATURE") {
        let signed = openpgp::check(armored, &parts.payload, &keys.pgp)?;
        (rules::Principals::Names(signed.principals.to_vec()), signed.fingerprint)
    } else {
        ssh::check(parts, armored, &keys.ssh)?
    };
    let principals = rules
        .principals(&lines, &parts.committer_email, &parts.author_email)
        .map_err(|why| Refusal::new(Failure::PrincipalMismatch, fingerprint.clone(), why.to_string()))?;
    if let Some(why) = rules.refusal(changed, &principals) {
        return Err(Refusal::new(Failure::PathNotAllowed, fingerprint, why));
    }
    Ok((principals.join(","), fingerprint))
}

/// Verifies every commit in `(from, to]` (only `to` without `from`), oldest first. With
/// `first_parent`, only the first-parent chain: the merges, not the commits they bring in.
/// The signing rules are those of `mcp-gitops.yaml` in `root` (`""` or `"platform/"`) at
/// `from`, or without it at `to`'s first parent (at `to` itself for a first commit).
pub fn verify_range(
    repo: &Repository,
    from: Option<&str>,
    to: &str,
    first_parent: bool,
    keys: &Keys,
    root: &str,
) -> Result<Vec<Verdict>, TrustError> {
    let commit_of = |rev: &str| {
        let commit = repo.revparse_single(rev).and_then(|o| o.peel_to_commit());
        commit.map(|c| c.id()).map_err(|source| TrustError::NotACommit { rev: rev.to_string(), source })
    };
    let to_id = commit_of(to)?;
    let from_id = from.map(commit_of).transpose()?;
    let base = match from_id {
        Some(id) => id,
        None => repo.find_commit(to_id)?.parent_ids().next().unwrap_or(to_id),
    };
    let rules = Rules::at(repo, base, root)?;
    let mut ids: Vec<Oid> = vec![to_id];
    if let (Some(from), Some(from_id)) = (from, from_id) {
        if from_id != to_id && !repo.graph_descendant_of(to_id, from_id)? {
            let mut verdict = verdict_of(repo, to_id, keys, &rules, first_parent)?;
            verdict.verified = false;
            verdict.reason = Some(Failure::NotADescendant);
            verdict.detail = format!("{to} does not descend from {from} ({}): history was rewritten", short(from_id));
            return Ok(vec![verdict]);
        }
        let mut walk = repo.revwalk()?;
        walk.push(to_id)?;
        walk.hide(from_id)?;
        if first_parent {
            walk.simplify_first_parent()?;
        }
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
        ids = walk.collect::<Result<_, _>>()?;
    }
    ids.into_iter().map(|id| Ok(verdict_of(repo, id, keys, &rules, first_parent)?)).collect()
}

fn verdict_of(repo: &Repository, id: Oid, keys: &Keys, rules: &Rules, first_parent: bool) -> Result<Verdict, git2::Error> {
    let odb = repo.odb()?;
    let parts = commit::split(odb.read(id)?.data());
    let found = repo.find_commit(id)?;
    let summary = found.summary_bytes().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
    // The files it changes matter only to rules that scope paths.
    let changed = if rules.paths.is_empty() { Vec::new() } else { changed_files(repo, &found, first_parent)? };
    let checked = check(&parts, keys, rules, &changed);
    Ok(match checked {
        Ok((principal, key)) => {
            Verdict { commit: id.to_string(), summary, verified: true, reason: None, principal, key, detail: String::new() }
        }
        Err(Refusal { failure, key, detail }) => {
            Verdict { commit: id.to_string(), summary, verified: false, reason: Some(failure), principal: String::new(), key, detail }
        }
    })
}

/// The files (paths in the repository) a commit changes, added, deleted or modified. A first
/// commit changes every file it has. A merge is judged on what it changes against its first
/// parent when it is trusted with what it brings in (`first_parent`); otherwise the commits it
/// brings in are judged on their own, and the merge on the files it leaves unlike every parent
/// (its own resolution of conflicts).
fn changed_files(repo: &Repository, commit: &git2::Commit, first_parent: bool) -> Result<Vec<String>, git2::Error> {
    let tree = commit.tree()?;
    let parents: Vec<git2::Commit> = commit.parents().collect();
    let against: Vec<Option<git2::Tree>> = match parents.first() {
        None => vec![None],
        Some(first) if first_parent || parents.len() == 1 => vec![Some(first.tree()?)],
        Some(_) => parents.iter().map(|p| p.tree().map(Some)).collect::<Result<_, _>>()?,
    };
    let mut changed: Option<BTreeSet<String>> = None;
    for old in &against {
        let diff = repo.diff_tree_to_tree(old.as_ref(), Some(&tree), None)?;
        let files: BTreeSet<String> = diff
            .deltas()
            .flat_map(|d| [d.old_file().path(), d.new_file().path()])
            .flatten()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        changed = Some(match changed {
            None => files,
            Some(before) => before.intersection(&files).cloned().collect(),
        });
    }
    Ok(changed.unwrap_or_default().into_iter().collect())
}

pub fn short(id: Oid) -> String {
    id.to_string()[..7].to_string()
}
