//! Approvals follow every change that widens access, not only grant edits (#25.5). Each test is
//! built like the attack: a base repository and a changed one on disk, the real binary's
//! `plan CHANGED --base BASE --out plan.json`, then `approvals check` with the approvals the
//! attacker would gather. Owners of the server: `team-a-leads`; a widening to a destructive tool
//! also needs `security-team`.

mod common;

use common::{NOW, json, run};
use std::fs;
use std::path::Path;

const CONFIG: &str = r#"policies:
  disabled: [sessions-expire-within-a-day, destructive-grants-expire]
owners:
  servers:
    "mcp-team-a/*": [team-a-leads]
  approvals:
    - {on: widened, approvers: [owners], count: 1}
    - {on: widened-destructive, approvers: [security-team], count: 1}
"#;

/// The server's metadata: `vault-mcp` with a read tool and `purge_vault` of side effect
/// `purge`, its gateway `gateway`, its policy mode `mode`, sessions `sessions`.
fn server(gateway: bool, mode: &str, purge: &str, sessions: bool) -> String {
    format!(
        r#"version: v1
servers:
  - name: vault-mcp
    image: registry.example.com/team-a/vault-mcp
    imageTag: "1.0.0"
    namespace: mcp-team-a
    teamID: team-a
    publicPathPrefix: vault-mcp
    gateway: {{enabled: {gateway}}}
    auth: {{mode: header}}
    policy: {{mode: {mode}, defaultDecision: deny}}
    session: {{required: {sessions}}}
    tools:
      - {{name: read_secret, requiredTrust: low, sideEffect: read}}
      - {{name: purge_vault, requiredTrust: low, sideEffect: {purge}}}
"#
    )
}

/// A grant to `human` + agent `bot` on `vault-mcp`, allowing `effects` at trust high, with the
/// annotation `mcp-gitops.io/expires-at: expires` when given.
fn grant(name: &str, human: &str, effects: &str, expires: Option<&str>) -> String {
    let annotations = expires.map(|at| format!("\n  annotations:\n    mcp-gitops.io/expires-at: \"{at}\"")).unwrap_or_default();
    format!(
        r#"apiVersion: mcpruntime.org/v1alpha1
kind: MCPAccessGrant
metadata:
  name: {name}
  namespace: mcp-team-a{annotations}
spec:
  serverRef: {{name: vault-mcp}}
  subject: {{humanID: {human}, agentID: bot}}
  maxTrust: high
  allowedSideEffects: [{effects}]
"#
    )
}

fn session(human: &str, expires: &str) -> String {
    format!(
        r#"apiVersion: mcpruntime.org/v1alpha1
kind: MCPAgentSession
metadata:
  name: {human}-session
  namespace: mcp-team-a
spec:
  serverRef: {{name: vault-mcp}}
  subject: {{humanID: {human}, agentID: bot}}
  consentedTrust: high
  expiresAt: "{expires}"
"#
    )
}

/// A repository of `mcp-gitops.yaml` and the files `files` (path, text).
fn repository(files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("mcp-gitops.yaml"), CONFIG).expect("write config");
    for (path, text) in files {
        let file = dir.path().join(path);
        fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
        fs::write(file, text).expect("write");
    }
    dir
}

/// `plan CHANGED --base BASE --out plan.json`: the plan's path (in `out`) and its JSON.
fn plan(changed: &Path, base: &Path, out: &Path) -> (String, serde_json::Value) {
    let file = out.join("plan.json").to_string_lossy().into_owned();
    let ran = run(&["plan", &changed.to_string_lossy(), "--base", &base.to_string_lossy(), "--out", &file, "--now", NOW]);
    assert_eq!(ran.code, 0, "plan: {}{}", ran.stdout, ran.stderr);
    let saved = json(&fs::read_to_string(&file).expect("plan.json"));
    (file, saved)
}

/// `approvals check PLAN --approved-by BY --author mallory`'s exit code and output.
fn check(plan: &str, by: &str) -> (i32, String) {
    let ran = run(&["approvals", "check", plan, "--approved-by", by, "--author", "mallory"]);
    (ran.code, ran.stdout + &ran.stderr)
}

/// The approvals an attacker gathers do not pass: an owner alone (or nobody) is refused; the
/// owner and the security team pass.
fn needs_owner_and_security(plan: &str, saved: &serde_json::Value) {
    let (code, out) = check(plan, "");
    assert_eq!(code, 1, "nobody approved, and it passed:\n{out}\n{}", saved["approvals"]);
    let (code, out) = check(plan, "team-a-leads");
    assert_eq!(code, 1, "a widening to a destructive tool passed with the owner alone:\n{out}\n{}", saved["approvals"]);
    let (code, out) = check(plan, "security-team,mallory");
    assert_eq!(code, 1, "passed without an owner:\n{out}");
    let (code, out) = check(plan, "team-a-leads,security-team");
    assert_eq!(code, 0, "{out}");
}

/// Extending a time-bound grant widens nothing now and everything from its old expiry on.
#[test]
fn extending_a_grants_expiry_needs_the_approvals_of_a_new_grant() {
    let base = repository(&[
        (".mcp/servers.yaml", server(true, "allow-list", "destructive", false)),
        ("grants.yaml", grant("incident", "dana", "read, destructive", Some("2026-12-01T00:00:00Z"))),
    ]);
    for expires in [Some("2027-06-01T00:00:00Z"), None] {
        let changed = repository(&[
            (".mcp/servers.yaml", server(true, "allow-list", "destructive", false)),
            ("grants.yaml", grant("incident", "dana", "read, destructive", expires)),
        ]);
        let out = tempfile::tempdir().expect("tempdir");
        let (file, saved) = plan(changed.path(), base.path(), out.path());
        needs_owner_and_security(&file, &saved);
        let later: Vec<&serde_json::Value> =
            saved["access_changes"].as_array().into_iter().flatten().filter(|c| c["from"] == "2026-12-01T00:00:00Z").collect();
        assert!(
            later.iter().any(|c| c["direction"] == "widened" && c["tool"] == "purge_vault" && c["side_effect"] == "destructive"),
            "the widening from the old expiry on ({expires:?}): {}",
            saved["access_changes"]
        );
        let text = run(&["plan", &changed.path().to_string_lossy(), "--base", &base.path().to_string_lossy(), "--now", NOW]).stdout;
        assert!(text.contains("(from 2026-12-01T00:00:00Z on)"), "{text}");
    }
}

/// A session's `expiresAt` moved later keeps a required session usable past its old expiry.
#[test]
fn extending_a_required_sessions_expiry_needs_approval() {
    let files = |expires: &str| {
        vec![
            (".mcp/servers.yaml", server(true, "allow-list", "destructive", true)),
            ("grants.yaml", grant("oncall", "dana", "read, destructive", None)),
            ("sessions.yaml", session("dana", expires)),
        ]
    };
    let base = repository(&files("2026-12-01T00:00:00Z"));
    let changed = repository(&files("2027-06-01T00:00:00Z"));
    let out = tempfile::tempdir().expect("tempdir");
    let (file, saved) = plan(changed.path(), base.path(), out.path());
    needs_owner_and_security(&file, &saved);
    assert!(
        saved["access_changes"].as_array().into_iter().flatten().any(|c| c["from"] == "2026-12-01T00:00:01Z"),
        "{}",
        saved["access_changes"]
    );
}

/// destructive -> read lets a read grant reach the tool: judged as destructive, and the
/// reclassification needs the owners and the destructive rule's approvers even when no grant
/// reaches the tool yet.
#[test]
fn lowering_a_tools_side_effect_is_judged_by_its_former_class() {
    let reader = ("grants.yaml", grant("readers", "rita", "read", None));
    let base = repository(&[(".mcp/servers.yaml", server(true, "allow-list", "destructive", false)), reader.clone()]);
    let changed = repository(&[(".mcp/servers.yaml", server(true, "allow-list", "read", false)), reader]);
    let out = tempfile::tempdir().expect("tempdir");
    let (file, saved) = plan(changed.path(), base.path(), out.path());
    needs_owner_and_security(&file, &saved);
    let widened = saved["access_changes"].as_array().into_iter().flatten().find(|c| c["tool"] == "purge_vault").cloned();
    assert_eq!(widened.as_ref().map(|c| c["side_effect"].clone()), Some("destructive".into()), "{}", saved["access_changes"]);
    assert_eq!(
        saved["reclassified"],
        serde_json::json!([{"server": "mcp-team-a/vault-mcp", "tool": "purge_vault", "before": "destructive", "after": "read"}])
    );

    // Nobody reaches the tool yet: the reclassification alone still needs both.
    let base = repository(&[(".mcp/servers.yaml", server(true, "allow-list", "destructive", false))]);
    let changed = repository(&[(".mcp/servers.yaml", server(true, "allow-list", "read", false))]);
    let (file, saved) = plan(changed.path(), base.path(), out.path());
    assert_eq!(saved["summary"]["access_widened"], 0, "{}", saved["access_changes"]);
    needs_owner_and_security(&file, &saved);
}

/// Switching the gateway off, or observe mode, opens every tool to every caller: a widening to
/// the destructive ones.
#[test]
fn switching_the_gateway_off_or_to_observe_is_a_destructive_widening() {
    let reader = ("grants.yaml", grant("readers", "rita", "read", None));
    let base = repository(&[(".mcp/servers.yaml", server(true, "allow-list", "destructive", false)), reader.clone()]);
    for (gateway, mode) in [(false, "allow-list"), (true, "observe")] {
        let changed = repository(&[(".mcp/servers.yaml", server(gateway, mode, "destructive", false)), reader.clone()]);
        let out = tempfile::tempdir().expect("tempdir");
        let (file, saved) = plan(changed.path(), base.path(), out.path());
        needs_owner_and_security(&file, &saved);
        let anyone =
            saved["access_changes"].as_array().into_iter().flatten().find(|c| c["anyone"] == true && c["tool"] == "purge_vault").cloned();
        assert_eq!(
            anyone.map(|c| (c["direction"].clone(), c["side_effect"].clone())),
            Some(("widened".into(), "destructive".into())),
            "gateway {gateway}, mode {mode}: {}",
            saved["access_changes"]
        );
    }
}

/// A new server whose gateway is off serves its destructive tools to anyone from the start.
#[test]
fn a_new_server_without_gateway_needs_approval() {
    let base = repository(&[]);
    let changed = repository(&[(".mcp/servers.yaml", server(false, "allow-list", "destructive", false))]);
    let out = tempfile::tempdir().expect("tempdir");
    let (file, saved) = plan(changed.path(), base.path(), out.path());
    needs_owner_and_security(&file, &saved);
    let text = run(&["plan", &changed.path().to_string_lossy(), "--base", &base.path().to_string_lossy(), "--now", NOW]).stdout;
    assert!(text.contains("anyone (a caller no grant or session names):"), "{text}");
}

/// The forge's spellings count (a space after a comma, `@team`), and an approver that counts for
/// nothing is named, with the close name when there is one, in text and JSON.
#[test]
fn approvers_that_count_for_nothing_are_named() {
    let out = tempfile::tempdir().expect("tempdir");
    let (file, _) = plan(&common::root().join("examples/pr-change"), &common::root().join("examples/platform"), out.path());
    let spelled = run(&["approvals", "check", &file, "--approved-by", "@payments-leads, security-team", "--author", "bob"]);
    assert_eq!(spelled.code, 0, "{}", spelled.stdout);
    assert!(!spelled.stdout.contains("Not counted"), "{}", spelled.stdout);

    let args = ["approvals", "check", &file, "--approved-by", "payments-lead, @Security-Team,alice,bob", "--author", "bob"];
    let text = run(&args);
    assert_eq!(text.code, 1, "{}", text.stdout);
    assert!(
        text.stdout
            .contains("\nNot counted, named by no requirement: payments-lead (did you mean payments-leads?), alice\n(bob wrote the change"),
        "{}",
        text.stdout
    );
    let answer = json(&run(&[&args[..], &["--format", "json"]].concat()).stdout);
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["unmatched"], serde_json::json!([{"approver": "payments-lead", "closest": "payments-leads"}, {"approver": "alice"}]));
    let missing: Vec<u64> = answer["required"].as_array().into_iter().flatten().filter_map(|r| r["missing"].as_u64()).collect();
    assert_eq!(missing, vec![1, 1, 0], "security-team met its own rule and half of the two-approval one: {answer}");
}
