//! Server-side apply, read and delete of any Kubernetes object (a Namespace, RBAC, a Deployment,
//! a Secret...), for `install`: the kind is resolved through the API server's discovery, and the
//! answer says whether the object was created, changed or left as it was.

use super::{Cluster, ClusterError, patiently};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use serde_json::Value;

/// What one apply did, in kubectl's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Configured,
    Unchanged,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Applied::Created => "created",
            Applied::Configured => "configured",
            Applied::Unchanged => "unchanged",
        })
    }
}

impl Cluster {
    /// Server-side apply of `body` as `field_manager`, taking over fields another manager owns
    /// (the caller is the source of truth for these objects). An apply that changes nothing
    /// keeps the resourceVersion, which tells `configured` from `unchanged`.
    pub async fn apply_manifest(&self, body: &Value, field_manager: &str) -> Result<Applied, ClusterError> {
        let (api, name) = self.api_of(body).await?;
        let version_of = |object: Option<DynamicObject>| object.and_then(|o| o.metadata.resource_version);
        let before = version_of(patiently(|| api.get_opt(name)).await?);
        let (params, patch) = (PatchParams::apply(field_manager).force(), Patch::Apply(body));
        let after = version_of(Some(patiently(|| api.patch(name, &params, &patch)).await?));
        Ok(match before {
            None => Applied::Created,
            Some(before) if Some(&before) == after.as_ref() => Applied::Unchanged,
            Some(_) => Applied::Configured,
        })
    }

    /// The live object of `body`'s kind, namespace and name, if there is one.
    pub async fn get_manifest(&self, body: &Value) -> Result<Option<Value>, ClusterError> {
        let (api, name) = self.api_of(body).await?;
        let found = patiently(|| api.get_opt(name)).await?;
        Ok(found.map(|o| serde_json::to_value(o).unwrap_or(Value::Null)))
    }

    /// Deletes the object `live` names, only while it is still at `live`'s resourceVersion (an
    /// object changed since it was read is left alone). One already gone is not an error.
    pub async fn delete_manifest(&self, live: &Value) -> Result<(), ClusterError> {
        let (api, name) = self.api_of(live).await?;
        let resource_version = live.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(String::from);
        let params = DeleteParams { preconditions: Some(Preconditions { resource_version, uid: None }), ..DeleteParams::default() };
        match patiently(|| api.delete(name, &params)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The API of `body`'s apiVersion and kind (found through discovery), in its namespace, and
    /// its name.
    async fn api_of<'a>(&self, body: &'a Value) -> Result<(Api<DynamicObject>, &'a str), ClusterError> {
        let text = |pointer: &str| body.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
        let (group, version) = text("/apiVersion").rsplit_once('/').unwrap_or(("", text("/apiVersion")));
        let (resource, capabilities) = discovery::pinned_kind(&self.client, &GroupVersionKind::gvk(group, version, text("/kind"))).await?;
        let api = match capabilities.scope {
            Scope::Cluster => Api::all_with(self.client.clone(), &resource),
            Scope::Namespaced => Api::namespaced_with(self.client.clone(), text("/metadata/namespace"), &resource),
        };
        Ok((api, text("/metadata/name")))
    }
}
