//! `mcp-gitops daemon` as a child process for the daemon tests, and the git repositories it
//! follows: a work repository whose commits are pushed (with git2) to a bare repository.

use super::cluster::unique;
use git2::{IndexAddOption, Repository, Signature};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The webhook secret of every test daemon; distinctive, so that tests can grep output for it.
pub const SECRET: &str = "webhook-secret-d4c3b2a1-never-print";

/// A work repository whose commits are pushed to a bare repository the daemon follows.
pub struct Upstream {
    pub work: tempfile::TempDir,
    pub bare: tempfile::TempDir,
}

impl Default for Upstream {
    fn default() -> Self {
        Self::new()
    }
}

impl Upstream {
    pub fn new() -> Upstream {
        Upstream::new_in(&std::env::temp_dir())
    }

    /// With the bare repository inside `parent` (a git server's root).
    pub fn new_in(parent: &Path) -> Upstream {
        let upstream = Upstream { work: tempfile::tempdir().expect("work"), bare: tempfile::tempdir_in(parent).expect("bare") };
        Repository::init_bare(upstream.bare.path()).expect("init bare");
        Repository::init(upstream.work.path()).expect("init work");
        upstream
    }

    pub fn bare_path(&self) -> String {
        self.bare.path().to_string_lossy().into_owned()
    }

    /// Replaces the work tree with `files_from` and pushes a commit to `main`; returns its id.
    pub fn commit(&self, files_from: &Path, message: &str) -> String {
        self.commit_with(files_from, message, true)
    }

    /// A commit with no parent, force-pushed over `main`: a rewritten history.
    pub fn force_push(&self, files_from: &Path, message: &str) -> String {
        self.commit_with(files_from, message, false)
    }

    /// Deletes `main` in the bare repository.
    pub fn delete_branch(&self) {
        let bare = Repository::open_bare(self.bare.path()).expect("open bare");
        bare.find_reference("refs/heads/main").expect("main").delete().expect("delete main");
    }

    /// Commits the work tree as it is and pushes it to `main`; returns the commit id.
    pub fn push(&self, message: &str) -> String {
        self.record(message, true)
    }

    fn commit_with(&self, files_from: &Path, message: &str, on_top: bool) -> String {
        for entry in std::fs::read_dir(self.work.path()).expect("read").flatten() {
            if entry.file_name() != ".git" {
                let _ = std::fs::remove_dir_all(entry.path()).or_else(|_| std::fs::remove_file(entry.path()));
            }
        }
        super::copy_dir(files_from, self.work.path());
        self.record(message, on_top)
    }

    fn record(&self, message: &str, on_top: bool) -> String {
        let repo = Repository::open(self.work.path()).expect("open");
        let mut index = repo.index().expect("index");
        index.add_all(["*"], IndexAddOption::DEFAULT, None).expect("add");
        index.update_all(["*"], None).expect("update");
        index.write().expect("write");
        let tree = repo.find_tree(index.write_tree().expect("tree")).expect("tree");
        let signature = Signature::now("Platform Team", "platform@fernhill.io").expect("signature");
        let parent = repo.find_reference("refs/heads/main").ok().and_then(|r| r.peel_to_commit().ok()).filter(|_| on_top);
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let id = repo.commit(None, &signature, &signature, message, &tree, &parents).expect("commit");
        repo.reference("refs/heads/main", id, true, message).expect("move main");
        let mut remote = repo.remote_anonymous(&self.bare_path()).expect("remote");
        remote.push(&["+refs/heads/main:refs/heads/main"], None).expect("push");
        id.to_string()
    }
}

pub struct Daemon {
    pub child: Child,
    pub url: String,
    http: reqwest::blocking::Client,
    logs: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Starts a daemon following `repo` and waits until it is ready (its first reconcile worked).
    pub fn start(repo: &str, kubeconfig: &Path, inventory: &str, extra: &[&str]) -> Daemon {
        let daemon = Daemon::spawn(repo, kubeconfig, inventory, extra);
        daemon.wait_until(Duration::from_secs(60), |d| d.get("/readyz").0 == 200);
        daemon
    }

    /// Starts a daemon with a webhook secret, json logs and an interval of an hour (tests
    /// trigger it), and returns once it answers HTTP.
    pub fn spawn(repo: &str, kubeconfig: &Path, inventory: &str, extra: &[&str]) -> Daemon {
        Daemon::spawn_with_env(repo, kubeconfig, inventory, extra, &[])
    }

    pub fn spawn_with_env(repo: &str, kubeconfig: &Path, inventory: &str, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("daemon dir");
        let secret = dir.path().join(unique("secret"));
        std::fs::write(&secret, format!("{SECRET}\n")).expect("secret");
        let logs = dir.path().join("daemon.log");
        let child = Command::new(env!("CARGO_BIN_EXE_mcp-gitops"))
            .args(["daemon", "--repo", repo, "--interval", "1h"])
            // `main` unless `extra` names another branch
            .args(if extra.contains(&"--branch") { &[][..] } else { &["--branch", "main"][..] })
            .args(["--listen", "127.0.0.1:0", "--webhook-secret-file", &secret.to_string_lossy()])
            .args(["--kubeconfig", &kubeconfig.to_string_lossy(), "--inventory-namespace", inventory])
            .args(["--cache-dir", &dir.path().join("cache").to_string_lossy(), "--log-format", "json"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&logs).expect("log file"))
            .spawn()
            .expect("daemon starts");
        let mut daemon = Daemon { child, url: String::new(), http: reqwest::blocking::Client::new(), logs, _dir: dir };
        daemon.url = format!("http://{}", listen_address(&mut daemon.child, &daemon.logs));
        daemon.wait_until(Duration::from_secs(30), |d| d.get("/healthz").0 == 200);
        daemon
    }

    /// Everything the daemon logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.logs).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        match self.http.get(format!("{}{path}", self.url)).send() {
            Ok(response) => (response.status().as_u16(), response.text().unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    pub fn status(&self) -> serde_json::Value {
        super::json(&self.get("/status").1)
    }

    pub fn hook(&self, body: &str, signature: Option<&str>) -> u16 {
        self.hook_answer(body, signature).0
    }

    /// The status and body of the answer to a push event.
    pub fn hook_answer(&self, body: &str, signature: Option<&str>) -> (u16, String) {
        let mut request = self.http.post(format!("{}/hook", self.url)).header("x-github-event", "push").body(body.to_string());
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        match request.send() {
            Ok(response) => (response.status().as_u16(), response.text().unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    pub fn signed_hook(&self) -> u16 {
        self.signed_hook_answer().0
    }

    /// A push event signed with the daemon's secret: the status and body of the answer.
    pub fn signed_hook_answer(&self) -> (u16, String) {
        let body = r#"{"ref":"refs/heads/main"}"#;
        self.hook_answer(body, Some(&mcp_gitops::daemon::webhook::sign(SECRET.as_bytes(), body.as_bytes())))
    }

    /// A push event signed with `secret` (GitHub's signature).
    pub fn hook_signed_with(&self, secret: &str) -> u16 {
        let body = r#"{"ref":"refs/heads/main"}"#;
        self.hook(body, Some(&mcp_gitops::daemon::webhook::sign(secret.as_bytes(), body.as_bytes())))
    }

    /// Waits until /status satisfies `done` (`what` says what for, when it never does).
    pub fn wait_for(&self, limit: Duration, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let status = self.status();
            if done(&status) {
                return status;
            }
            assert!(started.elapsed() < limit, "gave up after {limit:?} waiting for {what}; status: {status}\nlogs:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many reconciles ended with `result`, from /metrics.
    pub fn reconciles(&self, result: &str) -> u64 {
        let prefix = format!("mcp_gitops_reconciles_total{{result=\"{result}\"}} ");
        self.get("/metrics").1.lines().find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok()).unwrap_or(0)
    }

    pub fn wait_until(&self, limit: Duration, done: impl Fn(&Daemon) -> bool) -> Duration {
        let started = Instant::now();
        while !done(self) {
            assert!(started.elapsed() < limit, "gave up after {limit:?}; status: {}\nlogs:\n{}", self.get("/status").1, self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
        started.elapsed()
    }

    pub fn resident_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill").success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(started.elapsed() < limit, "the daemon did not stop within {limit:?}\nlogs:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Where a daemon started with `--listen 127.0.0.1:0 --log-format json`, logging to `log`,
/// listens. The system picks the port, so no other process can take it between a test's choice
/// and the daemon's bind; the daemon names it in its `daemon starting` log line.
pub fn listen_address(child: &mut Child, log: &Path) -> String {
    let started = Instant::now();
    loop {
        let logs = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(listen) = logs.lines().find_map(listening_on) {
            return listen;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the daemon exited ({status}) before it listened:\n{logs}");
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the daemon did not say where it listens:\n{logs}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The address of the `daemon starting` JSON log line.
fn listening_on(line: &str) -> Option<String> {
    let line: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = &line["fields"];
    (fields["message"] == "daemon starting").then(|| fields["listen"].as_str().map(String::from))?
}

/// A platform of one server (`docs`, one read tool) in `namespace`: what a daemon test that is not
/// about the repository follows.
pub fn one_server_platform(namespace: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("repo");
    std::fs::create_dir_all(dir.path().join(".mcp")).expect("mkdir");
    std::fs::write(
        dir.path().join(".mcp/servers.yaml"),
        format!("servers:\n  - name: docs\n    namespace: {namespace}\n    gateway: {{enabled: true}}\n    tools: [{{name: search, sideEffect: read}}]\n"),
    )
    .expect("write");
    dir
}
