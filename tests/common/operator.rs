//! A test double of the mcp-runtime operator, for `apply --wait`.
//!
//! It stands in for the operator's MCPServer reconciler (mcp-runtime `internal/operator`), which
//! cannot be built here. For every MCPServer in the namespaces it is given it does what DOMAIN.md
//! §4.6-4.9 describes: renders the gateway policy from the grants and sessions that target the
//! server, writes it as `policy.json` into the `<server>-gateway-policy` ConfigMap (keeping the
//! stored payload when the revision is unchanged), and sets the server's status as if every
//! workload were ready (phase Ready, the readiness booleans, message "All resources reconciled").
//! It creates no Deployments, Services or Ingresses. The rendering is mcp-gitops' own, which the
//! published revision vectors tie to the operator's, except for the order of grants and
//! sessions: the operator renders them in the order its cached client lists them, a map's
//! iteration order that changes from one reconcile to the next, so the double shuffles them on
//! every pass (seeded, to replay a failure) and stamps the document again.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use mcp_gitops::cluster::api_resource;
use mcp_gitops::model::Kind;
use mcp_gitops::model::live::{LiveObject, LiveState};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const MANAGER: &str = "mcp-runtime-operator";

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
            let cluster = mcp_gitops::cluster::Cluster::connect(Some(&kubeconfig), None).await.expect("connect");
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let config = kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig"),
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .expect("config");
            let client = kube::Client::try_from(config).expect("client");
            let mut order = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            while !flag.load(Ordering::Relaxed) {
                let _ = reconcile(&cluster, &client, &namespaces, &mut order).await;
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

async fn reconcile(
    cluster: &mcp_gitops::cluster::Cluster,
    client: &kube::Client,
    namespaces: &[String],
    order: &mut u64,
) -> Result<(), String> {
    let mut objects: Vec<LiveObject> = Vec::new();
    for kind in Kind::ALL {
        objects.extend(cluster.list(kind).await.map_err(|e| e.to_string())?);
    }
    let ready: Vec<(String, String)> = objects
        .iter()
        .filter(|o| o.id.kind == Kind::Server && o.body.pointer("/status/phase").and_then(|p| p.as_str()) == Some("Ready"))
        .map(|o| (o.id.namespace.clone(), o.id.name.clone()))
        .collect();
    let state = mcp_gitops::plan::live::as_desired_state(&LiveState { objects, ..LiveState::default() });
    for (server, mut document) in mcp_gitops::gateway::render_all(&state) {
        if !namespaces.contains(&server.namespace) {
            continue;
        }
        shuffle(&mut document.grants, order);
        shuffle(&mut document.sessions, order);
        mcp_gitops::gateway::revision::stamp(&mut document);
        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &server.namespace);
        let name = format!("{}-gateway-policy", server.name);
        let stored = configmaps.get_opt(&name).await.map_err(|e| e.to_string())?;
        let stored_revision = stored
            .and_then(|cm| cm.data?.get("policy.json").cloned())
            .and_then(|text| serde_json::from_str::<mcp_gitops::gateway::PolicyDocument>(&text).ok())
            .map(|d| d.revision);
        if stored_revision.as_deref() != Some(document.revision.as_str()) {
            document.generated_at = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
            let configmap = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": server.namespace,
                             "labels": {"app": server.name, "app.kubernetes.io/managed-by": "mcp-runtime"}},
                "data": {"policy.json": mcp_gitops::gateway::revision::indented_json(&document)},
            });
            configmaps.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&configmap)).await.map_err(|e| e.to_string())?;
        }
        if ready.contains(&(server.namespace.clone(), server.name.clone())) {
            continue;
        }
        let servers: Api<DynamicObject> = Api::namespaced_with(client.clone(), &server.namespace, &api_resource(Kind::Server));
        let status = json!({"status": {
            "phase": "Ready", "message": "All resources reconciled",
            "deploymentReady": true, "serviceReady": true, "ingressReady": true, "gatewayReady": true, "policyReady": true, "canaryReady": false,
        }});
        servers.patch_status(&server.name, &PatchParams::default(), &Patch::Merge(&status)).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
