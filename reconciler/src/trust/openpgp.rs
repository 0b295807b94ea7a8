//! OpenPGP commit signatures, what git makes with its default `gpg.format=openpgp`: a detached
//! signature over the payload, checked against public keys given with `--pgp-keys` (armored or
//! binary). The signing key is the primary key or a subkey bound to it for signing, and it must
//! be valid when the signature was made:
//! - not expired: the newest self-signature (of the primary, or the subkey's newest binding)
//!   sets the expiration, counted from the key's creation;
//! - not revoked: a hard revocation (key compromised, or no reason given) holds at any time; a
//!   soft one (superseded, retired) from its own date on, so older signatures stay good;
//! - allowed to sign: the key flags of that self-signature or binding say so.
//!
//! A key's principals are the email addresses of its user IDs that carry a valid
//! self-signature: they meet identity binding and path-scoped signers as names (whoever makes
//! the key writes them), never as the patterns an allowed_signers line holds.

use super::{Failure, Refusal, TrustError};
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::{RevocationCode, Signature, SignatureType};
use pgp::types::{KeyDetails, Tag};
use std::path::{Path, PathBuf};

/// One public key and what was read off it.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The file it was read from, for messages.
    pub at: String,
    pub key: SignedPublicKey,
    /// The emails of the user IDs with a valid self-signature.
    pub principals: Vec<String>,
}

/// The file names read from a `--pgp-keys` directory; a file named on its own is read whatever
/// its name.
const KEY_FILE_ENDINGS: [&str; 4] = [".asc", ".gpg", ".pgp", ".key"];

/// Reads every key of `paths` (files, or directories of `*.asc`, `*.gpg`, `*.pgp`, `*.key`).
/// A file that holds no readable public key is an error naming it.
pub fn read(paths: &[PathBuf]) -> Result<Vec<Certificate>, TrustError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| TrustError::ReadKeys { path: path.display().to_string(), source })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && KEY_FILE_ENDINGS.iter().any(|end| p.to_string_lossy().ends_with(end)))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut certificates = Vec::new();
    for file in files {
        certificates.extend(read_file(&file)?);
    }
    Ok(certificates)
}

fn read_file(file: &Path) -> Result<Vec<Certificate>, TrustError> {
    let at = file.display().to_string();
    let bytes = std::fs::read(file).map_err(|source| TrustError::ReadKeys { path: at.clone(), source })?;
    parse(&bytes, &at)
}

/// The keys of one file's bytes (armored or binary); `at` names the file in messages.
pub fn parse(bytes: &[u8], at: &str) -> Result<Vec<Certificate>, TrustError> {
    let unreadable = |source: pgp::errors::Error| TrustError::NotAPgpKey { file: at.to_string(), source };
    let (keys, _) = SignedPublicKey::from_reader_many(bytes).map_err(unreadable)?;
    let keys: Vec<SignedPublicKey> = keys.collect::<Result<_, _>>().map_err(unreadable)?;
    if keys.is_empty() {
        return Err(TrustError::NoPgpKey { file: at.to_string() });
    }
    Ok(keys.into_iter().map(|key| Certificate { at: at.to_string(), principals: principals(&key), key }).collect())
}

/// The emails of the user IDs that the primary key certified (`Name <email>`, or a bare email).
fn principals(key: &SignedPublicKey) -> Vec<String> {
    key.details
        .users
        .iter()
        .filter(|user| user.signatures.iter().any(|sig| sig.verify_certification(&key.primary_key, Tag::UserId, &user.id).is_ok()))
        .filter_map(|user| {
            let id = String::from_utf8_lossy(user.id.id());
            let email = match (id.rfind('<'), id.rfind('>')) {
                (Some(open), Some(close)) if open < close => id[open + 1..close].to_string(),
                _ => id.trim().to_string(),
            };
            email.contains('@').then_some(email)
        })
        .collect()
}

/// A verified signature: the key's principals and the signing key's fingerprint.
pub struct Signed<'a> {
    pub principals: &'a [String],
    pub fingerprint: String,
}

/// Checks an armored OpenPGP signature over `payload` against `certificates`.
/// The key must be good for signing at `at`, the time of verification: the creation time a
/// signature carries is its signer's word.
pub fn check<'a>(armored: &str, payload: &[u8], certificates: &'a [Certificate], at: i64) -> Result<Signed<'a>, Refusal> {
    let (detached, _) = DetachedSignature::from_armor_single(armored.as_bytes())
        .map_err(|e| Refusal::new(Failure::BadSignature, "", format!("the signature block is not an OpenPGP signature ({e})")))?;
    let signature = &detached.signature;
    let issuer = signature
        .issuer_fingerprint()
        .first()
        .map(|f| format!("{f:X}"))
        .or_else(|| signature.issuer_key_id().first().map(|id| id.as_ref().iter().map(|b| format!("{b:02X}")).collect()))
        .unwrap_or_default();
    let Some((certificate, subkey)) = find_signer(signature, certificates) else {
        let detail = if certificates.is_empty() {
            "an OpenPGP signature, and no --pgp-keys were given".to_string()
        } else {
            format!("OpenPGP key {issuer} is in no --pgp-keys file")
        };
        return Err(Refusal::new(Failure::UnknownKey, issuer, detail));
    };
    let primary = &certificate.key.primary_key;
    let fingerprint = match subkey {
        Some(i) => format!("{:X}", certificate.key.public_subkeys[i].key.fingerprint()),
        None => format!("{:X}", primary.fingerprint()),
    };
    let fail = |failure: Failure, detail: String| Refusal::new(failure, fingerprint.clone(), detail);
    let verified = match subkey {
        Some(i) => detached.verify(&certificate.key.public_subkeys[i].key, payload),
        None => detached.verify(primary, payload),
    };
    verified.map_err(|e| fail(Failure::BadSignature, format!("the signature does not match the commit ({e})")))?;
    if signature.created().is_none() {
        return Err(fail(Failure::BadSignature, "the signature carries no creation time".into()));
    }
    valid_at(certificate, subkey, at).map_err(|why| fail(Failure::KeyNotValid, format!("{}: {why}", certificate.at)))?;
    Ok(Signed { principals: &certificate.principals, fingerprint })
}

/// The certificate and, when a subkey made it, that subkey's index.
fn find_signer<'a>(signature: &Signature, certificates: &'a [Certificate]) -> Option<(&'a Certificate, Option<usize>)> {
    let fingerprints = signature.issuer_fingerprint();
    let key_ids = signature.issuer_key_id();
    let named = |key: &dyn KeyDetails| {
        let fingerprint = key.fingerprint();
        fingerprints.iter().any(|f| **f == fingerprint) || key_ids.iter().any(|id| **id == key.legacy_key_id())
    };
    certificates.iter().find_map(|certificate| {
        if named(&certificate.key.primary_key) {
            return Some((certificate, None));
        }
        certificate.key.public_subkeys.iter().position(|subkey| named(&subkey.key)).map(|i| (certificate, Some(i)))
    })
}

/// Why a signing key was not good for signing when the signature was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Unusable {
    #[error("the primary key carries no valid self-signature")]
    NoSelfSignature,
    #[error("the primary key is not allowed to sign (key flags)")]
    PrimaryCannotSign,
    /// The subkey (its fingerprint) has no valid binding for signing.
    #[error("subkey {0} is not bound to the key for signing")]
    SubkeyNotBound(String),
    #[error("subkey {0} is not allowed to sign (key flags)")]
    SubkeyCannotSign(String),
    /// A hard revocation (key compromised, or no reason given).
    #[error("{0} is revoked (at any time)")]
    Revoked(Which),
    /// A soft revocation (superseded, retired), from `since` (seconds since the epoch) on.
    #[error("{key} is revoked (since {})", date(*.since))]
    RevokedSince { key: Which, since: i64 },
    #[error("{key} was created after the signature ({})", date(*.created))]
    CreatedAfter { key: Which, created: i64 },
    #[error("{key} expired on {}", date(*.on))]
    Expired { key: Which, on: i64 },
}

/// The primary key, or a subkey (its fingerprint).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Which {
    Primary,
    Subkey(String),
}

impl std::fmt::Display for Which {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Which::Primary => f.write_str("the key"),
            Which::Subkey(fingerprint) => write!(f, "subkey {fingerprint}"),
        }
    }
}

/// Whether the signing key was good for signing at `time` (seconds since the epoch).
fn valid_at(certificate: &Certificate, subkey: Option<usize>, time: i64) -> Result<(), Unusable> {
    let key = &certificate.key;
    let primary = &key.primary_key;
    let self_signatures = key
        .details
        .users
        .iter()
        .flat_map(|user| user.signatures.iter().filter(|sig| sig.verify_certification(primary, Tag::UserId, &user.id).is_ok()))
        .chain(key.details.direct_signatures.iter().filter(|sig| sig.verify_key(primary).is_ok()));
    let Some(newest) = self_signatures.max_by_key(|sig| sig.created()) else {
        return Err(Unusable::NoSelfSignature);
    };
    let revocations = key.details.revocation_signatures.iter().filter(|sig| sig.verify_key(primary).is_ok());
    usable(revocations, newest, i64::from(primary.created_at().as_secs()), time, Which::Primary)?;
    let Some(i) = subkey else {
        return if newest.key_flags().sign() { Ok(()) } else { Err(Unusable::PrimaryCannotSign) };
    };
    let subkey = &key.public_subkeys[i];
    let bound = |sig: &&Signature| {
        sig.typ() == Some(SignatureType::SubkeyBinding)
            && sig.verify_subkey_binding(primary, &subkey.key).is_ok()
            // A signing subkey signs back: no one can claim another's subkey as theirs.
            && sig.embedded_signature().is_some_and(|back| back.verify_primary_key_binding(&subkey.key, primary).is_ok())
    };
    let fingerprint = format!("{:X}", subkey.key.fingerprint());
    let Some(binding) = subkey.signatures.iter().filter(bound).max_by_key(|sig| sig.created()) else {
        return Err(Unusable::SubkeyNotBound(fingerprint));
    };
    if !binding.key_flags().sign() {
        return Err(Unusable::SubkeyCannotSign(fingerprint));
    }
    let revocations = subkey
        .signatures
        .iter()
        .filter(|sig| sig.typ() == Some(SignatureType::SubkeyRevocation) && sig.verify_subkey_binding(primary, &subkey.key).is_ok());
    usable(revocations, binding, i64::from(subkey.key.created_at().as_secs()), time, Which::Subkey(fingerprint))
}

/// A key (created at `created`, with its newest self-signature or binding `newest`) is neither
/// revoked nor expired, nor younger than the signature, at `time`.
fn usable<'s>(
    revocations: impl Iterator<Item = &'s Signature>,
    newest: &Signature,
    created: i64,
    time: i64,
    key: Which,
) -> Result<(), Unusable> {
    for revocation in revocations {
        let at = revocation.created().map(|t| i64::from(t.as_secs())).unwrap_or(0);
        let soft = matches!(revocation.revocation_reason_code(), Some(RevocationCode::KeySuperseded | RevocationCode::KeyRetired));
        if !soft {
            return Err(Unusable::Revoked(key));
        }
        if time >= at {
            return Err(Unusable::RevokedSince { key, since: at });
        }
    }
    if time < created {
        return Err(Unusable::CreatedAfter { key, created });
    }
    match newest.key_expiration_time().map(|d| i64::from(d.as_secs())) {
        Some(lifetime) if lifetime > 0 && time >= created + lifetime => Err(Unusable::Expired { key, on: created + lifetime }),
        _ => Ok(()),
    }
}

fn date(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map(|t| t.to_string()).unwrap_or_else(|_| seconds.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn why_a_key_is_unusable_reads_as_before() {
        let subkey = || Which::Subkey("0AB1".into());
        assert_eq!(Unusable::Revoked(Which::Primary).to_string(), "the key is revoked (at any time)");
        assert_eq!(
            Unusable::RevokedSince { key: subkey(), since: 86400 }.to_string(),
            "subkey 0AB1 is revoked (since 1970-01-02T00:00:00Z)"
        );
        assert_eq!(
            Unusable::CreatedAfter { key: Which::Primary, created: 0 }.to_string(),
            "the key was created after the signature (1970-01-01T00:00:00Z)"
        );
        assert_eq!(Unusable::Expired { key: subkey(), on: 0 }.to_string(), "subkey 0AB1 expired on 1970-01-01T00:00:00Z");
        assert_eq!(Unusable::SubkeyNotBound("0AB1".into()).to_string(), "subkey 0AB1 is not bound to the key for signing");
    }

    /// The fuzz target's key and seed: the seed verifies with the subkey, and only as signed.
    #[test]
    fn a_subkey_signature_verifies_and_nothing_else_does() {
        let keys = parse(include_bytes!("../../fuzz/keys/fuzz.asc"), "fuzz.asc").expect("parses");
        assert_eq!(keys[0].principals, ["fuzz@mcp-gitops.io"]);
        let parts = super::super::commit::split(include_bytes!("../../fuzz/corpus/commit_signature/seed-openpgp-signed"));
        let signature = parts.signature.as_deref().expect("signed");
        // A fixed time of verification, after the fuzz key was made (2026-12-02; it never expires).
        let at = 1_796_400_000;
        let signed = check(signature, &parts.payload, &keys, at).map_err(|e| e.detail).expect("verifies");
        assert_ne!(signed.fingerprint, format!("{:X}", keys[0].key.primary_key.fingerprint()), "the subkey signed");
        let mut changed = parts.payload.clone();
        changed.push(b'!');
        assert_eq!(check(signature, &changed, &keys, at).err().map(|e| e.failure), Some(Failure::BadSignature));
        assert_eq!(check(signature, &parts.payload, &[], at).err().map(|e| e.failure), Some(Failure::UnknownKey));
        let garbage = parse(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n", "x");
        assert!(matches!(garbage, Err(TrustError::NotAPgpKey { .. } | TrustError::NoPgpKey { .. })), "{garbage:?}");
    }
}
