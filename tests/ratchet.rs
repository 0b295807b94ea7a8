//! Upgrades that do not block (#28): a repository whose base already breaks a built-in policy
//! (`destructive-grants-expire`, added as a default error) can still change. `plan --base`,
//! `validate --base` and the daemon (base = the live revision) report the inherited violations
//! as warnings and a new one as an error; `validate` alone and `policies: {ratchet: false}`
//! report every one as an error. On real git repositories, and for the daemon the real API server.

mod common;

use common::cluster::Teams;
use common::daemon::{Daemon, Upstream};
use common::{Run, git, json, run};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const AT: &str = "2026-11-25T00:00:00Z";
/// The example's destructive grants: none sets `mcp-gitops.io/expires-at`.
const INHERITED: [&str; 3] = [
    "MCPAccessGrant/mcp-team-payments/finance-ops-oncall",
    "MCPAccessGrant/mcp-team-payments/ledger-close-controller",
    "MCPAccessGrant/mcp-team-support/support-leads",
];

/// `examples/platform` with `destructive-grants-expire` in force: the repository as the upgrade
/// finds it.
fn upgraded(dir: &Path) {
    common::copy_dir(&common::root().join("examples/platform"), dir);
    enforce(dir);
}

/// The example's `mcp-gitops.yaml` in `dir` with `destructive-grants-expire` no longer disabled.
fn enforce(dir: &Path) {
    replace(
        dir,
        "mcp-gitops.yaml",
        "disabled: [sessions-expire-within-a-day, destructive-grants-expire]",
        "disabled: [sessions-expire-within-a-day]",
    );
}

fn replace(dir: &Path, file: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(dir.join(file)).expect("read");
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(dir.join(file), text.replacen(from, to, 1)).expect("write");
}

/// A grant on `payments-mcp` that can call its destructive tools and sets no expiry.
fn new_destructive_grant(namespace: &str) -> String {
    format!(
        "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: refund-bot\n  namespace: {namespace}\nspec:\n  serverRef:\n    name: payments-mcp\n  subject:\n    humanID: dana@fernhill.io\n    agentID: refund-bot\n  maxTrust: high\n  allowedSideEffects: [read, destructive]\n  toolRules:\n    - {{name: issue_refund, decision: allow}}\n"
    )
}

fn commit(dir: &Path, message: &str) {
    git(dir, &[], &["add", "-A"]);
    git(dir, &[], &["commit", "-q", "--no-gpg-sign", "-m", message]);
}

/// The base on `main`, and a branch `change` checked out for the change.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    upgraded(dir.path());
    git(dir.path(), &[], &["init", "-q", "-b", "main"]);
    commit(dir.path(), "the platform, before the upgrade");
    git(dir.path(), &[], &["checkout", "-q", "-b", "change"]);
    dir
}

/// The `destructive-grants-expire` findings of a JSON report, as (object, severity).
fn findings(report: &Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["message"].as_str().unwrap_or_default().starts_with("[destructive-grants-expire]"))
        .map(|d| (d["object"].as_str().unwrap_or_default().to_string(), d["severity"].as_str().unwrap_or_default().to_string()))
        .collect();
    found.sort();
    found
}

fn all(severity: &str) -> Vec<(String, String)> {
    INHERITED.iter().map(|o| (o.to_string(), severity.to_string())).collect()
}

fn plan(dir: &Path, extra: &[&str]) -> Run {
    let path = dir.to_str().unwrap();
    let result = run(&[&["plan", path, "--base", "main", "--at", AT], extra].concat());
    assert!(!result.stderr.contains("panicked"), "{}", result.stderr);
    result
}

#[test]
fn a_revocation_goes_through_an_upgrade_and_a_new_violation_does_not() {
    let repo = repository();
    let dir = repo.path();
    let path = dir.to_str().unwrap();
    std::fs::remove_file(dir.join("teams/payments/grants/agents.yaml")).expect("revoke");
    commit(dir, "revoke the billing assistant");

    // plan --base: the inherited violations are warnings that say so; the revocation is planned.
    let text = plan(dir, &[]);
    assert_eq!(text.code, 0, "{}{}", text.stdout, text.stderr);
    let report = format!("{}{}", text.stdout, text.stderr);
    assert!(
        report.contains("warning[policy_violation]: [destructive-grants-expire] grant finance-ops-oncall can reach destructive tools"),
        "{report}"
    );
    assert!(report.contains("inherited: the base (main) already violates it, so it is a warning here"), "{report}");
    assert!(report.contains("built-in policy destructive-grants-expire (docs/policies.md)"), "the policy's hint is kept: {report}");
    assert!(report.contains("3 to delete"), "{report}");
    // The same answer with the cache (twice: made, then taken), without it, and without the incremental path.
    let answers: Vec<Value> = [&[][..], &[], &["--no-cache"], &["--no-incremental"]]
        .iter()
        .map(|extra| {
            let result = plan(dir, &[&["--format", "json"], *extra].concat());
            assert_eq!(result.code, 0, "{extra:?}: {}", result.stderr);
            json(&result.stdout)
        })
        .collect();
    for answer in &answers {
        assert_eq!(findings(answer), all("warning"));
        assert_eq!(answer["summary"]["errors"], 0, "{}", answer["summary"]);
        assert_eq!(answer["diagnostics"], answers[0]["diagnostics"]);
    }
    // A directory as the base says the same.
    let base = tempfile::tempdir().expect("tempdir");
    upgraded(base.path());
    let from_dir = run(&["plan", path, "--base", base.path().to_str().unwrap(), "--at", AT, "--format", "json"]);
    assert_eq!(from_dir.code, 0, "{}", from_dir.stderr);
    assert_eq!(findings(&json(&from_dir.stdout)), all("warning"));

    // SARIF, as code scanning reads it: level warning.
    let sarif = plan(dir, &["--format", "sarif"]);
    assert_eq!(sarif.code, 0, "{}", sarif.stderr);
    let levels: Vec<String> = json(&sarif.stdout)["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["message"]["text"].as_str().unwrap_or_default().contains("[destructive-grants-expire]"))
        .map(|r| r["level"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(levels, ["warning"; 3], "{}", sarif.stdout);

    // validate alone judges the repository, not a change: every violation is an error.
    let alone = run(&["validate", path, "--at", AT, "--format", "json"]);
    assert_eq!(alone.code, 1, "{}", alone.stdout);
    let alone = json(&alone.stdout);
    assert_eq!(alone["ok"], false);
    assert_eq!(findings(&alone), all("error"));
    let against_main = run(&["validate", path, "--base", "main", "--at", AT, "--format", "json"]);
    assert_eq!(against_main.code, 0, "{}{}", against_main.stdout, against_main.stderr);
    let against_main = json(&against_main.stdout);
    assert_eq!(against_main["ok"], true);
    assert_eq!(findings(&against_main), all("warning"));
    let nowhere = run(&["validate", path, "--base", "mian", "--at", AT]);
    assert_eq!(nowhere.code, 1);
    assert!(nowhere.stderr.contains("--base \"mian\" is neither a directory nor a git revision"), "{}", nowhere.stderr);

    // An object the change edits that still breaks the policy the same way keeps its warning.
    replace(
        dir,
        "teams/payments/grants/finance-ops.yaml",
        "  name: finance-ops-oncall\n",
        "  name: finance-ops-oncall\n  labels: {reviewed: \"2026\"}\n",
    );
    commit(dir, "label the on-call grant");
    let edited = plan(dir, &["--format", "json"]);
    assert_eq!(edited.code, 0, "{}", edited.stderr);
    assert_eq!(findings(&json(&edited.stdout)), all("warning"));

    // A new grant that breaks it is an error: the plan fails and names it.
    std::fs::write(dir.join("teams/payments/grants/refund-bot.yaml"), new_destructive_grant("mcp-team-payments")).expect("write");
    commit(dir, "a refund bot");
    let widened = plan(dir, &[]);
    assert_eq!(widened.code, 1, "{}{}", widened.stdout, widened.stderr);
    let report = format!("{}{}", widened.stdout, widened.stderr);
    assert!(report.contains("error[policy_violation]: [destructive-grants-expire] grant refund-bot"), "{report}");
    let widened = json(&plan(dir, &["--format", "json"]).stdout);
    let mut expected = all("warning");
    expected.push(("MCPAccessGrant/mcp-team-payments/refund-bot".into(), "error".into()));
    expected.sort();
    assert_eq!(findings(&widened), expected);
    assert_eq!(widened["summary"]["errors"], 1);
}

#[test]
fn a_repository_that_opts_out_gets_every_violation_as_an_error() {
    let repo = repository();
    let dir = repo.path();
    replace(dir, "mcp-gitops.yaml", "policies:\n", "policies:\n  ratchet: false\n");
    std::fs::remove_file(dir.join("teams/payments/grants/agents.yaml")).expect("revoke");
    commit(dir, "revoke, with no ratchet");
    let planned = plan(dir, &["--format", "json"]);
    assert_eq!(planned.code, 1, "{}", planned.stderr);
    assert_eq!(findings(&json(&planned.stdout)), all("error"));
    let validated = run(&["validate", dir.to_str().unwrap(), "--base", "main", "--at", AT, "--format", "json"]);
    assert_eq!(validated.code, 1);
    assert_eq!(findings(&json(&validated.stdout)), all("error"));
}

/// The daemon's base is the live revision. The severity of `destructive-grants-expire` rises
/// between the revision applied (where the repository had made it a warning) and the next one,
/// which a restarted daemon (the upgraded one) reads from the inventory.
#[test]
fn the_daemon_applies_a_revocation_over_a_violation_that_is_live() {
    let teams = Teams::new("rt");
    let payments = teams.payments.clone();
    let kubectl = &teams.kubectl;
    let exists = |name: &str| kubectl.run(&["get", "mcpaccessgrants", name, "-n", &payments]).status.success();
    let repo = teams.repo("examples/platform");
    enforce(repo.path());
    let severity = "policies:\n  overrides: {destructive-grants-expire: {severity: warning}}\n";
    replace(repo.path(), "mcp-gitops.yaml", "policies:\n", severity);
    let upstream = Upstream::new();
    let live = upstream.commit(repo.path(), "the platform, the policy a warning");
    let daemon = Daemon::start(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &[]);
    daemon.wait_for(Duration::from_secs(60), "the platform applied", |s| s["revision"] == live.as_str());
    assert!(exists("billing-assistant-agent"));
    drop(daemon);

    // The upgrade: the policy is an error now, and the same commit revokes a grant.
    let work = upstream.work.path();
    replace(work, "mcp-gitops.yaml", severity, "policies:\n");
    std::fs::remove_file(work.join("teams/payments/grants/agents.yaml")).expect("revoke");
    let revoked = upstream.push("revoke the billing assistant");
    let daemon = Daemon::spawn(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &[]);
    let status = daemon.wait_for(Duration::from_secs(60), "the revocation applied", |s| {
        s["attempted_revision"] == revoked.as_str() && !s["last_result"].as_str().unwrap_or_default().is_empty()
    });
    assert_eq!(status["last_result"], "applied", "{status}");
    assert_eq!(status["revision"], revoked.as_str());
    assert_eq!(status["diagnostics"]["errors"], 0, "{status}");
    assert!(status["diagnostics"]["warnings"].as_u64().unwrap() >= 3, "{status}");
    assert!(!exists("billing-assistant-agent"), "the revoked grant is still live");
    assert!(daemon.logs().contains("the live revision already has are warnings (ratchet)"), "{}", daemon.logs());

    // The live revision itself, planned again: drift on it is still corrected.
    kubectl.edit_grant_as("kubectl-edit", &payments, "refund-desk", r#"{"spec":{"maxTrust":"low"}}"#);
    let max_trust = || kubectl.json(&["get", "mcpaccessgrants", "refund-desk", "-n", &payments])["spec"]["maxTrust"].clone();
    daemon.wait_until(Duration::from_secs(30), |_| max_trust() == "medium");
    let status = daemon.status();
    assert_eq!(status["revision"], revoked.as_str(), "{status}");
    assert_eq!(status["diagnostics"]["errors"], 0, "{status}");

    // A new violation: the revision is invalid and not applied.
    std::fs::write(work.join("teams/payments/grants/refund-bot.yaml"), new_destructive_grant(&payments)).expect("write");
    let widened = upstream.push("a refund bot");
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(60), "the new violation refused", |s| {
        s["attempted_revision"] == widened.as_str() && s["last_result"] == "invalid"
    });
    assert_eq!(status["revision"], revoked.as_str(), "{status}");
    assert_eq!(status["diagnostics"]["errors"], 1, "{status}");
    let first = status["diagnostics"]["first"][0].as_str().unwrap();
    assert!(first.contains("[destructive-grants-expire] grant refund-bot"), "{status}");
    assert!(!exists("refund-bot"), "an invalid revision was applied");
}
