//! `mcp-gitops verify` on real repositories: keys made by ssh-keygen (ed25519, ECDSA, RSA),
//! commits signed by the git CLI (gpg.format=ssh), and commit objects written by hand for what
//! the CLI will not make: a signature block moved into the message, an extra gpgsig-sha256
//! header, a signed commit whose content was changed.

mod common;

use common::gpg::Gpg;
use common::{json, run};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Repo {
    dir: tempfile::TempDir,
    keys: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        // ssh-keygen makes the keys and checks nothing: the verifier is ours.
        common::install(&["openssh-client"]);
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

    /// Writes `files` (path, content) and commits them as `email`, signed with `key`; returns
    /// the commit's id.
    fn change(&self, files: &[(&str, &str)], message: &str, key: &Path, email: &str) -> String {
        for (path, content) in files {
            let path = self.dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&path, content).expect("write");
        }
        let config = [format!("user.signingkey={}", key.display()), format!("user.email={email}")];
        common::git(self.dir.path(), &config, &["add", "-A"]);
        common::git(self.dir.path(), &config, &["commit", "-q", "-S", "-m", message]);
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

/// An empty commit dated `date` (author and committer), with the git configuration `config`
/// (a signing key); returns its id. Anyone can date a commit as they like.
fn backdated(repo: &Repo, config: &[String], date: &str, message: &str) -> String {
    let mut command = Command::new("git");
    command.arg("-C").arg(repo.dir.path()).args([
        "-c",
        "user.name=Departed",
        "-c",
        "user.email=departed@fernhill.io",
        "-c",
        "gpg.format=ssh",
    ]);
    for pair in config {
        command.arg("-c").arg(pair);
    }
    let out = command
        .args(["commit", "-q", "--allow-empty", "-S", "-m", message])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    repo.git(&["rev-parse", "HEAD"])
}

/// The attack: a departed engineer's key (its allowed_signers line ended in 2020), an expired SSH
/// certificate and an expired OpenPGP key each sign a new commit dated back into their validity.
/// A commit new to the verifier is judged at the verifier's clock (`--at`, default now), never at
/// the date it claims; and a commit dated before its parent is noted.
#[test]
fn a_backdated_commit_is_judged_at_the_time_of_verification() {
    let repo = Repo::new();
    let (departed, ca, holder) =
        (repo.key("departed", &["-t", "ed25519"]), repo.key("ca", &["-t", "ed25519"]), repo.key("holder", &["-t", "ed25519"]));
    let certificate = repo.certify(&ca, &holder, &["-n", "holder@fernhill.io", "-V", "20190101:20200101"]);
    let gpg = Gpg::new(repo.keys.path());
    let expired = gpg.key("Gone <gone@fernhill.io>", "ed25519", "sign", Some("20190101T000000"));
    gpg.run(&["--faked-system-time", "20190102T000000", "--quick-set-expire", &expired, "300d"]);
    let keys = repo.keys.path().join("pgp");
    std::fs::create_dir(&keys).expect("mkdir");
    gpg.export(&expired, &keys, "gone.asc");
    let keys = keys.to_string_lossy().into_owned();
    let base = repo.commit("base", None);
    let at = "2019-06-01T12:00:00Z";
    let signing = |key: &Path| vec![format!("user.signingkey={}", key.display())];
    backdated(&repo, &signing(&departed), at, "departed key, dated back");
    backdated(&repo, &signing(&certificate), at, "expired certificate, dated back");
    backdated(&repo, &gpg.signing_at(&expired, "gone@fernhill.io", "20190601T120000"), at, "expired OpenPGP key, dated back");
    let signers = repo.signers(&[
        format!("departed@fernhill.io valid-before=\"20200101\" {}", repo.public(&departed)),
        format!("*@fernhill.io cert-authority {}", repo.public(&ca)),
    ]);

    let (code, report) = verify(&repo, &signers, &["--pgp-keys", &keys, "--from", &base]);
    assert_eq!(code, 1, "{report}");
    assert!(reasons(&report).iter().all(|(_, reason)| reason == "key_not_valid"), "{report}");
    assert!(report["commits"][0]["notes"][0].as_str().is_some_and(|n| n.contains("before its parent")), "{report}");
    // Verified as of a time the verifier chooses (history as it stood then): all three pass.
    let (code, report) = verify(&repo, &signers, &["--pgp-keys", &keys, "--from", &base, "--at", "2019-06-02T00:00:00Z"]);
    assert_eq!(code, 0, "{report}");
}

/// The attack: the base revoked a grant (its file removed); a signed merge whose other parent is
/// an old, trusted commit from before the revocation takes that commit's version of the file. Each
/// commit verifies on its own; what the merge brings back comes from no commit new to the
/// verifier, so it is the merger's own change, judged against the merger's rights.
#[test]
fn a_merge_cannot_bring_back_what_the_base_removed() {
    let repo = Repo::new();
    let (security, contractor) = (repo.key("security", &["-t", "ed25519"]), repo.key("contractor", &["-t", "ed25519"]));
    let signers =
        repo.signers(&[format!("security@fernhill.io {}", repo.public(&security)), format!("kim@agency.io {}", repo.public(&contractor))]);
    let rules = "trust:\n  signers:\n    - paths: [\"teams/payments/**\", \"mcp-gitops.yaml\"]\n      principals: [security@fernhill.io]\n";
    let grant = "teams/payments/grants/standing-refunds.yaml";
    let granted =
        repo.change(&[("mcp-gitops.yaml", rules), (grant, "# a standing destructive grant\n")], "grant", &security, "security@fernhill.io");
    std::fs::remove_file(repo.dir.path().join(grant)).expect("revoke");
    let base = repo.change(&[], "revoke the standing grant", &security, "security@fernhill.io");
    // The contractor merges the old commit back in, taking its side for the grant.
    let config = [format!("user.signingkey={}", contractor.display()), "user.email=kim@agency.io".to_string()];
    // (git merge refuses an ancestor, so the merge commit is written with commit-tree.)
    common::git(repo.dir.path(), &config, &["checkout", &granted, "--", grant]);
    let tree = repo.git(&["write-tree"]);
    let merge =
        common::git(repo.dir.path(), &config, &["commit-tree", "-S", "-p", "HEAD", "-p", &granted, "-m", "merge an old branch", &tree]);
    repo.git(&["reset", "-q", "--hard", &merge]);
    assert_eq!(repo.git(&["rev-list", "--parents", "-n", "1", "HEAD"]).split(' ').count(), 3, "a merge");
    assert!(repo.dir.path().join(grant).exists(), "the merge brought the grant back");

    let (code, report) = verify(&repo, &signers, &["--from", &base]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(reasons(&report), [("merge an old branch".to_string(), "path_not_allowed".to_string())], "{report}");
    assert!(report["commits"][0]["detail"].as_str().is_some_and(|d| d.contains(grant)), "{report}");
}

/// A payments grant, as a file anywhere in the tree.
const PAYMENTS_GRANT: &str = "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata: {name: standing-refunds, namespace: mcp-team-payments}\nspec:\n  serverRef: {name: payments-mcp}\n  subject: {agentID: refund-bot}\n  maxTrust: high\n  allowedSideEffects: [read, write, destructive]\n";

/// The attack: signers guard the payments folder by path, and a contractor writes a grant for the
/// payments namespace into an unguarded folder (objects are found by content anywhere). A rule
/// that scopes what a commit means — the namespaces of the objects it adds, changes or removes —
/// guards them wherever they are written; a rule by path alone is reported by validate.
#[test]
fn signers_guard_objects_by_what_they_are_not_where_they_are_written() {
    let repo = Repo::new();
    let (security, contractor) = (repo.key("security", &["-t", "ed25519"]), repo.key("contractor", &["-t", "ed25519"]));
    let signers =
        repo.signers(&[format!("security@fernhill.io {}", repo.public(&security)), format!("kim@agency.io {}", repo.public(&contractor))]);
    let by_path = "trust:\n  signers:\n    - paths: [\"teams/payments/**\"]\n      principals: [security@fernhill.io]\n";
    let by_meaning = "trust:\n  signers:\n    - paths: [\"teams/payments/**\"]\n      namespaces: [mcp-team-payments]\n      principals: [security@fernhill.io]\n";
    let kim = |files: &[(&str, &str)], message: &str| repo.change(files, message, &contractor, "kim@agency.io");

    // By path alone the grant in scratch/ is accepted, and validate says the rule can be walked around.
    let path_base = repo.change(
        &[("mcp-gitops.yaml", by_path), ("teams/payments/grants.yaml", PAYMENTS_GRANT)],
        "rules by path",
        &security,
        "security@fernhill.io",
    );
    let warned = json(&run(&["validate", &repo.path(), "--format", "json"]).stdout);
    let found = warned["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d["code"] == "trust_scoped_by_path" && d["file"] == "mcp-gitops.yaml");
    assert!(found, "{warned}");
    kim(&[("scratch/widen.yaml", &PAYMENTS_GRANT.replace("standing-refunds", "kims-refunds"))], "a payments grant outside the folder");
    assert_eq!(verify(&repo, &signers, &["--from", &path_base]).0, 0, "path rules alone are walked around");

    // Scoped by namespace: adding, changing or removing a payments object anywhere needs security.
    let base = repo.change(&[("mcp-gitops.yaml", by_meaning)], "rules by meaning", &security, "security@fernhill.io");
    kim(&[("scratch/other.yaml", &PAYMENTS_GRANT.replace("standing-refunds", "more-refunds"))], "add one outside");
    kim(
        &[("scratch/widen.yaml", &PAYMENTS_GRANT.replace("standing-refunds", "kims-refunds").replace("high", "medium"))],
        "change one outside",
    );
    std::fs::remove_file(repo.dir.path().join("scratch/widen.yaml")).expect("remove");
    kim(&[], "remove one outside");
    kim(&[("scratch/notes.yaml", "# notes, no object\n")], "an unrelated file");
    let (code, report) = verify(&repo, &signers, &["--from", &base]);
    assert_eq!(code, 1);
    assert_eq!(
        reasons(&report),
        [
            ("add one outside", "path_not_allowed"),
            ("change one outside", "path_not_allowed"),
            ("remove one outside", "path_not_allowed"),
            ("an unrelated file", "verified")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string())),
        "{report}"
    );
    let detail = report["commits"][0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("MCPAccessGrant/mcp-team-payments/more-refunds (scratch/other.yaml)") && detail.contains("trust.signers[0]"),
        "{detail}"
    );
    let clean = json(&run(&["validate", &repo.path(), "--format", "json"]).stdout);
    assert!(!clean.to_string().contains("trust_scoped_by_path"), "{clean}");
}

/// `trust:` in the base's mcp-gitops.yaml (in a subdirectory of the repository, as `verify
/// platform/` finds it): path-scoped signers and identity binding.
const TRUST_RULES: &str = "trust:
  identity: committer
  signers:
    - paths: [\"teams/payments/**\"]
      principals: [\"*@fernhill.io\"]
    - paths: [\"mcp-gitops.yaml\"]
      principals: [security@fernhill.io]
";

#[test]
fn signers_are_bound_to_paths_and_to_the_committer_by_the_base_rules() {
    let repo = Repo::new();
    let (security, dana, contractor) = (
        repo.key("security", &["-t", "ed25519"]),
        repo.key("dana", &["-t", "ecdsa", "-b", "256"]),
        repo.key("contractor", &["-t", "ed25519"]),
    );
    let signers = repo.signers(&[
        format!("security@fernhill.io {}", repo.public(&security)),
        format!("dana@fernhill.io {}", repo.public(&dana)),
        format!("*@agency.io {}", repo.public(&contractor)),
    ]);
    let platform = repo.dir.path().join("platform").to_string_lossy().into_owned();
    let verify_platform = |extra: &[&str]| {
        let out = run(&[&["verify", &platform, "--allowed-signers", &signers, "--format", "json"][..], extra].concat());
        (out.code, json(&out.stdout))
    };
    let base = repo.change(&[("platform/mcp-gitops.yaml", TRUST_RULES)], "trust rules", &security, "security@fernhill.io");
    repo.change(&[("platform/teams/search/grants.yaml", "# search\n")], "contractor on search", &contractor, "kim@agency.io");
    repo.change(&[("platform/teams/payments/grants.yaml", "# widened\n")], "contractor on payments", &contractor, "kim@agency.io");
    repo.change(&[("platform/teams/payments/grants.yaml", "# narrowed\n")], "dana on payments", &dana, "dana@fernhill.io");
    // The rules come from the base: a commit that drops them does not free the next one.
    repo.change(&[("platform/mcp-gitops.yaml", "{}\n")], "dana drops the rules", &dana, "dana@fernhill.io");
    repo.change(&[("platform/teams/payments/more.yaml", "# more\n")], "contractor after the drop", &contractor, "kim@agency.io");
    // Identity binding: dana's key, but committed as someone else.
    repo.change(&[("platform/teams/search/b.yaml", "# b\n")], "dana's key as marcus", &dana, "marcus@fernhill.io");
    // Outside platform/ no rule applies.
    repo.change(&[("teams/payments/notes.md", "notes\n")], "contractor outside platform", &contractor, "kim@agency.io");

    let (code, report) = verify_platform(&["--from", &base]);
    assert_eq!(code, 1);
    assert_eq!(
        reasons(&report),
        [
            ("contractor on search", "verified"),
            ("contractor on payments", "path_not_allowed"),
            ("dana on payments", "verified"),
            ("dana drops the rules", "path_not_allowed"),
            ("contractor after the drop", "path_not_allowed"),
            ("dana's key as marcus", "principal_mismatch"),
            ("contractor outside platform", "verified"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(report["commits"][0]["principal"], "kim@agency.io", "with identity binding the principal is the committer");
    let refused = report["commits"][1]["detail"].as_str().unwrap_or_default();
    assert!(
        refused.starts_with(
            "platform/teams/payments/grants.yaml may be changed only by *@fernhill.io (trust.signers[0] in platform/mcp-gitops.yaml at"
        ),
        "{refused}"
    );
    assert!(report["commits"][5]["detail"].as_str().is_some_and(|d| d.contains("the committer is \"marcus@fernhill.io\"")), "{report}");

    // Without --from, the rules are --to's parent's: here those of "dana drops the rules".
    let (code, _) = verify_platform(&[]);
    assert_eq!(code, 0, "the last commit, judged by the rules its parent left (none)");

    // Rules that cannot be read fail closed, naming the file and line.
    let broken =
        repo.change(&[("platform/mcp-gitops.yaml", "trust:\n  identity: sometimes\n")], "broken rules", &security, "security@fernhill.io");
    repo.change(&[("platform/x.yaml", "# x\n")], "after broken rules", &security, "security@fernhill.io");
    let out = run(&["verify", &platform, "--allowed-signers", &signers, "--from", &broken]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("platform/mcp-gitops.yaml:2:") && out.stderr.contains("the signing rules cannot be read"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_merge_is_judged_on_its_own_changes_or_with_first_parent_on_all_it_brings() {
    let repo = Repo::new();
    let (dana, contractor) = (repo.key("dana", &["-t", "ed25519"]), repo.key("contractor", &["-t", "ed25519"]));
    let signers =
        repo.signers(&[format!("dana@fernhill.io {}", repo.public(&dana)), format!("kim@agency.io {}", repo.public(&contractor))]);
    let rules = "trust:\n  signers:\n    - paths: [\"teams/payments/**\"]\n      principals: [\"*@fernhill.io\"]\n";
    let base = repo.change(&[("mcp-gitops.yaml", rules)], "rules", &dana, "dana@fernhill.io");
    repo.git(&["checkout", "-q", "-b", "topic"]);
    repo.change(&[("teams/payments/grants.yaml", "# widened\n")], "contractor on payments", &contractor, "kim@agency.io");
    repo.git(&["checkout", "-q", "main"]);
    repo.change(&[("teams/search/grants.yaml", "# search\n")], "dana on search", &dana, "dana@fernhill.io");
    let merge_as = |key: &Path, email: &str| {
        let config = [format!("user.signingkey={}", key.display()), format!("user.email={email}")];
        common::git(repo.dir.path(), &config, &["merge", "-q", "-S", "--no-ff", "-m", "merge topic", "topic"]);
    };
    merge_as(&dana, "dana@fernhill.io");

    let (_, all) = verify(&repo, &signers, &["--from", &base]);
    let expected = [("contractor on payments", "path_not_allowed"), ("dana on search", "verified"), ("merge topic", "verified")];
    let mut got = reasons(&all);
    got.sort();
    assert_eq!(got, expected.map(|(a, b)| (a.to_string(), b.to_string())), "a clean merge changes nothing of its own");
    let (code, merged) = verify(&repo, &signers, &["--from", &base, "--first-parent"]);
    assert_eq!(code, 0, "the merger may change payments and is trusted with what it merged: {merged}");

    // The same merge made by the contractor brings payments changes in under its own signature.
    repo.git(&["reset", "-q", "--hard", "HEAD~1"]);
    merge_as(&contractor, "kim@agency.io");
    let (code, merged) = verify(&repo, &signers, &["--from", &base, "--first-parent"]);
    assert_eq!(code, 1);
    assert_eq!(reasons(&merged).last().map(|r| r.1.as_str()), Some("path_not_allowed"), "{merged}");
}

#[test]
fn openpgp_signatures_from_subkeys_and_primaries_with_expiry_and_revocation() {
    let repo = Repo::new();
    let gpg = Gpg::new(repo.keys.path());
    // dana: a certification-only primary with a signing subkey, as careful people make them.
    let dana = gpg.key("Dana <dana@fernhill.io>", "ed25519", "cert", None);
    gpg.run(&["--quick-add-key", &dana, "ed25519", "sign", "0"]);
    let sam = gpg.key("Sam <sam@fernhill.io>", "rsa2048", "sign", None);
    let old = gpg.key("Old <old@fernhill.io>", "ed25519", "sign", Some("20200101T000000"));
    let gone = gpg.key("Gone <gone@fernhill.io>", "ed25519", "sign", None);
    let foreign = gpg.key("Mallory <mallory@fernhill.io>", "ed25519", "sign", None);
    let ssh = repo.key("marcus", &["-t", "ed25519"]);

    let base = repo.commit("base", None);
    gpg.commit(repo.dir.path(), "subkey change", &dana, "dana@fernhill.io");
    gpg.commit(repo.dir.path(), "rsa change", &sam, "sam@fernhill.io");
    repo.commit("ssh change", Some(&ssh));
    gpg.commit(repo.dir.path(), "expired key change", &old, "old@fernhill.io");
    repo.commit("unsigned change", None);
    gpg.commit(repo.dir.path(), "revoked key change", &gone, "gone@fernhill.io");
    gpg.commit(repo.dir.path(), "foreign change", &foreign, "mallory@fernhill.io");
    // After the signatures: old's key is made to expire on 2020-01-03, gone's key is revoked.
    gpg.run(&["--faked-system-time", "20200102T000000", "--quick-set-expire", &old, "1d"]);
    gpg.revoke(&gone);

    let keys = repo.keys.path().join("pgp");
    std::fs::create_dir(&keys).expect("mkdir");
    for (fingerprint, name) in [(&dana, "dana.asc"), (&sam, "sam.asc"), (&old, "old.gpg"), (&gone, "gone.pgp")] {
        gpg.export(fingerprint, &keys, name);
    }
    std::fs::write(keys.join("README.md"), "not a key: the directory reads only key files\n").expect("write");
    let signers = repo.signers(&[format!("marcus@fernhill.io {}", repo.public(&ssh))]);
    let keys = keys.to_string_lossy().into_owned();

    let (code, report) = verify(&repo, &signers, &["--pgp-keys", &keys, "--from", &base]);
    assert_eq!(code, 1);
    assert_eq!(
        reasons(&report),
        [
            ("subkey change", "verified"),
            ("rsa change", "verified"),
            ("ssh change", "verified"),
            ("expired key change", "key_not_valid"),
            ("unsigned change", "unsigned"),
            ("revoked key change", "key_not_valid"),
            ("foreign change", "unknown_key"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let commits = &report["commits"];
    assert_eq!(commits[0]["principal"], "dana@fernhill.io");
    // The key named is the subkey that signed, not the primary.
    let subkey = commits[0]["key"].as_str().expect("a key");
    assert!(subkey.len() == 40 && subkey != dana, "{subkey}");
    assert_eq!(commits[1]["key"], sam.as_str());
    assert!(commits[3]["detail"].as_str().is_some_and(|d| d.contains("expired on 2020-01-03")), "{}", commits[3]);
    assert!(commits[5]["detail"].as_str().is_some_and(|d| d.contains("revoked")), "{}", commits[5]);
    assert_eq!(commits[6]["key"], foreign.as_str());

    // OpenPGP keys alone are enough for OpenPGP commits; without any trust file it is a usage error.
    let dana_file = format!("{keys}/dana.asc");
    let first = repo.git(&["rev-list", "--reverse", &format!("{base}..HEAD")]).lines().next().expect("a commit").to_string();
    let out = run(&["verify", &repo.path(), "--pgp-keys", &dana_file, "--to", &first, "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(run(&["verify", &repo.path()]).code, 64);
    // The signed commit with its message changed: the signature no longer matches.
    let raw = repo.git(&["cat-file", "commit", &first]);
    let forged = repo.write_object(&(raw.replacen("subkey change", "subkey change, and more", 1) + "\n"));
    let out = run(&["verify", &repo.path(), "--pgp-keys", &dana_file, "--to", &forged, "--format", "json"]);
    assert_eq!(reasons(&json(&out.stdout)), [("subkey change, and more".to_string(), "bad_signature".to_string())]);
    // Identity binding holds for OpenPGP signers too: dana's key committing as sam.
    std::fs::write(repo.dir.path().join("mcp-gitops.yaml"), "trust:\n  identity: committer\n").expect("write");
    repo.git(&["add", "mcp-gitops.yaml"]);
    let rules_base = repo.commit("trust rules", None);
    gpg.commit(repo.dir.path(), "dana's key as sam", &dana, "sam@fernhill.io");
    gpg.commit(repo.dir.path(), "dana as herself", &dana, "dana@fernhill.io");
    let (_, report) = verify(&repo, &signers, &["--pgp-keys", &keys, "--from", &rules_base]);
    assert_eq!(
        reasons(&report),
        [("dana's key as sam", "principal_mismatch"), ("dana as herself", "verified")].map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // A key file that is no key is an error naming it.
    let out = run(&["verify", &repo.path(), "--pgp-keys", &signers]);
    assert!(out.code == 1 && out.stderr.contains("not an OpenPGP public key"), "{}", out.stderr);
}

impl Repo {
    /// Certifies `key` with the `ca` key (`ssh-keygen -s`, `args` such as `-n` principals and
    /// `-V` validity); returns the certificate's path, which git signs with.
    fn certify(&self, ca: &Path, key: &Path, args: &[&str]) -> PathBuf {
        let public = key.with_extension("pub");
        let out =
            Command::new("ssh-keygen").args(["-q", "-s"]).arg(ca).args(["-I", "test"]).args(args).arg(&public).output().expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        PathBuf::from(format!("{}-cert.pub", key.display()))
    }
}

#[test]
fn ssh_certificates_are_trusted_through_their_cert_authority_line() {
    let repo = Repo::new();
    let (ca, other_ca) = (repo.key("ca", &["-t", "ed25519"]), repo.key("other-ca", &["-t", "ed25519"]));
    let names = ["dana", "old", "eve", "rogue", "host", "forever"];
    let keys: Vec<PathBuf> = names.iter().map(|name| repo.key(name, &["-t", "ed25519"])).collect();
    let year = ["-V", "20200101:29990101"];
    let certificates = [
        repo.certify(&ca, &keys[0], &[&["-n", "dana@fernhill.io,dana"][..], &year].concat()),
        repo.certify(&ca, &keys[1], &["-n", "old@fernhill.io", "-V", "20200101:20200102"]),
        repo.certify(&ca, &keys[2], &[&["-n", "eve@evil.io"][..], &year].concat()),
        repo.certify(&other_ca, &keys[3], &[&["-n", "rogue@fernhill.io"][..], &year].concat()),
        repo.certify(&ca, &keys[4], &[&["-h", "-n", "build.fernhill.io"][..], &year].concat()),
        repo.certify(&ca, &keys[5], &["-n", "forever@fernhill.io"]),
    ];
    let base = repo.commit("base", None);
    let messages = ["dana", "expired", "wrong principal", "other ca", "host certificate", "certificate without an end"];
    for (certificate, message) in certificates.iter().zip(messages) {
        repo.commit(message, Some(certificate));
    }
    // The key alone, without its certificate, is no allowed key.
    repo.commit("dana's bare key", Some(&keys[0]));
    let signers = repo.signers(&[format!("*@fernhill.io cert-authority {}", repo.public(&ca))]);

    let (code, report) = verify(&repo, &signers, &["--from", &base]);
    assert_eq!(code, 1);
    assert_eq!(
        reasons(&report),
        [
            ("dana", "verified"),
            ("expired", "key_not_valid"),
            ("wrong principal", "principal_mismatch"),
            ("other ca", "unknown_key"),
            ("host certificate", "principal_mismatch"),
            ("certificate without an end", "key_not_valid"),
            ("dana's bare key", "unknown_key"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // Only the certificate's principals that the line's patterns match stand for the signer.
    assert_eq!(report["commits"][0]["principal"], "dana@fernhill.io");
    assert!(report["commits"][3]["detail"].as_str().is_some_and(|d| d.contains("no cert-authority line")), "{}", report["commits"][3]);
    assert!(report["commits"][5]["detail"].as_str().is_some_and(|d| d.contains("-V")), "{}", report["commits"][5]);
}

/// #25.7: a certificate authority issues a certificate whose principal is the text
/// `*@fernhill.io` (a principal is whatever the request names). That certificate stands for that
/// one name, not for everyone at fernhill.io: committed as security@fernhill.io, it may not change
/// the file only security may change.
#[test]
fn a_certificate_principal_is_a_name_not_a_pattern() {
    let repo = Repo::new();
    let ca = repo.key("ca", &["-t", "ed25519"]);
    let (dana, mallory) = (repo.key("dana", &["-t", "ed25519"]), repo.key("mallory", &["-t", "ed25519"]));
    let year = ["-V", "20200101:29990101"];
    let dana = repo.certify(&ca, &dana, &[&["-n", "dana@fernhill.io"][..], &year].concat());
    let wildcard = repo.certify(&ca, &mallory, &[&["-n", "*@fernhill.io"][..], &year].concat());
    let signers = repo.signers(&[format!("*@fernhill.io cert-authority,namespaces=\"git\" {}", repo.public(&ca))]);
    let base = repo.change(&[("mcp-gitops.yaml", TRUST_RULES)], "trust rules", &dana, "dana@fernhill.io");
    repo.change(&[("teams/payments/grants.yaml", "# dana\n")], "dana on payments", &dana, "dana@fernhill.io");
    repo.change(&[("mcp-gitops.yaml", "{}\n")], "wildcard as security drops the rules", &wildcard, "security@fernhill.io");
    repo.change(&[("teams/payments/grants.yaml", "# widened\n")], "wildcard as dana on payments", &wildcard, "dana@fernhill.io");

    let (code, report) = verify(&repo, &signers, &["--from", &base]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        reasons(&report),
        [
            ("dana on payments", "verified"),
            ("wildcard as security drops the rules", "principal_mismatch"),
            ("wildcard as dana on payments", "principal_mismatch"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let detail = report["commits"][1]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("the committer is \"security@fernhill.io\""), "{detail}");

    // Committed under the very name the certificate holds, it is that name: no rule's pattern
    // is met by it except one that matches the text itself.
    repo.git(&["reset", "-q", "--hard", &base]);
    repo.change(&[("teams/search/grants.yaml", "# search\n")], "wildcard as itself", &wildcard, "*@fernhill.io");
    let (code, report) = verify(&repo, &signers, &["--from", &base]);
    assert_eq!((code, reasons(&report)[0].1.as_str()), (0, "verified"), "{report}");
    assert_eq!(report["commits"][0]["principal"], "*@fernhill.io");
}

/// #25.7, OpenPGP: a key whose user ID is `Wild <*@fernhill.io>` (a user ID is whatever its
/// maker writes) stands for that one name, not for everyone at fernhill.io.
#[test]
fn an_openpgp_user_id_is_a_name_not_a_pattern() {
    let repo = Repo::new();
    let gpg = Gpg::new(repo.keys.path());
    let wild = gpg.key("Wild <*@fernhill.io>", "ed25519", "sign", None);
    let keys = repo.keys.path().join("pgp");
    std::fs::create_dir(&keys).expect("mkdir");
    gpg.export(&wild, &keys, "wild.asc");
    let keys = keys.to_string_lossy().into_owned();
    std::fs::write(repo.dir.path().join("mcp-gitops.yaml"), "trust:\n  identity: committer\n").expect("write");
    repo.git(&["add", "mcp-gitops.yaml"]);
    let base = repo.commit("trust rules", None);
    gpg.commit(repo.dir.path(), "wild as security", &wild, "security@fernhill.io");
    let out = run(&["verify", &repo.path(), "--pgp-keys", &keys, "--from", &base, "--format", "json"]);
    let report = json(&out.stdout);
    assert_eq!(out.code, 1, "{report}");
    assert_eq!(reasons(&report), [("wild as security".to_string(), "principal_mismatch".to_string())]);
}

/// #25.7, the line's side: `*@fernhill.io,!contractor@fernhill.io` admits everyone at fernhill.io
/// but the contractor, as `ssh-keygen -Y verify` reads the list; a certificate the CA issued to the
/// contractor does not sign for them, nor does a key whose own line excludes its committer.
#[test]
fn a_negated_principal_in_an_allowed_signers_line_refuses() {
    let repo = Repo::new();
    let ca = repo.key("ca", &["-t", "ed25519"]);
    let (dana, contractor, team) =
        (repo.key("dana", &["-t", "ed25519"]), repo.key("contractor", &["-t", "ed25519"]), repo.key("team", &["-t", "ed25519"]));
    let year = ["-V", "20200101:29990101"];
    let dana = repo.certify(&ca, &dana, &[&["-n", "dana@fernhill.io"][..], &year].concat());
    let contractor = repo.certify(&ca, &contractor, &[&["-n", "contractor@fernhill.io"][..], &year].concat());
    let signers = repo.signers(&[
        format!("\"*@fernhill.io,!contractor@fernhill.io\" cert-authority {}", repo.public(&ca)),
        format!("\"*@fernhill.io,!contractor@fernhill.io\" {}", repo.public(&team)),
    ]);
    std::fs::write(repo.dir.path().join("mcp-gitops.yaml"), "trust:\n  identity: committer\n").expect("write");
    repo.git(&["add", "mcp-gitops.yaml"]);
    let base = repo.commit("trust rules", None);
    repo.change(&[("a.yaml", "# a\n")], "dana", &dana, "dana@fernhill.io");
    repo.change(&[("b.yaml", "# b\n")], "contractor's certificate", &contractor, "contractor@fernhill.io");
    repo.change(&[("c.yaml", "# c\n")], "team key as sam", &team, "sam@fernhill.io");
    repo.change(&[("d.yaml", "# d\n")], "team key as the contractor", &team, "contractor@fernhill.io");
    let (code, report) = verify(&repo, &signers, &["--from", &base]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        reasons(&report),
        [
            ("dana", "verified"),
            ("contractor's certificate", "principal_mismatch"),
            ("team key as sam", "verified"),
            ("team key as the contractor", "principal_mismatch"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}
