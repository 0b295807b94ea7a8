//! Credentials never reach an output. A repository holds a `kind: Secret` with distinctive
//! `data` and `stringData` (one key duplicated, so that a YAML diagnostic lands on a secret
//! line), a grant with a token-shaped annotation and a session with `upstreamTokenSecretRef`;
//! the cluster holds the referenced Secret; the kubeconfig carries the cluster's bearer token;
//! the daemon has a webhook secret file, debug logs, and in a second run a git URL with
//! credentials. validate, plan (text, JSON, Markdown, `--out`), apply and the daemon (logs,
//! /status, /metrics) run on it, and none of their output holds any of those values.

mod common;

use common::cluster::{Kubectl, kubeconfig, repo_copy, unique};
use common::{Run, run};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STRING_DATA: &str = "stringdata-value-7f3a91c2";
const DUPLICATED: &str = "duplicated-value-5b8e0d44";
const DATA_PLAIN: &str = "data-value-c0ffee-41d9";
const IN_CLUSTER: &str = "in-cluster-secret-e19a77";
/// A GitHub-token shape, put together at run time so that the source holds no token literal.
fn annotation_token() -> String {
    ["ghp", "Zq8WfT3kLm9XvB2nR7cY4pD6sH1jK0aEuGi5"].join("_")
}
const WEBHOOK_SECRET: &str = "webhook-secret-d4c3b2a1-never-print";
const URL_TOKEN: &str = "urltoken-9a8b7c6d5e4f";

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Every value that must never be printed, with a name for the failure message.
fn needles(cluster_token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Secret stringData", STRING_DATA.to_string()),
        ("duplicated Secret key", DUPLICATED.to_string()),
        ("Secret data (decoded)", DATA_PLAIN.to_string()),
        ("Secret data (base64)", base64(DATA_PLAIN)),
        ("Secret in the cluster", IN_CLUSTER.to_string()),
        ("token-shaped annotation", annotation_token()),
        ("webhook secret", WEBHOOK_SECRET.to_string()),
        ("token in the git URL", URL_TOKEN.to_string()),
        ("the cluster's bearer token", cluster_token.to_string()),
    ]
}

fn assert_clean(what: &str, text: &str, needles: &[(&str, String)]) {
    for (name, value) in needles {
        assert!(!text.contains(value.as_str()), "{what} prints the {name}:\n{text}");
    }
}

fn add_secrets(repo: &Path, namespace: &str) {
    std::fs::create_dir_all(repo.join("secrets")).expect("mkdir");
    std::fs::write(
        repo.join("secrets/refund-copilot-upstream.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: refund-copilot-upstream\n  namespace: {namespace}\ntype: Opaque\ndata:\n  token: {}\nstringData:\n  token: {STRING_DATA}\n  password: {DUPLICATED}\n  password: {DUPLICATED}\n",
            base64(DATA_PLAIN)
        ),
    )
    .expect("write secret");
    let grant = repo.join("teams/payments/grants/refund-desk.yaml");
    let text = std::fs::read_to_string(&grant).expect("grant");
    let text = text.replacen("metadata:\n", &format!("metadata:\n  annotations:\n    ops-note: \"{}\"\n", annotation_token()), 1);
    std::fs::write(&grant, text).expect("write grant");
}

fn output(run: &Run) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

#[test]
fn no_command_prints_a_secret_a_token_or_a_credential() {
    let kubeconfig = kubeconfig();
    let kubectl = Kubectl { kubeconfig: kubeconfig.clone() };
    let cluster_token = std::fs::read_to_string(kubeconfig.with_file_name("admin.token")).expect("admin token").trim().to_string();
    assert!(std::fs::read_to_string(&kubeconfig).expect("kubeconfig").contains(&cluster_token), "the kubeconfig carries the token");
    let needles = needles(&cluster_token);
    let (payments, support, inventory) = (unique("spay"), unique("ssup"), unique("sinv"));
    kubectl.create_namespace(&payments);
    kubectl.create_namespace(&support);
    kubectl.ok(&["create", "secret", "generic", "refund-copilot-upstream", "-n", &payments, &format!("--from-literal=token={IN_CLUSTER}")]);
    let renames = [("mcp-team-payments", payments.as_str()), ("mcp-team-support", support.as_str())];
    let clean = repo_copy("examples/platform", &renames);
    let dirty = repo_copy("examples/platform", &renames);
    add_secrets(dirty.path(), &payments);
    let (clean_arg, dirty_arg) = (clean.path().to_string_lossy().into_owned(), dirty.path().to_string_lossy().into_owned());
    let kube_arg = kubeconfig.to_string_lossy().into_owned();
    let cluster = |command: &str, repo: &str, extra: &[&str]| {
        run(&[&[command, repo, "--kubeconfig", kube_arg.as_str(), "--inventory-namespace", inventory.as_str()][..], extra].concat())
    };

    // Offline: validate and plan of the repository with the Secret, in every format.
    let validate = run(&["validate", &dirty_arg, "--now", common::NOW]);
    assert_eq!(validate.code, 1);
    assert!(validate.stdout.contains("secret_in_repo"), "{}", validate.stdout);
    assert_clean("validate", &output(&validate), &needles);
    assert_clean("validate --format json", &output(&run(&["validate", &dirty_arg, "--format", "json"])), &needles);
    let plan_file = dirty.path().join("plan.json").to_string_lossy().into_owned();
    for format in ["text", "json", "markdown"] {
        let plan = run(&["plan", &dirty_arg, "--base", &clean_arg, "--format", format, "--out", &plan_file, "--now", common::NOW]);
        assert_eq!(plan.code, 1, "{}", plan.stderr);
        assert!(plan.stdout.contains("refund-desk"), "the plan shows the changed grant:\n{}", plan.stdout);
        assert_clean(&format!("plan --format {format}"), &output(&plan), &needles);
        assert_clean("plan --out", &std::fs::read_to_string(&plan_file).expect("plan file"), &needles);
    }

    // Against the cluster: plan, apply (refused: the repository has errors), then the clean one.
    for format in ["text", "json"] {
        let plan = cluster("plan", &dirty_arg, &["--format", format]);
        assert_clean(&format!("plan against the cluster ({format})"), &output(&plan), &needles);
    }
    let refused = cluster("apply", &dirty_arg, &[]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("nothing was applied"), "{}", refused.stderr);
    assert_clean("apply (refused)", &output(&refused), &needles);
    let dry = cluster("apply", &clean_arg, &["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_clean("apply --dry-run", &output(&dry), &needles);
    let applied = cluster("apply", &clean_arg, &["--wait", "--timeout", "1s"]);
    assert!(applied.stdout.contains("created"), "{}", applied.stdout);
    assert_clean("apply --wait", &output(&applied), &needles);
    let live = cluster("plan", &clean_arg, &["--format", "json"]);
    assert_clean("plan of the applied repository", &output(&live), &needles);

    // The daemon on a bare repository: the commit with the Secret, then the clean one.
    let upstream = Upstream::new();
    upstream.commit(dirty.path(), "with a secret");
    let daemon = Daemon::start(&upstream.bare_url(), &kubeconfig, &inventory, &["--log-format", "json"]);
    let invalid = daemon.wait(|s| s["last_result"] == "invalid");
    assert!(invalid.to_string().contains("secret_in_repo"), "{invalid}");
    upstream.commit(clean.path(), "without");
    daemon.hook(WEBHOOK_SECRET);
    daemon.hook("a-wrong-secret");
    daemon.wait(|s| s["last_result"] == "unchanged" || s["last_result"] == "applied");
    let (status, metrics) = (daemon.get("/status"), daemon.get("/metrics"));
    let logs = daemon.stop();
    assert!(logs.contains("webhook refused"), "{logs}");
    assert_clean("daemon /status", &status, &needles);
    assert_clean("daemon /metrics", &metrics, &needles);
    assert_clean("daemon logs (debug, JSON)", &logs, &needles);

    // A git URL with credentials: the fetch fails, and neither logs nor /status show the token.
    let url = format!("https://mcp-bot:{URL_TOKEN}@127.0.0.1:1/platform.git");
    let daemon = Daemon::start(&url, &kubeconfig, &inventory, &[]);
    let failed = daemon.wait(|s| s["last_result"] == "fetch_failed");
    let logs = daemon.stop();
    assert!(failed["last_message"].as_str().is_some_and(|m| m.contains("127.0.0.1:1")), "{failed}");
    assert_clean("daemon /status after a failed fetch", &failed.to_string(), &needles);
    assert_clean("daemon logs after a failed fetch", &logs, &needles);
}

struct Upstream {
    work: tempfile::TempDir,
    bare: tempfile::TempDir,
}

impl Upstream {
    fn new() -> Upstream {
        let upstream = Upstream { work: tempfile::tempdir().expect("work"), bare: tempfile::tempdir().expect("bare") };
        git2::Repository::init_bare(upstream.bare.path()).expect("init bare");
        git2::Repository::init(upstream.work.path()).expect("init work");
        upstream
    }

    fn bare_url(&self) -> String {
        self.bare.path().to_string_lossy().into_owned()
    }

    /// Replaces the work tree with `files` and pushes a commit to `main`.
    fn commit(&self, files: &Path, message: &str) {
        let repo = git2::Repository::open(self.work.path()).expect("open");
        for entry in std::fs::read_dir(self.work.path()).expect("read").flatten() {
            if entry.file_name() != ".git" {
                let _ = std::fs::remove_dir_all(entry.path()).or_else(|_| std::fs::remove_file(entry.path()));
            }
        }
        copy(files, self.work.path());
        let mut index = repo.index().expect("index");
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).expect("add");
        index.update_all(["*"], None).expect("update");
        index.write().expect("write");
        let tree = repo.find_tree(index.write_tree().expect("tree")).expect("tree");
        let signature = git2::Signature::now("Platform Team", "platform@fernhill.io").expect("signature");
        let parent = repo.find_reference("refs/heads/main").ok().and_then(|r| r.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(Some("refs/heads/main"), &signature, &signature, message, &tree, &parents).expect("commit");
        let mut remote = repo.remote_anonymous(&self.bare_url()).expect("remote");
        remote.push(&["+refs/heads/main:refs/heads/main"], None).expect("push");
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

/// The daemon with debug logs written to a file (a pipe could fill up and block it).
struct Daemon {
    child: std::process::Child,
    url: String,
    logs: tempfile::NamedTempFile,
    http: reqwest::blocking::Client,
    _cache: tempfile::TempDir,
}

impl Daemon {
    fn start(repo: &str, kubeconfig: &Path, inventory: &str, extra: &[&str]) -> Daemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let cache = tempfile::tempdir().expect("cache");
        let secret = cache.path().join("webhook-secret");
        std::fs::write(&secret, format!("{WEBHOOK_SECRET}\n")).expect("secret");
        let logs = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_mcp-gitops"))
            .args(["daemon", "--repo", repo, "--branch", "main", "--interval", "1h", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--webhook-secret-file", &secret.to_string_lossy(), "--kubeconfig", &kubeconfig.to_string_lossy()])
            .args(["--inventory-namespace", inventory, "--cache-dir", &cache.path().join("git").to_string_lossy()])
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(logs.reopen().expect("log file"))
            .spawn()
            .expect("daemon starts");
        Daemon { child, url: format!("http://127.0.0.1:{port}"), logs, http: reqwest::blocking::Client::new(), _cache: cache }
    }

    fn get(&self, path: &str) -> String {
        self.http.get(format!("{}{path}", self.url)).send().and_then(|r| r.text()).unwrap_or_default()
    }

    fn hook(&self, secret: &str) {
        let body = r#"{"ref":"refs/heads/main"}"#;
        let signature = mcp_gitops::daemon::webhook::sign(secret.as_bytes(), body.as_bytes());
        let _ = self.http.post(format!("{}/hook", self.url)).header("x-hub-signature-256", signature).body(body).send();
        let _ = self.http.post(format!("{}/hook", self.url)).header("x-gitlab-token", secret).body(body).send();
    }

    fn wait(&self, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let status: serde_json::Value = serde_json::from_str(&self.get("/status")).unwrap_or_default();
            if done(&status) {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "gave up; status: {status}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the daemon and returns everything it logged.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(self.logs.path()).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
