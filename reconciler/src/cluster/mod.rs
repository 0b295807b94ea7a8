//! The only code that talks to Kubernetes: connect, read live state (one paginated LIST per
//! kind), server-side apply, delete with preconditions, and the inventory ConfigMap; for the
//! daemon also watches (`watch`), Events and status annotations (`status`) and the leader
//! Lease (`lease`); for `install` any object by its kind (`manifest`). Knows nothing about plans;
//! returns plain data and classified errors.

mod lease;
pub mod manifest;
mod status;
mod watch;

pub use lease::Leadership;
pub use manifest::Applied;
pub use watch::MemberChange;

use crate::model::live::{
    ADDITIONAL_NAMESPACES, APPLYSET_ID, ApplySet, CONTAINS_GROUP_KINDS, FIELD_MANAGER, INVENTORY_GZ_KEY, INVENTORY_KEY, Inventory,
    LAST_APPLIED_REVISION, LAST_ATTEMPTED_REVISION, LiveObject, LiveState, StoredObjects, TOOLING,
};
use crate::model::object::{API_VERSION, GROUP};
use crate::model::{Kind, ObjectId};
use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Objects per LIST page.
const PAGE: u32 = 500;
/// Times a request is sent again when the API server asks to be called later (429, 503).
const RETRIES: u32 = 8;
/// The longest wait between two tries, whatever the server asks.
const MAX_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Clone)]
pub struct Cluster {
    client: Client,
    /// `https://host:port (context)`, for people.
    pub label: String,
}

/// A failed request, classified so that callers can say what happened in the user's terms.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot load the cluster configuration: {0}")]
    Config(String),
    /// Nothing names a cluster: no kubeconfig file and no in-cluster service account.
    #[error("no cluster configured (no --kubeconfig, no KUBECONFIG, no ~/.kube/config, not in a cluster)")]
    NotConfigured,
    /// The server answered with an error status.
    #[error("{message}")]
    Api { code: u16, reason: String, message: String, causes: Vec<(String, String)> },
    /// No answer: the connection failed or broke.
    #[error("the API server did not answer: {0}")]
    Unreachable(String),
}

impl ClusterError {
    pub fn code(&self) -> u16 {
        match self {
            ClusterError::Api { code, .. } => *code,
            _ => 0,
        }
    }

    /// Failures that will not go away by retrying the same request. The others (no answer, a
    /// timeout, a 5xx) mean that the API server cannot take requests now.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ClusterError::Api { code, .. } if *code != 429 && *code < 500 || *code == 500 && self.to_string().starts_with("failed to create typed patch object"))
    }
}

impl From<kube::Error> for ClusterError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => ClusterError::Api {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
                causes: status.details.map(|d| d.causes.into_iter().map(|c| (c.field, c.message)).collect()).unwrap_or_default(),
            },
            other => ClusterError::Unreachable(other.to_string()),
        }
    }
}

/// Whether none of the places `Config::infer` looks in names a cluster: `KUBECONFIG` unset (or
/// empty), no `~/.kube/config`, and no in-cluster service account (`KUBERNETES_SERVICE_HOST`).
/// kube's own error for this case lists each attempt in its words.
fn nothing_configured() -> bool {
    let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let home_config = std::env::var_os("HOME").map(|home| Path::new(&home).join(".kube/config"));
    !set("KUBECONFIG") && !set("KUBERNETES_SERVICE_HOST") && !home_config.is_some_and(|c| c.exists())
}

/// The first file `KUBECONFIG` lists (`:`-separated) that does not exist: kube's error for it
/// is a chain of both ways it tried.
fn missing_kubeconfig() -> Option<String> {
    let list = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty())?;
    std::env::split_paths(&list).find(|path| !path.as_os_str().is_empty() && !path.exists()).map(|path| path.display().to_string())
}

pub fn api_resource(kind: Kind) -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: "v1alpha1".into(),
        api_version: API_VERSION.into(),
        kind: kind.as_str().into(),
        plural: kind.plural().into(),
    }
}

impl Cluster {
    /// Connects with `--kubeconfig`/`--context`, else `KUBECONFIG`/`~/.kube/config`, else the
    /// in-cluster service account.
    pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Cluster, ClusterError> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let options = KubeConfigOptions { context: context.map(String::from), ..KubeConfigOptions::default() };
        let mut config = match kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path).map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?;
                Config::from_custom_kubeconfig(file, &options).await.map_err(|e| ClusterError::Config(e.to_string()))?
            }
            None if context.is_some() => Config::from_kubeconfig(&options).await.map_err(|e| ClusterError::Config(e.to_string()))?,
            None if nothing_configured() => return Err(ClusterError::NotConfigured),
            None if let Some(missing) = missing_kubeconfig() => {
                return Err(ClusterError::Config(format!(
                    "KUBECONFIG names {missing}, which does not exist (point it at a kubeconfig file, or unset it to use ~/.kube/config)"
                )));
            }
            None => Config::infer().await.map_err(|e| ClusterError::Config(e.to_string()))?,
        };
        let label = match context {
            Some(context) => format!("{} (context {context})", config.cluster_url),
            None => config.cluster_url.to_string(),
        };
        // kube's own retries send a 504 again 15 times with growing waits: with etcd gone, each
        // try waits the server's 34-60 s timeout, and one object would take minutes. `patiently`
        // retries only what the server asks to be retried later.
        config.default_retry = false;
        let client = Client::try_from(config).map_err(|e| ClusterError::Config(e.to_string()))?;
        Ok(Cluster { client, label })
    }

    fn api(&self, kind: Kind, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &api_resource(kind))
    }

    /// Every object of one kind in every namespace: one paginated LIST.
    pub async fn list(&self, kind: Kind) -> Result<Vec<LiveObject>, ClusterError> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &api_resource(kind));
        let mut objects = Vec::new();
        let mut params = ListParams::default().limit(PAGE);
        loop {
            let page = patiently(|| api.list(&params)).await?;
            objects.extend(page.items.into_iter().map(|item| live_object(kind, item)));
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => return Ok(objects),
            }
        }
    }

    /// The objects `ids` that exist, each read on its own (a few requests at a time): what the
    /// daemon reads when its watches say that only these may have changed.
    pub async fn objects(&self, ids: &[&ObjectId]) -> Result<Vec<LiveObject>, ClusterError> {
        let found: Vec<Option<LiveObject>> = futures::stream::iter(ids)
            .map(|id| async move {
                let api = self.api(id.kind, &id.namespace);
                Ok::<_, ClusterError>(patiently(|| api.get_opt(&id.name)).await?.map(|item| live_object(id.kind, item)))
            })
            .buffered(8)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// The live state of the three kinds and the inventory.
    pub async fn live_state(&self, applyset: &ApplySet) -> Result<LiveState, ClusterError> {
        let (servers, grants, sessions, inventory) =
            futures::try_join!(self.list(Kind::Server), self.list(Kind::Grant), self.list(Kind::Session), self.inventory(applyset))?;
        let objects = servers.into_iter().chain(grants).chain(sessions).collect();
        Ok(LiveState { source: self.label.clone(), objects, inventory })
    }

    /// Server-side apply of one document as field manager `mcp-gitops`; returns the stored object.
    pub async fn apply(&self, id: &ObjectId, body: &Value, force: bool, dry_run: bool) -> Result<Value, ClusterError> {
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if force {
            params = params.force();
        }
        if dry_run {
            params = params.dry_run();
        }
        let (api, patch) = (self.api(id.kind, &id.namespace), Patch::Apply(body));
        let stored = patiently(|| api.patch(&id.name, &params, &patch)).await?;
        Ok(serde_json::to_value(stored).unwrap_or(Value::Null))
    }

    /// Deletes one object, only if it is still at `resource_version`.
    pub async fn delete(&self, id: &ObjectId, resource_version: Option<&str>, dry_run: bool) -> Result<(), ClusterError> {
        let params = DeleteParams {
            dry_run,
            preconditions: resource_version.map(|rv| Preconditions { resource_version: Some(rv.to_string()), uid: None }),
            ..DeleteParams::default()
        };
        let api = self.api(id.kind, &id.namespace);
        match patiently(|| api.delete(&id.name, &params)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn inventory(&self, applyset: &ApplySet) -> Result<Option<Inventory>, ClusterError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &applyset.namespace);
        let Some(configmap) = patiently(|| api.get_opt(&applyset.name)).await? else { return Ok(None) };
        let annotations = configmap.metadata.annotations.clone().unwrap_or_default();
        let data = configmap.data.clone().unwrap_or_default();
        let binary = configmap.binary_data.clone().unwrap_or_default();
        let objects =
            Inventory::decode_objects(data.get(INVENTORY_KEY).map(String::as_str), binary.get(INVENTORY_GZ_KEY).map(|b| b.0.as_slice()))
                .map_err(|e| ClusterError::Config(format!("the inventory {}/{} cannot be read: {e}", applyset.namespace, applyset.name)))?;
        Ok(Some(Inventory {
            objects,
            last_applied_revision: annotations.get(LAST_APPLIED_REVISION).cloned().unwrap_or_default(),
            resource_version: configmap.metadata.resource_version.clone().unwrap_or_default(),
            annotations,
        }))
    }

    /// Writes the inventory (creating its namespace when missing). `applied` is the revision
    /// to record as last applied, or `None` to keep the previous one.
    pub async fn write_inventory(
        &self,
        applyset: &ApplySet,
        objects: &BTreeSet<ObjectId>,
        attempted: &str,
        applied: Option<&str>,
    ) -> Result<(), ClusterError> {
        let mut group_kinds: Vec<String> = objects.iter().map(|id| format!("{}.{GROUP}", id.kind)).collect();
        group_kinds.sort();
        group_kinds.dedup();
        let mut other_namespaces: Vec<&str> =
            objects.iter().map(|id| id.namespace.as_str()).filter(|ns| *ns != applyset.namespace).collect();
        other_namespaces.sort();
        other_namespaces.dedup();
        let mut annotations = BTreeMap::from([
            (TOOLING.to_string(), format!("mcp-gitops/{}", env!("CARGO_PKG_VERSION"))),
            (CONTAINS_GROUP_KINDS.to_string(), group_kinds.join(",")),
            (ADDITIONAL_NAMESPACES.to_string(), other_namespaces.join(",")),
            (LAST_ATTEMPTED_REVISION.to_string(), attempted.to_string()),
        ]);
        let previous = self.inventory(applyset).await?.map(|i| i.last_applied_revision).unwrap_or_default();
        annotations.insert(LAST_APPLIED_REVISION.to_string(), applied.map(String::from).unwrap_or(previous));
        let mut configmap = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": applyset.name,
                "namespace": applyset.namespace,
                "labels": {APPLYSET_ID: applyset.id(), crate::model::live::MANAGED_BY: FIELD_MANAGER},
                "annotations": annotations,
            },
        });
        match Inventory::encode_objects(objects) {
            StoredObjects::Plain(text) => configmap["data"] = json!({INVENTORY_KEY: text}),
            StoredObjects::Gzip(bytes) => {
                configmap["binaryData"] = json!({INVENTORY_GZ_KEY: base64::engine::general_purpose::STANDARD.encode(bytes)});
            }
        }
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &applyset.namespace);
        let (params, patch) = (PatchParams::apply(FIELD_MANAGER).force(), Patch::Apply(&configmap));
        match patiently(|| api.patch(&applyset.name, &params, &patch)).await {
            // The namespace is missing: create it, then write again. Asking first would need
            // read access to namespaces, which the daemon's least-privilege role does not have.
            Err(kube::Error::Api(status)) if status.code == 404 => {
                self.create_namespace(&applyset.namespace).await?;
                patiently(|| api.patch(&applyset.name, &params, &patch)).await?;
            }
            other => {
                other?;
            }
        }
        Ok(())
    }

    /// Creates a namespace that a write found missing.
    pub async fn create_namespace(&self, name: &str) -> Result<(), ClusterError> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        let (params, patch) = (PatchParams::apply(FIELD_MANAGER), Patch::Apply(&namespace));
        patiently(|| namespaces.patch(name, &params, &patch)).await?;
        Ok(())
    }

    /// One object, for `--wait` (status and the operator's policy ConfigMap).
    pub async fn get(&self, id: &ObjectId) -> Result<Option<Value>, ClusterError> {
        let found = self.api(id.kind, &id.namespace).get_opt(&id.name).await?;
        Ok(found.map(|o| serde_json::to_value(o).unwrap_or(Value::Null)))
    }

    pub async fn configmap_data(&self, namespace: &str, name: &str, key: &str) -> Result<Option<String>, ClusterError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get_opt(name).await?.and_then(|cm| cm.data.and_then(|mut d| d.remove(key))))
    }
}

/// An object as the API server returned it, with the apiVersion and kind a LIST leaves out of its items.
fn live_object(kind: Kind, item: DynamicObject) -> LiveObject {
    let id = ObjectId {
        kind,
        namespace: item.metadata.namespace.clone().unwrap_or_default(),
        name: item.metadata.name.clone().unwrap_or_default(),
    };
    let resource_version = item.metadata.resource_version.clone().unwrap_or_default();
    let mut body = serde_json::to_value(&item).unwrap_or(Value::Null);
    body["apiVersion"] = json!(API_VERSION);
    body["kind"] = json!(kind.as_str());
    LiveObject { id, body, resource_version }
}

/// Sends a request again while the API server answers 429 (throttled: `--max-requests-inflight`,
/// priority and fairness) or 503 (starting), at most `RETRIES` times, waiting what it asks
/// (`retryAfterSeconds`) or a short backoff, with jitter so that concurrent requests do not come
/// back together. Any other answer, a 504 included, is returned at once.
async fn patiently<T, F, Fut>(mut send: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 0;
    loop {
        match send().await {
            Err(kube::Error::Api(status)) if matches!(status.code, 429 | 503) && attempt < RETRIES => {
                attempt += 1;
                let asked = status.details.as_ref().map(|d| d.retry_after_seconds).filter(|s| *s > 0);
                let wait =
                    asked.map_or(std::time::Duration::from_millis(100 << attempt.min(6)), |s| std::time::Duration::from_secs(s.into()));
                let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
                let jitter = wait.mul_f64(f64::from(nanos % 1000) / 2000.0);
                tokio::time::sleep((wait + jitter).min(MAX_RETRY_DELAY)).await;
            }
            other => return other,
        }
    }
}
