//! OpenPGP keys as docs/trust.md promises to judge them, end to end through `verify`, with keys
//! gpg makes: a signing subkey counts only with its back-signature, a soft revocation (superseded,
//! retired) refuses the signatures verified from its date on, a hard one (compromised) every one.

mod common;

use common::gpg::{Gpg, Reason};
use common::{json, run};
use std::path::Path;

/// A git repository with one unsigned commit, its base; returns the base's id.
fn repository(dir: &Path) -> String {
    common::git(dir, &[], &["init", "-q", "-b", "main"]);
    common::git(dir, &[], &["commit", "-q", "--allow-empty", "-m", "base"]);
    common::git(dir, &[], &["rev-parse", "HEAD"])
}

/// `verify --format json` of the commits after `base`, with the keys in `keys`, at `at`:
/// (exit code, each commit's summary with its reason, or "verified", and detail).
fn verify(repo: &Path, keys: &Path, base: &str, at: &str) -> (i32, Vec<(String, String, String)>) {
    let (repo, keys) = (repo.to_string_lossy(), keys.to_string_lossy());
    let out = run(&["verify", &repo, "--pgp-keys", &keys, "--from", base, "--at", at, "--format", "json"]);
    let report = json(&out.stdout);
    let commits = report["commits"].as_array().cloned().unwrap_or_default();
    let text = |c: &serde_json::Value, field: &str, default: &str| c[field].as_str().unwrap_or(default).to_string();
    (out.code, commits.iter().map(|c| (text(c, "summary", ""), text(c, "reason", "verified"), text(c, "detail", ""))).collect())
}

/// gpg's own reading of a key file's packets, an independent check of what a test built.
fn packets(gpg: &Gpg, file: &Path) -> String {
    gpg.run(&["--list-packets", &file.to_string_lossy()])
}

/// The key in `armored` with the back-signature (the subkey's embedded primary-key binding, in
/// the unhashed area of its binding) removed: the binding itself stays valid. What someone who
/// claims another person's signing subkey as their own can publish, since only the subkey's
/// holder can make the back-signature.
fn without_back_signature(armored: &str) -> String {
    use pgp::composed::{ArmorOptions, Deserializable, SignedPublicKey};
    use pgp::packet::SubpacketData;
    let (mut key, _) = SignedPublicKey::from_string(armored).expect("gpg's export parses");
    for subkey in &mut key.public_subkeys {
        for binding in &mut subkey.signatures {
            let embedded = |s: &pgp::packet::Signature| {
                s.config()?.unhashed_subpackets.iter().position(|p| matches!(p.data, SubpacketData::EmbeddedSignature(_)))
            };
            while let Some(i) = embedded(binding) {
                binding.unhashed_subpacket_remove(i).expect("an unhashed subpacket can be removed");
            }
        }
    }
    key.to_armored_string(ArmorOptions::default()).expect("armors")
}

#[test]
fn a_signing_subkey_without_its_back_signature_is_not_bound_for_signing() {
    let dir = tempfile::tempdir().expect("dir");
    let (repo, keys, stripped) = (dir.path().join("repo"), dir.path().join("keys"), dir.path().join("stripped"));
    for d in [&repo, &keys, &stripped] {
        std::fs::create_dir(d).expect("mkdir");
    }
    let gpg = Gpg::new(dir.path());
    let dana = gpg.key("Dana <dana@fernhill.io>", "ed25519", "cert", None);
    gpg.run(&["--quick-add-key", &dana, "ed25519", "sign", "0"]);
    let base = repository(&repo);
    gpg.commit(&repo, "signed by the subkey", &dana, "dana@fernhill.io");
    gpg.export(&dana, &keys, "dana.asc");
    let whole = std::fs::read_to_string(keys.join("dana.asc")).expect("read");
    std::fs::write(stripped.join("dana.asc"), without_back_signature(&whole)).expect("write");
    // gpg reads both: the binding (0x18) stays, only the back-signature (0x19) is gone.
    let (before, after) = (packets(&gpg, &keys.join("dana.asc")), packets(&gpg, &stripped.join("dana.asc")));
    assert!(before.contains("sigclass 0x18") && before.contains("class 0x19"), "{before}");
    assert!(after.contains("sigclass 0x18") && !after.contains("class 0x19"), "{after}");

    let at = "2030-01-01T00:00:00Z";
    let (code, verdicts) = verify(&repo, &keys, &base, at);
    assert_eq!((code, verdicts[0].1.as_str()), (0, "verified"), "{verdicts:?}");
    let (code, verdicts) = verify(&repo, &stripped, &base, at);
    assert_eq!(code, 1, "{verdicts:?}");
    let (_, reason, detail) = &verdicts[0];
    assert_eq!(reason, "key_not_valid", "{verdicts:?}");
    assert!(detail.contains("is not bound to the key for signing"), "{detail}");
}

#[test]
fn a_soft_revocation_holds_from_its_date_and_a_hard_one_at_any_time() {
    let dir = tempfile::tempdir().expect("dir");
    let (repo, keys) = (dir.path().join("repo"), dir.path().join("keys"));
    for d in [&repo, &keys] {
        std::fs::create_dir(d).expect("mkdir");
    }
    let gpg = Gpg::new(dir.path());
    let created = Some("20200101T000000");
    let signers = [
        ("Rita <rita@fernhill.io>", "rita@fernhill.io", Reason::Retired, "left the team"),
        ("Sam <sam@fernhill.io>", "sam@fernhill.io", Reason::Superseded, "replaced by a new key"),
        ("Cole <cole@fernhill.io>", "cole@fernhill.io", Reason::Compromised, "laptop stolen"),
    ];
    let base = repository(&repo);
    for (uid, email, reason, text) in signers {
        let key = gpg.key(uid, "ed25519", "sign", created);
        gpg.commit(&repo, email, &key, email);
        // Revoked on 2021-01-01, after it signed.
        gpg.revoke_for(&key, reason, text, "20210101T000000");
        gpg.export(&key, &keys, &format!("{email}.asc"));
        // The reason gpg wrote (RFC 4880 codes: 1 superseded, 2 compromised, 3 retired).
        let code = match reason {
            Reason::Superseded => "0x01",
            Reason::Compromised => "0x02",
            Reason::Retired => "0x03",
        };
        let listed = packets(&gpg, &keys.join(format!("{email}.asc")));
        assert!(listed.contains(&format!("revocation reason {code} ({text})")), "{listed}");
    }

    // Verified before the revocations' date: the soft ones do not hold yet; the hard one does.
    let (code, verdicts) = verify(&repo, &keys, &base, "2020-06-01T00:00:00Z");
    assert_eq!(code, 1);
    let reasons: Vec<(&str, &str)> = verdicts.iter().map(|(s, r, _)| (s.as_str(), r.as_str())).collect();
    assert_eq!(reasons, [("rita@fernhill.io", "verified"), ("sam@fernhill.io", "verified"), ("cole@fernhill.io", "key_not_valid")]);
    assert!(verdicts[2].2.contains("is revoked (at any time)"), "{verdicts:?}");

    // On and after it: every one is refused, the soft ones naming their date.
    let (code, verdicts) = verify(&repo, &keys, &base, "2021-01-01T00:00:00Z");
    assert_eq!(code, 1);
    assert!(verdicts.iter().all(|(_, reason, _)| reason == "key_not_valid"), "{verdicts:?}");
    for (_, _, detail) in &verdicts[..2] {
        assert!(detail.contains("is revoked (since 2021-01-01T00:00:00Z)"), "{detail}");
    }
    assert!(verdicts[2].2.contains("is revoked (at any time)"), "{verdicts:?}");
}
