//! The daemon fetching from real git servers on loopback: HTTPS with basic auth (lighttpd +
//! git http-backend, a self-signed CA trusted through SSL_CERT_FILE) and SSH with a key and a
//! known_hosts file (OpenSSH's sshd). Wrong credentials, an unknown host key, a force-push and
//! a deleted branch are reported, not crashed on; a rotated token file is picked up without a
//! restart; credentials never reach the logs, /status, /metrics or Events, wherever the URL
//! carries them; credentials over plain http:// are refused unless allowed.

mod common;

use common::cluster::{Kubectl, kubeconfig, unique};
use common::daemon::{Daemon, Upstream};
use common::git_servers::{GitServer, user};
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "glpat-7Qm2xV9sLk4Rz8Wd";

fn with_grant(namespace: &str, trust: &str) -> tempfile::TempDir {
    let dir = common::daemon::one_server_platform(namespace);
    std::fs::write(
        dir.path().join("grant.yaml"),
        format!("apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata: {{name: readers, namespace: {namespace}}}\nspec:\n  serverRef: {{name: docs}}\n  subject: {{agentID: doc-bot}}\n  maxTrust: {trust}\n  allowedSideEffects: [read]\n"),
    )
    .expect("write");
    dir
}

fn max_trust(kubectl: &Kubectl, namespace: &str) -> String {
    let out = kubectl.run(&["get", "mcpaccessgrants", "readers", "-n", namespace, "-o", "jsonpath={.spec.maxTrust}"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_no_secret(daemon: &Daemon, secret: &str) {
    let everything = format!("{}\n{}\n{}", daemon.logs(), daemon.get("/status").1, daemon.get("/metrics").1);
    assert!(!everything.contains(secret), "a credential was printed:\n{everything}");
}

#[test]
fn https_with_basic_auth_rotated_tokens_force_pushes_and_deleted_branches() {
    let kubectl = Kubectl { kubeconfig: kubeconfig() };
    let (namespace, inventory) = (unique("https"), unique("httpsinv"));
    kubectl.create_namespace(&namespace);
    let root = tempfile::tempdir().expect("server root");
    let upstream = Upstream::new_in(root.path());
    upstream.commit(with_grant(&namespace, "low").path(), "first");
    let server = GitServer::https(root.path(), "platform-bot", TOKEN);
    let name = upstream.bare.path().file_name().expect("name").to_string_lossy().into_owned();
    let url = format!("https://127.0.0.1:{}/git/{name}", server.port);
    let token_file = root.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token");
    let token_arg = token_file.to_string_lossy().into_owned();
    let ca = server.ca_file();
    let extra = ["--git-username", "platform-bot", "--git-token-file", token_arg.as_str()];
    let daemon = Daemon::spawn_with_env(&url, &kubeconfig(), &inventory, &extra, &[("SSL_CERT_FILE", &ca.to_string_lossy())]);
    daemon.wait_until(Duration::from_secs(60), |d| d.get("/readyz").0 == 200);
    assert_eq!(max_trust(&kubectl, &namespace), "low");

    // A wrong token: the fetch fails with a clear message and nothing changes.
    std::fs::write(&token_file, "not-the-token\n").expect("token");
    let second = upstream.commit(with_grant(&namespace, "medium").path(), "second");
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |d| d.status()["last_result"] == "fetch_failed");
    let message = daemon.status()["last_message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("the server refused the credentials"), "{message}");
    assert!(daemon.get("/metrics").1.contains("mcp_gitops_git_fetch_failures_total 1"));
    assert_eq!(max_trust(&kubectl, &namespace), "low");

    // The token file is rotated back: picked up at the next fetch, no restart.
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token");
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |d| d.status()["revision"] == second.as_str());
    assert_eq!(max_trust(&kubectl, &namespace), "medium");

    // A force-push is followed (and logged); a deleted branch is reported, the cluster stays.
    let rewritten = upstream.force_push(with_grant(&namespace, "high").path(), "rewritten history");
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |d| d.status()["revision"] == rewritten.as_str());
    assert!(daemon.logs().contains("force-pushed"), "{}", daemon.logs());
    upstream.delete_branch();
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |d| d.status()["last_result"] == "fetch_failed");
    assert!(daemon.status()["last_message"].as_str().is_some_and(|m| m.contains("does not exist")), "{}", daemon.status());
    assert_eq!(max_trust(&kubectl, &namespace), "high");
    assert_eq!(daemon.status()["revision"], rewritten.as_str());
    assert_no_secret(&daemon, TOKEN);
}

#[test]
fn ssh_with_a_key_and_known_hosts() {
    let kubectl = Kubectl { kubeconfig: kubeconfig() };
    let (namespace, inventory) = (unique("ssh"), unique("sshinv"));
    kubectl.create_namespace(&namespace);
    let upstream = Upstream::new();
    let first = upstream.commit(with_grant(&namespace, "low").path(), "first");
    let server = GitServer::ssh();
    let url = format!("ssh://{}@127.0.0.1:{}{}", user(), server.port, upstream.bare.path().display());
    let (key, known) = (server.client_key(), server.known_hosts());
    let args = |known: &Path| {
        vec![
            "--git-ssh-key-file".to_string(),
            key.to_string_lossy().into_owned(),
            "--git-known-hosts-file".into(),
            known.to_string_lossy().into_owned(),
        ]
    };
    let good = args(&known);
    let daemon = Daemon::start(&url, &kubeconfig(), &inventory, &good.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(daemon.status()["revision"], first.as_str());
    assert_eq!(max_trust(&kubectl, &namespace), "low");
    drop(daemon);

    // A host key that is not the one on file: refused before any credential is offered.
    let wrong = args(&server.wrong_known_hosts());
    let refused = Daemon::spawn(&url, &kubeconfig(), &unique("sshinv"), &wrong.iter().map(String::as_str).collect::<Vec<_>>());
    refused.wait_until(Duration::from_secs(30), |d| d.status()["last_result"] == "fetch_failed");
    let message = refused.status()["last_message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("host key") && message.contains("is not in"), "{message}");
}

/// #32.3: a token in a URL without a path, or in its query, never reaches /status, /metrics, the
/// logs or the `FetchFailed` Event.
#[test]
fn credentials_in_the_repository_url_are_never_shown() {
    let kubectl = Kubectl { kubeconfig: kubeconfig() };
    for (url, secrets) in [
        ("https://user:URLTOKEN-5f2a9c@127.0.0.1:1", vec!["URLTOKEN-5f2a9c"]),
        ("https://127.0.0.1:1/platform.git?private_token=QUERYTOKEN-81be&access_token=OTHER-77d1", vec!["QUERYTOKEN-81be", "OTHER-77d1"]),
    ] {
        let inventory = unique("redactinv");
        kubectl.create_namespace(&inventory);
        let daemon = Daemon::spawn(url, &kubeconfig(), &inventory, &[]);
        daemon.wait_until(Duration::from_secs(30), |d| d.status()["last_result"] == "fetch_failed");
        let status = daemon.status();
        eprintln!("{url}: {}", status["last_message"]);
        assert!(status["last_message"].as_str().is_some_and(|m| m.contains("https://") && m.contains("***")), "{status}");
        let events =
            || String::from_utf8_lossy(&kubectl.run(&["get", "events.events.k8s.io", "-n", &inventory, "-o", "json"]).stdout).into_owned();
        daemon.wait_until(Duration::from_secs(10), |_| events().contains("FetchFailed"));
        let events = events();
        for secret in secrets {
            assert_no_secret(&daemon, secret);
            assert!(!events.contains(secret), "a credential is in an Event:\n{events}");
        }
    }
}

/// #32.3: a token over plain http:// is readable by anyone on the way: refused at start, before
/// the cluster is contacted, unless --allow-insecure-http says so.
#[test]
fn credentials_over_plain_http_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "HTTPTOKEN-0c41\n").expect("token");
    let run = |repo: &str, extra: &[&str]| {
        let out = common::mcp_gitops()
            .args(["daemon", "--repo", repo, "--listen", "127.0.0.1:0", "--cache-dir"])
            .arg(dir.path().join("cache"))
            .args(extra)
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .expect("runs");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let token_arg = ["--git-token-file", token.to_str().expect("utf-8 path")];
    for (repo, extra) in
        [("http://127.0.0.1:1/platform.git", &token_arg[..]), ("http://user:HTTPTOKEN-0c41@127.0.0.1:1/platform.git", &[][..])]
    {
        let (code, stderr) = run(repo, extra);
        assert_eq!(code, Some(1), "{repo}: {stderr}");
        assert!(
            stderr.contains("credentials would be sent over plain http://") && stderr.contains("--allow-insecure-http"),
            "{repo}: {stderr}"
        );
        assert!(!stderr.contains("HTTPTOKEN-0c41"), "{stderr}");
    }
    // Allowed: past the source, it goes on to the (here missing) cluster.
    let (code, stderr) = run("http://127.0.0.1:1/platform.git", &[&token_arg[..], &["--allow-insecure-http"]].concat());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("plain http://") && stderr.to_lowercase().contains("kubeconfig"), "{stderr}");
    // Without credentials, or over https://, nothing is refused.
    let (_, stderr) = run("http://127.0.0.1:1/platform.git", &[]);
    assert!(!stderr.contains("plain http://"), "{stderr}");
}
