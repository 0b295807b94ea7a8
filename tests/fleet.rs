//! One repository, many clusters (#30, docs/fleet.md): a repository laid out as platform teams
//! lay it out — `base/` for every cluster, `clusters/<name>/` for one — with `clusters:` in
//! `mcp-gitops.yaml`, committed to a real git repository; the real binary's answers and exit
//! codes per cluster.

mod common;

use common::{NOW, json, run};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

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

/// A grant in a folder no cluster's `paths` take (`clusters/prd/`, a misspelt prod) is applied
/// nowhere: a `file_in_no_cluster` warning at the file, and a broken file there is still an
/// error (no cluster's validation would have read it). The forge formats name each problem's
/// clusters as the text does.
#[test]
fn a_file_no_cluster_takes_is_reported_not_skipped() {
    let dir = fleet(&[
        ("clusters/prd/oncall.yaml", grant("oncall", "vault-mcp", "erin", "read")),
        ("clusters/prd/broken.yaml", "kind: MCPAccessGrant\nmetadata: {name: [unclosed\n".to_string()),
        ("base/orphan.yaml", grant("orphan", "nowhere-mcp", "dana", "read")),
    ]);
    let ran = validate(dir.path(), &["--format", "json"]);
    assert_eq!(ran.code, 1, "the broken file is an error\n{}{}", ran.stdout, ran.stderr);
    let report = json(&ran.stdout);
    let found: Vec<(&str, &str, &str)> = report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["file"].as_str().is_some_and(|f| f.starts_with("clusters/prd/")))
        .map(|d| {
            (d["code"].as_str().unwrap_or_default(), d["severity"].as_str().unwrap_or_default(), d["file"].as_str().unwrap_or_default())
        })
        .collect();
    assert_eq!(
        found,
        [("yaml_syntax", "error", "clusters/prd/broken.yaml"), ("file_in_no_cluster", "warning", "clusters/prd/oncall.yaml")],
        "{}",
        ran.stdout
    );
    // One cluster's check is that cluster's: the folder no cluster takes is not its problem.
    let prod = validate(dir.path(), &["--cluster", "prod"]);
    assert!(!prod.stdout.contains("clusters/prd/"), "{}", prod.stdout);

    for (format, expected) in [
        ("github", "::error file=base/orphan.yaml"),
        ("gitlab", "unknown_server: [dev, staging, prod] serverRef"),
        ("junit", "[dev, staging, prod] serverRef"),
        ("sarif", "[dev, staging, prod] serverRef"),
    ] {
        let out = validate(dir.path(), &["--format", format]).stdout;
        assert!(out.contains(expected), "{format}: {out}");
        assert!(out.contains("[dev, staging, prod] serverRef"), "{format} names the clusters: {out}");
    }
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

    // `plan --cluster` against the live cluster: prod's slice is what is applied; dev's is not.
    let live = |cluster: &str| {
        let (path, kube) = (repo.path().to_string_lossy().into_owned(), kubeconfig.to_string_lossy().into_owned());
        let args = ["plan", &path, "--cluster", cluster, "--kubeconfig", &kube, "--inventory-namespace", &inventory];
        run(&[&args[..], &["--detailed-exitcode", "--format", "json", "--no-cache"]].concat())
    };
    let prod = live("prod");
    assert_eq!(prod.code, 0, "prod is applied, yet: {}{}", prod.stdout, prod.stderr);
    let dev = live("dev");
    assert_eq!(dev.code, 2, "{}{}", dev.stdout, dev.stderr);
    let dev = json(&dev.stdout);
    let changes: Vec<(String, String)> = dev["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["action"] != "no-op")
        .map(|c| (c["action"].as_str().unwrap_or_default().to_string(), c["name"].as_str().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(changes, [("create".to_string(), "dev-only".to_string()), ("delete".to_string(), "prod-only".to_string())], "{dev}");

    // A cluster the repository does not declare: every revision is invalid, nothing applied.
    let elsewhere = common::cluster::unique("flinv");
    let wrong = Daemon::spawn(&upstream.bare_path(), &kubeconfig, &elsewhere, &["--cluster", "prd"]);
    let status = wrong.wait_for(Duration::from_secs(60), "the first reconcile", |s| s["last_result"] != "");
    assert_eq!(status["last_result"], "invalid", "{status}");
    assert!(status["diagnostics"]["first"][0].as_str().unwrap_or_default().contains("did you mean prod?"), "{status}");
}

fn plan(dir: &Path, extra: &[&str]) -> common::Run {
    let path = dir.to_string_lossy();
    let mut args = vec!["plan", &path, "--base", "HEAD", "--now", NOW, "--no-cache"];
    args.extend(extra);
    run(&args)
}

/// Writes `files` into the work tree of `dir`, uncommitted: the pull request against HEAD.
fn change(dir: &Path, files: &[(&str, String)]) {
    for (path, text) in files {
        let file = dir.join(path);
        fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
        fs::write(file, text).expect("write");
    }
}

/// A grant added in prod's folder is prod's change alone: `clusters[]` has each cluster's plan
/// (prod's with the create and the widening, the others none), the top level their union;
/// `plan --cluster staging` plans staging alone.
#[test]
fn plan_gives_each_clusters_changes() {
    let dir = fleet(&[]);
    change(dir.path(), &[("clusters/prod/oncall.yaml", grant("oncall", "vault-mcp", "erin", "read"))]);
    let ran = plan(dir.path(), &["--format", "json", "--detailed-exitcode"]);
    assert_eq!(ran.code, 2, "{}{}", ran.stdout, ran.stderr);
    let plan_json = json(&ran.stdout);
    let clusters: Vec<(String, String, u64, u64)> = plan_json["clusters"]
        .as_array()
        .expect("clusters[]")
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap_or_default().to_string();
            let cluster_name = c["cluster_name"].as_str().unwrap_or_default().to_string();
            (name, cluster_name, c["summary"]["create"].as_u64().unwrap_or(99), c["summary"]["access_widened"].as_u64().unwrap_or(99))
        })
        .collect();
    let expected = [("dev", "dev", 0, 0), ("staging", "staging", 0, 0), ("prod", "prod-eu-1", 1, 1)];
    let expected: Vec<(String, String, u64, u64)> = expected.iter().map(|(n, c, k, w)| (n.to_string(), c.to_string(), *k, *w)).collect();
    assert_eq!(clusters, expected, "{plan_json}");
    assert_eq!(plan_json["summary"]["create"], 1, "the top level is the union");
    assert_eq!(plan_json["changes"].as_array().map(Vec::len), Some(1), "{plan_json}");

    let staging = plan(dir.path(), &["--cluster", "staging", "--format", "json", "--detailed-exitcode"]);
    assert_eq!(staging.code, 0, "staging does not change: {}{}", staging.stdout, staging.stderr);
    let markdown = plan(dir.path(), &["--format", "markdown"]).stdout;
    assert!(markdown.contains("No change in `dev`, `staging`."), "{markdown}");
    assert!(markdown.contains("<details><summary><b>prod</b> (<code>prod-eu-1</code>): Plan: 1 to create"), "{markdown}");
    let text = plan(dir.path(), &[]).stdout;
    assert!(text.contains("Cluster prod (prod-eu-1)\n"), "{text}");
    assert!(text.contains("All clusters: Plan: 1 to create"), "{text}");
    let unknown = plan(dir.path(), &["--cluster", "qa"]);
    assert_eq!(unknown.code, 64, "{}", unknown.stderr);
    // Against a live cluster, the whole repository is no cluster's state.
    let live = run(&["plan", &dir.path().to_string_lossy(), "--now", NOW, "--no-cache"]);
    assert_eq!(live.code, 64, "{}", live.stderr);
    assert!(live.stderr.contains("--cluster NAME"), "{}", live.stderr);
}

/// Twenty clusters that each change more than a comment holds: the Markdown still fits
/// GitHub's 65,536 characters, every cluster has its block, and each cut block says so.
#[test]
fn the_comment_of_twenty_busy_clusters_fits_and_says_what_it_cut() {
    let names: Vec<String> = (1..=20).map(|i| format!("region-{i:02}")).collect();
    let mut config = String::from("policies:\n  disabled: [sessions-expire-within-a-day, destructive-grants-expire]\nclusters:\n");
    for name in &names {
        config.push_str(&format!("  - name: {name}\n    paths: [\"base/**\", \"clusters/{name}/**\"]\n"));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    commit(dir.path(), &[("mcp-gitops.yaml", config), ("base/.mcp/servers.yaml", server("vault-mcp"))], "twenty clusters");
    let files: Vec<(String, String)> = names
        .iter()
        .map(|name| {
            let grants: Vec<String> =
                (0..60).map(|i| grant(&format!("{name}-reader-{i:02}"), "vault-mcp", &format!("user-{i:02}"), "read")).collect();
            (format!("clusters/{name}/grants.yaml"), grants.join("---\n"))
        })
        .collect();
    let files: Vec<(&str, String)> = files.iter().map(|(p, t)| (p.as_str(), t.clone())).collect();
    change(dir.path(), &files);
    let ran = plan(dir.path(), &["--format", "markdown"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let markdown = ran.stdout;
    assert!(markdown.chars().count() <= 65_536, "{} characters", markdown.chars().count());
    for name in &names {
        assert!(markdown.contains(&format!("<details><summary><b>{name}</b>")), "no block for {name}");
        assert!(
            markdown.contains(&format!("Run `mcp-gitops plan --cluster {name} --format text` for all of it.")),
            "{name}'s block was cut without a word"
        );
    }
    assert!(markdown.contains("Plan: 1200 to create"), "the head counts every cluster's changes");
}

/// An approval rule that names clusters binds their changes alone: the same widening needs the
/// prod approvers in prod and only the owners in staging.
#[test]
fn an_approval_rule_for_prod_clusters_binds_prod_changes_alone() {
    let rules = "  approvals:\n    - {on: widened, approvers: [owners], count: 1}\n    - {on: widened, approvers: [prod-approvers], clusters: [\"prod*\"]}\n";
    let config = CLUSTERS.replace("    \"mcp-team-a/*\": [team-a-leads]\n", &format!("    \"mcp-team-a/*\": [team-a-leads]\n{rules}"));
    for (cluster, needs_prod) in [("staging", false), ("prod", true)] {
        let dir = fleet(&[("mcp-gitops.yaml", config.clone())]);
        change(dir.path(), &[(&format!("clusters/{cluster}/oncall.yaml"), grant("oncall", "vault-mcp", "erin", "read"))]);
        let out = dir.path().join("plan.json").to_string_lossy().into_owned();
        let ran = plan(dir.path(), &["--out", &out]);
        assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
        let check = |by: &str| run(&["approvals", "check", &out, "--approved-by", by, "--author", "mallory"]);
        let owners = check("team-a-leads");
        assert_eq!(owners.code == 0, !needs_prod, "{cluster}, the owners alone: {}{}", owners.stdout, owners.stderr);
        let both = check("team-a-leads,prod-approvers");
        assert_eq!(both.code, 0, "{cluster}: {}{}", both.stdout, both.stderr);
        assert_eq!(check("").code, 1, "{cluster}: a widening passed with nobody's approval");
    }
}

/// The ratchet holds per cluster: a destructive grant without an expiry that prod's base already
/// has is a warning in the plan of a change beside it; a new one in staging is an error.
#[test]
fn a_violation_a_clusters_base_already_has_is_a_warning_and_a_new_one_an_error() {
    let config = CLUSTERS
        .replace("  disabled: [sessions-expire-within-a-day, destructive-grants-expire]", "  disabled: [sessions-expire-within-a-day]");
    let old = grant("oncall", "vault-mcp", "erin", "read, destructive");
    let dir = fleet(&[("mcp-gitops.yaml", config), ("clusters/prod/oncall.yaml", old.clone())]);
    change(dir.path(), &[("clusters/prod/readers.yaml", grant("prod-readers", "vault-mcp", "fay", "read"))]);
    let ran = plan(dir.path(), &["--format", "json"]);
    assert_eq!(ran.code, 0, "the inherited violation failed the plan: {}{}", ran.stdout, ran.stderr);
    let report = json(&ran.stdout);
    let inherited: Vec<&serde_json::Value> =
        report["diagnostics"].as_array().expect("diagnostics").iter().filter(|d| d["code"] == "policy_violation").collect();
    assert!(inherited.iter().all(|d| d["severity"] == "warning") && !inherited.is_empty(), "{report}");

    change(dir.path(), &[("clusters/staging/oncall.yaml", old)]);
    let ran = plan(dir.path(), &["--format", "json"]);
    assert_eq!(ran.code, 1, "a new violation in staging passed: {}", ran.stdout);
    let report = json(&ran.stdout);
    let errors: Vec<&serde_json::Value> =
        report["diagnostics"].as_array().expect("diagnostics").iter().filter(|d| d["severity"] == "error").collect();
    assert!(errors.iter().all(|d| d["clusters"] == serde_json::json!(["staging"])) && !errors.is_empty(), "{report}");
}
