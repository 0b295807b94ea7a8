//! Faults on the real cluster, each on a private kube-apiserver + etcd of `tests/cluster.sh`
//! (except the field-manager race, which stops nothing): etcd stopped in the middle of an apply,
//! the API server restarted in the middle of a daemon reconcile, an API server throttled to one
//! mutating request at a time (HTTP 429), and another field manager editing the objects while the
//! daemon reconciles. Each ends in a clear report (exit 1 naming what was and was not applied, or
//! the daemon's /status), converges on the next run, and deletes no object mcp-gitops does not
//! own: every test first creates unowned objects in the same namespaces and compares a listing
//! of everything before and after.

mod common;

use common::cluster::{Kubectl, PrivateCluster, unique};
use common::daemon::{Daemon, Upstream};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The fault tests start servers and load both cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A repository of one server and `grants` grants in `namespace`, with the metadata file first.
fn bulk_repo(namespace: &str, grants: usize) -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("repo");
    write_bulk(repo.path(), namespace, grants, "low");
    repo
}

fn write_bulk(dir: &Path, namespace: &str, grants: usize, trust: &str) {
    std::fs::create_dir_all(dir.join(".mcp")).expect("mkdir");
    std::fs::write(
        dir.join(".mcp/servers.yaml"),
        format!("servers:\n  - name: bulk\n    namespace: {namespace}\n    gateway: {{enabled: true}}\n    tools: [{{name: read_t, sideEffect: read}}]\n"),
    )
    .expect("write");
    let text: String = (0..grants)
        .map(|i| format!("---\napiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata: {{name: g{i:05}, namespace: {namespace}}}\nspec:\n  serverRef: {{name: bulk}}\n  subject: {{agentID: a{i}}}\n  maxTrust: {trust}\n  allowedSideEffects: [read]\n"))
        .collect();
    std::fs::write(dir.join("grants.yaml"), text).expect("write");
}

/// Objects nobody told mcp-gitops about, in `namespace`: a server, a grant, a session and a
/// ConfigMap, created with kubectl and no mcp-gitops label.
fn create_unowned(kubectl: &Kubectl, namespace: &str) {
    let manifest = format!(
        "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPServer\nmetadata: {{name: theirs-server, namespace: {namespace}}}\nspec:\n  image: example.org/theirs\n  port: 8088\n---\napiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata: {{name: theirs-grant, namespace: {namespace}}}\nspec:\n  serverRef: {{name: bulk}}\n  subject: {{agentID: someone-else}}\n  maxTrust: high\n---\napiVersion: mcpruntime.org/v1alpha1\nkind: MCPAgentSession\nmetadata: {{name: theirs-session, namespace: {namespace}}}\nspec:\n  serverRef: {{name: bulk}}\n  subject: {{agentID: someone-else}}\n  consentedTrust: low\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: theirs-config, namespace: {namespace}}}\ndata: {{owner: another-team}}\n"
    );
    let out = kubectl.apply_stdin(&["create"], &manifest);
    assert!(out.status.success(), "kubectl create: {}", String::from_utf8_lossy(&out.stderr));
}

/// Every object of the three kinds and every ConfigMap, as `Kind/namespace/name` -> uid, for
/// the objects that do not carry mcp-gitops' label.
fn unowned(kubectl: &Kubectl) -> BTreeMap<String, String> {
    let list = kubectl.json(&["get", "mcpservers,mcpaccessgrants,mcpagentsessions,configmaps", "--all-namespaces"]);
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["metadata"]["labels"]["app.kubernetes.io/managed-by"] != "mcp-gitops")
        .map(|o| {
            let id = format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["namespace"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            );
            (id, o["metadata"]["uid"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

fn assert_unowned_intact(before: &BTreeMap<String, String>, kubectl: &Kubectl) {
    let after = unowned(kubectl);
    let lost: Vec<&String> = before.iter().filter(|(id, uid)| after.get(*id) != Some(uid)).map(|(id, _)| id).collect();
    assert!(lost.is_empty(), "unowned objects deleted or replaced: {lost:?}");
    assert!(before.keys().any(|id| id.contains("theirs-grant")), "the test's unowned objects are in the listing");
}

fn grant_count(kubectl: &Kubectl, namespace: &str) -> usize {
    let out = kubectl.ok(&["get", "mcpaccessgrants", "-n", namespace, "-o", "name"]);
    out.lines().filter(|l| l.contains("/g")).count()
}

fn exists(kubectl: &Kubectl, resource: &str, namespace: &str, name: &str) -> bool {
    kubectl.run(&["get", resource, name, "-n", namespace, "-o", "name"]).status.success()
}

fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "gave up after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mcp(args: &[&str]) -> common::Run {
    common::run(args)
}

#[test]
fn etcd_stopped_mid_apply_is_reported_and_the_next_run_converges() {
    let _serial = serial();
    let cluster = PrivateCluster::up("");
    let kubectl = &cluster.kubectl;
    let namespace = unique("etcd");
    kubectl.create_namespace(&namespace);
    create_unowned(kubectl, &namespace);
    let before = unowned(kubectl);
    let grants = 1200;
    let repo = bulk_repo(&namespace, grants);
    let (repo_arg, kubeconfig) = (repo.path().to_string_lossy().into_owned(), cluster.kubeconfig.to_string_lossy().into_owned());

    let child = Command::new(env!("CARGO_BIN_EXE_mcp-gitops"))
        .args(["apply", &repo_arg, "--kubeconfig", &kubeconfig, "--concurrency", "2", "--color", "never"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn apply");
    wait_for(Duration::from_secs(60), "the apply to create g00050", || exists(kubectl, "mcpaccessgrants", &namespace, "g00050"));
    let stopped = Instant::now();
    cluster.script("stop-etcd");
    let out = child.wait_with_output().expect("apply exits");
    let took = stopped.elapsed();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("apply ended {took:?} after etcd stopped:\n{}\n{stderr}", stdout.lines().rev().take(5).collect::<Vec<_>>().join("\n"));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(took < Duration::from_secs(120), "apply took {took:?} to give up once etcd stopped");
    assert!(stdout.contains(&format!("created MCPAccessGrant/{namespace}/g0000")), "what was applied is listed:\n{stdout}");
    assert!(stdout.contains("Apply incomplete"), "{stdout}");
    let failed_or_skipped = stdout.lines().filter(|l| l.contains("not attempted") || l.contains("failed")).count();
    assert!(failed_or_skipped > 0, "what was not applied is listed:\n{stdout}");

    cluster.script("start-etcd");
    wait_for(Duration::from_secs(60), "the API server to serve again", || kubectl.run(&["get", "--raw", "/readyz"]).status.success());
    let again = mcp(&["apply", &repo_arg, "--kubeconfig", &kubeconfig, "--color", "never"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(grant_count(kubectl, &namespace), grants);
    let noop = mcp(&["plan", &repo_arg, "--kubeconfig", &kubeconfig, "--detailed-exitcode"]);
    assert_eq!(noop.code, 0, "converged: nothing left to change\n{}", noop.stdout);
    let pruned = mcp(&["apply", &repo_arg, "--kubeconfig", &kubeconfig, "--prune"]);
    assert_eq!(pruned.code, 0, "{}\n{}", pruned.stdout, pruned.stderr);
    assert_unowned_intact(&before, kubectl);
}

#[test]
fn a_throttled_and_stalling_api_server_slows_apply_down_but_loses_nothing() {
    let _serial = serial();
    // Max-in-flight limits answer 429 (with Retry-After) only without priority and fairness,
    // and never to system:masters: mcp-gitops runs as the restricted user, made admin by RBAC.
    let cluster = PrivateCluster::up("--enable-priority-and-fairness=false --max-mutating-requests-inflight=1 --max-requests-inflight=10");
    let kubectl = &cluster.kubectl;
    kubectl.ok(&["create", "clusterrolebinding", "restricted-admin", "--clusterrole=cluster-admin", "--user=restricted"]);
    let namespace = unique("slow");
    kubectl.create_namespace(&namespace);
    create_unowned(kubectl, &namespace);
    let before = unowned(kubectl);
    let repo = bulk_repo(&namespace, 600);
    let repo_arg = repo.path().to_string_lossy().into_owned();
    let kubeconfig = cluster.kubeconfig.with_file_name("restricted.kubeconfig").to_string_lossy().into_owned();
    let dropped = || -> u64 {
        let metrics = kubectl.ok(&["get", "--raw", "/metrics"]);
        metrics
            .lines()
            .filter(|l| l.starts_with("apiserver_dropped_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };

    // One mutating request at a time, and etcd stalls (SIGSTOP) for 3 s in the middle of the run.
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_mcp-gitops"))
        .args(["apply", &repo_arg, "--kubeconfig", &kubeconfig, "--concurrency", "16", "--color", "never"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn apply");
    wait_for(Duration::from_secs(60), "the apply to create g00050", || exists(kubectl, "mcpaccessgrants", &namespace, "g00050"));
    let etcd = std::fs::read_to_string(cluster.dir.join("etcd.pid")).expect("etcd pid");
    assert!(Command::new("kill").args(["-STOP", etcd.trim()]).status().expect("kill").success());
    std::thread::sleep(Duration::from_secs(3));
    assert!(Command::new("kill").args(["-CONT", etcd.trim()]).status().expect("kill").success());
    let out = child.wait_with_output().expect("apply exits");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("apply against a throttled, stalling server: {:?}, {} requests answered 429", started.elapsed(), dropped());
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("Apply complete: 601 created"), "{stdout}");
    assert!(dropped() > 0, "the server did throttle (HTTP 429)");
    assert_eq!(grant_count(kubectl, &namespace), 600);

    // A change under the same throttle: only what changed is written, then nothing.
    write_bulk(repo.path(), &namespace, 550, "medium");
    let update = mcp(&["apply", &repo_arg, "--kubeconfig", &kubeconfig, "--concurrency", "16", "--prune", "--max-deletes", "60"]);
    assert_eq!(update.code, 0, "{}\n{}", update.stdout, update.stderr);
    assert!(update.stdout.contains("550 updated, 50 deleted"), "{}", update.stdout);
    let again = mcp(&["apply", &repo_arg, "--kubeconfig", &kubeconfig, "--prune"]);
    assert!(again.stdout.contains("551 unchanged (no request)"), "{}", again.stdout);
    assert_unowned_intact(&before, kubectl);
}

#[test]
fn the_api_server_restarted_during_a_daemon_reconcile_is_reported_then_converges() {
    let _serial = serial();
    let cluster = PrivateCluster::up("");
    let kubectl = &cluster.kubectl;
    let (namespace, inventory) = (unique("drst"), unique("dinv"));
    kubectl.create_namespace(&namespace);
    create_unowned(kubectl, &namespace);
    let before = unowned(kubectl);
    let upstream = Upstream::new();
    write_bulk(upstream.work.path(), &namespace, 10, "low");
    let first = upstream.push("ten grants");
    let daemon = Daemon::spawn(&upstream.bare_path(), &cluster.kubeconfig, &inventory, &["--max-deletes", "5000"]);
    daemon.wait_for(Duration::from_secs(60), "the first commit", |s| s["revision"] == first.as_str());

    let grants = 3000;
    write_bulk(upstream.work.path(), &namespace, grants, "low");
    let second = upstream.push("three thousand grants");
    daemon.signed_hook();
    // Once the reconcile is under way (a few percent written), the API server dies and comes back.
    wait_for(Duration::from_secs(60), "the daemon to create g00100", || exists(kubectl, "mcpaccessgrants", &namespace, "g00100"));
    let pid = std::fs::read_to_string(cluster.dir.join("kube-apiserver.pid")).expect("pid");
    assert!(Command::new("kill").args(["-9", pid.trim()]).status().expect("kill").success());
    let failed = daemon.wait_for(Duration::from_secs(60), "the reconcile to fail", |s| s["last_result"] == "failed");
    eprintln!("/status after the API server died: {failed}");
    assert_eq!(failed["revision"], first.as_str(), "the revision live is still the first one");
    assert_eq!(failed["attempted_revision"], second.as_str());
    let message = failed["last_message"].as_str().unwrap_or_default();
    assert!(
        // The apply that broke off, or (when a trigger that arrived meanwhile starts the next
        // reconcile at once: the push is also a filesystem event) the read that finds no server.
        message.contains("failed") && message.contains(&second) || message.contains("cannot read the cluster"),
        "the message says what happened: {message}"
    );
    cluster.script("restart-apiserver");

    // The daemon backs off, retries on its own and converges on the same revision.
    let done = daemon.wait_for(Duration::from_secs(120), "convergence", |s| s["revision"] == second.as_str());
    eprintln!("/status after convergence: {done}");
    assert_eq!(done["last_result"], "applied", "the revision and the result come together: {done}");
    assert_eq!(done["counts"]["failed"], 0);
    assert!(daemon.reconciles("failed") >= 1, "{}", daemon.get("/metrics").1);
    assert_eq!(grant_count(kubectl, &namespace), grants);
    let inventory_objects = kubectl.json(&["get", "configmap", "mcp-gitops-inventory", "-n", &inventory]);
    assert_eq!(inventory_objects["data"]["objects"].as_str().map(|o| o.lines().count()), Some(grants + 1));
    let repo_arg = upstream.work.path().to_string_lossy().into_owned();
    let kubeconfig = cluster.kubeconfig.to_string_lossy().into_owned();
    let noop = mcp(&["plan", &repo_arg, "--kubeconfig", &kubeconfig, "--inventory-namespace", &inventory, "--detailed-exitcode"]);
    assert_eq!(noop.code, 0, "{}", noop.stdout);
    assert_unowned_intact(&before, kubectl);
}

#[test]
fn another_field_manager_racing_the_daemon_is_overridden_and_nothing_else_is_touched() {
    let _serial = serial();
    let kubeconfig = common::cluster::kubeconfig();
    let kubectl = Kubectl { kubeconfig: kubeconfig.clone() };
    let (namespace, inventory) = (unique("race"), unique("rinv"));
    kubectl.create_namespace(&namespace);
    create_unowned(&kubectl, &namespace);
    let before = unowned(&kubectl);
    let upstream = Upstream::new();
    write_bulk(upstream.work.path(), &namespace, 40, "low");
    let revision = upstream.push("forty grants");
    let daemon = Daemon::spawn(&upstream.bare_path(), &kubeconfig, &inventory, &["--max-deletes", "5000"]);
    daemon.wait_for(Duration::from_secs(60), "the first apply", |s| s["revision"] == revision.as_str());

    // Two racers for 8 s: a merge patch and a forced server-side apply under other managers,
    // on our grants and on theirs, while webhooks keep the daemon reconciling.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let racers: Vec<_> = [("racer-edit", false), ("racer-apply", true)]
        .into_iter()
        .map(|(manager, server_side)| {
            let (stop, namespace, kubeconfig) = (stop.clone(), namespace.clone(), kubeconfig.clone());
            std::thread::spawn(move || {
                let kubectl = Kubectl { kubeconfig };
                let mut edits = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let name = format!("g{:05}", edits % 40);
                    if server_side {
                        let manifest = format!("apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  maxTrust: high\n");
                        let _ = kubectl.apply_stdin(&["apply", "--server-side", "--force-conflicts", "--field-manager", manager], &manifest);
                    } else {
                        let patch = r#"{"spec":{"maxTrust":"medium"}}"#;
                        let _ = kubectl.run(&["patch", "mcpaccessgrants", &name, "-n", &namespace, "--type", "merge", "--field-manager", manager, "-p", patch]);
                        let _ = kubectl.run(&["label", "mcpaccessgrants", "theirs-grant", "-n", &namespace, "--overwrite", &format!("edit={edits}")]);
                    }
                    edits += 1;
                }
                edits
            })
        })
        .collect();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        daemon.signed_hook();
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let edits: Vec<usize> = racers.into_iter().map(|r| r.join().expect("racer")).collect();
    let drift_seen = daemon.reconciles("applied");
    eprintln!("racers made {edits:?} edits; {drift_seen} reconciles applied changes");
    assert!(edits.iter().all(|&n| n > 0));
    assert!(drift_seen >= 2, "the daemon reconciled during the race: {}", daemon.get("/metrics").1);

    // After the race the daemon converges: every grant is back to git and mcp-gitops alone owns
    // the field (a reconcile planned before the racers' last edit may finish first: poke again).
    let back_to_git = || {
        let grants = kubectl.json(&["get", "mcpaccessgrants", "-n", &namespace, "--show-managed-fields"]);
        grants["items"].as_array().into_iter().flatten().filter(|g| g["metadata"]["name"] != "theirs-grant").all(|grant| {
            let owners: Vec<&str> = grant["metadata"]["managedFields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["fieldsV1"]["f:spec"].get("f:maxTrust").is_some())
                .filter_map(|m| m["manager"].as_str())
                .collect();
            grant["spec"]["maxTrust"] == "low" && owners == ["mcp-gitops"]
        })
    };
    wait_for(Duration::from_secs(60), "every grant back to git", || {
        daemon.signed_hook();
        std::thread::sleep(Duration::from_millis(500));
        back_to_git()
    });
    daemon.signed_hook();
    daemon.wait_for(Duration::from_secs(30), "a reconcile with nothing left to correct", |s| s["last_result"] == "unchanged");
    assert_eq!(daemon.reconciles("failed"), 0, "a race is not a failure: {}", daemon.get("/metrics").1);
    let repo_arg = upstream.work.path().to_string_lossy().into_owned();
    let kubeconfig_arg = kubeconfig.to_string_lossy().into_owned();
    let plan = mcp(&["plan", &repo_arg, "--kubeconfig", &kubeconfig_arg, "--inventory-namespace", &inventory, "--format", "json"]);
    let plan = common::json(&plan.stdout);
    assert_eq!(plan["summary"]["update"], 0, "{}", plan["summary"]);
    assert_unowned_intact(&before, &kubectl);
}
