//! One repository, many clusters: three real API servers, each with a daemon applying its own
//! cluster of one git repository's `clusters:` (`daemon --cluster`). `fleet status` reads them
//! side by side: two clusters at the branch tip, one that follows a ref of its own (`ref:`) and
//! would gain, by catching up with the branch, the commit that widens access there, and a
//! context whose API server is gone, shown as a row that says so while the others still show.

mod common;

use common::cluster::{fleet_kubeconfig, private_clusters};
use common::daemon::{Daemon, Upstream};
use common::run;
use std::path::Path;
use std::time::Duration;

const CLUSTERS: [&str; 3] = ["alpha", "beta", "gamma"];

/// One server (`docs`: `search` reads, `edit` writes) and a grant that lets `docs-bot` read.
fn write_platform(dir: &Path) {
    std::fs::create_dir_all(dir.join(".mcp")).expect("mkdir");
    std::fs::create_dir_all(dir.join("grants")).expect("mkdir");
    std::fs::write(
        dir.join(".mcp/servers.yaml"),
        "servers:\n  - name: docs\n    namespace: mcp-team-support\n    gateway: {enabled: true}\n    tools: [{name: search, sideEffect: read}, {name: edit, sideEffect: write}]\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("grants/editors.yaml"),
        "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: editors\n  namespace: mcp-team-support\nspec:\n  serverRef:\n    name: docs\n  subject:\n    agentID: docs-bot\n  maxTrust: medium\n  allowedSideEffects: [read]\n",
    )
    .expect("write");
}

/// A kubeconfig whose only context points at a loopback port nothing listens on.
fn gone_kubeconfig(like: &Path, file: &Path) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut config = kube::config::Kubeconfig::read_from(like).expect("a kubeconfig");
    for cluster in &mut config.clusters {
        if let Some(cluster) = cluster.cluster.as_mut() {
            cluster.server = Some(format!("https://127.0.0.1:{port}"));
        }
    }
    std::fs::write(file, serde_json::to_string(&config).expect("json")).expect("write");
}

/// The resident memory of the process whose pid `pid_file` holds.
fn resident_kib(pid_file: std::path::PathBuf) -> u64 {
    let pid = std::fs::read_to_string(pid_file).unwrap_or_default();
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

fn row<'a>(status: &'a serde_json::Value, context: &str) -> &'a serde_json::Value {
    status["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|r| r["context"] == context)
        .unwrap_or_else(|| panic!("no row {context}: {status}"))
}

#[test]
fn fleet_status_shows_two_clusters_at_the_tip_one_behind_and_one_unreachable() {
    let starting = std::time::Instant::now();
    let clusters = private_clusters(3, "");
    let resident_mib: u64 =
        clusters.iter().flat_map(|c| ["etcd", "kube-apiserver"].map(|p| c.dir.join(format!("{p}.pid")))).map(resident_kib).sum::<u64>()
            / 1024;
    eprintln!("three clusters up in {:?}; etcd + kube-apiserver resident: {resident_mib} MiB", starting.elapsed());
    let upstream = Upstream::new();
    let work = upstream.work.path();
    CLUSTERS.iter().for_each(|name| write_platform(&work.join("clusters").join(name)));
    std::fs::write(
        work.join("mcp-gitops.yaml"),
        "clusters:\n  - {name: alpha, paths: [\"clusters/alpha/**\"]}\n  - {name: beta, paths: [\"clusters/beta/**\"]}\n  - {name: gamma, paths: [\"clusters/gamma/**\"], ref: gamma}\n",
    )
    .expect("write");
    let first = upstream.push("three clusters");
    // gamma follows a branch of its own, which CI moves once the others are healthy: not yet.
    for repo in [upstream.work.path(), upstream.bare.path()] {
        let git = std::process::Command::new("git").arg("-C").arg(repo).args(["branch", "gamma", &first]).output().expect("git");
        assert!(git.status.success(), "{}", String::from_utf8_lossy(&git.stderr));
    }
    let daemons: Vec<Daemon> = clusters
        .iter()
        .zip(CLUSTERS)
        .map(|(cluster, name)| {
            let branch = if name == "gamma" { "gamma" } else { "main" };
            Daemon::start(
                &upstream.bare_path(),
                &cluster.kubeconfig,
                "mcp-gitops",
                &["--cluster", name, "--branch", branch, "--drift", "report"],
            )
        })
        .collect();

    // The commit that widens access in gamma's folder (and, to show that each cluster is compared
    // with its own slice, alpha's) reaches main only.
    for name in ["alpha", "gamma"] {
        let grant = work.join("clusters").join(name).join("grants/editors.yaml");
        let text = std::fs::read_to_string(&grant).expect("read");
        std::fs::write(&grant, text.replace("[read]", "[read, write]")).expect("write");
    }
    // and alpha gets a grant that expires in two hours
    let expires_at = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(2)).unwrap().round(jiff::Unit::Second).unwrap();
    std::fs::write(
        work.join("clusters/alpha/grants/oncall.yaml"),
        format!("apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: oncall\n  namespace: mcp-team-support\n  annotations:\n    mcp-gitops.io/expires-at: \"{expires_at}\"\nspec:\n  serverRef:\n    name: docs\n  subject:\n    agentID: oncall-bot\n  maxTrust: low\n  allowedSideEffects: [read]\n"),
    )
    .expect("write");
    let tip = upstream.push("docs-bot may edit");
    for daemon in &daemons[..2] {
        assert_eq!(daemon.signed_hook(), 202);
        daemon.wait_for(Duration::from_secs(60), "the new tip applied", |s| s["revision"] == tip.as_str());
    }
    daemons[2].wait_for(Duration::from_secs(60), "gamma's branch applied", |s| s["revision"] == first.as_str());
    // (the status annotations come just after readiness)
    let annotations =
        || clusters[2].kubectl.json(&["get", "configmap", "mcp-gitops-inventory", "-n", "mcp-gitops"])["metadata"]["annotations"].clone();
    let waiting = std::time::Instant::now();
    while annotations()["mcp-gitops.mcpruntime.org/last-result"].as_str().unwrap_or_default().is_empty() {
        assert!(waiting.elapsed() < Duration::from_secs(30), "gamma's daemon recorded no result: {}\n{}", annotations(), daemons[2].logs());
        std::thread::sleep(Duration::from_millis(50));
    }

    // beta: someone edits a grant by hand (the daemon reports drift), and suspends its daemon
    clusters[1].kubectl.edit_grant_as("someone", "mcp-team-support", "editors", r#"{"spec":{"maxTrust":"low"}}"#);
    daemons[1].wait_for(Duration::from_secs(60), "the drift reported", |s| !s["drifted"].as_array().unwrap().is_empty());
    let beta = clusters[1].kubeconfig.to_str().unwrap();
    let suspended = run(&["daemon", "suspend", "--reason", "incident 4711", "--kubeconfig", beta, "--inventory-namespace", "mcp-gitops"]);
    assert_eq!(suspended.code, 0, "{}", suspended.stderr);
    let drift_recorded = || {
        let inventory = clusters[1].kubectl.json(&["get", "configmap", "mcp-gitops-inventory", "-n", "mcp-gitops"]);
        inventory["metadata"]["annotations"]["mcp-gitops.mcpruntime.org/last-drifted"] == "1"
    };
    let waiting = std::time::Instant::now();
    while !drift_recorded() {
        assert!(waiting.elapsed() < Duration::from_secs(30), "beta's daemon recorded no drift");
        std::thread::sleep(Duration::from_millis(50));
    }

    let state = tempfile::tempdir().expect("tempdir");
    let gone = state.path().join("gone.kubeconfig");
    gone_kubeconfig(&clusters[0].kubeconfig, &gone);
    let mut contexts: Vec<(&str, &Path)> = CLUSTERS.iter().zip(&clusters).map(|(name, c)| (*name, c.kubeconfig.as_path())).collect();
    contexts.push(("gone", &gone));
    let kubeconfig = state.path().join("fleet.kubeconfig");
    fleet_kubeconfig(&contexts, &kubeconfig);
    let (kube, repo) = (kubeconfig.to_str().unwrap(), work.to_str().unwrap());

    let started = std::time::Instant::now();
    let json = run(&["fleet", "status", "--kubeconfig", kube, "--repo", repo, "--branch", "main", "--format", "json"]);
    let took = started.elapsed();
    eprintln!("fleet status, four contexts (one gone), --repo: {took:?}");
    assert_eq!(json.code, 1, "one cluster unreachable is exit 1:\n{}{}", json.stdout, json.stderr);
    let status = common::json(&json.stdout);
    assert_eq!(status["format_version"], "1");
    assert_eq!(status["tip"], tip.as_str());
    assert_eq!(status["clusters"].as_array().unwrap().len(), 4, "{status}");
    for name in ["alpha", "beta"] {
        let at_tip = row(&status, name);
        assert_eq!(at_tip["reachable"], true, "{at_tip}");
        assert_eq!(at_tip["cluster"], name, "as its daemon's --cluster records it");
        assert_eq!(at_tip["revision"], tip.as_str());
        assert_eq!((at_tip["follows"].as_str(), at_tip["behind_commits"].as_u64()), (Some("main"), Some(0)), "{at_tip}");
        assert!(at_tip["catch_up"].is_null(), "{at_tip}");
        assert_eq!(at_tip["pending"]["widened"], 0, "{at_tip}");
        // applied, or a later pass that found it live
        assert!(["applied", "unchanged"].contains(&at_tip["last_result"].as_str().unwrap()), "{at_tip}");
        assert!(at_tip["last_result_time"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok(), "{at_tip}");
        assert_eq!(at_tip["error"], "");
    }
    let (alpha, beta) = (row(&status, "alpha"), row(&status, "beta"));
    assert_eq!((alpha["drifted"].as_u64(), alpha["suspended"].as_str()), (Some(0), Some("")), "{alpha}");
    assert_eq!((beta["drifted"].as_u64(), beta["suspended"].as_str()), (Some(1), Some("soft")), "{beta}");
    assert!(beta["suspension_note"].as_str().unwrap().ends_with(": incident 4711"), "{beta}");
    let expiring = alpha["expiring"].as_array().unwrap();
    assert_eq!(expiring.len(), 1, "{alpha}");
    assert_eq!(
        (expiring[0]["grant"].as_str(), expiring[0]["expires_at"].as_str()),
        (Some("mcp-team-support/oncall"), Some(expires_at.to_string().as_str()))
    );
    assert!((110..=120).contains(&expiring[0]["in_minutes"].as_i64().unwrap()), "{alpha}");
    assert!(beta["expiring"].as_array().unwrap().is_empty(), "{beta}");
    let behind = row(&status, "gamma");
    assert_eq!(behind["reachable"], true, "{behind}");
    assert_eq!(behind["revision"], first.as_str());
    assert_eq!(behind["cluster"], "gamma", "{behind}");
    assert!(["applied", "unchanged"].contains(&behind["last_result"].as_str().unwrap()), "{behind}");
    // At the tip of its own ref, and one commit short of main, which would widen its access.
    assert_eq!((behind["follows"].as_str(), behind["behind_commits"].as_u64()), (Some("gamma"), Some(0)), "{behind}");
    assert_eq!(behind["pending"]["widened"], 0, "{behind}");
    assert_eq!(behind["catch_up_commits"], 1, "{behind}");
    assert_eq!(behind["catch_up"]["widened"], 1, "{behind}");
    assert_eq!(behind["catch_up"]["update"], 1, "{behind}");
    assert_eq!(behind["catch_up"]["create"], 0, "alpha's new grant is not gamma's: {behind}");
    let change = &behind["catch_up"]["access_changes"][0];
    assert_eq!((change["direction"].as_str(), change["tool"].as_str()), (Some("widened"), Some("edit")), "{behind}");
    assert_eq!(change["subject"]["agent"], "docs-bot", "{behind}");
    let gone_row = row(&status, "gone");
    assert_eq!(gone_row["reachable"], false, "{gone_row}");
    assert!(gone_row["error"].as_str().unwrap().contains("did not answer"), "{gone_row}");
    assert!(gone_row["revision"] == "" && gone_row["behind_commits"].is_null(), "{gone_row}");
    assert!(took < Duration::from_secs(15), "fleet status took {took:?}");

    let text = run(&["fleet", "status", "--kubeconfig", kube, "--repo", repo]);
    assert_eq!(text.code, 1, "{}", text.stderr);
    eprintln!("{}", text.stdout);
    let line = |context: &str| {
        text.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(context))
            .unwrap_or_else(|| panic!("no {context} row:\n{}", text.stdout))
    };
    assert!(line("gone").contains("unreachable: the API server did not answer"), "{}", text.stdout);
    assert!(line("gamma").contains(&first[..12]) && line("gamma").contains("nothing"), "{}", text.stdout);
    assert!(line("alpha").contains(&tip[..12]) && line("alpha").contains("nothing"), "{}", text.stdout);
    assert!(text.stdout.contains("follows: gamma; main is 1 commit(s) ahead: 1 widened, 0 narrowed; 1 object(s)"), "{}", text.stdout);
    assert!(text.stdout.contains("gain: mcp-team-support/docs: agent `docs-bot` may now call `docs/edit` (write)"), "{}", text.stdout);

    // The reachable clusters alone: every row read, exit 0.
    let some = run(&["fleet", "status", "--kubeconfig", kube, "--context", "alpha", "--context", "gamma", "--format", "json"]);
    assert_eq!(some.code, 0, "{}{}", some.stdout, some.stderr);
    let some = common::json(&some.stdout);
    let contexts: Vec<&str> = some["clusters"].as_array().unwrap().iter().filter_map(|r| r["context"].as_str()).collect();
    assert_eq!(contexts, ["alpha", "gamma"]);
    assert!(row(&some, "gamma")["behind_commits"].is_null(), "without --repo nothing is compared");

    let wrong = run(&["fleet", "status", "--kubeconfig", kube, "--repo", repo, "--branch", "no-such-branch"]);
    assert_eq!(wrong.code, 64, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("--branch \"no-such-branch\" is not a revision"), "{}", wrong.stderr);
}
