//! `mcp-gitops daemon` on the real test cluster, following a real bare git repository that the
//! test pushes commits to: first apply, forged and valid webhooks, an invalid commit refused
//! while the last good revision stays, drift corrected or only reported, metrics, SIGTERM.

mod common;

use common::cluster::{Kubectl, kubeconfig, repo_copy, unique};
use git2::{IndexAddOption, Repository, Signature};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "webhook-secret-for-tests";

/// A work repository whose commits are pushed to a bare repository the daemon follows.
struct Upstream {
    work: tempfile::TempDir,
    bare: tempfile::TempDir,
}

impl Upstream {
    fn new() -> Upstream {
        let upstream = Upstream { work: tempfile::tempdir().expect("work"), bare: tempfile::tempdir().expect("bare") };
        Repository::init_bare(upstream.bare.path()).expect("init bare");
        Repository::init(upstream.work.path()).expect("init work");
        upstream
    }

    /// Replaces the work tree with `files_from` and pushes a commit to `main`; returns its id.
    fn commit(&self, files_from: &Path, message: &str) -> String {
        let repo = Repository::open(self.work.path()).expect("open");
        for entry in std::fs::read_dir(self.work.path()).expect("read").flatten() {
            if entry.file_name() != ".git" {
                let _ = std::fs::remove_dir_all(entry.path()).or_else(|_| std::fs::remove_file(entry.path()));
            }
        }
        copy(files_from, self.work.path());
        let mut index = repo.index().expect("index");
        index.add_all(["*"], IndexAddOption::DEFAULT, None).expect("add");
        index.update_all(["*"], None).expect("update");
        index.write().expect("write");
        let tree = repo.find_tree(index.write_tree().expect("tree")).expect("tree");
        let signature = Signature::now("Platform Team", "platform@fernhill.io").expect("signature");
        let parent = repo.find_reference("refs/heads/main").ok().and_then(|r| r.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let id = repo.commit(Some("refs/heads/main"), &signature, &signature, message, &tree, &parents).expect("commit");
        let mut remote = repo.remote_anonymous(&self.bare.path().to_string_lossy()).expect("remote");
        remote.push(&["+refs/heads/main:refs/heads/main"], None).expect("push");
        id.to_string()
    }
}

fn copy(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

struct Daemon {
    child: Child,
    url: String,
    http: reqwest::blocking::Client,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn start(upstream: &Upstream, kubeconfig: &Path, inventory: &str, extra: &[&str]) -> Daemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let secret = upstream.work.path().parent().unwrap_or(Path::new("/tmp")).join(unique("secret"));
        std::fs::write(&secret, format!("{SECRET}\n")).expect("secret");
        let cache = tempfile::tempdir().expect("cache").keep();
        let child = Command::new(env!("CARGO_BIN_EXE_mcp-gitops"))
            .args(["daemon", "--repo", &upstream.bare.path().to_string_lossy(), "--branch", "main", "--interval", "1h"])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--webhook-secret-file", &secret.to_string_lossy()])
            .args([
                "--kubeconfig",
                &kubeconfig.to_string_lossy(),
                "--inventory-namespace",
                inventory,
                "--cache-dir",
                &cache.to_string_lossy(),
            ])
            .args(["--log-format", "json"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("daemon starts");
        let daemon = Daemon { child, url: format!("http://127.0.0.1:{port}"), http: reqwest::blocking::Client::new() };
        daemon.wait_until(Duration::from_secs(60), |d| d.get("/readyz").0 == 200);
        daemon
    }

    fn get(&self, path: &str) -> (u16, String) {
        match self.http.get(format!("{}{path}", self.url)).send() {
            Ok(response) => (response.status().as_u16(), response.text().unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    fn status(&self) -> serde_json::Value {
        common::json(&self.get("/status").1)
    }

    fn hook(&self, body: &str, signature: Option<&str>) -> u16 {
        let mut request = self.http.post(format!("{}/hook", self.url)).header("x-github-event", "push").body(body.to_string());
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        request.send().map(|r| r.status().as_u16()).unwrap_or(0)
    }

    fn signed_hook(&self) -> u16 {
        let body = r#"{"ref":"refs/heads/main"}"#;
        self.hook(body, Some(&mcp_gitops::daemon::webhook::sign(SECRET.as_bytes(), body.as_bytes())))
    }

    fn wait_until(&self, limit: Duration, done: impl Fn(&Daemon) -> bool) -> Duration {
        let started = Instant::now();
        while !done(self) {
            assert!(started.elapsed() < limit, "gave up after {limit:?}; status: {}", self.get("/status").1);
            std::thread::sleep(Duration::from_millis(20));
        }
        started.elapsed()
    }

    fn resident_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
    }
}

fn grant_field(kubectl: &Kubectl, namespace: &str, name: &str, field: &str) -> String {
    let out = kubectl.run(&["get", "mcpaccessgrants", name, "-n", namespace, "-o", &format!("jsonpath={{{field}}}")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_daemon_follows_the_branch_refuses_bad_commits_and_corrects_drift() {
    let kubeconfig: PathBuf = kubeconfig();
    let kubectl = Kubectl { kubeconfig: kubeconfig.clone() };
    let (payments, support, inventory) = (unique("dpay"), unique("dsup"), unique("dinv"));
    kubectl.create_namespace(&payments);
    kubectl.create_namespace(&support);
    let renames = [("mcp-team-payments", payments.as_str()), ("mcp-team-support", support.as_str())];
    let platform = repo_copy("examples/platform", &renames);
    let change = repo_copy("examples/pr-change", &renames);
    let upstream = Upstream::new();
    let first = upstream.commit(platform.path(), "platform as deployed");

    let daemon = Daemon::start(&upstream, &kubeconfig, &inventory, &[]);
    assert_eq!(daemon.status()["revision"], first.as_str());
    assert_eq!(grant_field(&kubectl, &payments, "refund-desk", ".spec.maxTrust"), "medium");
    eprintln!("daemon resident memory after the first apply: {} KiB", daemon.resident_kib());

    // A forged webhook is refused and counted; nothing is reconciled.
    assert_eq!(daemon.hook(r#"{"ref":"refs/heads/main"}"#, Some("sha256=0000")), 401);
    assert_eq!(daemon.hook("{}", None), 401);
    assert!(daemon.get("/metrics").1.contains("mcp_gitops_webhook_rejections_total 2"), "{}", daemon.get("/metrics").1);

    // A new commit and a valid webhook: applied promptly.
    let second = upstream.commit(change.path(), "widen refund-desk, revoke the nightly session, drop legacy-ledger-sync");
    let sent = Instant::now();
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |_| grant_field(&kubectl, &payments, "refund-desk", ".spec.maxTrust") == "high");
    eprintln!("webhook to applied (one changed grant among 22 objects): {:?}", sent.elapsed());
    daemon.wait_until(Duration::from_secs(30), |d| d.status()["revision"] == second.as_str());
    let gone = kubectl.run(&["get", "mcpaccessgrants", "legacy-ledger-sync", "-n", &payments]);
    assert!(!gone.status.success(), "the removed grant is pruned");

    // An invalid commit is refused; the last good revision stays live.
    let broken = repo_copy("examples/pr-change", &renames);
    std::fs::write(broken.path().join("teams/payments/grants/refund-desk.yaml"), "kind: [unclosed\n").expect("write");
    let third = upstream.commit(broken.path(), "a broken grant file");
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |d| {
        d.status()["attempted_revision"] == third.as_str() && d.status()["last_result"] == "invalid"
    });
    let status = daemon.status();
    assert_eq!(status["revision"], second.as_str());
    assert!(status["diagnostics"]["first"][0].as_str().is_some_and(|d| d.contains("yaml_syntax")), "{status}");
    assert_eq!(grant_field(&kubectl, &payments, "refund-desk", ".spec.maxTrust"), "high");

    // Fixed again; then an out-of-band edit is reverted on the next reconcile.
    upstream.commit(change.path(), "fix the grant file");
    kubectl.edit_grant_as("kubectl-edit", &payments, "refund-desk", r#"{"spec":{"maxTrust":"low"}}"#);
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |_| grant_field(&kubectl, &payments, "refund-desk", ".spec.maxTrust") == "high");

    let metrics = daemon.get("/metrics").1;
    for name in [
        "mcp_gitops_reconcile_duration_seconds_bucket",
        "mcp_gitops_last_success_timestamp_seconds",
        "mcp_gitops_objects_applied_total{action=\"update\"}",
        "mcp_gitops_drifted_objects",
        "mcp_gitops_git_fetch_failures_total",
        "mcp_gitops_revision_info{revision=",
        "mcp_gitops_reconciles_total{result=\"invalid\"} 1",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics:\n{metrics}");
    }
    eprintln!("daemon resident memory idle: {} KiB\n/metrics after the run:\n{metrics}", daemon.resident_kib());

    // SIGTERM: a clean stop.
    let mut daemon = daemon;
    let pid = daemon.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let started = Instant::now();
    let code = loop {
        if let Some(status) = daemon.child.try_wait().expect("wait") {
            break status.code();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the daemon did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
}

#[test]
fn in_report_mode_drift_is_reported_not_reverted() {
    let kubeconfig: PathBuf = kubeconfig();
    let kubectl = Kubectl { kubeconfig: kubeconfig.clone() };
    let (payments, support, inventory) = (unique("rpay"), unique("rsup"), unique("rinv"));
    kubectl.create_namespace(&payments);
    kubectl.create_namespace(&support);
    let platform = repo_copy("examples/platform", &[("mcp-team-payments", payments.as_str()), ("mcp-team-support", support.as_str())]);
    let upstream = Upstream::new();
    upstream.commit(platform.path(), "platform");
    let daemon = Daemon::start(&upstream, &kubeconfig, &inventory, &["--drift", "report"]);
    kubectl.edit_grant_as("kubectl-edit", &payments, "refund-desk", r#"{"spec":{"maxTrust":"low"}}"#);
    assert_eq!(daemon.signed_hook(), 202);
    let id = format!("MCPAccessGrant/{payments}/refund-desk");
    daemon.wait_until(Duration::from_secs(30), |d| d.status()["drifted"].as_array().is_some_and(|a| a.iter().any(|x| x == id.as_str())));
    assert_eq!(grant_field(&kubectl, &payments, "refund-desk", ".spec.maxTrust"), "low", "report mode leaves the edit");
    assert!(daemon.get("/metrics").1.contains("mcp_gitops_drifted_objects 1"));
}
