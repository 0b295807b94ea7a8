//! One repository, many clusters (#30, docs/fleet.md): a repository laid out as platform teams
//! lay it out — `base/` for every cluster, `clusters/<name>/` for one — with `clusters:` in
//! `mcp-gitops.yaml`, committed to a real git repository; the real binary's answers and exit
//! codes per cluster.

mod common;

use common::{NOW, json, run};
use std::fs;
use std::path::Path;
use std::process::Command;

const CLUSTERS: &str = r#"policies:
  disabled: [sessions-expire-within-a-day, destructive-grants-expire]
owners:
  servers:
    "mcp-team-a/*": [team-a-leads]
clusters:
  - name: dev
    paths: ["base/**", "clusters/dev/**"]
  - name: staging
    paths: ["base/**", "clusters/staging/**"]
  - name: prod
    paths: ["base/**", "clusters/prod/**"]
    clusterName: prod-eu-1
"#;

/// The metadata of `vault-mcp` in `mcp-team-a`, with a read tool and a destructive one.
fn server(name: &str) -> String {
    format!(
        r#"version: v1
servers:
  - name: {name}
    image: registry.example.com/team-a/{name}
    imageTag: "1.0.0"
    namespace: mcp-team-a
    teamID: team-a
    publicPathPrefix: {name}
    gateway: {{enabled: true}}
    auth: {{mode: header}}
    policy: {{mode: allow-list, defaultDecision: deny}}
    tools:
      - {{name: read_secret, requiredTrust: low, sideEffect: read}}
      - {{name: purge_vault, requiredTrust: low, sideEffect: destructive}}
"#
    )
}

/// A grant to `human` + agent `bot` on the server `server`, allowing `effects`.
fn grant(name: &str, server: &str, human: &str, effects: &str) -> String {
    format!(
        r#"apiVersion: mcpruntime.org/v1alpha1
kind: MCPAccessGrant
metadata:
  name: {name}
  namespace: mcp-team-a
spec:
  serverRef: {{name: {server}}}
  subject: {{humanID: {human}, agentID: bot}}
  maxTrust: high
  allowedSideEffects: [{effects}]
"#
    )
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=Fleet", "-c", "user.email=fleet@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes `files` (path, text; an empty text removes the file) into `dir` and commits them.
fn commit(dir: &Path, files: &[(&str, String)], message: &str) -> String {
    for (path, text) in files {
        let file = dir.join(path);
        if text.is_empty() {
            let _ = fs::remove_file(&file);
            continue;
        }
        fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
        fs::write(file, text).expect("write");
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// A git repository of three clusters: `vault-mcp` in base, a grant to it in every cluster, and
/// `files` on top.
fn fleet(files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    let mut all = vec![
        ("mcp-gitops.yaml", CLUSTERS.to_string()),
        ("base/.mcp/servers.yaml", server("vault-mcp")),
        ("base/readers.yaml", grant("readers", "vault-mcp", "dana", "read")),
    ];
    all.extend(files.iter().cloned());
    commit(dir.path(), &all, "a fleet");
    dir
}

fn validate(dir: &Path, extra: &[&str]) -> common::Run {
    let path = dir.to_string_lossy();
    let mut args = vec!["validate", &path, "--now", NOW, "--no-cache"];
    args.extend(extra);
    run(&args)
}

/// A problem of the base is found in every cluster and reported once, naming them all; a
/// problem of one cluster's folder names that cluster alone, in JSON and in text.
#[test]
fn validate_names_the_clusters_of_each_problem() {
    let dir = fleet(&[
        ("base/orphan.yaml", grant("orphan", "nowhere-mcp", "dana", "read")),
        ("clusters/dev/.mcp/servers.yaml", server("dev-only-mcp")),
        ("clusters/dev/dev.yaml", grant("dev-tools", "dev-only-mcp", "erin", "read")),
        // The server is dev's alone: in prod the grant points at nothing.
        ("clusters/prod/prod.yaml", grant("dev-tools", "dev-only-mcp", "erin", "read")),
    ]);
    let ran = validate(dir.path(), &["--format", "json"]);
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    let report = json(&ran.stdout);
    let unknown: Vec<(String, Vec<String>)> = report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["code"] == "unknown_server")
        .map(|d| (d["file"].as_str().unwrap_or_default().to_string(), serde_json::from_value(d["clusters"].clone()).unwrap_or_default()))
        .collect();
    let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(
        unknown,
        [("base/orphan.yaml".to_string(), names(&["dev", "staging", "prod"])), ("clusters/prod/prod.yaml".to_string(), names(&["prod"]))],
        "{}",
        ran.stdout
    );

    let text = validate(dir.path(), &[]).stdout;
    assert!(text.contains("[dev, staging, prod] error[unknown_server]"), "{text}");
    assert!(text.contains("[prod] error[unknown_server]"), "{text}");

    // One cluster: its own problems only.
    let dev = validate(dir.path(), &["--cluster", "dev", "--format", "json"]);
    let dev = json(&dev.stdout);
    let files: Vec<&str> = dev["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["severity"] == "error")
        .filter_map(|d| d["file"].as_str())
        .collect();
    assert_eq!(files, ["base/orphan.yaml"], "{dev}");
}

/// A clean fleet passes; `--cluster` that names no cluster is a usage mistake (64) with the
/// closest name, and so is `--cluster` on a repository that declares none.
#[test]
fn validate_passes_a_clean_fleet_and_refuses_an_unknown_cluster() {
    let dir = fleet(&[("clusters/prod/oncall.yaml", grant("oncall", "vault-mcp", "erin", "read, destructive"))]);
    let ran = validate(dir.path(), &[]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let ran = validate(dir.path(), &["--cluster", "prd"]);
    assert_eq!(ran.code, 64, "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("no cluster named \"prd\" in clusters:; did you mean prod?"), "{}", ran.stderr);

    let one = CLUSTERS.split("clusters:").next().unwrap_or_default();
    fs::write(dir.path().join("mcp-gitops.yaml"), one).expect("write");
    let ran = validate(dir.path(), &["--cluster", "prod"]);
    assert_eq!(ran.code, 64, "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("declares no clusters"), "{}", ran.stderr);
    let ran = validate(dir.path(), &[]);
    assert_eq!(ran.code, 0, "without clusters: the whole repository, as before\n{}", ran.stdout);
}

/// `daemon --cluster prod` on the real API server applies the base and prod's folder, not
/// dev's, and says which cluster it is in /status and on the inventory (beside its other status
/// annotations, under their field manager).
#[test]
fn a_daemon_applies_its_clusters_slice_and_says_which_cluster_it_is() {
    use common::cluster::Teams;
    use common::daemon::{Daemon, Upstream};
    let Teams { kubeconfig, kubectl, payments: namespace, inventory, .. } = Teams::new("fl");
    let mut files = vec![
        ("mcp-gitops.yaml", CLUSTERS.to_string()),
        ("base/.mcp/servers.yaml", server("vault-mcp")),
        ("base/readers.yaml", grant("readers", "vault-mcp", "dana", "read")),
        ("clusters/dev/dev.yaml", grant("dev-only", "vault-mcp", "erin", "read")),
        ("clusters/prod/prod.yaml", grant("prod-only", "vault-mcp", "erin", "read")),
    ];
    for (_, text) in files.iter_mut() {
        *text = text.replace("mcp-team-a", &namespace);
    }
    let repo = tempfile::tempdir().expect("tempdir");
    for (path, text) in &files {
        let file = repo.path().join(path);
        fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
        fs::write(file, text).expect("write");
    }
    let upstream = Upstream::new();
    upstream.commit(repo.path(), "a fleet");
    let daemon = Daemon::start(&upstream.bare_path(), &kubeconfig, &inventory, &["--cluster", "prod"]);
    let status = daemon.status();
    assert_eq!(status["cluster"], "prod", "{status}");
    assert_eq!(status["last_result"], "applied", "{status}");
    let grants = kubectl.json(&["get", "mcpaccessgrants", "-n", &namespace]);
    let mut names: Vec<&str> = grants["items"].as_array().expect("items").iter().filter_map(|g| g["metadata"]["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["prod-only", "readers"], "{grants}");
    let inventory_map = kubectl.json(&["get", "configmap", "mcp-gitops-inventory", "-n", &inventory, "--show-managed-fields"]);
    assert_eq!(inventory_map["metadata"]["annotations"]["mcp-gitops.mcpruntime.org/cluster"], "prod", "{inventory_map}");
    let managers: Vec<&str> =
        inventory_map["metadata"]["managedFields"].as_array().expect("managed").iter().filter_map(|m| m["manager"].as_str()).collect();
    assert!(managers.contains(&"mcp-gitops-status"), "{managers:?}");
}
