//! The real test cluster for integration tests: `tests/cluster.sh up` (kube-apiserver v1.20.2 +
//! etcd), per-test namespaces, kubectl as an independent reader and writer, and the API server's
//! own request counters.
//!
//! Nothing is left running: a test process holds a shared lock on `<state dir>.users` while it
//! uses a cluster, and a cluster the tests start stops itself once nobody has held that lock for
//! `MCP_GITOPS_CLUSTER_IDLE` seconds (`tests/cluster.sh up --until-unused`), also when a test
//! process is killed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The admin kubeconfig of the cluster the test binaries of one `cargo test` share, started by
/// the first of them that needs it and stopped after the last.
pub fn kubeconfig() -> PathBuf {
    static SHARED: OnceLock<(File, PathBuf)> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let dir = shared_dir();
            let user = hold(&dir);
            (user, up(&dir, &[]))
        })
        .1
        .clone()
}

/// `MCP_GITOPS_CLUSTER_DIR` when set (`.ci/run` sets one per run), else one per target
/// directory: checkouts tested side by side do not share a cluster, nor its write counters.
fn shared_dir() -> PathBuf {
    std::env::var_os("MCP_GITOPS_CLUSTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cluster"))
}

/// A shared lock on `<dir>.users`, held as long as the file is open (for the shared cluster:
/// until the process ends), that keeps the cluster's reaper from stopping it.
pub fn hold(dir: &Path) -> File {
    let mut path = dir.as_os_str().to_owned();
    path.push(".users");
    let path = PathBuf::from(path);
    std::fs::create_dir_all(path.parent().expect("the state dir has a parent")).expect("mkdir");
    let file = File::options().create(true).append(true).open(&path).expect("open the users lock");
    file.lock_shared().expect("lock the users lock");
    file
}

/// Starts (or finds) the cluster whose state lives in `dir`; one it starts stops itself once
/// unused. `env`: more settings for `tests/cluster.sh` (`MCP_GITOPS_APISERVER_ARGS`).
pub fn up(dir: &Path, env: &[(&str, &str)]) -> PathBuf {
    let stdout = cluster_script(dir, &["up", "--until-unused"], env);
    PathBuf::from(stdout.lines().last().expect("kubeconfig path").trim())
}

fn cluster_script(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new("bash")
        .arg(super::root().join("tests/cluster.sh"))
        .args(args)
        .env("MCP_GITOPS_CLUSTER_DIR", dir)
        .envs(env.iter().copied())
        .output()
        .expect("tests/cluster.sh runs");
    assert!(out.status.success(), "tests/cluster.sh {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A cluster of one test alone (fault tests stop and restart its parts), stopped and removed
/// when dropped, and by its reaper when the test process dies first.
pub struct PrivateCluster {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub kubectl: Kubectl,
    _user: File,
    _state: tempfile::TempDir,
}

impl PrivateCluster {
    /// `apiserver_args`: extra kube-apiserver flags (`MCP_GITOPS_APISERVER_ARGS`).
    pub fn up(apiserver_args: &str) -> PrivateCluster {
        let state = tempfile::tempdir().expect("state dir");
        let dir = state.path().join("cluster");
        let user = hold(&dir);
        let kubeconfig = up(&dir, &[("MCP_GITOPS_APISERVER_ARGS", apiserver_args)]);
        PrivateCluster { kubectl: Kubectl { kubeconfig: kubeconfig.clone() }, dir, kubeconfig, _user: user, _state: state }
    }

    /// Runs `tests/cluster.sh COMMAND` on this cluster (`restart-apiserver`, `stop-etcd`, ...).
    pub fn script(&self, command: &str) -> String {
        cluster_script(&self.dir, &[command], &[])
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ =
            Command::new("bash").arg(super::root().join("tests/cluster.sh")).arg("down").env("MCP_GITOPS_CLUSTER_DIR", &self.dir).output();
    }
}

/// The kubectl of the tests: `MCP_GITOPS_KUBECTL`, else the one on `PATH`, else the v1.20.2 one
/// `tests/cluster.sh` builds alongside the server (`tests/cluster.sh kubectl` decides).
fn kubectl() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = Command::new("bash").arg(super::root().join("tests/cluster.sh")).arg("kubectl").output().expect("tests/cluster.sh runs");
        assert!(out.status.success(), "tests/cluster.sh kubectl failed:\n{}", String::from_utf8_lossy(&out.stderr));
        PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last().expect("kubectl path").trim())
    })
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
        Command::new(kubectl()).arg("--kubeconfig").arg(&self.kubeconfig).args(args).output().expect("kubectl runs")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "kubectl {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn apply_stdin(&self, args: &[&str], manifest: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new(kubectl())
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

    /// A token of the ServiceAccount `name`, valid for an hour, through the TokenRequest API
    /// (`kubectl create token` needs kubectl 1.24; this works with the cached 1.20 one too).
    pub fn token(&self, namespace: &str, name: &str) -> String {
        let request = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}"#;
        let out = self.apply_stdin(&["create", "--raw", &format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token")], request);
        assert!(out.status.success(), "TokenRequest for {namespace}/{name} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        super::json(&String::from_utf8_lossy(&out.stdout))["status"]["token"].as_str().expect("a token").to_string()
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

/// One test's corner of the shared cluster: the example's two team namespaces (created) and an
/// inventory namespace (left to whoever writes it first), each named for this test alone.
pub struct Teams {
    pub kubectl: Kubectl,
    pub kubeconfig: PathBuf,
    pub payments: String,
    pub support: String,
    pub inventory: String,
}

impl Teams {
    pub fn new(prefix: &str) -> Teams {
        let kubeconfig = kubeconfig();
        let teams = Teams {
            kubectl: Kubectl { kubeconfig: kubeconfig.clone() },
            kubeconfig,
            payments: unique(&format!("{prefix}pay")),
            support: unique(&format!("{prefix}sup")),
            inventory: unique(&format!("{prefix}inv")),
        };
        teams.kubectl.create_namespace(&teams.payments);
        teams.kubectl.create_namespace(&teams.support);
        teams
    }

    /// An example repository moved into this test's team namespaces.
    pub fn repo(&self, example: &str) -> tempfile::TempDir {
        repo_copy(example, &[("mcp-team-payments", self.payments.as_str()), ("mcp-team-support", self.support.as_str())])
    }
}

/// `n` private clusters side by side (each its own state dir, ports, certificates and
/// kubeconfig, with the CRDs installed), started in parallel: each `tests/cluster.sh up` waits
/// for its own server's readiness, and the build and package locks let only one of them build.
pub fn private_clusters(n: usize, apiserver_args: &str) -> Vec<PrivateCluster> {
    std::thread::scope(|scope| {
        let starting: Vec<_> = (0..n).map(|_| scope.spawn(|| PrivateCluster::up(apiserver_args))).collect();
        starting.into_iter().map(|started| started.join().expect("a cluster starts")).collect()
    })
}

/// One kubeconfig with a context per `(name, kubeconfig)`, each named `name` (the cluster and
/// user too), as a person who manages a fleet has it; written as JSON (which is YAML) to `file`.
pub fn fleet_kubeconfig(contexts: &[(&str, &Path)], file: &Path) {
    use kube::config::{Kubeconfig, NamedCluster, NamedContext};
    let mut fleet = Kubeconfig::default();
    for (name, path) in contexts {
        let one = Kubeconfig::read_from(path).expect("a kubeconfig");
        let rename_cluster = |c: NamedCluster| NamedCluster { name: name.to_string(), ..c };
        fleet.clusters.extend(one.clusters.into_iter().map(rename_cluster));
        fleet.auth_infos.extend(one.auth_infos.into_iter().map(|mut a| {
            a.name = name.to_string();
            a
        }));
        fleet.contexts.extend(one.contexts.into_iter().map(|mut c: NamedContext| {
            c.name = name.to_string();
            if let Some(context) = c.context.as_mut() {
                context.cluster = name.to_string();
                context.user = Some(name.to_string());
            }
            c
        }));
    }
    fleet.current_context = contexts.first().map(|(name, _)| name.to_string());
    std::fs::write(file, serde_json::to_string_pretty(&fleet).expect("a kubeconfig serializes")).expect("write the kubeconfig");
}
