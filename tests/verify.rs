//! `mcp-gitops verify` on real repositories: keys made by ssh-keygen (ed25519, ECDSA, RSA),
//! commits signed by the git CLI (gpg.format=ssh), and commit objects written by hand for what
//! the CLI will not make: a signature block moved into the message, an extra gpgsig-sha256
//! header, a signed commit whose content was changed.

mod common;

use common::{json, run};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Repo {
    dir: tempfile::TempDir,
    keys: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let repo = Repo { dir: tempfile::tempdir().expect("repo"), keys: tempfile::tempdir().expect("keys") };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    fn path(&self) -> String {
        self.dir.path().to_string_lossy().into_owned()
    }

    fn git(&self, args: &[&str]) -> String {
        common::git(self.dir.path(), &[], args)
    }

    /// A key pair made by ssh-keygen; returns the private key's path.
    fn key(&self, name: &str, kind: &[&str]) -> PathBuf {
        let path = self.keys.path().join(name);
        let out =
            Command::new("ssh-keygen").args(["-q", "-N", "", "-C", name, "-f"]).arg(&path).args(kind).output().expect("ssh-keygen runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        path
    }

    fn public(&self, key: &Path) -> String {
        std::fs::read_to_string(key.with_extension("pub")).expect("public key").trim().to_string()
    }

    /// An empty commit, signed with `key` (None: unsigned); returns its id.
    fn commit(&self, message: &str, key: Option<&Path>) -> String {
        match key {
            Some(key) => {
                self.git(&["-c", &format!("user.signingkey={}", key.display()), "commit", "-q", "--allow-empty", "-S", "-m", message])
            }
            None => self.git(&["commit", "-q", "--allow-empty", "-m", message]),
        };
        self.git(&["rev-parse", "HEAD"])
    }

    /// Writes a commit object from raw text (`git hash-object -w -t commit`); returns its id.
    fn write_object(&self, raw: &str) -> String {
        let file = self.keys.path().join("object");
        std::fs::write(&file, raw).expect("write");
        self.git(&["hash-object", "-w", "-t", "commit", "--literally", &file.to_string_lossy()])
    }

    fn signers(&self, lines: &[String]) -> String {
        let file = self.keys.path().join("allowed_signers");
        std::fs::write(&file, lines.join("\n") + "\n").expect("write");
        file.to_string_lossy().into_owned()
    }
}

fn verify(repo: &Repo, signers: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = run(&[&["verify", &repo.path(), "--allowed-signers", signers, "--format", "json"][..], extra].concat());
    (out.code, json(&out.stdout))
}

fn reasons(report: &serde_json::Value) -> Vec<(String, String)> {
    report["commits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (c["summary"].as_str().unwrap_or("").to_string(), c["reason"].as_str().unwrap_or("verified").to_string()))
        .collect()
}

#[test]
fn every_commit_of_a_range_is_checked_and_each_failure_is_named() {
    let repo = Repo::new();
    let (ed, ecdsa, rsa, foreign) = (
        repo.key("dana", &["-t", "ed25519"]),
        repo.key("marcus", &["-t", "ecdsa", "-b", "256"]),
        repo.key("sam", &["-t", "rsa", "-b", "2048"]),
        repo.key("mallory", &["-t", "ed25519"]),
    );
    let base = repo.commit("base", None);
    repo.commit("ed25519 change", Some(&ed));
    repo.commit("ecdsa change", Some(&ecdsa));
    repo.commit("unsigned change", None);
    repo.commit("rsa change", Some(&rsa));
    repo.commit("foreign change", Some(&foreign));
    let signers = repo.signers(&[
        format!("dana@fernhill.io {}", repo.public(&ed)),
        format!("marcus@fernhill.io namespaces=\"git\" {}", repo.public(&ecdsa)),
        format!("\"sam@fernhill.io,ops@fernhill.io\" {}", repo.public(&rsa)),
    ]);

    let (code, report) = verify(&repo, &signers, &["--from", &base]);
    assert_eq!(code, 1);
    assert_eq!(
        reasons(&report),
        [
            ("ed25519 change", "verified"),
            ("ecdsa change", "verified"),
            ("unsigned change", "unsigned"),
            ("rsa change", "verified"),
            ("foreign change", "unknown_key")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(report["commits"][3]["principal"], "sam@fernhill.io,ops@fernhill.io");
    assert!(report["commits"][4]["key"].as_str().is_some_and(|k| k.starts_with("SHA256:")));
    let text = run(&["verify", &repo.path(), "--allowed-signers", &signers, "--from", &base]).stdout;
    assert!(text.contains("unsigned") && text.contains("3 verified, 2 failed"), "{text}");

    // Only HEAD without --from; a clean range exits 0.
    assert_eq!(verify(&repo, &signers, &[]).0, 1);
    let ecdsa_change = repo.git(&["rev-parse", "HEAD~3"]);
    assert_eq!(verify(&repo, &signers, &["--from", &base, "--to", &ecdsa_change]).0, 0);
    assert_eq!(run(&["verify", &repo.path()]).code, 64, "--allowed-signers is required");
}

#[test]
fn a_key_outside_its_validity_window_or_namespace_is_refused() {
    let repo = Repo::new();
    let key = repo.key("dana", &["-t", "ed25519"]);
    repo.commit("signed", Some(&key));
    let public = repo.public(&key);
    let expired = repo.signers(&[format!("dana@fernhill.io valid-before=\"20200101\" {public}")]);
    assert_eq!(reasons(&verify(&repo, &expired, &[]).1), [("signed".to_string(), "key_not_valid".to_string())]);
    let later = repo.signers(&[format!("dana@fernhill.io valid-after=\"29990101\" {public}")]);
    assert_eq!(reasons(&verify(&repo, &later, &[]).1)[0].1, "key_not_valid");
    let files_only = repo.signers(&[format!("dana@fernhill.io namespaces=\"file\" {public}")]);
    assert_eq!(reasons(&verify(&repo, &files_only, &[]).1)[0].1, "principal_mismatch");
    let window = repo.signers(&[format!("dana@fernhill.io valid-after=\"20200101\",valid-before=\"29990101\" {public}")]);
    assert_eq!(verify(&repo, &window, &[]).0, 0);
}

#[test]
fn the_payload_is_taken_the_way_git_takes_it() {
    let repo = Repo::new();
    let key = repo.key("dana", &["-t", "ed25519"]);
    let signed = repo.commit("signed", Some(&key));
    let signers = repo.signers(&[format!("dana@fernhill.io {}", repo.public(&key))]);
    let raw = repo.git(&["cat-file", "commit", &signed]) + "\n";
    let (header, message) = raw.split_once("\n\n").expect("a header and a message");

    // An extra gpgsig-sha256 header: git leaves it out of the payload, so the commit still verifies.
    let extra = repo
        .write_object(&format!("{header}\ngpgsig-sha256 -----BEGIN SSH SIGNATURE-----\n AAAA\n -----END SSH SIGNATURE-----\n\n{message}"));
    assert_eq!(verify(&repo, &signers, &["--to", &extra]).0, 0, "{}", verify(&repo, &signers, &["--to", &extra]).1);

    // The signature block moved into the message: git calls the commit unsigned.
    let (unsigned_header, signature) = header.split_once("\ngpgsig ").expect("a gpgsig header");
    let moved = repo.write_object(&format!("{unsigned_header}\n\n{message}gpgsig {signature}\n"));
    assert_eq!(reasons(&verify(&repo, &signers, &["--to", &moved]).1)[0].1, "unsigned");

    // The content changed under the signature.
    let tampered = repo.write_object(&raw.replace("\n\nsigned", "\n\nsigned, and widened"));
    assert_eq!(reasons(&verify(&repo, &signers, &["--to", &tampered]).1)[0].1, "bad_signature");
}

#[test]
fn merges_and_rewritten_history() {
    let repo = Repo::new();
    let (merger, contributor) = (repo.key("lead", &["-t", "ed25519"]), repo.key("contrib", &["-t", "ed25519"]));
    let base = repo.commit("base", Some(&merger));
    repo.git(&["checkout", "-q", "-b", "topic"]);
    repo.commit("unsigned topic work", None);
    repo.git(&["checkout", "-q", "main"]);
    repo.commit("main work", Some(&contributor));
    repo.git(&["-c", &format!("user.signingkey={}", merger.display()), "merge", "-q", "-S", "--no-ff", "-m", "merge topic", "topic"]);
    let signers =
        repo.signers(&[format!("lead@fernhill.io {}", repo.public(&merger)), format!("contrib@fernhill.io {}", repo.public(&contributor))]);

    let (code, all) = verify(&repo, &signers, &["--from", &base]);
    assert_eq!(code, 1, "every commit: the topic's unsigned one fails");
    assert!(reasons(&all).contains(&("unsigned topic work".to_string(), "unsigned".to_string())));
    let (code, first_parent) = verify(&repo, &signers, &["--from", &base, "--first-parent"]);
    assert_eq!(code, 0, "the merger is trusted with what it merged: {first_parent}");
    assert_eq!(reasons(&first_parent).len(), 2);

    // A tip that does not descend from the live revision: history was rewritten.
    repo.git(&["checkout", "-q", "--orphan", "rewritten"]);
    let rewritten = repo.commit("rewritten", Some(&merger));
    let (code, report) = verify(&repo, &signers, &["--from", &base, "--to", &rewritten]);
    assert_eq!(code, 1);
    assert_eq!(reasons(&report)[0].1, "not_a_descendant");
}
