//! The real test cluster for integration tests: `tests/cluster.sh up` (kube-apiserver v1.20.2 +
//! etcd), per-test namespaces, kubectl as an independent reader and writer, and the API server's
//! own request counters.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The admin kubeconfig of the shared test cluster, started once per test process.
pub fn kubeconfig() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| up(None)).clone()
}

/// Starts (or finds) the cluster whose state lives in `dir` (`None`: the shared one).
pub fn up(dir: Option<&Path>) -> PathBuf {
    let mut cmd = Command::new("bash");
    cmd.arg(super::root().join("tests/cluster.sh")).arg("up");
    if let Some(dir) = dir {
        cmd.env("MCP_GITOPS_CLUSTER_DIR", dir);
    }
    let out = cmd.output().expect("tests/cluster.sh runs");
    assert!(out.status.success(), "tests/cluster.sh up failed:\n{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last().expect("kubeconfig path").trim())
}

pub fn cluster_script(dir: &Path, command: &str) -> String {
    let out = Command::new("bash")
        .arg(super::root().join("tests/cluster.sh"))
        .arg(command)
        .env("MCP_GITOPS_CLUSTER_DIR", dir)
        .output()
        .expect("tests/cluster.sh runs");
    assert!(out.status.success(), "tests/cluster.sh {command} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A name no other test (or earlier run) uses: namespaces cannot be deleted on this cluster
/// (there is no controller-manager to finish the deletion).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{:x}{:x}{}", std::process::id() % 0xfff, nanos % 0xffff, NEXT.fetch_add(1, Ordering::Relaxed))
}

pub struct Kubectl {
    pub kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("kubectl").arg("--kubeconfig").arg(&self.kubeconfig).args(args).output().expect("kubectl runs")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "kubectl {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn apply_stdin(&self, args: &[&str], manifest: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child.stdin.take().expect("stdin").write_all(manifest.as_bytes()).expect("write manifest");
        child.wait_with_output().expect("kubectl exits")
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        super::json(&self.ok(&[args, &["-o", "json"]].concat()))
    }

    /// An out-of-band edit of a grant by another field manager, as `kubectl edit` would make.
    pub fn edit_grant_as(&self, manager: &str, namespace: &str, name: &str, patch: &str) {
        self.ok(&["patch", "mcpaccessgrants", name, "-n", namespace, "--type", "merge", "--field-manager", manager, "-p", patch]);
    }

    pub fn create_namespace(&self, namespace: &str) {
        self.ok(&["create", "namespace", namespace]);
    }

    /// The API server's count of write requests (create, update, patch, apply, delete) so far.
    pub fn write_requests(&self) -> u64 {
        let metrics = self.ok(&["get", "--raw", "/metrics"]);
        metrics
            .lines()
            .filter(|l| l.starts_with("apiserver_request_total{"))
            .filter(|l| {
                ["POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"].iter().any(|v| l.contains(&format!("verb=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

/// A copy of an example repository with its namespaces renamed, so that tests do not share
/// objects. `renames` maps example namespaces to test namespaces.
pub fn repo_copy(example: &str, renames: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_renamed(&super::root().join(example), dir.path(), renames);
    dir
}

fn copy_renamed(from: &Path, to: &Path, renames: &[(&str, &str)]) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_renamed(&entry.path(), &target, renames);
        } else {
            let mut text = std::fs::read_to_string(entry.path()).expect("text file");
            for (old, new) in renames {
                text = text.replace(old, new);
            }
            std::fs::write(&target, text).expect("write");
        }
    }
}
