//! Guardrail policies: every default fires and stays quiet, configuration switches and overrides
//! them, repository and directory policies are found, and broken policies are diagnostics.

mod common;

use common::{NOW, json, run};
use std::fs;

const SERVERS: &str = "servers:
  - name: payments-mcp
    namespace: team-a
    teamID: team-a-id
    gateway: {enabled: true}
    tools:
      - {name: list_invoices, sideEffect: read}
      - {name: create_invoice, sideEffect: write, requiredTrust: medium}
      - {name: refund_invoice, sideEffect: destructive, requiredTrust: high}
";

fn grant(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: {name}\n  namespace: team-a\nspec:\n  serverRef: {{name: payments-mcp}}\n{spec}"
    )
}

fn session(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: mcpruntime.org/v1alpha1\nkind: MCPAgentSession\nmetadata:\n  name: {name}\n  namespace: team-a\nspec:\n  serverRef: {{name: payments-mcp}}\n{spec}"
    )
}

/// Validates a repository of the server above plus `files`; returns the guardrail findings as
/// (policy or code, object name, line).
fn findings(files: &[(&str, &str)]) -> Vec<(String, String, u64)> {
    findings_with(files, &[])
}

/// A repository of the servers and `files`.
fn repository(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join(".mcp")).expect("mkdir");
    fs::write(dir.path().join(".mcp/servers.yaml"), SERVERS).expect("write");
    for (path, text) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }
    dir
}

/// `findings`, validating with `extra` arguments.
fn findings_with(files: &[(&str, &str)], extra: &[&str]) -> Vec<(String, String, u64)> {
    let dir = repository(files);
    let out = run(&[&["validate", &dir.path().to_string_lossy(), "--format", "json", "--now", NOW][..], extra].concat());
    let report = json(&out.stdout);
    report["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| ["policy_violation", "policy_error", "schema_violation"].contains(&d["code"].as_str().unwrap_or_default()))
        .map(|d| {
            let message = d["message"].as_str().unwrap_or_default();
            let what = if d["code"] == "policy_violation" {
                message.trim_start_matches('[').split(']').next().unwrap_or_default().to_string()
            } else {
                d["code"].as_str().unwrap_or_default().to_string()
            };
            (
                what,
                d["object"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_string(),
                d["line"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn fired(files: &[(&str, &str)], policy: &str) -> Vec<String> {
    let mut objects: Vec<String> = findings(files).into_iter().filter(|(p, _, _)| p == policy).map(|(_, object, _)| object).collect();
    objects.sort();
    objects
}

const GOOD_SESSION: &str = "  subject: {humanID: ann@example.com}\n  consentedTrust: low\n  expiresAt: \"2026-11-25T12:00:00Z\"\n";

#[test]
fn destructive_grants_need_high_trust_and_a_human() {
    let grants = [
        grant("ok-human-high", "  subject: {humanID: ann@example.com}\n  maxTrust: high\n  allowedSideEffects: [read, destructive]\n"),
        grant("bad-agent-only", "  subject: {agentID: bot}\n  maxTrust: high\n  allowedSideEffects: [read, destructive]\n"),
        grant(
            "bad-medium-rule",
            "  subject: {humanID: ann@example.com}\n  maxTrust: medium\n  allowedSideEffects: [destructive]\n  toolRules:\n    - {name: refund_invoice, decision: allow}\n",
        ),
        grant(
            "ok-deny-rule",
            "  subject: {agentID: bot}\n  maxTrust: low\n  allowedSideEffects: [read, destructive]\n  toolRules:\n    - {name: refund_invoice, decision: deny}\n    - {name: list_invoices, decision: allow}\n",
        ),
        grant("ok-read-only", "  subject: {agentID: bot}\n  allowedSideEffects: [read]\n"),
    ]
    .concat();
    assert_eq!(fired(&[("grants.yaml", &grants)], "destructive-grants-need-high-trust-and-a-human"), ["bad-agent-only", "bad-medium-rule"]);
}

#[test]
fn sessions_expire_within_a_day_by_default_and_the_limit_is_a_parameter() {
    let sessions = [
        session("ok-today", GOOD_SESSION),
        session("bad-never", "  subject: {humanID: ann@example.com}\n"),
        session("bad-next-month", "  subject: {humanID: ann@example.com}\n  expiresAt: \"2026-12-25T00:00:00Z\"\n"),
        session("ok-revoked", "  subject: {humanID: ann@example.com}\n  revoked: true\n"),
    ]
    .concat();
    let files = [("sessions.yaml", sessions.as_str())];
    assert_eq!(fired(&files, "sessions-expire-within-a-day"), ["bad-never", "bad-next-month"]);
    let config = "policies:\n  overrides:\n    sessions-expire-within-a-day: {params: {maxHours: 1000}}\n";
    assert_eq!(fired(&[files[0], ("mcp-gitops.yaml", config)], "sessions-expire-within-a-day"), ["bad-never"]);
}

/// A grant that can reach the destructive refund, with `annotations` under its metadata.
fn destructive_grant(name: &str, annotations: &str) -> String {
    grant(name, "  subject: {humanID: ann@example.com}\n  maxTrust: high\n  allowedSideEffects: [read, destructive]\n")
        .replace("  namespace: team-a\n", &format!("  namespace: team-a\n{annotations}"))
}

#[test]
fn destructive_grants_expire_within_thirty_days_by_default_and_the_limit_is_a_parameter() {
    let expires = |at: &str| format!("  annotations:\n    mcp-gitops.io/expires-at: \"{at}\"\n");
    let grants = [
        destructive_grant("ok-next-week", &expires("2026-12-02T00:00:00Z")),
        destructive_grant("bad-standing", ""),
        destructive_grant("bad-next-year", &expires("2027-11-25T00:00:00Z")),
        destructive_grant("ok-expired", &expires("2026-11-01T00:00:00Z")),
        destructive_grant("ok-disabled", "").replace("  maxTrust: high\n", "  maxTrust: high\n  disabled: true\n"),
        grant("ok-read-only", "  subject: {agentID: bot}\n  allowedSideEffects: [read]\n"),
    ]
    .concat();
    let files = [("grants.yaml", grants.as_str())];
    assert_eq!(fired(&files, "destructive-grants-expire"), ["bad-next-year", "bad-standing"]);
    let config = "policies:\n  overrides:\n    destructive-grants-expire: {params: {maxDays: 400}}\n";
    assert_eq!(fired(&[files[0], ("mcp-gitops.yaml", config)], "destructive-grants-expire"), ["bad-standing"]);
    let off = "policies:\n  disabled: [destructive-grants-expire]\n";
    assert!(fired(&[files[0], ("mcp-gitops.yaml", off)], "destructive-grants-expire").is_empty());
}

#[test]
fn no_cross_namespace_server_refs() {
    let grants = [
        grant("ok-same", "  subject: {agentID: bot}\n  allowedSideEffects: [read]\n"),
        grant("ok-explicit", "  subject: {agentID: bot}\n  allowedSideEffects: [read]\n")
            .replace("{name: payments-mcp}", "{name: payments-mcp, namespace: team-a}"),
        grant("bad-other", "  subject: {agentID: bot}\n  allowedSideEffects: [read]\n")
            .replace("namespace: team-a", "namespace: team-b")
            .replace("{name: payments-mcp}", "{name: payments-mcp, namespace: team-a}"),
    ]
    .concat();
    assert_eq!(fired(&[("grants.yaml", &grants)], "no-cross-namespace-server-ref"), ["bad-other"]);
}

#[test]
fn grants_list_their_side_effects() {
    let grants = [
        grant("ok", "  subject: {agentID: bot}\n  allowedSideEffects: [read]\n"),
        grant("bad-missing", "  subject: {agentID: bot}\n"),
        grant("bad-empty", "  subject: {agentID: bot}\n  allowedSideEffects: []\n"),
    ]
    .concat();
    assert_eq!(fired(&[("grants.yaml", &grants)], "grants-list-side-effects"), ["bad-empty", "bad-missing"]);
}

#[test]
fn team_wide_grants_are_read_only() {
    let grants = [
        grant("ok-team-read", "  subject: {teamID: team-a-id}\n  allowedSideEffects: [read]\n"),
        grant("bad-team-write", "  subject: {teamID: team-a-id}\n  allowedSideEffects: [read, write]\n"),
        grant("bad-empty-subject", "  subject: {}\n  allowedSideEffects: [destructive]\n"),
        grant("ok-agent-write", "  subject: {agentID: bot, teamID: team-a-id}\n  allowedSideEffects: [write]\n"),
    ]
    .concat();
    assert_eq!(fired(&[("grants.yaml", &grants)], "team-wide-grants-are-read-only"), ["bad-empty-subject", "bad-team-write"]);
}

#[test]
fn human_ids_look_like_the_platform_expects() {
    let grants = [
        grant("ok-mail", "  subject: {humanID: ann@example.com}\n  allowedSideEffects: [read]\n"),
        grant("ok-plain", "  subject: {humanID: user-1}\n  allowedSideEffects: [read]\n"),
        grant("bad-space", "  subject: {humanID: \" ann@example.com\"}\n  allowedSideEffects: [read]\n"),
        grant("bad-upper", "  subject: {humanID: Ann@Example.com}\n  allowedSideEffects: [read]\n"),
        grant("bad-mail", "  subject: {humanID: ann@example}\n  allowedSideEffects: [read]\n"),
        grant("bad-namespace", "  subject: {humanID: mcp-team-a}\n  allowedSideEffects: [read]\n"),
    ]
    .concat();
    let mut bad = fired(&[("grants.yaml", &grants)], "human-ids-look-right");
    bad.sort();
    assert_eq!(bad, ["bad-mail", "bad-namespace", "bad-space", "bad-upper"]);
}

#[test]
fn configuration_switches_policies_off_and_changes_their_severity() {
    let grants = grant("bad", "  subject: {agentID: bot}\n");
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join(".mcp")).expect("mkdir");
    fs::write(dir.path().join(".mcp/servers.yaml"), SERVERS).expect("write");
    fs::write(dir.path().join("grants.yaml"), &grants).expect("write");
    let path = dir.path().to_string_lossy().into_owned();
    let severity = |config: &str| {
        fs::write(dir.path().join("mcp-gitops.yaml"), config).expect("write");
        let report = json(&run(&["validate", &path, "--format", "json", "--now", NOW]).stdout);
        report["diagnostics"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["message"].as_str().is_some_and(|m| m.starts_with("[grants-list-side-effects]")))
            .map(|d| d["severity"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(severity("{}\n").as_deref(), Some("error"));
    assert_eq!(severity("policies: {overrides: {grants-list-side-effects: {severity: warning}}}\n").as_deref(), Some("warning"));
    assert_eq!(severity("policies: {disabled: [grants-list-side-effects]}\n"), None);
}

const CUSTOM: &str = "apiVersion: mcp-gitops.mcpruntime.org/v1alpha1
kind: GuardrailPolicy
metadata: {name: grants-name-an-owner}
spec:
  matchKinds: [MCPAccessGrant]
  severity: warning
  field: metadata.labels
  expression: has(object.metadata.labels) && 'owner' in object.metadata.labels
  message: grant {{object.metadata.name}} on {{server.name}} names no owner label
";

#[test]
fn repository_and_directory_policies_are_found_and_positions_point_at_the_field() {
    let grants = grant("unowned", "  subject: {agentID: bot}\n  allowedSideEffects: [read]\n");
    let in_repo = findings(&[("grants.yaml", &grants), ("guardrails/owner.yaml", CUSTOM)]);
    // The field the policy is about is absent: the finding points at the object's first line.
    assert!(in_repo.contains(&("grants-name-an-owner".to_string(), "unowned".to_string(), 2)), "{in_repo:?}");

    let org = tempfile::tempdir().expect("org policies");
    fs::write(org.path().join("owner.yaml"), CUSTOM).expect("write");
    let org_path = org.path().to_string_lossy().into_owned();
    let config = format!("policies:\n  directories: [{org_path:?}]\n");
    let from_dir = findings_with(&[("grants.yaml", &grants), ("mcp-gitops.yaml", &config)], &["--allow-policy-dir", &org_path]);
    assert!(from_dir.iter().any(|(p, o, _)| p == "grants-name-an-owner" && o == "unowned"), "{from_dir:?}");
}

/// The attack: a repository's own mcp-gitops.yaml names a directory anywhere on the machine, and
/// a YAML file there with a syntax error has its lines printed in the diagnostic (in CI, into a
/// pull-request comment). The repository alone can never make mcp-gitops read outside itself,
/// and the lines of files outside it are never shown.
#[test]
fn a_repository_cannot_make_mcp_gitops_read_outside_itself() {
    let outside = tempfile::tempdir().expect("outside");
    fs::write(outside.path().join("notes.yaml"), "password: hunter2-OUTSIDE-LINE\n  bad: [indent\n").expect("write");
    let outside_path = outside.path().to_string_lossy().into_owned();
    for named in [outside_path.clone(), "../../../../../../../../..".to_string() + &outside_path] {
        let repo = repository(&[("mcp-gitops.yaml", &format!("policies:\n  directories: [{named:?}]\n"))]);
        let out = run(&["validate", &repo.path().to_string_lossy(), "--now", NOW]);
        assert_eq!(out.code, 1, "{named}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains("outside the repository") && out.stderr.contains("--allow-policy-dir"), "{}", out.stderr);
        assert!(!out.stdout.contains("OUTSIDE-LINE") && !out.stderr.contains("OUTSIDE-LINE"), "{}{}", out.stdout, out.stderr);

        // Allowed by whoever runs mcp-gitops: read, its problems reported without its lines.
        let allowed = run(&["validate", &repo.path().to_string_lossy(), "--now", NOW, "--allow-policy-dir", &outside_path]);
        assert!(allowed.stdout.contains("notes.yaml"), "{}{}", allowed.stdout, allowed.stderr);
        assert!(!allowed.stdout.contains("OUTSIDE-LINE") && !allowed.stderr.contains("OUTSIDE-LINE"), "{}", allowed.stdout);
    }
}

#[test]
fn broken_policies_are_diagnostics_not_crashes() {
    let grants = grant("g", "  subject: {agentID: bot}\n  allowedSideEffects: [read]\n");
    let syntax = CUSTOM.replace("has(object.metadata.labels) && 'owner' in object.metadata.labels", "object.metadata.name ==");
    let found = findings(&[("grants.yaml", &grants), ("p/syntax.yaml", &syntax)]);
    assert!(found.contains(&("policy_error".to_string(), "grants-name-an-owner".to_string(), 8)), "{found:?}");

    let not_bool = CUSTOM.replace("has(object.metadata.labels) && 'owner' in object.metadata.labels", "object.metadata.name");
    let found = findings(&[("grants.yaml", &grants), ("p/not-bool.yaml", &not_bool)]);
    assert!(found.contains(&("policy_error".to_string(), "g".to_string(), 2)), "{found:?}");

    let missing = CUSTOM.replace("has(object.metadata.labels) && 'owner' in object.metadata.labels", "object.spec.nothing.here == 1");
    let out = findings(&[("grants.yaml", &grants), ("p/missing.yaml", &missing)]);
    assert!(out.iter().any(|(code, object, _)| code == "policy_error" && object == "g"), "{out:?}");

    let schema = CUSTOM.replace("severity: warning", "severity: fatal");
    let found = findings(&[("grants.yaml", &grants), ("p/schema.yaml", &schema)]);
    assert!(found.iter().any(|(code, _, line)| code == "schema_violation" && *line == 6), "{found:?}");
}

#[test]
fn plans_carry_policy_findings_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join(".mcp")).expect("mkdir");
    fs::write(dir.path().join(".mcp/servers.yaml"), SERVERS).expect("write");
    fs::write(dir.path().join("grants.yaml"), grant("bad", "  subject: {agentID: bot}\n")).expect("write");
    let path = dir.path().to_string_lossy().into_owned();
    let base = common::root().join("tests/fixtures/valid-minimal").to_string_lossy().into_owned();
    for (format, needle) in [("text", "error[policy_violation]"), ("json", "\"policy_violation\""), ("markdown", "`policy_violation`")] {
        let out = run(&["plan", &path, "--base", &base, "--format", format, "--now", NOW]);
        assert_eq!(out.code, 1);
        assert!(out.stdout.contains(needle), "{format}:\n{}", out.stdout);
    }
}
