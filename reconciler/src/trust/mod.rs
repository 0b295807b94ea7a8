//! Trust: who signed each commit of a range. An SSH signature is checked against git's
//! `allowed_signers`, the way `git verify-commit` checks it (SSHSIG, namespace `git`); an
//! OpenPGP signature against the `--pgp-keys` (`openpgp`). Every commit of the range is new to the
//! verifier, so its key must be valid at the time of verification: the times a commit or a
//! signature carries are their author's word, and a commit dated before its parents is noted. The signer then meets the signing rules of `mcp-gitops.yaml` at the range's
//! base (identity binding, path-scoped signers). Reads commits and that one file from the
//! repository, and runs before anything of a revision is loaded.
//!
//! An SSH signature made with a certificate is checked against the `cert-authority` lines (`ssh`).

pub mod commit;
pub mod openpgp;
pub mod rules;
pub mod signers;
pub mod ssh;

use crate::load::CONFIG_FILE;
use crate::model::{Kind, Object, ObjectId};
use crate::source::{Snapshot, SourceFile};
use git2::{Oid, Repository, Sort};
use rules::ChangedObject;
use rules::Rules;
use serde::Serialize;
use signers::AllowedSigner;
use std::collections::{BTreeSet, HashMap, HashSet};
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
    /// What a reviewer should know that does not refuse it (a commit dated before its parent).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Checks one commit: its signature against the keys, then the signer against the rules for the
/// files it changes (`changed`, paths in the repository) and the objects it adds, changes or
/// removes (`objects`; both needed only when rules scope them). `at` is the time of verification
/// (seconds since the epoch), at which the key must be valid. `Ok((principals, fingerprint))`,
/// or the failure with what is known of the key.
pub fn check(
    parts: &commit::SignedParts,
    keys: &Keys,
    rules: &Rules,
    changes: (&[String], &[ChangedObject]),
    at: i64,
) -> Result<(String, String), Refusal> {
    let Some(armored) = &parts.signature else { return Err(Refusal::new(Failure::Unsigned, "", "the commit carries no signature")) };
    let (lines, fingerprint) = if armored.contains("BEGIN PGP SIGNATURE") {
        let signed = openpgp::check(armored, &parts.payload, &keys.pgp, at)?;
        (rules::Principals::Names(signed.principals.to_vec()), signed.fingerprint)
    } else {
        ssh::check(parts, armored, &keys.ssh, at)?
    };
    let principals = rules
        .principals(&lines, &parts.committer_email, &parts.author_email)
        .map_err(|why| Refusal::new(Failure::PrincipalMismatch, fingerprint.clone(), why.to_string()))?;
    if let Some(why) = rules.refusal(changes.0, changes.1, &principals) {
        return Err(Refusal::new(Failure::PathNotAllowed, fingerprint, why));
    }
    Ok((principals.join(","), fingerprint))
}

/// Verifies every commit in `(from, to]` (only `to` without `from`), oldest first, at `at` (the
/// time of verification, seconds since the epoch: every key must be valid then). With
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
    at: i64,
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
    let range = Range { keys, rules: &rules, first_parent, at };
    let mut ids: Vec<Oid> = vec![to_id];
    if let (Some(from), Some(from_id)) = (from, from_id) {
        if from_id != to_id && !repo.graph_descendant_of(to_id, from_id)? {
            let mut verdict = range.verdict(repo, to_id, &HashSet::new())?;
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
    // The commits new to the verifier: what a merge takes from one of them, that commit accounts for.
    let new: HashSet<Oid> = ids.iter().copied().collect();
    ids.into_iter().map(|id| Ok(range.verdict(repo, id, &new)?)).collect()
}

/// What every commit of one range is judged by.
struct Range<'a> {
    keys: &'a Keys,
    rules: &'a Rules,
    first_parent: bool,
    at: i64,
}

impl Range<'_> {
    fn verdict(&self, repo: &Repository, id: Oid, new: &HashSet<Oid>) -> Result<Verdict, git2::Error> {
        let odb = repo.odb()?;
        let parts = commit::split(odb.read(id)?.data());
        let found = repo.find_commit(id)?;
        let summary = found.summary_bytes().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
        // What it changes matters only to scoped signer rules.
        let changed = if self.rules.signers.is_empty() { Vec::new() } else { changed_files(repo, &found, self.first_parent, new)? };
        let objects = if self.rules.scopes_objects() { changed_objects(repo, &found, &changed, self.rules)? } else { Vec::new() };
        let notes = backdated(&found).into_iter().collect();
        let checked = check(&parts, self.keys, self.rules, (&changed, &objects), self.at);
        let (verified, reason, principal, key, detail) = match checked {
            Ok((principal, key)) => (true, None, principal, key, String::new()),
            Err(Refusal { failure, key, detail }) => (false, Some(failure), String::new(), key, detail),
        };
        Ok(Verdict { commit: id.to_string(), summary, verified, reason, principal, key, detail, notes })
    }
}

/// A note when `commit` is dated before one of its parents: its time is its author's word (the
/// commit is judged at the time of verification all the same).
fn backdated(commit: &git2::Commit) -> Option<String> {
    let time = commit.committer().when().seconds();
    let parent = commit.parents().map(|p| p.committer().when().seconds()).max()?;
    (time < parent).then(|| {
        let date = |t: i64| jiff::Timestamp::from_second(t).map(|t| t.to_string()).unwrap_or_else(|_| t.to_string());
        format!("dated {}, before its parent ({}): a commit's date is its author's word", date(time), date(parent))
    })
}

/// The files (paths in the repository) a commit changes, added, deleted or modified: against its
/// first parent, or every file of a first commit. A merge trusted with what it brings in
/// (`first_parent`) is judged on all of it. Otherwise a file a merge takes as one of its other
/// parents has it is accounted for by that parent when the parent is `new` (verified in the same
/// range); content taken from a commit the verifier already had (the base contains it) is the
/// merger's own change: a merge cannot bring back what the base removed unnoticed.
fn changed_files(repo: &Repository, commit: &git2::Commit, first_parent: bool, new: &HashSet<Oid>) -> Result<Vec<String>, git2::Error> {
    let tree = commit.tree()?;
    let parents: Vec<git2::Commit> = commit.parents().collect();
    let first = parents.first().map(git2::Commit::tree).transpose()?;
    let diff = repo.diff_tree_to_tree(first.as_ref(), Some(&tree), None)?;
    let files: BTreeSet<String> = diff
        .deltas()
        .flat_map(|d| [d.old_file().path(), d.new_file().path()])
        .flatten()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if first_parent {
        return Ok(files.into_iter().collect());
    }
    let others: Vec<git2::Tree> =
        parents.iter().skip(1).filter(|p| new.contains(&p.id())).map(git2::Commit::tree).collect::<Result<_, _>>()?;
    let entry = |tree: &git2::Tree, file: &str| tree.get_path(Path::new(file)).ok().map(|e| (e.id(), e.filemode()));
    Ok(files.into_iter().filter(|file| !others.iter().any(|other| entry(other, file) == entry(&tree, file))).collect())
}

/// The objects a commit adds, changes or removes in the files `changed` (paths in the
/// repository): each of those under the rules' directory loaded at the commit and at its first
/// parent, as the repository declares them (with the rules' `mcp-gitops.yaml`), and compared.
fn changed_objects(repo: &Repository, commit: &git2::Commit, changed: &[String], rules: &Rules) -> Result<Vec<ChangedObject>, git2::Error> {
    let load = |tree: Option<git2::Tree>| -> Result<HashMap<ObjectId, Object>, git2::Error> {
        let mut snapshot = Snapshot::default();
        snapshot.files.push(SourceFile { path: CONFIG_FILE.to_string(), bytes: rules.config.as_bytes().to_vec() });
        for file in changed {
            let Some(relative) = file.strip_prefix(&rules.root) else { continue };
            // Symlinks are never read (`source`), nor is anything but a manifest.
            let entry = tree.as_ref().and_then(|tree| tree.get_path(Path::new(file)).ok());
            if let Some(entry) =
                entry.filter(|e| e.filemode() != 0o120000 && relative != CONFIG_FILE && crate::source::is_manifest(relative))
            {
                let blob = entry.to_object(repo)?.peel_to_blob()?;
                snapshot.files.push(SourceFile { path: relative.to_string(), bytes: blob.content().to_vec() });
            }
        }
        Ok(crate::load::load(snapshot).state.objects.into_iter().map(|o| (o.id.clone(), o)).collect())
    };
    let after = load(Some(commit.tree()?))?;
    let before = load(commit.parents().next().map(|p| p.tree()).transpose()?)?;
    let ids: BTreeSet<&ObjectId> = before.keys().chain(after.keys()).collect();
    let changed_object = |id: &&ObjectId| match (before.get(*id), after.get(*id)) {
        (Some(old), Some(new)) => old.body != new.body,
        _ => true,
    };
    Ok(ids
        .into_iter()
        .filter(changed_object)
        .filter_map(|id| {
            let object = after.get(id).or_else(|| before.get(id))?;
            let server = match crate::gateway::render::targets(object) {
                Some((namespace, name)) => Some(format!("{namespace}/{name}")),
                None => (id.kind == Kind::Server).then(|| format!("{}/{}", id.namespace, id.name)),
            };
            Some(ChangedObject { id: id.clone(), server, file: format!("{}{}", rules.root, object.origin.file) })
        })
        .collect())
}

pub fn short(id: Oid) -> String {
    id.to_string()[..7].to_string()
}
