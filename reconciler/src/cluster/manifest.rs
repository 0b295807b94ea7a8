//! Server-side apply of any Kubernetes object (a Namespace, RBAC, a Deployment, a Secret...),
//! for `install`: the kind is resolved through the API server's discovery, and the answer says
//! whether the object was created, changed or left as it was.

use super::{Cluster, ClusterError, patiently};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
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
        let text = |pointer: &str| body.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
        let (group, version) = text("/apiVersion").rsplit_once('/').unwrap_or(("", text("/apiVersion")));
        let (kind, name) = (text("/kind"), text("/metadata/name"));
        let (resource, capabilities) = discovery::pinned_kind(&self.client, &GroupVersionKind::gvk(group, version, kind)).await?;
        let api: Api<DynamicObject> = match capabilities.scope {
            Scope::Cluster => Api::all_with(self.client.clone(), &resource),
            Scope::Namespaced => Api::namespaced_with(self.client.clone(), text("/metadata/namespace"), &resource),
        };
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
}
