//! SSH commit signatures (SSHSIG, namespace `git`, what git makes with `gpg.format=ssh`)
//! against git's `allowed_signers` lines, the way `ssh-keygen -Y verify` checks them: the key
//! in a line valid at the time of verification (never at the commit time, which its author
//! chooses), or a certificate signed by a `cert-authority` line's key.

use super::rules::Principals;
use super::signers::{self, AllowedSigner};
use super::{Failure, Refusal, commit};
use ssh_key::SshSig;

/// An SSH signature (SSHSIG) against the allowed_signers lines: the principals of the lines that
/// allow its key at `at` (the time of verification, seconds since the epoch; patterns), and the
/// key's fingerprint. A signature made with a certificate is checked against the
/// `cert-authority` lines instead, and stands for the certificate's principals that those lines
/// allow (names).
pub fn check(parts: &commit::SignedParts, armored: &str, signers: &[AllowedSigner], at: i64) -> Result<(Principals, String), Refusal> {
    let (signature, certificate) = match SshSig::from_pem(armored.as_bytes()) {
        Ok(signature) => (signature, None),
        Err(e) => match certified_signature(armored) {
            Ok(Some((signature, certificate))) => (signature, Some(certificate)),
            Ok(None) => return Err(Refusal::new(Failure::BadSignature, "", format!("the signature block is not an SSH signature ({e})"))),
            Err(why) => return Err(Refusal::new(Failure::KeyNotValid, "", why.to_string())),
        },
    };
    let key = ssh_key::PublicKey::from(signature.public_key().clone());
    let fingerprint = key.fingerprint(ssh_key::HashAlg::Sha256).to_string();
    let fail = |failure: Failure, detail: String| Refusal::new(failure, fingerprint.clone(), detail);
    // The lines that hold the key, or the certificate's authority.
    let lines: Vec<&AllowedSigner> = signers
        .iter()
        .filter(|s| match &certificate {
            None => !s.cert_authority && s.key.key_data() == signature.public_key(),
            Some(certificate) => s.cert_authority && s.key.key_data() == certificate.signature_key(),
        })
        .collect();
    let Some(first) = lines.first() else {
        return Err(fail(
            Failure::UnknownKey,
            match &certificate {
                None => format!("{} key {fingerprint} is in no allowed_signers line", key.algorithm()),
                Some(c) => format!(
                    "a certificate ({:?}) signed by CA {}, which is in no cert-authority line",
                    c.key_id(),
                    ssh_key::PublicKey::from(c.signature_key().clone()).fingerprint(ssh_key::HashAlg::Sha256)
                ),
            },
        ));
    };
    // The lines that allow this key to sign commits now.
    let time = at;
    let in_git = |line: &&&AllowedSigner| line.namespaces.as_ref().is_none_or(|ns| ns.iter().any(|n| n == "git"));
    let in_time = |line: &&&AllowedSigner| !(line.valid_after.is_some_and(|t| time < t) || line.valid_before.is_some_and(|t| time >= t));
    let Some(line) = lines.iter().find(in_git) else {
        return Err(fail(Failure::PrincipalMismatch, format!("{}: the key is not allowed to sign in namespace git", first.at)));
    };
    let valid: Vec<Vec<String>> = lines.iter().filter(in_git).filter(in_time).map(|line| line.principals.clone()).collect();
    if valid.is_empty() {
        return Err(fail(Failure::KeyNotValid, format!("{}: the key is not valid at the time of verification ({time})", line.at)));
    }
    let principals = match &certificate {
        None => Principals::Patterns(valid),
        Some(certificate) => Principals::Names(
            certified_principals(certificate, valid, time, &line.at).map_err(|refused| Refusal { key: fingerprint.clone(), ..refused })?,
        ),
    };
    key.verify("git", &parts.payload, &signature)
        .map_err(|e| fail(Failure::BadSignature, format!("the signature does not match the commit ({e})")))?;
    Ok((principals, fingerprint))
}

/// A certificate a `cert-authority` line trusts, as `ssh-keygen -Y verify` takes it: signed by
/// the authority, a user certificate, valid at `time` (of verification); its principals are those
/// the lines' patterns match (a certificate with none stands for nobody). Each is a name: a
/// certificate issued for the text `*@fernhill.io` stands for that text, not for everyone.
fn certified_principals(certificate: &ssh_key::Certificate, lines: Vec<Vec<String>>, time: i64, at: &str) -> Result<Vec<String>, Refusal> {
    let id = certificate.key_id();
    // The caller knows the key's fingerprint.
    let refuse = |failure: Failure, detail: String| Refusal::new(failure, "", detail);
    certificate
        .verify_signature()
        .map_err(|_| refuse(Failure::BadSignature, format!("certificate {id:?}: the CA's signature does not verify")))?;
    if certificate.cert_type() != ssh_key::certificate::CertType::User {
        return Err(refuse(Failure::PrincipalMismatch, format!("certificate {id:?} is a host certificate")));
    }
    let (after, before) = (certificate.valid_after(), certificate.valid_before());
    if !u64::try_from(time).is_ok_and(|t| after <= t && t < before) {
        return Err(refuse(
            Failure::KeyNotValid,
            format!("certificate {id:?} is valid from {after} to {before}, the time of verification is {time}"),
        ));
    }
    let matched: Vec<String> = certificate
        .valid_principals()
        .iter()
        .filter(|p| lines.iter().any(|patterns| signers::list_matches(patterns, p)))
        .cloned()
        .collect();
    if matched.is_empty() {
        return Err(refuse(
            Failure::PrincipalMismatch,
            format!("{at}: certificate {id:?} is for {}, which the line does not allow", certificate.valid_principals().join(",")),
        ));
    }
    Ok(matched)
}

/// An SSH signature made with a certificate: the SSHSIG blob (`"SSHSIG"`, version, key,
/// namespace, reserved, hash algorithm, signature) whose key is a certificate, which the
/// `ssh-key` crate does not decode; returned as the signature by the certified key, and the
/// certificate. `Ok(None)` when it is no such thing; an error for a certificate that cannot be
/// read.
fn certified_signature(armored: &str) -> Result<Option<(SshSig, ssh_key::Certificate)>, ValidForever> {
    use base64::Engine;
    let body: String = armored.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
    let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(body) else { return Ok(None) };
    let Some([key, namespace, _reserved, hash, signature]) = sshsig_fields(&blob) else { return Ok(None) };
    let certificate = match ssh_key::Certificate::from_bytes(key) {
        Ok(certificate) => certificate,
        // ssh-key 0.6 reads no time past i64::MAX, and a certificate issued without `-V`
        // is valid until 2^64-1.
        Err(ssh_key::Error::Time) => return Err(ValidForever),
        Err(_) => return Ok(None),
    };
    let parts = (std::str::from_utf8(hash).ok().and_then(|h| ssh_key::HashAlg::new(h).ok()), ssh_key::Signature::try_from(signature).ok());
    let (Some(hash), Some(signature)) = parts else { return Ok(None) };
    let namespace = String::from_utf8_lossy(namespace).into_owned();
    Ok(SshSig::new(certificate.public_key().clone(), namespace, hash, signature).ok().map(|signature| (signature, certificate)))
}

/// A certificate issued without an end: `ssh-key` cannot read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the certificate is valid forever (issued without -V), which mcp-gitops cannot read: issue it with an end (ssh-keygen -s ... -V +52w)"
)]
struct ValidForever;

/// The five length-prefixed fields of an SSHSIG blob, after its magic and version.
fn sshsig_fields(blob: &[u8]) -> Option<[&[u8]; 5]> {
    let mut rest = blob.strip_prefix(b"SSHSIG")?.get(4..)?;
    let mut fields: [&[u8]; 5] = [&[]; 5];
    for field in &mut fields {
        let length = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        *field = rest.get(4..4 + length)?;
        rest = &rest[4 + length..];
    }
    Some(fields)
}
