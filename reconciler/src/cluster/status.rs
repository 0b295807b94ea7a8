//! What the daemon tells people through the cluster: status annotations on the inventory
//! ConfigMap (a merge patch by their own field manager, so that apply's fields stay untouched)
//! and Events (`events.k8s.io/v1`) regarding the inventory.

use super::{Cluster, ClusterError};
use crate::model::live::{ApplySet, Control, FIELD_MANAGER, STATUS_MANAGER};
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;
use std::collections::BTreeMap;

/// Events notes longer than this are cut (the API refuses more than 1 kB).
const MAX_NOTE: usize = 1000;

impl Cluster {
    /// Sets annotations on the inventory. Does nothing when there is no inventory yet (the
    /// first revision was invalid, say): there is nothing to annotate.
    pub async fn annotate_inventory(&self, applyset: &ApplySet, annotations: &BTreeMap<String, String>) -> Result<(), ClusterError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &applyset.namespace);
        let patch = json!({"metadata": {"annotations": annotations}});
        let params = PatchParams { field_manager: Some(STATUS_MANAGER.into()), ..PatchParams::default() };
        match api.patch(&applyset.name, &params, &Patch::Merge(&patch)).await {
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            result => result.map(|_| ()).map_err(ClusterError::from),
        }
    }

    /// What `mcp-gitops daemon suspend|pin` told the daemons of `applyset` (nothing when there
    /// is no inventory yet).
    pub async fn control(&self, applyset: &ApplySet) -> Result<Control, ClusterError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &applyset.namespace);
        let configmap = super::patiently(|| api.get_opt(&applyset.name)).await?;
        Ok(configmap.map(|c| Control::of(&c.metadata.annotations.unwrap_or_default())).unwrap_or_default())
    }

    /// Sets the control annotations of one field manager (`SUSPEND_MANAGER`, `PIN_MANAGER`) on
    /// the inventory: those given, and none of the others it set before (`{}` clears them).
    /// Creates the inventory, and its namespace, when the daemon has not written them yet.
    pub async fn set_control(&self, applyset: &ApplySet, manager: &str, annotations: serde_json::Value) -> Result<(), ClusterError> {
        let clearing = annotations.as_object().is_none_or(|a| a.is_empty());
        let configmap = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": applyset.name, "namespace": applyset.namespace, "annotations": annotations},
        });
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &applyset.namespace);
        let (params, patch) = (PatchParams::apply(manager).force(), Patch::Apply(&configmap));
        match super::patiently(|| api.patch(&applyset.name, &params, &patch)).await {
            Err(kube::Error::Api(status)) if status.code == 404 && !clearing => {
                self.create_namespace(&applyset.namespace).await?;
                super::patiently(|| api.patch(&applyset.name, &params, &patch)).await?;
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            other => {
                other?;
            }
        }
        Ok(())
    }

    /// Publishes one Event regarding the inventory, from reporting instance `instance`.
    pub async fn publish_event(
        &self,
        applyset: &ApplySet,
        instance: &str,
        warning: bool,
        reason: &str,
        note: &str,
    ) -> Result<(), ClusterError> {
        let reporter = Reporter { controller: FIELD_MANAGER.into(), instance: Some(instance.into()) };
        let recorder = Recorder::new(self.client.clone(), reporter);
        let mut note = note.to_string();
        if note.len() > MAX_NOTE {
            let cut = (0..=MAX_NOTE - 3).rev().find(|i| note.is_char_boundary(*i)).unwrap_or(0);
            note.truncate(cut);
            note.push_str("...");
        }
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        let regarding = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
            name: Some(applyset.name.clone()),
            namespace: Some(applyset.namespace.clone()),
            ..ObjectReference::default()
        };
        match recorder.publish(&event, &regarding).await {
            // The daemon's namespace is missing (its first revision was invalid, say).
            Err(kube::Error::Api(status)) if status.code == 404 => {
                self.create_namespace(&applyset.namespace).await?;
                recorder.publish(&event, &regarding).await.map_err(ClusterError::from)
            }
            result => result.map_err(ClusterError::from),
        }
    }
}
