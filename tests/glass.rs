//! Break-glass (#29): `mcp-gitops break-glass` against a real git repository that signs its
//! commits with an SSH key made by ssh-keygen, as git is configured to; then what a pull request's
//! CI does with the commit (`validate`, `plan --base`, `approvals check`), what it refuses, and
//! `validate`'s late follow-up review. The owners of `mcp-team-a/*` are `team-a-leads`;
//! the on-call engineer (git's `user.email` oncall@fernhill.io) may open break-glass too, for at most 2h, with an `INC-` reason.

mod common;

use common::{git, json, mcp_gitops};
use std::fs;

const CONFIG: &str = r#"policies:
  disabled: [sessions-expire-within-a-day]
owners:
  servers:
    "mcp-team-a/*": [team-a-leads]
  approvals:
    - {on: widened, approvers: [owners], count: 1}
    - {on: widened-destructive, approvers: [security-team], count: 1}
  breakGlass:
    requesters: [owners, oncall@fernhill.io]
    maxDuration: 2h
    reasonPattern: "^INC-[0-9]+"
    reviewWithin: 24h
"#;

const SERVERS: &str = r#"version: v1
servers:
  - name: vault-mcp
    image: registry.example.com/team-a/vault-mcp
    imageTag: "1.0.0"
    namespace: mcp-team-a
    teamID: team-a
    publicPathPrefix: vault-mcp
    gateway: {enabled: true}
    auth: {mode: header}
    policy: {mode: allow-list, defaultDecision: deny}
    session: {required: false}
    tools:
      - {name: read_secret, requiredTrust: low, sideEffect: read}
      - {name: purge_vault, requiredTrust: high, sideEffect: destructive}
"#;

struct Repo {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
    signers: std::path::PathBuf,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Repo {
    /// A platform repository with one commit, whose git configuration signs commits with a new
    /// ed25519 key (`commit.gpgsign`, `gpg.format ssh`, `user.signingkey`).
    fn new() -> Repo {
        let repo = Repo { dir: tempfile::tempdir().expect("dir"), home: tempfile::tempdir().expect("home"), signers: Default::default() };
        let dir = repo.dir.path();
        fs::create_dir_all(dir.join("team-a/.mcp")).expect("mkdir");
        fs::write(dir.join("mcp-gitops.yaml"), CONFIG).expect("config");
        fs::write(dir.join("team-a/.mcp/servers.yaml"), SERVERS).expect("servers");
        let key = repo.home.path().join("id_ed25519");
        let made =
            std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "oncall", "-f"]).arg(&key).status();
        assert!(made.is_ok_and(|s| s.success()), "ssh-keygen makes a key");
        let public = fs::read_to_string(key.with_extension("pub")).expect("public key");
        let signers = repo.home.path().join("allowed_signers");
        fs::write(&signers, format!("oncall@fernhill.io {public}")).expect("allowed_signers");
        git(dir, &[], &["init", "-q", "-b", "main"]);
        for (key_name, value) in [
            ("user.name", "On Call"),
            ("user.email", "oncall@fernhill.io"),
            ("commit.gpgsign", "true"),
            ("gpg.format", "ssh"),
            ("user.signingkey", &key.to_string_lossy()),
        ] {
            git(dir, &[], &["config", key_name, value]);
        }
        git(dir, &[], &["add", "-A"]);
        git(dir, &[], &["commit", "-q", "-m", "team a"]);
        Repo { signers, ..repo }
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().expect("utf-8")
    }

    /// The binary, with a HOME of its own: only the repository's git configuration counts.
    fn run(&self, args: &[&str]) -> Out {
        let output = mcp_gitops().args(args).env("HOME", self.home.path()).env("GIT_CONFIG_NOSYSTEM", "1").output().expect("runs");
        Out {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn break_glass(&self, extra: &[&str]) -> Out {
        let mut args = vec!["break-glass", self.path(), "--server", "mcp-team-a/vault-mcp", "--human", "dana@fernhill.io"];
        args.extend(["--agent", "claude-code"]);
        args.extend(extra);
        self.run(&args)
    }

    fn head(&self) -> String {
        git(self.dir.path(), &[], &["rev-parse", "HEAD"])
    }

    /// `plan --base HEAD~1 --out plan.json`, then `approvals check` with nobody's approval.
    fn check(&self, author: &str, format: &str) -> Out {
        let plan = self.home.path().join("plan.json");
        let planned = self.run(&["plan", self.path(), "--base", "HEAD~1", "--out", plan.to_str().expect("utf-8"), "--format", "json"]);
        assert!(planned.code == 0, "plan: {}", planned.stderr);
        self.run(&["approvals", "check", plan.to_str().expect("utf-8"), "--approved-by", "", "--author", author, "--format", format])
    }
}

fn grant_files(repo: &Repo) -> String {
    git(repo.dir.path(), &[], &["ls-files", "team-a/grants", "team-a/sessions"])
}

#[test]
fn break_glass_commits_a_signed_grant_that_passes_without_approvals() {
    let repo = Repo::new();
    let before = repo.head();
    let out = repo.break_glass(&["--tool", "purge_vault", "--reason", "INC-4711 vault locked", "--for", "30m", "--session", "dana-bg"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let head = repo.head();
    assert_ne!(head, before, "a commit was made");
    assert!(out.stdout.contains(&format!("Committed {head} (signed)")), "{}", out.stdout);
    assert!(out.stdout.contains("follow-up review due by"), "{}", out.stdout);
    assert_eq!(git(repo.dir.path(), &[], &["status", "--porcelain"]), "", "the work tree and index are clean");
    assert_eq!(git(repo.dir.path(), &[], &["rev-parse", "HEAD~1"]), before, "on top of the branch");
    // git itself checks the signature (with ssh-keygen), and so does mcp-gitops verify.
    let signers = format!("gpg.ssh.allowedSignersFile={}", repo.signers.display());
    git(repo.dir.path(), &[signers], &["verify-commit", "HEAD"]);
    let verified = repo.run(&["verify", repo.path(), "--allowed-signers", repo.signers.to_str().expect("utf-8"), "--from", "HEAD~1"]);
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    let files = git(repo.dir.path(), &[], &["show", "--name-only", "--format=", "HEAD"]);
    let files: Vec<&str> = files.lines().collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].starts_with("team-a/grants/break-glass-purge-vault-"), "{files:?}");
    assert_eq!(files[1], "team-a/sessions/dana-bg.yaml");
    let grant = fs::read_to_string(repo.dir.path().join(files[0])).expect("grant");
    for line in [
        "mcp-gitops.io/break-glass: \"true\"",
        "mcp-gitops.io/break-glass-reason: \"INC-4711 vault locked\"",
        "mcp-gitops.io/break-glass-requester: \"oncall@fernhill.io\"",
        "allowedSideEffects: [destructive]",
        "- name: \"purge_vault\"",
    ] {
        assert!(grant.contains(line), "{line} in\n{grant}");
    }
    // The grant ends 30 minutes from now (give or take the test's own run time).
    let expires: jiff::Timestamp = grant
        .lines()
        .find_map(|l| l.trim().strip_prefix("mcp-gitops.io/expires-at: "))
        .expect("expires-at")
        .trim_matches('"')
        .parse()
        .expect("RFC 3339");
    let lasts = expires.duration_since(jiff::Timestamp::now()).as_secs();
    assert!((1700..=1800).contains(&lasts), "expires in {lasts}s");

    let validated = repo.run(&["validate", repo.path()]);
    assert_eq!(validated.code, 0, "{}{}", validated.stdout, validated.stderr);
    assert!(!validated.stdout.contains("break_glass_review_late"), "{}", validated.stdout);

    // The pull request's comment says it first.
    let comment = repo.run(&["plan", repo.path(), "--base", "HEAD~1", "--format", "markdown"]);
    assert!(comment.stdout.contains("> **Break-glass** by `oncall@fernhill.io` (INC-4711 vault locked), until `"), "{}", comment.stdout);
    let text = repo.run(&["plan", repo.path(), "--base", "HEAD~1"]);
    assert!(text.stdout.starts_with("Break-glass: by oncall@fernhill.io (INC-4711 vault locked), until "), "{}", text.stdout);
    // The pull request's CI: no approval, and the author is the requester.
    let checked = repo.check("oncall@fernhill.io", "text");
    assert_eq!(checked.code, 0, "{}{}", checked.stdout, checked.stderr);
    assert!(checked.stdout.starts_with("✓ break-glass by oncall@fernhill.io (INC-4711 vault locked)"), "{}", checked.stdout);
    assert!(checked.stdout.contains("no approval needed"), "{}", checked.stdout);
    let answer = json(&repo.check("@OnCall@fernhill.io", "json").stdout);
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["break_glass"]["within_rules"], true, "{answer}");
    assert_eq!(answer["break_glass"]["passes"], true, "{answer}");
    assert_eq!(answer["break_glass"]["objects"].as_array().map(Vec::len), Some(2), "{answer}");
    assert!(answer["required"].as_array().is_some_and(|r| !r.is_empty()), "an ordinary change would need approvals: {answer}");
    // Nobody opens break-glass in another's name.
    let other = repo.check("mallory", "text");
    assert_eq!(other.code, 1, "{}", other.stdout);
    assert!(other.stdout.contains("the change's author mallory is not its requester oncall@fernhill.io"), "{}", other.stdout);
}

#[test]
fn beyond_the_rules_break_glass_refuses_and_writes_nothing() {
    let repo = Repo::new();
    let before = repo.head();
    let refused = |extra: &[&str], code: i32, says: &str| {
        let out = repo.break_glass(extra);
        assert_eq!(out.code, code, "{extra:?}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(says), "{extra:?}: {says} in {}", out.stderr);
        assert_eq!(repo.head(), before, "{extra:?}: no commit");
        assert_eq!(grant_files(&repo), "", "{extra:?}: no file");
        assert!(!repo.dir.path().join("team-a/grants").exists(), "{extra:?}: nothing on disk");
    };
    refused(
        &["--tool", "purge_vault", "--reason", "INC-1", "--for", "3h"],
        1,
        "--for 3h: it lasts 3h from now, longer than owners.breakGlass.maxDuration 2h",
    );
    refused(
        &["--tool", "purge_vault", "--reason", "INC-1", "--requester", "mallory"],
        1,
        "mallory may not open break-glass access here (owners.breakGlass.requesters: team-a-leads, oncall@fernhill.io)",
    );
    refused(
        &["--tool", "purge_vault", "--reason", "urgent"],
        1,
        "the reason \"urgent\" does not match owners.breakGlass.reasonPattern \"^INC-[0-9]+\"",
    );
    refused(&["--tool", "purge_vault", "--reason", " "], 1, "a reason is required");
    refused(&["--tool", "purge_vault"], 64, "--reason");
    refused(
        &["--tool", "purge_vaul", "--reason", "INC-1"],
        1,
        "no tool \"purge_vaul\" on mcp-team-a/vault-mcp; its tools: read_secret, purge_vault; did you mean purge_vault?",
    );
    refused(&["--tool", "purge_vault", "--reason", "INC-1", "--for", "soon"], 64, "--for");
    refused(
        &["--tool", "purge_vault", "--reason", "INC-1", "--session", "../../escape"],
        1,
        "--session \"../../escape\" is not an object name",
    );
    let out = repo.run(&[
        "break-glass",
        repo.path(),
        "--server",
        "mcp-team-a/vault",
        "--tool",
        "x",
        "--human",
        "h",
        "--agent",
        "a",
        "--reason",
        "INC-1",
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("did you mean mcp-team-a/vault-mcp?"), "{}", out.stderr);
    // An owner may (names compared as the forges do); a reason that tries to add YAML stays one value.
    let out = repo.break_glass(&["--tool", "read_secret", "--reason", "INC-2\nkind: MCPServer\r\n#", "--requester", "@Team-A-Leads\n"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan = repo.home.path().join("plan.json");
    let planned = repo.run(&["plan", repo.path(), "--base", "HEAD~1", "--out", plan.to_str().expect("utf-8"), "--format", "json"]);
    assert_eq!(planned.code, 0, "{}{}", planned.stdout, planned.stderr);
    let answer = json(&fs::read_to_string(&plan).expect("plan"));
    assert_eq!(answer["approvals"]["break_glass"]["reason"], "INC-2\nkind: MCPServer\r\n#", "{answer}");
    let changed = answer["changes"].as_array().expect("changes").iter().filter(|c| c["action"] != "no-op").count();
    assert_eq!(changed, 1, "one grant: {answer}");
    assert_eq!(answer["approvals"]["break_glass"]["requester"], "@Team-A-Leads", "{answer}");
}

/// A grant and a commit written by hand, as someone might try to pass an ordinary change off as break-glass.
fn commit_grant(repo: &Repo, name: &str, expires: jiff::Timestamp, message: &str) {
    let text = format!(
        r#"apiVersion: mcpruntime.org/v1alpha1
kind: MCPAccessGrant
metadata:
  name: {name}
  namespace: mcp-team-a
  annotations:
    mcp-gitops.io/break-glass: "true"
    mcp-gitops.io/break-glass-reason: INC-9
    mcp-gitops.io/break-glass-requester: oncall@fernhill.io
    mcp-gitops.io/expires-at: "{expires}"
spec:
  serverRef: {{name: vault-mcp}}
  subject: {{humanID: dana@fernhill.io, agentID: claude-code}}
  maxTrust: high
  allowedSideEffects: [destructive]
  toolRules:
    - {{name: purge_vault, decision: allow, requiredTrust: high}}
"#,
        expires = expires.round(jiff::Unit::Second).expect("rounds")
    );
    fs::create_dir_all(repo.dir.path().join("team-a/grants")).expect("mkdir");
    fs::write(repo.dir.path().join(format!("team-a/grants/{name}.yaml")), text).expect("grant");
    git(repo.dir.path(), &[], &["add", "-A"]);
    git(repo.dir.path(), &[], &["commit", "-q", "-m", message]);
}

#[test]
fn a_change_beyond_the_rules_is_an_ordinary_change() {
    let hour = jiff::SignedDuration::from_hours(1);
    // Five hours: longer than maxDuration.
    let repo = Repo::new();
    commit_grant(&repo, "long", jiff::Timestamp::now() + hour * 5, "a long break-glass");
    let checked = repo.check("oncall@fernhill.io", "text");
    assert_eq!(checked.code, 1, "{}", checked.stdout);
    assert!(checked.stdout.starts_with("✗ Not break-glass by oncall@fernhill.io (INC-9)"), "{}", checked.stdout);
    assert!(checked.stdout.contains("longer than owners.breakGlass.maxDuration 2h"), "{}", checked.stdout);
    assert!(checked.stdout.contains("more approval(s) needed"), "{}", checked.stdout);
    // Within the time, but with another change in the same pull request.
    let repo = Repo::new();
    fs::write(repo.dir.path().join("team-a/.mcp/servers.yaml"), SERVERS.replace("sideEffect: read", "sideEffect: write")).expect("edit");
    commit_grant(&repo, "short", jiff::Timestamp::now() + hour, "break-glass and a server edit");
    let answer = json(&repo.check("oncall@fernhill.io", "json").stdout);
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["break_glass"]["within_rules"], false, "{answer}");
    let beyond = answer["break_glass"]["beyond_rules"].to_string();
    assert!(beyond.contains("the change also makes other changes (update MCPServer/mcp-team-a/vault-mcp)"), "{answer}");
}

#[test]
fn validate_reports_a_break_glass_grant_whose_review_is_late() {
    let repo = Repo::new();
    let expired = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(30);
    commit_grant(&repo, "old", expired, "an old break-glass");
    let file = repo.dir.path().join("team-a/grants/old.yaml");
    let validated = repo.run(&["validate", repo.path(), "--format", "json"]);
    let codes = |out: &Out| {
        json(&out.stdout)["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .iter()
            .map(|d| d["code"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert!(codes(&validated).contains(&"break_glass_review_late".to_string()), "{}", validated.stdout);
    assert_eq!(validated.code, 0, "a warning: {}", validated.stdout);
    // Within reviewWithin (24h after the expiry): not late yet.
    let early =
        repo.run(&["validate", repo.path(), "--format", "json", "--at", &(expired + jiff::SignedDuration::from_hours(23)).to_string()]);
    assert!(!codes(&early).contains(&"break_glass_review_late".to_string()), "{}", early.stdout);
    // The requester reviewing their own break-glass does not count; someone else does.
    let text = fs::read_to_string(&file).expect("grant");
    fs::write(&file, text.replace("  annotations:\n", "  annotations:\n    mcp-gitops.io/reviewed-by: \"@OnCall@fernhill.io\"\n"))
        .expect("self");
    let validated = repo.run(&["validate", repo.path()]);
    assert!(validated.stdout.contains("and its requester oncall@fernhill.io cannot review it"), "{}", validated.stdout);
    fs::write(&file, text.replace("  annotations:\n", "  annotations:\n    mcp-gitops.io/reviewed-by: team-a-leads\n")).expect("reviewed");
    let validated = repo.run(&["validate", repo.path(), "--format", "json"]);
    assert!(!codes(&validated).contains(&"break_glass_review_late".to_string()), "{}", validated.stdout);
}

#[test]
fn the_lifetime_cap_cannot_be_raised_past_a_day() {
    let repo = Repo::new();
    fs::write(repo.dir.path().join("mcp-gitops.yaml"), CONFIG.replace("maxDuration: 2h", "maxDuration: 48h")).expect("config");
    let validated = repo.run(&["validate", repo.path()]);
    assert_eq!(validated.code, 1, "{}", validated.stdout);
    assert!(validated.stdout.contains("schema_violation") && validated.stdout.contains("maxDuration"), "{}", validated.stdout);
    // And nothing is break-glass while owners: is broken.
    let out = repo.break_glass(&["--tool", "read_secret", "--reason", "INC-3"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("mcp-gitops.yaml declares no owners.breakGlass"), "{}", out.stderr);
}

/// The daemon against the real API server: a break-glass commit pushed is applied like any
/// change, with a `BreakGlass` Event and the gauge of open break-glass grants; at its
/// `mcp-gitops.io/expires-at`, a few seconds later, the expiry path applies it disabled.
#[test]
fn the_daemon_applies_break_glass_tells_of_it_and_revokes_it_at_expiry() {
    use common::cluster::Teams;
    use common::daemon::{Daemon, Upstream};
    use std::time::Duration;

    let Teams { kubeconfig, kubectl, payments, support, inventory } = Teams::new("bg");
    let upstream = Upstream::new();
    let work = upstream.work.path();
    let repo = common::cluster::repo_copy("examples/platform", &[("mcp-team-payments", &payments), ("mcp-team-support", &support)]);
    common::copy_dir(repo.path(), work);
    let config = fs::read_to_string(work.join("mcp-gitops.yaml")).expect("config");
    fs::write(work.join("mcp-gitops.yaml"), format!("{config}  breakGlass:\n    requesters: [owners]\n    maxDuration: 1h\n"))
        .expect("config");
    upstream.push("the platform, with break-glass");
    let daemon = Daemon::start(&upstream.bare_path(), &kubeconfig, &inventory, &[]);
    let metric = |name: &str| {
        daemon.get("/metrics").1.lines().find_map(|l| l.strip_prefix(&format!("{name} ")).map(String::from)).unwrap_or_default()
    };
    assert_eq!(metric("mcp_gitops_break_glass_active_grants"), "0");

    // The on-call owner opens 20 seconds of get_invoice from the work repository.
    git(work, &[], &["symbolic-ref", "HEAD", "refs/heads/main"]);
    git(work, &[], &["config", "user.name", "Dana"]);
    git(work, &[], &["config", "user.email", "dana.whitfield@fernhill.io"]);
    let home = tempfile::tempdir().expect("home");
    let server = format!("{payments}/payments-mcp");
    let args = ["break-glass", work.to_str().expect("utf-8"), "--server", &server, "--tool", "get_invoice"];
    let opened = mcp_gitops()
        .args(args)
        .args(["--human", "dana.whitfield@fernhill.io", "--agent", "claude-code", "--reason", "INC-7", "--for", "20s"])
        .args(["--requester", "dana.whitfield"])
        .env("HOME", home.path())
        .output()
        .expect("runs");
    assert!(opened.status.success(), "{}", String::from_utf8_lossy(&opened.stderr));
    let name = git(work, &[], &["show", "--name-only", "--format=", "HEAD"]);
    let name = name.trim().trim_start_matches("teams/payments/grants/").trim_end_matches(".yaml").to_string();
    assert!(name.starts_with("break-glass-get-invoice-"), "{name}");
    git(work, &[], &["push", "-q", &upstream.bare_path(), "main"]);
    let head = git(work, &[], &["rev-parse", "HEAD"]);
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_for(Duration::from_secs(30), "the break-glass commit applied", |s| s["revision"] == head.as_str());
    let grant = || kubectl.json(&["get", "mcpaccessgrants", &name, "-n", &payments]);
    assert_eq!(grant()["spec"]["disabled"], serde_json::Value::Null, "applied open");
    assert_eq!(grant()["metadata"]["annotations"]["mcp-gitops.io/break-glass"], "true");
    assert_eq!(metric("mcp_gitops_break_glass_active_grants"), "1");
    let events = kubectl.json(&["get", "events.events.k8s.io", "-n", &inventory]);
    let told = events["items"].as_array().expect("items").iter().find(|e| e["reason"] == "BreakGlass").cloned();
    let told = told.unwrap_or_else(|| panic!("no BreakGlass Event: {events}"));
    assert_eq!(told["type"], "Warning");
    let note = told["note"].as_str().unwrap_or_default();
    assert!(note.contains(&format!("MCPAccessGrant/{payments}/{name}")) && note.contains("opened by dana.whitfield (INC-7)"), "{note}");

    // Revoked at expiry, with no commit.
    let expires: jiff::Timestamp =
        grant()["metadata"]["annotations"]["mcp-gitops.io/expires-at"].as_str().expect("expires-at").parse().expect("RFC 3339");
    daemon.wait_until(Duration::from_secs(40), |_| grant()["spec"]["disabled"] == true);
    let late = jiff::Timestamp::now().duration_since(expires);
    eprintln!("revoked {late:#} after its expires-at");
    assert!(late < jiff::SignedDuration::from_secs(10), "revoked {late:#} late");
    daemon.wait_until(Duration::from_secs(10), |_| metric("mcp_gitops_break_glass_active_grants") == "0");
}
