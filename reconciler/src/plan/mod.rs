//! Plan: desired state vs a base (another revision or directory, or the live state: `live`) ->
//! one `Plan` value: object changes with field-level diffs, the access diff in the gateway's own
//! terms, and the predicted policy revision per affected server. `Plan` is the contract (its JSON
//! is `format_version` 1); renderers in `crate::render` are pure functions of it. No I/O here.

pub mod access;
pub mod approvals;
pub mod break_glass;
pub mod diff;
pub mod expiring;
pub mod fields;
pub mod fleet;
pub mod later;
pub mod live;
pub mod partial;

pub use access::{AccessChange, Direction};
pub use approvals::{Approvals, Reclassification, Requirement};

use crate::gateway::{PolicyDocument, render, render_some};
use crate::model::{DesiredState, Diagnostic, Kind, Object, ObjectId};
use jiff::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

pub const FORMAT_VERSION: &str = "1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Delete,
    NoOp,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::NoOp => "no-op",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub action: Action,
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    /// Unified diff of the normalized YAML (empty for no-op).
    pub diff: String,
    /// The live object's resourceVersion when planned against a cluster; null offline.
    pub expected_resource_version: Option<String>,
    /// The document to apply (create and update only); credential-like values are masked when
    /// it is serialized (`apply --plan` re-reads the repository, not this copy).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "diff::serialize_masked")]
    pub object: Option<serde_json::Value>,
    /// Live fields that differ from the desired state and are owned by another field manager.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
    /// The object exists but is not managed by mcp-gitops: applying it means adopting it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// Why this change may be wrong: the base file that declares it could not be read in full,
    /// so a create may really be an update or a no-op.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncertain: Option<String>,
    /// Where the live object's content came from, planned against a cluster: its provenance
    /// annotations (`mcp-gitops.io/revision`, `/source`, `/signed-by`), for updates and deletes.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub last_changed: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Drift {
    pub path: String,
    pub managers: Vec<String>,
}

impl Change {
    pub fn id(&self) -> ObjectId {
        ObjectId { kind: self.kind, namespace: self.namespace.clone(), name: self.name.clone() }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Base {
    /// `directory`, `git` (offline) or `cluster` (live).
    pub kind: String,
    pub source: String,
    pub revision: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PolicyRevision {
    pub server: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub no_op: usize,
    pub access_widened: usize,
    pub access_narrowed: usize,
    pub access_changed: usize,
    pub errors: usize,
    pub warnings: usize,
    /// Every object of the base is deleted, none kept: more often a wrong path or an `ignore:`
    /// glob than an intent. Absent when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deletes_everything: bool,
}

impl Summary {
    pub fn has_changes(&self) -> bool {
        self.create + self.update + self.delete > 0
    }

    /// Sets `deletes_everything` from the counts (again, when no-ops are added to a plan).
    fn judge_deletions(&mut self) {
        self.deletes_everything = self.delete > 0 && self.update == 0 && self.no_op == 0;
    }

    /// A warning line for a plan that deletes every object of its base; `None` for any other.
    pub fn deletes_everything_warning(&self) -> Option<String> {
        let kept = if self.create == 0 { "the desired state declares no object" } else { "every object the desired state declares is new" };
        self.deletes_everything.then(|| {
            format!(
                "This plan deletes every object of the base ({} object(s)): {kept}. Check PATH and the ignore: globs of mcp-gitops.yaml before applying it.",
                self.delete
            )
        })
    }

    /// The counts of the object changes and of `desired`'s diagnostics (access counts are zero).
    fn of(changes: &[Change], desired: &DesiredState) -> Summary {
        let mut summary = Summary::default();
        for change in changes {
            match change.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Delete => summary.delete += 1,
                Action::NoOp => summary.no_op += 1,
            }
        }
        summary.judge_deletions();
        summary.errors = desired.diagnostics.iter().filter(|d| d.is_error()).count();
        summary.warnings = desired.diagnostics.len() - summary.errors;
        summary
    }
}

impl std::fmt::Display for Summary {
    /// `Plan: 3 to create, 1 to update, 0 to delete; access: 2 widened, 1 narrowed`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Plan: {} to create, {} to update, {} to delete; access: {} widened, {} narrowed",
            self.create, self.update, self.delete, self.access_widened, self.access_narrowed
        )?;
        if self.access_changed > 0 {
            write!(f, ", {} changed", self.access_changed)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub format_version: &'static str,
    pub desired_revision: String,
    pub base: Base,
    pub changes: Vec<Change>,
    pub access_changes: Vec<AccessChange>,
    pub policy_revisions: Vec<PolicyRevision>,
    /// Who must approve the change, from what it does to access and `owners:` in
    /// `mcp-gitops.yaml` (the base's, when it has owners: a change cannot waive its own review).
    pub approvals: Approvals,
    /// The tools whose declared side effect the change lowers (destructive to write or read,
    /// write to read): grants that allow the lower class reach them, so the reclassification
    /// itself needs approval. Absent when there is none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reclassified: Vec<Reclassification>,
    /// The time-bound grants the change creates or updates, soonest expiry first, each with the
    /// access it takes away then.
    pub expiring: Vec<expiring::Expiring>,
    pub diagnostics: Vec<Diagnostic>,
    /// The base's own load errors (unreadable files and documents): their objects are missing
    /// from the base, so creates of what they declare, deletions and access changes are
    /// uncertain. Empty against a cluster.
    pub base_diagnostics: Vec<Diagnostic>,
    pub summary: Summary,
    /// With `clusters:` in `mcp-gitops.yaml`: each cluster's own plan; the fields above are then
    /// their union (`fleet`). Absent without.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<fleet::ClusterPlan>,
}

/// How much a plan computes: what the change can affect (the default), or everything, the
/// reference the incremental path must match byte for byte (`plan --no-incremental`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Changed,
    All,
}

/// Plans `desired` against `base`; `now` is the time access decisions are evaluated at.
pub fn plan(base: &DesiredState, base_kind: &str, desired: &DesiredState, now: Timestamp, work: Work) -> Plan {
    let changes = object_changes(&base.objects, &desired.objects);
    let base_info = Base { kind: base_kind.to_string(), source: base.source.clone(), revision: base.revision.clone() };
    assemble(base, base_info, desired, changes, now, work)
}

/// A plan from object changes already computed: adds the access diff, the predicted policy
/// revisions and the summary.
pub fn assemble(
    base: &DesiredState,
    base_info: Base,
    desired: &DesiredState,
    mut changes: Vec<Change>,
    now: Timestamp,
    work: Work,
) -> Plan {
    let base_diagnostics: Vec<Diagnostic> = base.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
    mark_uncertain(&mut changes, &base_diagnostics, desired);
    let (before, after) = render_changed(base, desired, work);
    let mut access_changes = access::diff(base, &before, desired, &after, now);
    // What holds only later (an expiry extended or removed) is a change of this plan too.
    let later = later::access_changes(base, desired, now, &access_changes, work);
    access_changes.extend(later);
    let mut servers: Vec<&ObjectId> = before.keys().chain(after.keys()).collect();
    servers.sort();
    servers.dedup();
    let policy_revisions: Vec<PolicyRevision> = servers
        .into_iter()
        .map(|id| PolicyRevision {
            server: format!("{}/{}", id.namespace, id.name),
            before: before.get(id).map(|d| d.revision.clone()),
            after: after.get(id).map(|d| d.revision.clone()),
        })
        .filter(|r| r.before != r.after)
        .collect();
    let mut summary = Summary::of(&changes, desired);
    for change in &access_changes {
        match change.direction {
            Direction::Widened => summary.access_widened += 1,
            Direction::Narrowed => summary.access_narrowed += 1,
            Direction::Changed => summary.access_changed += 1,
        }
    }
    let mut plan = Plan {
        format_version: FORMAT_VERSION,
        desired_revision: desired.revision.clone(),
        base: base_info,
        changes,
        access_changes,
        policy_revisions,
        approvals: Approvals::default(),
        reclassified: approvals::reclassified(base, desired),
        expiring: Vec::new(),
        diagnostics: desired.diagnostics.clone(),
        base_diagnostics,
        summary,
        clusters: Vec::new(),
    };
    let owners = if base.config.owners.servers.is_empty() { &desired.config.owners } else { &base.config.owners };
    approvals::add_to(&mut plan, owners, desired, base);
    plan.approvals.break_glass = break_glass::judge(owners, desired, &plan.changes, now);
    plan.expiring = expiring::expiring(desired, &plan.changes, now, work);
    plan
}

/// A plan of the object changes alone: no access diff, policy revisions, approvals or
/// expiring grants. What an unattended apply needs (the daemon), without rendering any policy.
pub fn of_changes(desired: &DesiredState, base: Base, changes: Vec<Change>) -> Plan {
    Plan {
        format_version: FORMAT_VERSION,
        desired_revision: desired.revision.clone(),
        base,
        summary: Summary::of(&changes, desired),
        changes,
        access_changes: Vec::new(),
        policy_revisions: Vec::new(),
        approvals: Approvals::default(),
        reclassified: Vec::new(),
        expiring: Vec::new(),
        diagnostics: desired.diagnostics.clone(),
        base_diagnostics: Vec::new(),
        clusters: Vec::new(),
    }
}

/// The policies of the servers whose policy may differ between `base` and `desired`, rendered in
/// each: a server's policy is a function of its own object, the grants and sessions that target
/// it and the cluster name alone, so a server none of which changed renders the same in both and
/// changes no decision and no revision. A plan of a few grants renders a few servers, not all.
/// With `Work::All`, every server is rendered.
pub(crate) fn render_changed(
    base: &DesiredState,
    desired: &DesiredState,
    work: Work,
) -> (BTreeMap<ObjectId, PolicyDocument>, BTreeMap<ObjectId, PolicyDocument>) {
    let servers = if work == Work::All { None } else { changed_servers(base, desired) };
    let wanted = |id: &ObjectId| servers.as_ref().is_none_or(|s| s.contains(&(id.namespace.clone(), id.name.clone())));
    (render_some(base, wanted).into_iter().collect(), render_some(desired, wanted).into_iter().collect())
}

/// The (namespace, name) of every server whose object or targeting objects differ between the
/// two states, either side's targets counted; `None` (all of them) when the cluster name differs.
fn changed_servers(base: &DesiredState, desired: &DesiredState) -> Option<HashSet<(String, String)>> {
    if base.config.cluster_name() != desired.config.cluster_name() {
        return None;
    }
    // By id, each state's objects in order: an id declared twice is compared as a whole.
    fn by_id(state: &DesiredState) -> HashMap<&ObjectId, Vec<&Object>> {
        let mut objects: HashMap<&ObjectId, Vec<&Object>> = HashMap::new();
        state.objects.iter().for_each(|o| objects.entry(&o.id).or_default().push(o));
        objects
    }
    let (old, new) = (by_id(base), by_id(desired));
    let same = |a: &Vec<&Object>, b: &Vec<&Object>| a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.body == b.body);
    let mut servers = HashSet::new();
    for (id, objects) in old.iter().chain(new.iter()) {
        let (was, is) = (old.get(id), new.get(id));
        if was.zip(is).is_some_and(|(was, is)| same(was, is)) {
            continue;
        }
        for object in objects {
            match render::targets(object) {
                Some((namespace, name)) => servers.insert((namespace.to_string(), name.to_string())),
                None => servers.insert((id.namespace.clone(), id.name.clone())),
            };
        }
    }
    Some(servers)
}

/// Marks the creates of objects declared in a base file that could not be read in full: the
/// object may be in that file, unread.
fn mark_uncertain(changes: &mut [Change], base_errors: &[Diagnostic], desired: &DesiredState) {
    if base_errors.is_empty() {
        return;
    }
    let first_error: BTreeMap<&str, &Diagnostic> = base_errors.iter().rev().map(|d| (d.file.as_str(), d)).collect();
    let files: BTreeMap<&ObjectId, &str> = desired.objects.iter().map(|o| (&o.id, o.origin.file.as_str())).collect();
    for change in changes.iter_mut().filter(|c| c.action == Action::Create) {
        let Some(d) = files.get(&change.id()).and_then(|file| first_error.get(file)) else { continue };
        change.uncertain = Some(format!(
            "the base's {} could not be read in full ({} at {}:{}): the object may be declared there, so this may be an update or no change",
            d.file, d.code, d.line, d.column
        ));
    }
}

/// Creates, updates, deletes and no-ops between two object sets, in apply order (servers,
/// grants, sessions; deletes last, in reverse).
pub fn object_changes(base: &[Object], desired: &[Object]) -> Vec<Change> {
    let base: BTreeMap<&ObjectId, &Object> = base.iter().map(|o| (&o.id, o)).collect();
    let desired: BTreeMap<&ObjectId, &Object> = desired.iter().map(|o| (&o.id, o)).collect();
    let mut changes = Vec::new();
    for (id, object) in &desired {
        let (action, diff) = match base.get(id) {
            None => (Action::Create, diff::unified(None, Some(&diff::normalize(&object.body)))),
            // Equal bodies normalize equally: most objects of a plan need no normalizing at all.
            Some(old) if old.body == object.body => (Action::NoOp, String::new()),
            Some(old) => {
                let (before, after) = (diff::normalize(&old.body), diff::normalize(&object.body));
                if before == after { (Action::NoOp, String::new()) } else { (Action::Update, diff::unified(Some(&before), Some(&after))) }
            }
        };
        let mut change = change(id, action, diff);
        if action != Action::NoOp {
            change.object = Some(serde_json::Value::clone(&object.body));
        }
        changes.push(change);
    }
    let mut deletes: Vec<Change> = base
        .iter()
        .filter(|(id, _)| !desired.contains_key(*id))
        .map(|(id, old)| change(id, Action::Delete, diff::unified(Some(&diff::normalize(&old.body)), None)))
        .collect();
    deletes.reverse();
    changes.extend(deletes);
    changes
}

pub(crate) fn change(id: &ObjectId, action: Action, diff: String) -> Change {
    Change {
        action,
        kind: id.kind,
        namespace: id.namespace.clone(),
        name: id.name.clone(),
        diff,
        expected_resource_version: None,
        object: None,
        drift: Vec::new(),
        adopt: false,
        uncertain: None,
        last_changed: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::render_all;
    use crate::source::{Snapshot, SourceFile};

    const SERVER: &str = "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPServer\nmetadata: {name: NAME, namespace: NS}\nspec:\n  teamID: team\n  gateway: {enabled: ON}\n  tools: [{name: t, sideEffect: read}, {name: w, sideEffect: write}]\n";
    const GRANT: &str = "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata: {name: NAME, namespace: NS}\nspec:\n  serverRef: {name: TARGET}\n  subject: {humanID: h}\n  maxTrust: TRUST\n  allowedSideEffects: [read]\n";
    const SESSION: &str = "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAgentSession\nmetadata: {name: NAME, namespace: NS}\nspec:\n  serverRef: {name: TARGET, namespace: a}\n  subject: {agentID: x}\n  consentedTrust: TRUST\n";

    /// One object document of a small world: two servers in two namespaces, grants and sessions
    /// that target them (across namespaces too), each in a few variants.
    fn document(pick: (u8, u8, u8, bool)) -> (String, String) {
        let (kind, name, namespace, flag) = pick;
        let name = ["s1", "s2", "g1"][usize::from(name % 3)];
        let namespace = ["a", "b"][usize::from(namespace % 2)];
        let on = if flag { "true" } else { "false" };
        let trust = if flag { "high" } else { "low" };
        let target = if name == "g1" { "s1" } else { "s2" };
        let text = match kind % 3 {
            0 => SERVER.replace("ON", on),
            1 => GRANT.replace("TRUST", trust).replace("TARGET", target),
            _ => SESSION.replace("TRUST", trust).replace("TARGET", target),
        };
        (format!("{kind}-{name}-{namespace}.yaml"), text.replace("NAME", name).replace("NS", namespace))
    }

    fn state(picks: &[(u8, u8, u8, bool)], cluster: bool) -> DesiredState {
        let mut files: BTreeMap<String, String> = picks.iter().map(|&p| document(p)).collect();
        if cluster {
            files.insert("mcp-gitops.yaml".into(), "clusterName: other\n".into());
        }
        let files = files.into_iter().map(|(path, text)| SourceFile { path, bytes: text.into_bytes() }).collect();
        crate::load::load(Snapshot { files, ..Snapshot::default() }).state
    }

    proptest::proptest! {
        /// The servers rendered for a plan hold, for every server whose policy differs between
        /// the two states, the policies a full rendering of each state gives.
        #[test]
        fn rendering_the_changed_servers_misses_no_changed_policy(
            before in proptest::collection::vec(proptest::arbitrary::any::<(u8, u8, u8, bool)>(), 0..6),
            after in proptest::collection::vec(proptest::arbitrary::any::<(u8, u8, u8, bool)>(), 0..6),
            clusters in proptest::arbitrary::any::<(bool, bool)>(),
        ) {
            let (base, desired) = (state(&before, clusters.0), state(&after, clusters.1));
            let full = |state: &DesiredState| -> BTreeMap<ObjectId, PolicyDocument> { render_all(state).into_iter().collect() };
            let (all_before, all_after) = (full(&base), full(&desired));
            let (some_before, some_after) = render_changed(&base, &desired, Work::Changed);
            for (some, all) in [(&some_before, &all_before), (&some_after, &all_after)] {
                proptest::prop_assert!(some.iter().all(|(id, document)| all.get(id) == Some(document)));
            }
            for id in all_before.keys().chain(all_after.keys()) {
                if all_before.get(id) != all_after.get(id) {
                    proptest::prop_assert_eq!(some_before.get(id), all_before.get(id), "{}", id);
                    proptest::prop_assert_eq!(some_after.get(id), all_after.get(id), "{}", id);
                }
            }
        }
    }
}
