//! What a cluster already holds, as the files of a repository: each namespace's MCPServers as
//! its `.mcp/servers.yaml` (the inverse of `load::metadata::server_to_manifest`), its grants and
//! sessions one file each. What the files cannot say is named, never dropped without a word.

use crate::cluster::{Cluster, ClusterError};
use crate::load::metadata::{PULL_HOST, rewrite_pull_host};
use crate::model::Kind;
use crate::model::live::{FIELD_MANAGER, LiveObject, MANAGED_BY, PART_OF, REVISION, SIGNED_BY, SOURCE};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The label that carries a server's scope (DOMAIN.md §3.3).
const SCOPE: &str = "mcpruntime.org/scope";
/// The MCPServer fields `.mcp/servers.yaml` has no key for (DOMAIN.md §3.2).
const NOT_IN_METADATA: [&str; 5] = ["ingressClass", "ingressAnnotations", "imagePullSecrets", "registryOverride", "useProvisionedRegistry"];
/// What kubectl and the API server add that is not part of what the object says.
const SERVER_SIDE: [&str; 7] =
    ["uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink", "deletionGracePeriodSeconds"];
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The repository files of a set of live objects, and what they could not carry.
#[derive(Debug, Default)]
pub struct Imported {
    /// Relative path and text, in path order.
    pub files: Vec<(String, String)>,
    pub servers: usize,
    pub grants: usize,
    pub sessions: usize,
    /// One line per thing left out or changed: `namespace/name: what, and why`.
    pub left_out: Vec<String>,
}

/// The servers, grants and sessions of the cluster, in `namespaces` (all when empty).
pub async fn read(cluster: &Cluster, namespaces: &[String]) -> Result<Vec<LiveObject>, ClusterError> {
    let (servers, grants, sessions) =
        futures::try_join!(cluster.list(Kind::Server), cluster.list(Kind::Grant), cluster.list(Kind::Session))?;
    Ok(servers
        .into_iter()
        .chain(grants)
        .chain(sessions)
        .filter(|o| namespaces.is_empty() || namespaces.contains(&o.id.namespace))
        .collect())
}

/// Lays `objects` out as `NAMESPACE/.mcp/servers.yaml`, `NAMESPACE/grants/NAME.yaml` and
/// `NAMESPACE/sessions/NAME.yaml`.
pub fn files_of(objects: &[LiveObject]) -> Imported {
    let mut imported = Imported::default();
    let mut servers: BTreeMap<&str, Vec<(&str, Value)>> = BTreeMap::new();
    for object in objects {
        let id = &object.id;
        // The API server only stores DNS-1123 names; anything else would not be a safe path.
        if !is_dns_name(&id.namespace) || !is_dns_name(&id.name) {
            imported.left_out.push(format!("{}/{}: not imported: the name is not a DNS-1123 name", id.namespace, id.name));
            continue;
        }
        let whose = format!("{}/{}", id.namespace, id.name);
        match id.kind {
            Kind::Server => {
                imported.servers += 1;
                servers.entry(&id.namespace).or_default().push((&id.name, server_entry(&object.body, &whose, &mut imported.left_out)));
            }
            Kind::Grant | Kind::Session => {
                let folder = if id.kind == Kind::Grant { "grants" } else { "sessions" };
                *(if id.kind == Kind::Grant { &mut imported.grants } else { &mut imported.sessions }) += 1;
                let text = crate::plan::diff::to_yaml(&declared(&object.body));
                imported.files.push((format!("{}/{folder}/{}.yaml", id.namespace, id.name), text));
            }
        }
    }
    for (namespace, mut entries) in servers {
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let metadata = json!({"version": "v1", "servers": entries.into_iter().map(|(_, entry)| entry).collect::<Vec<_>>()});
        imported.files.push((format!("{namespace}/.mcp/servers.yaml"), crate::plan::diff::to_yaml(&metadata)));
    }
    imported.files.sort();
    imported
}

/// A grant or session as its author would have written it: what the API server and our own
/// applies added is taken out (server-side metadata, status, ownership labels, provenance).
fn declared(body: &Value) -> Value {
    let mut metadata = body["metadata"].as_object().cloned().unwrap_or_default();
    for key in SERVER_SIDE {
        metadata.remove(key);
    }
    let (labels, annotations) = authored(&body["metadata"]);
    for (key, map) in [("labels", labels), ("annotations", annotations)] {
        if map.is_empty() {
            metadata.remove(key);
        } else {
            metadata.insert(key.into(), Value::Object(map));
        }
    }
    json!({"apiVersion": body["apiVersion"], "kind": body["kind"], "metadata": metadata, "spec": body["spec"]})
}

/// The labels and annotations an object's author gave it: without our ownership labels, the
/// provenance of our applies and kubectl's copy of its last apply.
fn authored(metadata: &Value) -> (Map<String, Value>, Map<String, Value>) {
    let mut labels = metadata["labels"].as_object().cloned().unwrap_or_default();
    labels.remove(PART_OF);
    if labels.get(MANAGED_BY).and_then(Value::as_str) == Some(FIELD_MANAGER) {
        labels.remove(MANAGED_BY);
    }
    let mut annotations = metadata["annotations"].as_object().cloned().unwrap_or_default();
    for key in [LAST_APPLIED, REVISION, SOURCE, SIGNED_BY] {
        annotations.remove(key);
    }
    (labels, annotations)
}

/// The `servers:` entry that `server_to_manifest` turns back into this MCPServer: `name`,
/// `namespace`, `scope` from its label, `route` from `ingressPath`, the other spec fields as
/// they are. The fields, labels and annotations the metadata cannot say are left out and named.
fn server_entry(body: &Value, whose: &str, left_out: &mut Vec<String>) -> Value {
    let mut entry = Map::new();
    entry.insert("name".into(), body["metadata"]["name"].clone());
    entry.insert("namespace".into(), body["metadata"]["namespace"].clone());
    let (mut labels, annotations) = authored(&body["metadata"]);
    if let Some(scope) = labels.remove(SCOPE) {
        entry.insert("scope".into(), scope);
    }
    for what in labels.keys().map(|k| format!("label {k}")).chain(annotations.keys().map(|k| format!("annotation {k}"))) {
        left_out.push(format!("{whose}: {what} left out: .mcp/servers.yaml has no place for it"));
    }
    for (key, value) in body["spec"].as_object().into_iter().flatten() {
        match key.as_str() {
            "ingressPath" => {
                entry.insert("route".into(), value.clone());
            }
            "servicePort" if value == &json!(80) => {}
            "servicePort" => left_out.push(format!("{whose}: spec.servicePort {value} left out: the metadata's servers always get 80")),
            key if NOT_IN_METADATA.contains(&key) => {
                left_out.push(format!("{whose}: spec.{key} left out: .mcp/servers.yaml has no key for it"));
            }
            "image" => {
                let image = value.as_str().unwrap_or_default();
                if rewrite_pull_host(image) != image {
                    left_out.push(format!(
                        "{whose}: spec.image {image} will change: the metadata's images are pulled from {PULL_HOST} (server generate rewrites the registry)"
                    ));
                }
                entry.insert(key.clone(), value.clone());
            }
            _ => {
                entry.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(entry)
}

pub(super) fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::metadata::server_to_manifest;
    use crate::model::ObjectId;

    fn live(kind: Kind, body: Value) -> LiveObject {
        let id = ObjectId {
            kind,
            namespace: body["metadata"]["namespace"].as_str().unwrap().into(),
            name: body["metadata"]["name"].as_str().unwrap().into(),
        };
        LiveObject { id, body, resource_version: "7".into() }
    }

    #[test]
    fn a_server_comes_back_as_the_metadata_that_generates_it() {
        let server = json!({
            "apiVersion": "mcpruntime.org/v1alpha1", "kind": "MCPServer",
            "metadata": {"name": "ledger", "namespace": "mcp-team-a", "uid": "u", "resourceVersion": "7",
                "labels": {"mcpruntime.org/scope": "tenant", "team": "a"}},
            "spec": {"image": "registry.registry.svc.cluster.local:5000/ledger", "imageTag": "1.2", "replicas": 2, "port": 8088,
                "servicePort": 80, "ingressPath": "/ledger/mcp", "ingressClass": "traefik",
                "tools": [{"name": "read", "requiredTrust": "low", "sideEffect": "read"}]},
        });
        let imported = files_of(&[live(Kind::Server, server.clone())]);
        assert_eq!(imported.files.len(), 1);
        assert_eq!(imported.files[0].0, "mcp-team-a/.mcp/servers.yaml");
        let metadata: Value = serde_saphyr::from_str(&imported.files[0].1).unwrap();
        let generated = server_to_manifest(metadata["servers"][0].as_object().unwrap());
        let mut expected = server["spec"].clone();
        expected.as_object_mut().unwrap().remove("ingressClass");
        assert_eq!(generated["spec"], expected);
        assert_eq!(generated["metadata"]["labels"], json!({"mcpruntime.org/scope": "tenant"}));
        assert_eq!(
            imported.left_out,
            [
                "mcp-team-a/ledger: label team left out: .mcp/servers.yaml has no place for it",
                "mcp-team-a/ledger: spec.ingressClass left out: .mcp/servers.yaml has no key for it",
            ]
        );
    }

    #[test]
    fn grants_lose_what_the_server_and_our_applies_added() {
        let grant = json!({
            "apiVersion": "mcpruntime.org/v1alpha1", "kind": "MCPAccessGrant",
            "metadata": {"name": "g", "namespace": "mcp-team-a", "uid": "u", "generation": 3, "managedFields": [],
                "labels": {MANAGED_BY: FIELD_MANAGER, PART_OF: "applyset-x-v1", "owner": "a"},
                "annotations": {LAST_APPLIED: "{}", "mcp-gitops.io/revision": "abc", "mcp-gitops.io/expires-at": "2027-01-01T00:00:00Z"}},
            "spec": {"serverRef": {"name": "ledger"}},
            "status": {"ready": true},
        });
        let imported = files_of(&[live(Kind::Grant, grant)]);
        assert_eq!(imported.files[0].0, "mcp-team-a/grants/g.yaml");
        let written: Value = serde_saphyr::from_str(&imported.files[0].1).unwrap();
        assert_eq!(
            written,
            json!({"apiVersion": "mcpruntime.org/v1alpha1", "kind": "MCPAccessGrant",
                "metadata": {"name": "g", "namespace": "mcp-team-a", "labels": {"owner": "a"},
                    "annotations": {"mcp-gitops.io/expires-at": "2027-01-01T00:00:00Z"}},
                "spec": {"serverRef": {"name": "ledger"}}})
        );
        assert!(imported.left_out.is_empty());
    }

    #[test]
    fn names_that_are_not_paths_are_not_written() {
        let hostile = json!({"apiVersion": "mcpruntime.org/v1alpha1", "kind": "MCPAgentSession",
            "metadata": {"name": "../../etc/x", "namespace": "mcp-team-a"}, "spec": {}});
        let imported = files_of(&[live(Kind::Session, hostile)]);
        assert!(imported.files.is_empty());
        assert_eq!(imported.left_out.len(), 1);
    }
}
