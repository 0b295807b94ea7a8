//! The daemon's image (deploy/Dockerfile on the distroless stand-in, built by `tests/image.sh
//! build` from this build's binary) fetching its repository from inside a container over HTTPS
//! and SSH — the real lighttpd and sshd of tests/daemon_remotes.rs — with the token, the CA,
//! the SSH key and known_hosts mounted read-only as a Secret mounts them. What only the image can
//! get wrong: the TLS and SSH stack linked into the binary, the CA bundle of the base, files
//! readable by uid 65532, a read-only root. (`tests/image.sh check` runs the release image as a
//! pod runs it, in-cluster configuration included.)

mod common;

use common::cluster::{Kubectl, kubeconfig, unique};
use common::daemon::{Upstream, one_server_platform};
use common::git_servers::{GitServer, user};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const IMAGE: &str = "localhost/mcp-gitops:test-remotes";

fn image_sh(args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(common::root().join("tests/image.sh"))
        .args(args)
        .env("MCP_GITOPS_IMAGE", IMAGE)
        .env("MCP_GITOPS_BINARY", env!("CARGO_BIN_EXE_mcp-gitops"))
        .output()
        .expect("bash runs")
}

/// The image with this build's binary, built once per test run.
fn image() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = image_sh(&["build"]);
        assert!(out.status.success(), "tests/image.sh build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    });
}

/// A directory as the kubelet mounts a Secret: files 0644 in a 0755 directory, owned by root.
fn secret_volume(files: &[(&str, &Path)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("secret dir");
    for (name, from) in files {
        std::fs::copy(from, dir.path().join(name)).expect("copy into the secret");
        std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// The daemon in a container of the image; removed when dropped.
struct Container {
    name: String,
    url: String,
    _volumes: Vec<tempfile::TempDir>,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rm", "-f", "-t", "0", &self.name]).output();
    }
}

impl Container {
    /// `daemon --repo URL EXTRA...` with the Secret `git` at /etc/mcp-gitops/git and the admin
    /// kubeconfig at /etc/mcp-gitops/kube, a read-only root and no capabilities.
    fn start(url: &str, git: tempfile::TempDir, env: &[&str], extra: &[&str]) -> Container {
        image();
        let kube = secret_volume(&[("config", &kubeconfig())]);
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let name = unique("image-remote");
        let mut args: Vec<String> = ["run", "-d", "--pull=never", "--name", &name, "--network", "host", "--read-only", "--cap-drop", "ALL"]
            .map(String::from)
            .to_vec();
        args.extend(["--tmpfs".into(), "/var/cache/mcp-gitops:rw,mode=1777".into()]);
        args.extend(["-v".into(), format!("{}:/etc/mcp-gitops/git:ro", git.path().display())]);
        args.extend(["-v".into(), format!("{}:/etc/mcp-gitops/kube:ro", kube.path().display())]);
        for variable in env {
            args.extend(["-e".into(), variable.to_string()]);
        }
        args.push(IMAGE.into());
        let inventory = unique("imageinv");
        for arg in ["daemon", "--repo", url, "--branch", "main", "--interval", "1h", "--listen", &format!("127.0.0.1:{port}")] {
            args.push(arg.into());
        }
        for arg in [
            "--kubeconfig",
            "/etc/mcp-gitops/kube/config",
            "--inventory-namespace",
            &inventory,
            "--mirror-dir",
            "/var/cache/mcp-gitops/repository",
        ] {
            args.push(arg.into());
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let out = image_sh(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let container = Container { name, url: format!("http://127.0.0.1:{port}"), _volumes: vec![git, kube] };
        assert!(out.status.success(), "podman run failed:\n{}", String::from_utf8_lossy(&out.stderr));
        container
    }

    fn logs(&self) -> String {
        let out = Command::new("podman").args(["logs", &self.name]).output().expect("podman logs");
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    fn status(&self) -> serde_json::Value {
        reqwest::blocking::get(format!("{}/status", self.url))
            .ok()
            .and_then(|r| r.text().ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// Waits for the first reconcile to end and returns /status.
    fn reconciled(&self) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let status = self.status();
            if !status["last_result"].as_str().unwrap_or_default().is_empty() {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "no reconcile within 60 s; status {status}\nlogs:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn server_exists(kubectl: &Kubectl, namespace: &str) -> bool {
    kubectl.run(&["get", "mcpserver", "docs", "-n", namespace]).status.success()
}

#[test]
fn the_image_fetches_over_https_with_a_token_and_a_private_ca() {
    let kubectl = Kubectl { kubeconfig: kubeconfig() };
    let namespace = unique("imagehttps");
    kubectl.create_namespace(&namespace);
    let root = tempfile::tempdir().expect("server root");
    let upstream = Upstream::new_in(root.path());
    let first = upstream.commit(one_server_platform(&namespace).path(), "first");
    let server = GitServer::https(root.path(), "platform-bot", "image-token-5e1f");
    let name = upstream.bare.path().file_name().expect("name").to_string_lossy().into_owned();
    let url = format!("https://127.0.0.1:{}/git/{name}", server.port);
    let token = root.path().join("token");
    std::fs::write(&token, "image-token-5e1f\n").expect("token");
    let git = secret_volume(&[("token", &token), ("ca.crt", &server.ca_file())]);
    let container = Container::start(
        &url,
        git,
        &["SSL_CERT_FILE=/etc/mcp-gitops/git/ca.crt"],
        &["--git-username", "platform-bot", "--git-token-file", "/etc/mcp-gitops/git/token"],
    );
    let status = container.reconciled();
    assert_eq!(
        (status["last_result"].as_str(), status["revision"].as_str()),
        (Some("applied"), Some(first.as_str())),
        "{status}\n{}",
        container.logs()
    );
    assert!(server_exists(&kubectl, &namespace));
    assert!(!container.logs().contains("image-token-5e1f"), "the token reached the logs");
}

#[test]
fn the_image_fetches_over_ssh_with_a_key_and_known_hosts() {
    let kubectl = Kubectl { kubeconfig: kubeconfig() };
    let namespace = unique("imagessh");
    kubectl.create_namespace(&namespace);
    let upstream = Upstream::new();
    let first = upstream.commit(one_server_platform(&namespace).path(), "first");
    let server = GitServer::ssh();
    let url = format!("ssh://{}@127.0.0.1:{}{}", user(), server.port, upstream.bare.path().display());
    let git = secret_volume(&[("ssh-privatekey", &server.client_key()), ("known_hosts", &server.known_hosts())]);
    let extra = ["--git-ssh-key-file", "/etc/mcp-gitops/git/ssh-privatekey", "--git-known-hosts-file", "/etc/mcp-gitops/git/known_hosts"];
    let container = Container::start(&url, git, &[], &extra);
    let status = container.reconciled();
    assert_eq!(
        (status["last_result"].as_str(), status["revision"].as_str()),
        (Some("applied"), Some(first.as_str())),
        "{status}\n{}",
        container.logs()
    );
    assert!(server_exists(&kubectl, &namespace));
}
