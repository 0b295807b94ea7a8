//! The apply checklist, one for the CLI and the daemon: gate on errors (an invalid repository, or
//! one reaching outside the namespaces allowed, is never applied), then — once the front end has
//! planned against the live state — the guards refuse before anything is written, the changes
//! are applied and the outcomes tallied. Also what `apply --plan` checks of a reviewed plan, and
//! what `--wait` expects of the operator.

use crate::apply::{self, Outcome, Refusal, Report, Status, wait::Expectation};
use crate::cluster::Cluster;
use crate::gateway::{self, PolicyDocument};
use crate::model::live::{ApplySet, Inventory, LiveState};
use crate::model::{DesiredState, Diagnostic, Kind, ObjectId};
use crate::plan::{self, Action, Plan};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The errors that keep `desired` from being applied (none: it may be): its own, and each object
/// outside `fence`, the namespaces whoever runs the apply allows (empty: any).
pub fn gate(desired: &DesiredState, fence: &[String]) -> Vec<Diagnostic> {
    let errors = desired.diagnostics.iter().filter(|d| d.is_error()).cloned();
    errors.chain(crate::validate::fence(desired, fence)).collect()
}

/// The guards, then the apply of `plan` (made against the live state whose inventory is
/// `inventory`); the report tallies the outcomes (`Report::counts`). `cleared` runs once the
/// guards pass, before anything is written; `progress` sees every outcome as it comes.
pub async fn apply(
    cluster: &Cluster,
    plan: &Plan,
    applyset: &ApplySet,
    inventory: Option<&Inventory>,
    options: &apply::Options,
    cleared: impl FnOnce(),
    progress: impl FnMut(&Outcome),
) -> Result<Report, Refusal> {
    apply::check_guards(plan, options)?;
    cleared();
    Ok(apply::apply(cluster, plan, applyset, inventory, options, progress).await)
}

/// A saved JSON plan, as `apply --plan` checks it: every part that says what applying does.
#[derive(serde::Deserialize)]
pub struct Reviewed {
    format_version: String,
    desired_revision: String,
    changes: Vec<ReviewedChange>,
    /// The plan as saved, every part of it.
    #[serde(skip)]
    saved: serde_json::Value,
}

/// The parts of a plan that say what applying it does, which a reviewer judges it by.
const REVIEWED_PARTS: [&str; 6] = ["changes", "access_changes", "reclassified", "policy_revisions", "approvals", "expiring"];

#[derive(serde::Deserialize)]
struct ReviewedChange {
    kind: Kind,
    namespace: String,
    name: String,
    action: Action,
    expected_resource_version: Option<String>,
}

impl ReviewedChange {
    fn id(&self) -> ObjectId {
        ObjectId { kind: self.kind, namespace: self.namespace.clone(), name: self.name.clone() }
    }
}

/// Why a reviewed plan cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("cannot read {}: {source}", file.display())]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{} is not a mcp-gitops JSON plan: {source}", file.display())]
    NotAPlan { file: PathBuf, source: serde_json::Error },
    #[error("{} has format_version {found:?}; this mcp-gitops reads {:?}", file.display(), plan::FORMAT_VERSION)]
    FormatVersion { file: PathBuf, found: String },
    #[error("plan is stale, nothing was applied: {}; make a new plan", .0.join("; "))]
    Stale(Vec<String>),
    #[error(
        "the plan does not say what applying does, nothing was applied: {}; the plan file was edited, or made from other files: make a new plan and review it",
        .0.join("; ")
    )]
    NotWhatWasReviewed(Vec<String>),
}

impl Reviewed {
    /// The reviewed plan saved in `file` (`plan --out`).
    pub fn read(file: &Path) -> Result<Reviewed, ReviewError> {
        let text = std::fs::read_to_string(file).map_err(|source| ReviewError::Read { file: file.into(), source })?;
        let not_a_plan = |source| ReviewError::NotAPlan { file: file.into(), source };
        let saved: serde_json::Value = serde_json::from_str(&text).map_err(not_a_plan)?;
        let mut reviewed: Reviewed = serde_json::from_value(saved.clone()).map_err(not_a_plan)?;
        reviewed.saved = saved;
        if reviewed.format_version != plan::FORMAT_VERSION {
            return Err(ReviewError::FormatVersion { file: file.into(), found: reviewed.format_version });
        }
        Ok(reviewed)
    }

    /// Whether this reviewed plan still describes what applying now (`current`) would do; else
    /// why not.
    pub fn still_describes(&self, current: &Plan) -> Result<(), ReviewError> {
        let mut moved = Vec::new();
        if self.desired_revision != current.desired_revision {
            moved.push(format!("the repository changed (plan made at {}, now {})", self.desired_revision, current.desired_revision));
        }
        let now: BTreeMap<ObjectId, (&Action, &Option<String>)> =
            current.changes.iter().map(|c| (c.id(), (&c.action, &c.expected_resource_version))).collect();
        for change in &self.changes {
            let id = change.id();
            match now.get(&id) {
                Some((action, rv)) if **action == change.action && **rv == change.expected_resource_version => {}
                Some((_, rv)) => moved.push(format!(
                    "{id} moved (resourceVersion {} in the plan, {} now)",
                    change.expected_resource_version.as_deref().unwrap_or("none"),
                    rv.as_deref().unwrap_or("none")
                )),
                None => moved.push(format!("{id} is no longer part of the plan")),
            }
        }
        let planned: BTreeSet<ObjectId> = self.changes.iter().map(ReviewedChange::id).collect();
        moved.extend(current.changes.iter().filter(|c| !planned.contains(&c.id())).map(|c| format!("{} appeared since the plan", c.id())));
        if !moved.is_empty() {
            return Err(ReviewError::Stale(moved));
        }
        let edited = self.edits(current);
        if edited.is_empty() { Ok(()) } else { Err(ReviewError::NotWhatWasReviewed(edited)) }
    }

    /// The parts of this plan that differ from `current` (the plan applying makes) once both are
    /// written out: the changes with their documents and diffs, the access changes, the
    /// approvals. Empty when the plan says what applying does.
    fn edits(&self, current: &Plan) -> Vec<String> {
        let Ok(made) = serde_json::to_value(current) else { return vec!["the plan cannot be written out".into()] };
        REVIEWED_PARTS
            .iter()
            .filter(|part| self.saved.get(**part) != made.get(**part))
            .map(|part| format!("its {}", part.replace('_', " ")))
            .collect()
    }
}

/// The servers `--wait` watches once `report` is applied: those changed, and those whose policy
/// the change re-renders, each with the policy the operator should write.
pub fn expectations(plan: &Plan, desired: &DesiredState, live: &LiveState, report: &Report) -> Vec<Expectation> {
    let mut predicted: BTreeMap<ObjectId, PolicyDocument> = gateway::render_all(&after_apply(desired, live, report)).into_iter().collect();
    let mut servers: BTreeSet<ObjectId> = plan
        .changes
        .iter()
        .filter(|c| c.kind == Kind::Server && matches!(c.action, Action::Create | Action::Update))
        .map(|c| c.id())
        .collect();
    for revision in plan.policy_revisions.iter().filter(|r| r.after.is_some()) {
        if let Some((namespace, name)) = revision.server.split_once('/') {
            servers.insert(ObjectId { kind: Kind::Server, namespace: namespace.into(), name: name.into() });
        }
    }
    servers.into_iter().map(|server| Expectation { policy: predicted.remove(&server), server }).collect()
}

/// What the cluster holds once the apply is done: the desired objects, and the live ones it
/// did not delete (not pruned, or not ours).
fn after_apply(desired: &DesiredState, live: &LiveState, report: &Report) -> DesiredState {
    let deleted: BTreeSet<&ObjectId> =
        report.outcomes.iter().filter(|o| o.action == Action::Delete && o.status == Status::Done).map(|o| &o.id).collect();
    let declared: BTreeSet<&ObjectId> = desired.objects.iter().map(|o| &o.id).collect();
    let remaining = LiveState {
        objects: live.objects.iter().filter(|o| !deleted.contains(&o.id) && !declared.contains(&o.id)).cloned().collect(),
        ..LiveState::default()
    };
    let mut state = plan::live::as_desired_state(&remaining);
    state.objects.extend(desired.objects.iter().cloned());
    state.config = desired.config.clone();
    state
}
