//! Watches on the members of one ApplySet (one list-then-watch per kind, filtered by the
//! membership label): each object's resourceVersion as it changes (`MemberEvent`, what the
//! daemon's live state is made of), and for each change whether another field manager made it
//! (drift). Our own writes and status updates are not drift.

use super::{Cluster, api_resource};
use crate::model::live::{ApplySet, Control, FIELD_MANAGER, MemberEvent, PART_OF, STATUS_MANAGER};
use crate::model::{Kind, ObjectId};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    pub event: MemberEvent,
    /// For a change: the manager of the newest write to the object's fields, when that was not
    /// mcp-gitops.
    pub changed_by: Option<String>,
}

impl Cluster {
    /// What happens to the members of `applyset`, for as long as the stream is polled. Watch
    /// failures are retried with backoff (kube's default), never ended; a watch that fell too
    /// far behind lists its kind again.
    pub fn watch_members(&self, applyset: &ApplySet) -> impl Stream<Item = MemberChange> + Send + 'static {
        let selector = format!("{PART_OF}={}", applyset.id());
        let streams = Kind::ALL.map(|kind| {
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &api_resource(kind));
            watcher(api, watcher::Config::default().labels(&selector))
                .default_backoff()
                .filter_map(move |event| async move {
                    let version = |object: &DynamicObject| object.metadata.resource_version.clone().unwrap_or_default();
                    let (event, changed_by) = match event {
                        Ok(watcher::Event::Init) => (MemberEvent::Relisting(kind), None),
                        Ok(watcher::Event::InitApply(object)) => {
                            (MemberEvent::Found { id: id_of(kind, &object), resource_version: version(&object) }, None)
                        }
                        Ok(watcher::Event::InitDone) => (MemberEvent::Listed(kind), None),
                        Ok(watcher::Event::Apply(object)) => {
                            let changed_by = newest_other_writer(object.metadata.managed_fields.as_deref().unwrap_or_default());
                            (MemberEvent::Changed { id: id_of(kind, &object), resource_version: version(&object) }, changed_by)
                        }
                        Ok(watcher::Event::Delete(object)) => (MemberEvent::Deleted(id_of(kind, &object)), None),
                        Err(e) => {
                            tracing::debug!(kind = %kind, "watch interrupted ({e}); retrying");
                            return None;
                        }
                    };
                    Some(MemberChange { event, changed_by })
                })
                .boxed()
        });
        futures::stream::select_all(streams)
    }
}

impl Cluster {
    /// What `mcp-gitops daemon suspend|pin` tells the daemons of `applyset`, each time the
    /// inventory changes (its status annotations included: the caller compares). A deleted
    /// inventory tells nothing is set. Failures are retried with backoff, never ended.
    pub fn watch_control(&self, applyset: &ApplySet) -> impl Stream<Item = Control> + Send + 'static {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &applyset.namespace);
        let name = format!("metadata.name={}", applyset.name);
        watcher(api, watcher::Config::default().fields(&name)).default_backoff().filter_map(|event| async move {
            let of = |configmap: ConfigMap| Control::of(&configmap.metadata.annotations.unwrap_or_default());
            match event {
                Ok(watcher::Event::Apply(configmap) | watcher::Event::InitApply(configmap)) => Some(of(configmap)),
                Ok(watcher::Event::Delete(_)) => Some(Control::default()),
                Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
                Err(e) => {
                    tracing::debug!("the inventory's watch was interrupted ({e}); retrying");
                    None
                }
            }
        })
    }
}

fn id_of(kind: Kind, object: &DynamicObject) -> ObjectId {
    ObjectId {
        kind,
        namespace: object.metadata.namespace.clone().unwrap_or_default(),
        name: object.metadata.name.clone().unwrap_or_default(),
    }
}

/// The manager of the newest write to an object's spec or metadata when that write is not ours
/// (status subresource writes, the operator's, do not count).
fn newest_other_writer(entries: &[ManagedFieldsEntry]) -> Option<String> {
    let writes = entries.iter().filter(|e| e.subresource.as_deref().unwrap_or_default().is_empty());
    let ours = writes.clone().filter(|e| e.manager.as_deref() == Some(FIELD_MANAGER)).filter_map(|e| e.time.as_ref()).max();
    let (theirs, manager) = writes
        .filter(|e| !matches!(e.manager.as_deref(), Some(FIELD_MANAGER | STATUS_MANAGER)))
        .filter_map(|e| Some((e.time.as_ref()?, e.manager.clone().unwrap_or_default())))
        .max_by(|a, b| a.0.cmp(b.0))?;
    // The API server keeps times to the second: a tie is taken as someone else's later write.
    ours.is_none_or(|ours| theirs >= ours).then_some(manager)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn entry(manager: &str, time: &str, subresource: Option<&str>) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            time: Some(Time(time.parse().expect("time"))),
            subresource: subresource.map(String::from),
            ..ManagedFieldsEntry::default()
        }
    }

    #[test]
    fn only_a_newer_write_by_someone_else_is_a_change() {
        let ours = entry(FIELD_MANAGER, "2026-11-30T10:00:05Z", None);
        assert_eq!(newest_other_writer(std::slice::from_ref(&ours)), None);
        let earlier = entry("kubectl-edit", "2026-11-30T10:00:00Z", None);
        assert_eq!(newest_other_writer(&[earlier, ours.clone()]), None, "our apply came after the edit");
        let later = entry("kubectl-edit", "2026-11-30T10:00:09Z", None);
        assert_eq!(newest_other_writer(&[ours.clone(), later]), Some("kubectl-edit".into()));
        let status = entry("mcp-runtime-operator", "2026-11-30T10:00:09Z", Some("status"));
        assert_eq!(newest_other_writer(&[ours, status]), None, "status updates are not drift");
    }
}
