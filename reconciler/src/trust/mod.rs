//! Trust: who signed each commit of a range, checked against git's `allowed_signers`, the way
//! `git verify-commit` checks an SSH signature (SSHSIG, namespace `git`, the signer's key valid
//! at the commit time). Reads commit objects from the repository and nothing else: it knows no
//! YAML and runs before anything of a revision is loaded.
//!
//! This step checks SSH signatures (ed25519, ECDSA, RSA); OpenPGP signatures are reported as
//! `unknown_key`, as are certificates signed by a `cert-authority` key.

pub mod commit;
pub mod signers;

use git2::{Oid, Repository, Sort};
use serde::Serialize;
use signers::AllowedSigner;
use ssh_key::SshSig;

/// Why a commit is not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    Unsigned,
    UnknownKey,
    BadSignature,
    KeyNotValid,
    PrincipalMismatch,
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
            Failure::NotADescendant => "not_a_descendant",
        }
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

/// Checks one commit's signature; `Ok((principals, fingerprint))` or the failure with what is
/// known of the key.
pub fn check(parts: &commit::SignedParts, signers: &[AllowedSigner]) -> Result<(String, String), (Failure, String, String)> {
    let Some(armored) = &parts.signature else { return Err((Failure::Unsigned, String::new(), "the commit carries no signature".into())) };
    if armored.contains("BEGIN PGP SIGNATURE") {
        return Err((Failure::UnknownKey, String::new(), "an OpenPGP signature: this mcp-gitops checks SSH signatures only".into()));
    }
    let signature = SshSig::from_pem(armored.as_bytes())
        .map_err(|e| (Failure::BadSignature, String::new(), format!("the signature block is not an SSH signature ({e})")))?;
    let key = ssh_key::PublicKey::from(signature.public_key().clone());
    let fingerprint = key.fingerprint(ssh_key::HashAlg::Sha256).to_string();
    let lines: Vec<&AllowedSigner> = signers.iter().filter(|s| !s.cert_authority && s.key.key_data() == signature.public_key()).collect();
    if lines.is_empty() {
        return Err((
            Failure::UnknownKey,
            fingerprint,
            format!("{} key {} is in no allowed_signers line", key.algorithm(), key.fingerprint(ssh_key::HashAlg::Sha256)),
        ));
    }
    let mut failure = (Failure::PrincipalMismatch, fingerprint.clone(), String::new());
    for line in lines {
        if line.namespaces.as_ref().is_some_and(|ns| !ns.iter().any(|n| n == "git")) {
            failure =
                (Failure::PrincipalMismatch, fingerprint.clone(), format!("{}: the key is not allowed to sign in namespace git", line.at));
            continue;
        }
        let time = parts.committer_time;
        if line.valid_after.is_some_and(|t| time < t) || line.valid_before.is_some_and(|t| time >= t) {
            failure = (Failure::KeyNotValid, fingerprint.clone(), format!("{}: the key is not valid at the commit time ({time})", line.at));
            continue;
        }
        return match line.key.verify("git", &parts.payload, &signature) {
            Ok(()) => Ok((line.principals.join(","), fingerprint)),
            Err(e) => Err((Failure::BadSignature, fingerprint, format!("the signature does not match the commit ({e})"))),
        };
    }
    Err(failure)
}

/// Verifies every commit in `(from, to]` (only `to` without `from`), oldest first. With
/// `first_parent`, only the first-parent chain: the merges, not the commits they bring in.
pub fn verify_range(
    repo: &Repository,
    from: Option<&str>,
    to: &str,
    first_parent: bool,
    signers: &[AllowedSigner],
) -> Result<Vec<Verdict>, git2::Error> {
    let to_id = repo.revparse_single(to)?.peel_to_commit()?.id();
    let mut ids: Vec<Oid> = vec![to_id];
    if let Some(from) = from {
        let from_id = repo.revparse_single(from)?.peel_to_commit()?.id();
        if from_id != to_id && !repo.graph_descendant_of(to_id, from_id)? {
            let mut verdict = verdict_of(repo, to_id, signers)?;
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
    ids.into_iter().map(|id| verdict_of(repo, id, signers)).collect()
}

fn verdict_of(repo: &Repository, id: Oid, signers: &[AllowedSigner]) -> Result<Verdict, git2::Error> {
    let odb = repo.odb()?;
    let parts = commit::split(odb.read(id)?.data());
    let found = repo.find_commit(id)?;
    let summary = found.summary_bytes().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
    Ok(match check(&parts, signers) {
        Ok((principal, key)) => {
            Verdict { commit: id.to_string(), summary, verified: true, reason: None, principal, key, detail: String::new() }
        }
        Err((reason, key, detail)) => {
            Verdict { commit: id.to_string(), summary, verified: false, reason: Some(reason), principal: String::new(), key, detail }
        }
    })
}

pub fn short(id: Oid) -> String {
    id.to_string()[..7].to_string()
}
