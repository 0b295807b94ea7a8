//! A test double of the mcp-runtime operator, for `apply --wait`.
//!
//! It stands in for the operator's MCPServer reconciler (mcp-runtime `internal/operator`), which
//! cannot be built here. Every 200 ms, for every MCPServer in the namespaces it is given, it does
//! what DOMAIN.md §4.6-4.9 describes: renders the gateway policy from the grants and sessions that
//! target the server, writes it as `policy.json` into the `<server>-gateway-policy` ConfigMap
//! (keeping the stored payload when the revision is unchanged; deleting the ConfigMap when the
//! gateway is disabled), and sets the server's status as if every workload were ready (phase
//! Ready, the readiness booleans, message "All resources reconciled"). It creates no Deployments,
//! Services or Ingresses.
//!
//! The rendering and the revision are not mcp-gitops' code: they are `operator.py` beside this
//! file, written from DOMAIN.md alone and pinned by the vectors of `tests/operator_double.rs`, so
//! that "written as predicted" compares mcp-gitops with a second reading of the operator. This
//! file only talks to the API server (with kube, not mcp-gitops' cluster code). The order of
//! grants and sessions is the operator's cache order, a map's iteration order that changes from
//! one reconcile to the next, so the double shuffles them on every pass (seeded, to replay a
//! failure).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const MANAGER: &str = "mcp-runtime-operator";
/// The operator's `MCP_CLUSTER_NAME` default (DOMAIN.md §4.1), and mcp-gitops' `clusterName`'s.
pub const CLUSTER: &str = "local";

/// `python3 tests/common/operator.py`, kept running: one JSON request line in, one answer line out.
pub struct Renderer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Renderer {
    pub fn start() -> Renderer {
        let mut child = Command::new("python3")
            .arg(super::root().join("tests/common/operator.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs tests/common/operator.py");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Renderer { child, stdin, stdout }
    }

    /// The operator's answer for each server of `request` (the protocol is in operator.py).
    pub fn ask(&mut self, request: &Value) -> Result<Vec<Value>, String> {
        let stdin = self.stdin.as_mut().ok_or("operator.py is closed")?;
        writeln!(stdin, "{request}").map_err(|e| format!("operator.py: {e}"))?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).map_err(|e| format!("operator.py: {e}"))?;
        serde_json::from_str(&line).map_err(|e| format!("operator.py answered {line:?}: {e}"))
    }
}

impl Drop for Renderer {
    fn drop(&mut self) {
        drop(self.stdin.take()); // operator.py ends with its input
        let _ = self.child.wait();
    }
}

pub struct OperatorDouble {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for OperatorDouble {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts reconciling the servers of `namespaces` every 200 ms until dropped, listing grants
/// and sessions in an order drawn from `seed`.
pub fn start(kubeconfig: PathBuf, namespaces: Vec<String>, seed: u64) -> OperatorDouble {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let config = kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig"),
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .expect("config");
            let client = kube::Client::try_from(config).expect("client");
            let mut renderer = Renderer::start();
            let mut order = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            while !flag.load(Ordering::Relaxed) {
                let _ = reconcile(&client, &namespaces, &mut renderer, &mut order).await;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        });
    });
    OperatorDouble { stop, thread: Some(thread) }
}

/// A permutation drawn from `state` (xorshift64), as a cache's list order.
fn shuffle<T>(items: &mut [T], state: &mut u64) {
    for i in (1..items.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        items.swap(i, (*state % (i as u64 + 1)) as usize);
    }
}

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("mcpruntime.org", "v1alpha1", kind), plural)
}

/// Every object of a kind, cluster-wide, as the API server returns it.
async fn list(client: &kube::Client, kind: &str, plural: &str) -> Result<Vec<Value>, String> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource(kind, plural));
    let list = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
    list.items.iter().map(|o| serde_json::to_value(o).map_err(|e| e.to_string())).collect()
}

async fn reconcile(client: &kube::Client, namespaces: &[String], renderer: &mut Renderer, order: &mut u64) -> Result<(), String> {
    let servers: Vec<Value> = list(client, "MCPServer", "mcpservers")
        .await?
        .into_iter()
        .filter(|s| namespaces.iter().any(|n| s["metadata"]["namespace"] == n.as_str()))
        .collect();
    // Only the objects that name one of these servers travel to operator.py (the shared test
    // cluster holds thousands); which of them target a server is its to decide.
    let named = |o: &Value| servers.iter().any(|s| s["metadata"]["name"] == o["spec"]["serverRef"]["name"]);
    let mut grants: Vec<Value> = list(client, "MCPAccessGrant", "mcpaccessgrants").await?.into_iter().filter(named).collect();
    let mut sessions: Vec<Value> = list(client, "MCPAgentSession", "mcpagentsessions").await?.into_iter().filter(named).collect();
    shuffle(&mut grants, order);
    shuffle(&mut sessions, order);
    let mut stored = serde_json::Map::new();
    for namespace in namespaces {
        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        for configmap in configmaps.list(&ListParams::default()).await.map_err(|e| e.to_string())? {
            let name = configmap.metadata.name.unwrap_or_default();
            if let Some(server) = name.strip_suffix("-gateway-policy") {
                let payload = configmap.data.and_then(|d| d.get("policy.json").cloned());
                stored.insert(format!("{namespace}/{server}"), payload.map_or(Value::Null, Value::String));
            }
        }
    }
    let request = json!({"cluster": CLUSTER, "servers": servers, "grants": grants, "sessions": sessions, "stored": stored});
    for (server, answer) in servers.iter().zip(renderer.ask(&request)?) {
        let (Some(namespace), Some(name)) = (answer["namespace"].as_str(), answer["name"].as_str()) else {
            return Err(format!("operator.py answered {answer}"));
        };
        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let policy = format!("{name}-gateway-policy");
        match (answer["action"].as_str(), answer["payload"].as_str()) {
            (Some("write"), Some(payload)) => {
                let configmap = json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": policy, "namespace": namespace,
                                 "labels": {"app": name, "app.kubernetes.io/managed-by": "mcp-runtime"}},
                    "data": {"policy.json": payload},
                });
                configmaps
                    .patch(&policy, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&configmap))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            (Some("delete"), _) if stored.contains_key(&format!("{namespace}/{name}")) => {
                configmaps.delete(&policy, &DeleteParams::default()).await.map_err(|e| e.to_string())?;
            }
            (Some("keep" | "delete"), _) => {}
            _ => return Err(format!("operator.py answered {answer}")),
        }
        if server["status"]["phase"] == "Ready" {
            continue;
        }
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource("MCPServer", "mcpservers"));
        let status = json!({"status": {
            "phase": "Ready", "message": "All resources reconciled",
            "deploymentReady": true, "serviceReady": true, "ingressReady": true, "gatewayReady": true, "policyReady": true, "canaryReady": false,
        }});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
