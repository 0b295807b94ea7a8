//! The daemon fetching from real git servers on loopback: HTTPS with basic auth (lighttpd +
//! git http-backend, a self-signed CA trusted through SSL_CERT_FILE) and SSH with a key and a
//! known_hosts file (OpenSSH's sshd). Wrong credentials, an unknown host key, a force-push and
//! a deleted branch are reported, not crashed on; a rotated token file is picked up without a
//! restart; credentials never reach the logs or /status.

mod common;

use common::cluster::{Kubectl, kubeconfig, unique};
use common::daemon::{Daemon, Upstream};
use common::git_servers::{GitServer, user};
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "glpat-7Qm2xV9sLk4Rz8Wd";

fn platform(namespace: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("repo");
    std::fs::create_dir_all(dir.path().join(".mcp")).expect("mkdir");
    std::fs::write(
        dir.path().join(".mcp/servers.yaml"),
        format!("servers:\n  - name: docs\n    namespace: {namespace}\n    gateway: {{enabled: true}}\n    tools: [{{name: search, sideEffect: read}}]\n"),
    )
    .expect("write");
    dir
}

fn with_grant(namespace: &str, trust: &str) -> tempfile::TempDir {
    let dir = platform(namespace);
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
