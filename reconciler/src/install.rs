//! `mcp-gitops install`: the manifests of `deploy/` and its components (the files users apply by
//! hand, compiled in)
//! set for one git source: the repository, branch and path in the daemon's arguments, a Secret
//! for the git credentials and one for the webhook secret, a ConfigMap for the allowed signers
//! of `--verify-signatures`, all in the chosen namespace. Takes the user's choices and files;
//! gives back the objects, their YAML, or applies them through `cluster` and prunes what an
//! earlier install wrote and this one no longer does. Never prints.

use crate::cluster::{Applied, Cluster, ClusterError};
use crate::model::live::MANAGED_BY;
use crate::source::SourceError;
use crate::source::mirror::{Credentials, redact, sends_secrets_in_clear};
use base64::Engine;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// The field manager of install's applies: its own, so that the daemon (`mcp-gitops`) and
/// install never take each other's fields.
/// The Secrets and ConfigMap install writes also carry it as their `app.kubernetes.io/managed-by`
/// label: the two together mark what install may prune.
pub const FIELD_MANAGER: &str = "mcp-gitops-install";

/// The kustomize base, in the order of `resources` in deploy/kustomization.yaml (a test keeps
/// the two lists equal).
const BASE: [(&str, &str); 3] = [
    ("namespace.yaml", include_str!("../../deploy/namespace.yaml")),
    ("rbac.yaml", include_str!("../../deploy/rbac.yaml")),
    ("daemon.yaml", include_str!("../../deploy/daemon.yaml")),
];
/// The namespace, and the name of every object, in deploy/.
const BASE_NAME: &str = "mcp-gitops";

/// The files the daemon reads under each mount: the keys of the Secrets and the ConfigMap.
const WEBHOOK_KEY: &str = "secret";
const TOKEN_KEY: &str = "token";
const SSH_KEY_KEY: &str = "identity";
const KNOWN_HOSTS_KEY: &str = "known_hosts";
const SIGNERS_KEY: &str = "allowed_signers";

/// deploy/components, the kustomize components users add by hand: each adds to the daemon's
/// Deployment the flags of one Secret's or ConfigMap's files and its mount. Install applies the
/// same patches, so that the two cannot drift apart.
const COMPONENTS: [(&str, &str); 4] = [
    ("git-https", include_str!("../../deploy/components/git-https/kustomization.yaml")),
    ("git-ssh", include_str!("../../deploy/components/git-ssh/kustomization.yaml")),
    ("webhook", include_str!("../../deploy/components/webhook/kustomization.yaml")),
    ("verify-signatures", include_str!("../../deploy/components/verify-signatures/kustomization.yaml")),
];

/// What to install: the daemon's source and where it runs.
#[derive(Debug, Clone, Default)]
pub struct Install {
    pub repo: String,
    pub branch: String,
    /// The directory inside the repository; empty for its root.
    pub path: String,
    pub namespace: String,
    /// The daemon's image; `None` keeps deploy/daemon.yaml's.
    pub image: Option<String>,
    pub webhook_secret_file: Option<PathBuf>,
    /// `--verify-signatures` with this allowed_signers file.
    pub allowed_signers: Option<PathBuf>,
    pub credentials: Credentials,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot read {flag} {}: {source}", file.display())]
    Read { flag: &'static str, file: PathBuf, source: std::io::Error },
    #[error("{flag} {} is empty", file.display())]
    Empty { flag: &'static str, file: PathBuf },
    /// The compiled-in deploy/ is not as install expects: a bug the unit tests catch.
    #[error("deploy/ {0}")]
    Base(String),
    #[error(
        "the manifests hold the Secret{} {}, whose values are not printed to a terminal; redirect them to a file: mcp-gitops install ... --export > mcp-gitops.yaml",
        if .0.len() == 1 { "" } else { "s" },
        .0.join(", ")
    )]
    Terminal(Vec<String>),
    #[error("cannot reach the cluster: {0}")]
    Connect(ClusterError),
    #[error("cannot apply {object}: {source}")]
    Apply { object: String, source: ClusterError },
    #[error("cannot prune {object}: {source}")]
    Prune { object: String, source: ClusterError },
    #[error("cannot start: {0}")]
    Runtime(std::io::Error),
}

impl InstallError {
    /// A mistake in the command line (exit 64) rather than a failure to run (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, InstallError::Usage(_) | InstallError::Terminal(_))
    }
}

/// Where the manifests go.
pub enum Target {
    /// Printed (`--export`); `terminal`: stdout is one.
    Export { terminal: bool },
    /// Applied to the cluster of `--kubeconfig`/`--context`.
    Cluster { kubeconfig: Option<PathBuf>, context: Option<String> },
}

/// Builds the manifests and prints them to `out`, or applies them, prunes, and tells `out` what
/// each apply and prune did (as kubectl does) and `warnings` of a user's object install keeps.
/// Output that cannot be written (a closed pipe) is dropped.
pub fn run(install: &Install, target: Target, out: &mut dyn std::io::Write, warnings: &mut dyn std::io::Write) -> Result<(), InstallError> {
    let objects = manifests(install)?;
    let (kubeconfig, context) = match target {
        Target::Export { terminal } => {
            refuse_terminal(&objects, terminal)?;
            let _ = out.write_all(yaml(install, &objects).as_bytes());
            return Ok(());
        }
        Target::Cluster { kubeconfig, context } => (kubeconfig, context),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(InstallError::Runtime)?;
    runtime.block_on(async {
        let cluster = Cluster::connect(kubeconfig.as_deref(), context.as_deref()).await.map_err(InstallError::Connect)?;
        apply(&cluster, &objects, |object, applied| {
            let _ = writeln!(out, "{} {applied}", label(object));
        })
        .await?;
        prune(&cluster, &objects, |object, pruned| {
            let _ = match pruned {
                Pruned::Deleted => writeln!(out, "{} pruned", label(object)),
                Pruned::Kept => writeln!(
                    warnings,
                    "warning: {} kept: this install does not write it, and no install did (it lacks the label {MANAGED_BY}={FIELD_MANAGER} or the field manager {FIELD_MANAGER}); delete it by hand if nothing mounts it",
                    label(object)
                ),
            };
        })
        .await
    })?;
    let _ = writeln!(
        out,
        "The daemon follows {} branch {} in namespace {}; see it start with: kubectl -n {} rollout status deployment/{BASE_NAME}",
        redact(&install.repo),
        install.branch,
        install.namespace,
        install.namespace
    );
    Ok(())
}

/// The objects to install, in the order to apply them (namespace first, Secrets before the
/// Deployment that mounts them). Reads the credential and trust files.
pub fn manifests(install: &Install) -> Result<Vec<Value>, InstallError> {
    refuse_mistakes(install)?;
    let contents = read_files(install)?;
    let mut objects = base()?;
    let at = objects.iter().position(|o| o["kind"] == "Deployment").ok_or_else(|| InstallError::Base("has no Deployment".into()))?;
    let mounted = set_daemon(&mut objects[at], install, contents)?;
    objects.splice(at..at, mounted);
    objects.iter_mut().for_each(|object| move_to(object, &install.namespace));
    Ok(objects)
}

/// What the files install stores in the cluster hold.
struct Contents {
    /// The keys of the Secret mcp-gitops-git and their values.
    git: Vec<(&'static str, Vec<u8>)>,
    webhook: Option<Vec<u8>>,
    signers: Option<String>,
}

fn read_files(install: &Install) -> Result<Contents, InstallError> {
    let credentials = &install.credentials;
    let git = [
        (TOKEN_KEY, "--git-token-file", &credentials.token_file),
        (SSH_KEY_KEY, "--git-ssh-key-file", &credentials.ssh_key_file),
        (KNOWN_HOSTS_KEY, "--git-known-hosts-file", &credentials.known_hosts_file),
    ]
    .into_iter()
    .filter_map(|(key, flag, file)| file.as_deref().map(|file| read(flag, file).map(|bytes| (key, bytes))))
    .collect::<Result<_, _>>()?;
    let webhook = install.webhook_secret_file.as_deref().map(|file| read("--webhook-secret-file", file)).transpose()?;
    let signers = match install.allowed_signers.as_deref() {
        Some(file) => Some(String::from_utf8(read("--allowed-signers", file)?).map_err(|e| InstallError::Read {
            flag: "--allowed-signers",
            file: file.into(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?),
        None => None,
    };
    Ok(Contents { git, webhook, signers })
}

/// Sets the daemon's Deployment for the source: its arguments, its image, and the components
/// of deploy/components whose files it is given; returns the Secrets and ConfigMap those mount.
fn set_daemon(daemon: &mut Value, install: &Install, contents: Contents) -> Result<Vec<Value>, InstallError> {
    let has = |key: &str| contents.git.iter().any(|(k, _)| *k == key);
    let wanted = [
        ("git-https", has(TOKEN_KEY)),
        ("git-ssh", has(SSH_KEY_KEY)),
        ("webhook", contents.webhook.is_some()),
        ("verify-signatures", contents.signers.is_some()),
    ];
    for (name, _) in wanted.iter().filter(|(_, wanted)| *wanted) {
        add_component(daemon, name)?;
    }
    let container = &mut daemon["spec"]["template"]["spec"]["containers"][0];
    if let Some(image) = &install.image {
        container["image"] = json!(image);
    }
    let args = container["args"].as_array_mut().ok_or_else(|| InstallError::Base("daemon.yaml: the container has no args".into()))?;
    set_arg(args, "--repo", Some(&install.repo));
    set_arg(args, "--branch", Some(&install.branch));
    set_arg(args, "--path", Some(install.path.as_str()).filter(|p| !p.is_empty()));
    set_arg(args, "--inventory-namespace", Some(&install.namespace));
    set_arg(args, "--git-username", install.credentials.username.as_deref());
    set_arg(args, "--allow-insecure-http", install.credentials.allow_insecure_http.then_some(""));

    let mut mounts = Vec::new();
    if let Some(secret) = contents.webhook {
        mounts.push(secret_of(&mounted(daemon, "webhook", "secret")?, &[(WEBHOOK_KEY, secret)]));
    }
    if !contents.git.is_empty() {
        mounts.push(secret_of(&mounted(daemon, "git", "secret")?, &contents.git));
    }
    if let Some(text) = contents.signers {
        mounts.push(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": mounted(daemon, "trust", "configMap")?, "namespace": BASE_NAME, "labels": labels()},
            "data": {SIGNERS_KEY: text},
        }));
    }
    Ok(mounts)
}

/// Applies the JSON patches of the component `name` of deploy/components to the Deployment.
fn add_component(daemon: &mut Value, name: &str) -> Result<(), InstallError> {
    let broken = |why: String| InstallError::Base(format!("components/{name}: {why}"));
    let text = COMPONENTS.iter().find(|(n, _)| *n == name).map(|(_, text)| *text).ok_or_else(|| broken("not compiled in".into()))?;
    let component: Value = serde_saphyr::from_str(text).map_err(|e| broken(e.to_string()))?;
    for patch in component["patches"].as_array().into_iter().flatten() {
        let operations: Value = serde_saphyr::from_str(patch["patch"].as_str().unwrap_or_default()).map_err(|e| broken(e.to_string()))?;
        let operations: json_patch::Patch = serde_json::from_value(operations).map_err(|e| broken(e.to_string()))?;
        json_patch::patch(daemon, &operations).map_err(|e| broken(e.to_string()))?;
    }
    Ok(())
}

/// The name of the Secret or ConfigMap (`source`: `secret` or `configMap`) that the volume
/// `volume` of the Deployment mounts.
fn mounted(daemon: &Value, volume: &str, source: &str) -> Result<String, InstallError> {
    let volumes = daemon["spec"]["template"]["spec"]["volumes"].as_array();
    let found = volumes.and_then(|v| v.iter().find(|v| v["name"] == volume)).map(|v| &v[source]);
    let name = found.and_then(|s| s["secretName"].as_str().or(s["name"].as_str()));
    name.map(String::from).ok_or_else(|| InstallError::Base(format!("no {source} volume {volume:?} in the Deployment")))
}

/// Flag combinations the daemon would refuse at start, or that would put a secret where
/// anyone who can read the Deployment sees it.
fn refuse_mistakes(install: &Install) -> Result<(), InstallError> {
    let credentials = &install.credentials;
    if credentials.token_file.is_some() && credentials.ssh_key_file.is_some() {
        return Err(InstallError::Usage(
            "--git-token-file is for a repository over HTTPS, --git-ssh-key-file for one over SSH: give the one --repo needs".into(),
        ));
    }
    if credentials.known_hosts_file.is_some() && credentials.ssh_key_file.is_none() {
        return Err(InstallError::Usage("--git-known-hosts-file goes with --git-ssh-key-file (a repository over SSH)".into()));
    }
    if credentials.ssh_key_file.is_some() && credentials.known_hosts_file.is_none() {
        return Err(InstallError::Usage(
            "--git-ssh-key-file needs --git-known-hosts-file: the image has no ~/.ssh/known_hosts, and the daemon connects to no host whose key it cannot check".into(),
        ));
    }
    if !credentials.allow_insecure_http && sends_secrets_in_clear(&install.repo, credentials) {
        return Err(InstallError::Usage(SourceError::InsecureHttp { url: redact(&install.repo) }.to_string()));
    }
    if url::Url::parse(&install.repo).is_ok_and(|url| url.password().is_some()) {
        return Err(InstallError::Usage(format!(
            "--repo {} holds a password, which would be stored in the Deployment's arguments for anyone who can read Deployments to see; put it in a file and pass --git-token-file",
            redact(&install.repo)
        )));
    }
    Ok(())
}

/// A credential or trust file; an empty one (the daemon refuses an empty webhook secret, and
/// an empty token or key cannot be meant) is a mistake.
fn read(flag: &'static str, file: &Path) -> Result<Vec<u8>, InstallError> {
    let bytes = std::fs::read(file).map_err(|source| InstallError::Read { flag, file: file.into(), source })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(InstallError::Empty { flag, file: file.into() });
    }
    Ok(bytes)
}

/// The objects of deploy/, as the files say.
fn base() -> Result<Vec<Value>, InstallError> {
    let mut objects = Vec::new();
    for (file, text) in BASE {
        let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| InstallError::Base(format!("{file}: {e}")))?;
        objects.extend(documents.into_iter().filter(|d| !d.is_null()));
    }
    Ok(objects)
}

/// Sets `--flag=value` (`--flag` alone for an empty value) where deploy/ has the flag, else at
/// the end; `None` removes it.
fn set_arg(args: &mut Vec<Value>, flag: &str, value: Option<&str>) {
    let is_flag = |arg: &Value| arg.as_str().is_some_and(|a| a == flag || a.strip_prefix(flag).is_some_and(|rest| rest.starts_with('=')));
    let new = value.map(|v| if v.is_empty() { json!(flag) } else { json!(format!("{flag}={v}")) });
    match (args.iter().position(is_flag), new) {
        (Some(at), Some(new)) => args[at] = new,
        (Some(at), None) => {
            args.remove(at);
        }
        (None, Some(new)) => args.push(new),
        (None, None) => {}
    }
}

/// The labels of the Secrets and ConfigMap install writes: deploy/'s, and install's own mark.
fn labels() -> Value {
    json!({"app.kubernetes.io/name": BASE_NAME, MANAGED_BY: FIELD_MANAGER})
}

fn secret_of<B: AsRef<[u8]>>(name: &str, data: &[(&str, B)]) -> Value {
    let data: Map<String, Value> =
        data.iter().map(|(key, bytes)| (key.to_string(), json!(base64::engine::general_purpose::STANDARD.encode(bytes)))).collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": BASE_NAME, "labels": labels()},
        "type": "Opaque",
        "data": data,
    })
}

/// The name of the cluster-wide objects (ClusterRole, ClusterRoleBinding): deploy/'s in its
/// namespace, else one per namespace, so that two installs do not take each other's binding.
fn cluster_name(namespace: &str) -> String {
    if namespace == BASE_NAME { BASE_NAME.to_string() } else { format!("{BASE_NAME}-{namespace}") }
}

/// Moves an object of deploy/ to `namespace`, as kustomize's `namespace:` does, and renames the
/// cluster-wide ones.
fn move_to(object: &mut Value, namespace: &str) {
    let (field, value) = match object["kind"].as_str() {
        Some("Namespace") => ("name", namespace.to_string()),
        _ if object["metadata"].get("namespace").is_some() => ("namespace", namespace.to_string()),
        _ => ("name", cluster_name(namespace)),
    };
    object["metadata"][field] = json!(value);
    if object["roleRef"]["kind"] == "ClusterRole" {
        object["roleRef"]["name"] = json!(cluster_name(namespace));
    }
    if let Some(subjects) = object.get_mut("subjects").and_then(Value::as_array_mut) {
        subjects.iter_mut().filter(|s| s["kind"] == "ServiceAccount").for_each(|s| s["namespace"] = json!(namespace));
    }
}

/// The objects as one YAML stream for `kubectl apply -f`, after a comment that says what made it.
pub fn yaml(install: &Install, objects: &[Value]) -> String {
    let header = format!(
        "# mcp-gitops install --export (mcp-gitops {}): deploy/ for {} branch {}.\n# Holds Secrets: keep this file private. Apply with: kubectl apply --server-side -f FILE\n",
        env!("CARGO_PKG_VERSION"),
        redact(&install.repo),
        install.branch
    );
    header + &serde_saphyr::to_string_multiple(objects).unwrap_or_else(|e| format!("# cannot render as YAML: {e}\n"))
}

/// Refuses to print Secrets to a terminal, where their values would stay on the screen and in
/// its scroll-back: they go to a file or a pipe.
pub fn refuse_terminal(objects: &[Value], terminal: bool) -> Result<(), InstallError> {
    let secrets: Vec<String> =
        objects.iter().filter(|o| o["kind"] == "Secret").map(|o| o["metadata"]["name"].as_str().unwrap_or_default().to_string()).collect();
    if terminal && !secrets.is_empty() { Err(InstallError::Terminal(secrets)) } else { Ok(()) }
}

/// How kubectl names an object: `deployment.apps/mcp-gitops`, `namespace/mcp-gitops`.
pub fn label(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default().to_lowercase();
    let group = object["apiVersion"].as_str().and_then(|v| v.rsplit_once('/')).map(|(group, _)| format!(".{group}")).unwrap_or_default();
    format!("{kind}{group}/{}", object["metadata"]["name"].as_str().unwrap_or_default())
}

/// Applies the objects in order with server-side apply; `applied` hears of each one as it is
/// done. Stops at the first failure.
pub async fn apply(cluster: &Cluster, objects: &[Value], mut applied: impl FnMut(&Value, Applied)) -> Result<(), InstallError> {
    for object in objects {
        let done = cluster.apply_manifest(object, FIELD_MANAGER).await;
        applied(object, done.map_err(|source| InstallError::Apply { object: label(object), source })?);
    }
    Ok(())
}

/// What prune did with an object that install can write and this install does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pruned {
    Deleted,
    /// Not install's (a user's object of the same name, say one made by hand for a component).
    Kept,
}

/// Deletes what an earlier install wrote and this one does not (the Secret of a flag no longer
/// given); `pruned` hears of each object found. Stops at the first failure.
pub async fn prune(cluster: &Cluster, objects: &[Value], mut pruned: impl FnMut(&Value, Pruned)) -> Result<(), InstallError> {
    for object in unwanted(objects)? {
        let failed = |source| InstallError::Prune { object: label(&object), source };
        let Some(live) = cluster.get_manifest(&object).await.map_err(failed)? else { continue };
        if written_by_install(&live) {
            cluster.delete_manifest(&live).await.map_err(failed)?;
            pruned(&object, Pruned::Deleted);
        } else {
            pruned(&object, Pruned::Kept);
        }
    }
    Ok(())
}

/// The Secrets and ConfigMaps that a component of deploy/components mounts and `objects` (an
/// install's manifests) do not hold, in the Deployment's namespace.
fn unwanted(objects: &[Value]) -> Result<Vec<Value>, InstallError> {
    let is_daemon = |o: &&Value| o["kind"] == "Deployment";
    let daemon = base()?.into_iter().find(|o| is_daemon(&o)).ok_or_else(|| InstallError::Base("has no Deployment".into()))?;
    let namespace = objects.iter().find(is_daemon).map(|d| d["metadata"]["namespace"].clone()).unwrap_or_default();
    let mut found: Vec<Value> = Vec::new();
    for (component, _) in COMPONENTS {
        let mut with = daemon.clone();
        add_component(&mut with, component)?;
        for volume in with["spec"]["template"]["spec"]["volumes"].as_array().into_iter().flatten() {
            let (kind, name) = match (volume["secret"]["secretName"].as_str(), volume["configMap"]["name"].as_str()) {
                (Some(secret), _) => ("Secret", secret),
                (None, Some(config_map)) => ("ConfigMap", config_map),
                (None, None) => continue,
            };
            let same = |o: &Value| o["kind"] == kind && o["metadata"]["name"] == name;
            if !objects.iter().any(same) && !found.iter().any(same) {
                found.push(json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}}));
            }
        }
    }
    Ok(found)
}

/// Whether install wrote the live object: its label, and its field manager among the object's.
fn written_by_install(live: &Value) -> bool {
    let labelled = live["metadata"]["labels"][MANAGED_BY] == FIELD_MANAGER;
    let managers = live["metadata"]["managedFields"].as_array().into_iter().flatten();
    labelled && managers.into_iter().any(|m| m["manager"] == FIELD_MANAGER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install() -> Install {
        Install {
            repo: "https://git.example.com/platform/access.git".into(),
            branch: "main".into(),
            namespace: BASE_NAME.into(),
            ..Install::default()
        }
    }

    fn args(objects: &[Value]) -> Vec<String> {
        let daemon = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
        daemon["spec"]["template"]["spec"]["containers"][0]["args"].as_array().unwrap().iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn the_base_is_the_kustomization_s_resources() {
        let kustomization: Value = serde_saphyr::from_str(include_str!("../../deploy/kustomization.yaml")).unwrap();
        let resources: Vec<&str> = kustomization["resources"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(
            resources,
            BASE.iter().map(|(file, _)| *file).collect::<Vec<_>>(),
            "deploy/kustomization.yaml and install's BASE differ"
        );
    }

    /// Every file a flag names is a key of the Secret or ConfigMap mounted at its directory.
    #[test]
    fn each_file_a_flag_names_is_a_key_of_what_is_mounted_there() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("{name} value")).unwrap();
            Some(path)
        };
        let https = Credentials { token_file: file("token"), ..Credentials::default() };
        let ssh = Credentials { ssh_key_file: file("key"), known_hosts_file: file("hosts"), ..Credentials::default() };
        for credentials in [https, ssh] {
            let objects =
                manifests(&Install { webhook_secret_file: file("hook"), allowed_signers: file("signers"), credentials, ..install() })
                    .unwrap();
            let pod = &objects.iter().find(|o| o["kind"] == "Deployment").unwrap()["spec"]["template"]["spec"];
            let files: Vec<String> =
                args(&objects).iter().filter_map(|a| a.trim_matches('"').split_once("=/etc/").map(|(_, f)| format!("/etc/{f}"))).collect();
            assert_eq!(files.len(), if pod.to_string().contains("identity") { 4 } else { 3 }, "{files:?}");
            for file in files {
                let (dir, key) = file.rsplit_once('/').unwrap();
                let mount = pod["containers"][0]["volumeMounts"].as_array().unwrap().iter().find(|m| m["mountPath"] == dir).unwrap();
                let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == mount["name"]).unwrap();
                let source = volume["secret"]["secretName"].as_str().or(volume["configMap"]["name"].as_str()).unwrap();
                let object = objects.iter().find(|o| o["metadata"]["name"] == source && o["kind"] != "Deployment").unwrap();
                assert!(object["data"].get(key).is_some(), "{file}: {source} has no key {key}");
            }
        }
    }

    #[test]
    fn a_public_repository_mounts_no_secret_and_a_namespace_moves_everything() {
        let objects = manifests(&Install { path: "platform".into(), namespace: "gitops-b".into(), ..install() }).unwrap();
        assert!(!objects.iter().any(|o| o["kind"] == "Secret"));
        let args = args(&objects);
        assert!(args.contains(&"\"--path=platform\"".into()) && args.contains(&"\"--inventory-namespace=gitops-b\"".into()), "{args:?}");
        assert!(!args.iter().any(|a| a.contains("-file=")), "{args:?}");
        let text = serde_json::to_string(&objects).unwrap();
        assert!(!text.contains("\"webhook\"") && !text.contains("\"git\""), "a volume of an absent Secret is still mounted");
        for object in &objects {
            let namespace = object["metadata"]["namespace"].as_str();
            assert!(namespace.is_none_or(|n| n == "gitops-b"), "{object}");
        }
        let binding = objects.iter().find(|o| o["kind"] == "ClusterRoleBinding").unwrap();
        assert_eq!(binding["metadata"]["name"], "mcp-gitops-gitops-b");
        assert_eq!(binding["roleRef"]["name"], "mcp-gitops-gitops-b");
        assert_eq!(binding["subjects"][0]["namespace"], "gitops-b");
    }

    #[test]
    fn set_arg_replaces_appends_and_removes() {
        let mut args = vec![json!("daemon"), json!("--repo=a"), json!("--repository-x=b")];
        set_arg(&mut args, "--repo", Some("c"));
        set_arg(&mut args, "--leader-elect", Some(""));
        set_arg(&mut args, "--repository-x", None);
        assert_eq!(args, vec![json!("daemon"), json!("--repo=c"), json!("--leader-elect")]);
    }

    #[test]
    fn secrets_are_refused_only_on_a_terminal() {
        let objects = vec![secret_of("mcp-gitops-git", &[(TOKEN_KEY, b"x")])];
        assert!(matches!(refuse_terminal(&objects, true), Err(InstallError::Terminal(names)) if names == ["mcp-gitops-git"]));
        assert!(refuse_terminal(&objects, false).is_ok());
        assert!(refuse_terminal(&base().unwrap(), true).is_ok());
    }

    #[test]
    fn kubectl_names() {
        let objects = base().unwrap();
        let labels: Vec<String> = objects.iter().map(label).collect();
        assert!(labels.contains(&"namespace/mcp-gitops".into()) && labels.contains(&"deployment.apps/mcp-gitops".into()), "{labels:?}");
        assert!(labels.contains(&"clusterrole.rbac.authorization.k8s.io/mcp-gitops".into()), "{labels:?}");
    }

    #[test]
    fn what_install_does_not_write_is_what_the_components_mount_less_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let hook = dir.path().join("hook");
        std::fs::write(&hook, "s").unwrap();
        let names = |install: &Install| -> Vec<String> {
            let unwanted = unwanted(&manifests(install).unwrap()).unwrap();
            assert!(unwanted.iter().all(|o| o["metadata"]["namespace"] == install.namespace.as_str()), "{unwanted:?}");
            unwanted.iter().map(label).collect()
        };
        let public = Install { namespace: "gitops-b".into(), ..install() };
        assert_eq!(names(&public), ["secret/mcp-gitops-git", "secret/mcp-gitops-webhook", "configmap/mcp-gitops-trust"]);
        assert_eq!(names(&Install { webhook_secret_file: Some(hook), ..public }), ["secret/mcp-gitops-git", "configmap/mcp-gitops-trust"]);
    }

    #[test]
    fn only_an_object_with_install_s_label_and_field_manager_is_install_s() {
        let object = |label: &str, managers: &[&str]| {
            let managed: Vec<Value> = managers.iter().map(|m| json!({"manager": m, "operation": "Apply"})).collect();
            json!({"metadata": {"labels": {MANAGED_BY: label}, "managedFields": managed}})
        };
        assert!(written_by_install(&object(FIELD_MANAGER, &["kubectl-create", FIELD_MANAGER])));
        assert!(!written_by_install(&object(FIELD_MANAGER, &["kubectl-create", "kubectl-label"])), "a label copied by hand");
        assert!(!written_by_install(&object("helm", &[FIELD_MANAGER])), "a label another tool set");
        assert!(!written_by_install(&json!({"metadata": {"name": "x"}})));
    }
}
