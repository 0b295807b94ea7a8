//! Planning against live cluster state: the desired objects (with their ownership labels) vs
//! what the API server holds, seen through the fields mcp-gitops owns. Deletes are proposed only
//! for objects that carry our ApplySet label AND are listed in the inventory.

use super::fields::{applied_by, changed_paths, other_managers, view};
use super::{Action, Base, Change, Drift, Plan, assemble, change, diff};
use crate::model::live::{ApplySet, FIELD_MANAGER, LiveObject, LiveState, Provenance};
use crate::model::object::Origin;
use crate::model::{DesiredState, Kind, Object, ObjectId};
use jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// With `provenance`, what is created or changed carries the provenance annotations; what is
/// unchanged keeps its own (they are not part of the comparison).
pub fn plan(live: &LiveState, desired: &DesiredState, applyset: &ApplySet, provenance: Option<&Provenance>, now: Timestamp) -> Plan {
    let changes = changes(live, desired.objects.iter().cloned(), applyset, provenance, Diffs::Written);
    let (base, after) = access_states(live, desired, &changes);
    assemble(&base, base_of(live), &after, changes, now, super::Work::Changed)
}

/// What a plan against `live` names as its base: the cluster, and the revision last applied to it.
pub fn base_of(live: &LiveState) -> Base {
    Base {
        kind: "cluster".into(),
        source: live.source.clone(),
        revision: live.inventory.as_ref().map(|i| i.last_applied_revision.clone()).unwrap_or_default(),
    }
}

/// The states the access diff compares, limited to the servers this repository is about (those
/// it declares and those it deletes; other servers in the cluster are not its business): the
/// cluster now, and the cluster after the plan — the desired objects plus the live grants and
/// sessions the plan leaves in place (not ours) that target those servers.
fn access_states(live: &LiveState, desired: &DesiredState, changes: &[Change]) -> (DesiredState, DesiredState) {
    let deleted: BTreeSet<ObjectId> = changes.iter().filter(|c| c.action == Action::Delete).map(Change::id).collect();
    let mut servers: BTreeSet<(String, String)> =
        desired.of_kind(Kind::Server).map(|o| (o.id.namespace.clone(), o.id.name.clone())).collect();
    servers.extend(deleted.iter().filter(|id| id.kind == Kind::Server).map(|id| (id.namespace.clone(), id.name.clone())));
    let current = as_desired_state(live);
    let in_scope = |o: &Object| {
        let target = match crate::gateway::render::targets(o) {
            Some((namespace, name)) => (namespace.to_string(), name.to_string()),
            None => (o.id.namespace.clone(), o.id.name.clone()),
        };
        servers.contains(&target)
    };
    let declared: BTreeSet<&ObjectId> = desired.objects.iter().map(|o| &o.id).collect();
    let mut after_objects = desired.objects.clone();
    after_objects.extend(
        current
            .objects
            .iter()
            .filter(|o| o.id.kind != Kind::Server && !declared.contains(&o.id) && !deleted.contains(&o.id) && in_scope(o))
            .cloned(),
    );
    let base = DesiredState { objects: current.objects.iter().filter(|o| in_scope(o)).cloned().collect(), ..current };
    let after = DesiredState {
        source: desired.source.clone(),
        revision: desired.revision.clone(),
        config: desired.config.clone(),
        objects: after_objects,
        sources: Default::default(),
        diagnostics: desired.diagnostics.clone(),
    };
    (base, after)
}

/// Live objects as a state the gateway model can render (for the access diff).
pub fn as_desired_state(live: &LiveState) -> DesiredState {
    let origin = Origin { file: "(cluster)".into(), spans: Arc::default(), prefix: String::new(), from_metadata: false, line: 0 };
    DesiredState {
        source: live.source.clone(),
        objects: live.objects.iter().filter_map(|o| Object::new(o.id.kind, o.body.clone(), origin.clone())).collect(),
        ..DesiredState::default()
    }
}

/// Whether changes carry their diff texts: people read them; the daemon never shows them, and
/// at 21,000 new objects they are a fifth of its memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diffs {
    Written,
    Skipped,
}

/// The object changes that make `live` what `desired` declares: in id order, then the
/// deletions (of what `live` holds and `desired` does not) in reverse id order. The desired
/// objects are taken: a body no one else holds becomes the change's document without a copy.
pub fn changes(
    live: &LiveState,
    desired: impl IntoIterator<Item = Object>,
    applyset: &ApplySet,
    provenance: Option<&Provenance>,
    diffs: Diffs,
) -> Vec<Change> {
    let text = |before: Option<&serde_json::Value>, after: Option<&serde_json::Value>| match diffs {
        Diffs::Written => diff::unified(before, after),
        Diffs::Skipped => String::new(),
    };
    let by_id: BTreeMap<&ObjectId, &LiveObject> = live.objects.iter().map(|o| (&o.id, o)).collect();
    let wanted: BTreeMap<ObjectId, Object> = desired.into_iter().map(|o| (o.id.clone(), o)).collect();
    let inventory: BTreeSet<ObjectId> = live.inventory.as_ref().map(|i| i.objects.clone()).unwrap_or_default();
    let mut deletes: Vec<Change> = live
        .objects
        .iter()
        .filter(|o| !wanted.contains_key(&o.id) && applyset.owns(o) && inventory.contains(&o.id) && applied_by(&o.body, FIELD_MANAGER))
        .map(|o| {
            let mut change = change(&o.id, Action::Delete, text(Some(&diff::normalize(&o.body)), None));
            change.expected_resource_version = Some(o.resource_version.clone());
            change.last_changed = Provenance::of(&o.body);
            change
        })
        .collect();
    deletes.sort_by_key(|c| std::cmp::Reverse(c.id()));
    let mut changes = Vec::with_capacity(wanted.len() + deletes.len());
    for (id, object) in wanted {
        let mut stamped = Arc::unwrap_or_clone(object.body);
        applyset.stamp(&mut stamped);
        let mut change = match by_id.get(&id) {
            None => change(&id, Action::Create, text(None, Some(&diff::normalize(&stamped)))),
            Some(current) => {
                let after = diff::normalize(&stamped);
                let mut seen = view(&current.body, &stamped, FIELD_MANAGER);
                Provenance::strip(&mut seen);
                let before = diff::normalize(&seen);
                let mut change = if before == after {
                    change(&id, Action::NoOp, String::new())
                } else {
                    let mut change = change(&id, Action::Update, text(Some(&before), Some(&after)));
                    change.drift = changed_paths(&before, &after)
                        .into_iter()
                        .filter_map(|path| {
                            let managers = other_managers(&current.body, &path, FIELD_MANAGER);
                            (!managers.is_empty()).then(|| Drift { path: crate::model::object::pointer_to_path(&path), managers })
                        })
                        .collect();
                    change.adopt = !applyset.owns(current);
                    change
                };
                change.expected_resource_version = Some(current.resource_version.clone());
                change.last_changed = Provenance::of(&current.body);
                change
            }
        };
        if change.action != Action::NoOp {
            if let Some(provenance) = provenance {
                provenance.stamp(&mut stamped, &object.origin.file, object.origin.line);
            }
            change.object = Some(stamped);
        }
        changes.push(change);
    }
    changes.extend(deletes);
    changes
}
