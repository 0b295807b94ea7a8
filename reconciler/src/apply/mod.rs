//! Apply: carries out a plan's object changes with server-side apply — servers, then grants,
//! then sessions, each kind concurrently (bounded); deletes last, in reverse — and keeps the
//! inventory a superset of what exists, so that an interrupted run loses nothing and the next
//! one converges. Only what this run or an earlier one applied stays in the inventory (an object
//! someone else manages, refused without --adopt, is not recorded). Unchanged objects get no
//! request at all. Guards (deletion budget, empty set, adoption) refuse before anything is
//! written.

pub mod wait;

use crate::cluster::{Cluster, ClusterError};
use crate::model::live::{ApplySet, Inventory};
use crate::model::{Kind, ObjectId};
use crate::plan::{Action, Change, Plan};
use futures::StreamExt;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone)]
pub struct Options {
    pub dry_run: bool,
    pub force_conflicts: bool,
    pub prune: bool,
    pub max_deletes: usize,
    pub adopt: bool,
    pub concurrency: usize,
    /// Changes of the plan were held back (a suspension, a freeze window): its revision is not
    /// recorded as the last applied one, which stays the base that binds the next run.
    pub held_back: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The change was made (or, in a dry run, accepted by the server).
    Done,
    /// Nothing to do: no request was sent.
    Unchanged,
    /// Deliberately not done, and why.
    Skipped(String),
    /// Tried and failed, with the server's reason in the user's terms.
    Failed(String),
    /// Not tried because the API server stopped answering.
    NotAttempted,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: ObjectId,
    pub action: Action,
    pub status: Status,
    /// The field the API server blamed (`spec.maxTrust`), when it named one.
    pub field: Option<String>,
    /// The resourceVersion of what an apply stored: the object as applied is live at it.
    pub resource_version: Option<String>,
    /// Nothing was written, for sure: the API server rejected the request, or it was refused
    /// before being sent (an object someone else manages, without --adopt). Such an object is
    /// not recorded as ours.
    pub rejected: bool,
}

#[derive(Debug, Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    /// Why the inventory could not be written, if it could not.
    pub inventory_error: Option<String>,
}

impl Report {
    pub fn succeeded(&self) -> bool {
        self.inventory_error.is_none()
            && self.outcomes.iter().all(|o| matches!(o.status, Status::Done | Status::Unchanged | Status::Skipped(_)))
    }

    pub fn count(&self, action: Action, status: &Status) -> usize {
        self.outcomes.iter().filter(|o| o.action == action && &o.status == status).count()
    }

    pub fn counts(&self) -> Counts {
        let done = |action| self.count(action, &Status::Done);
        let with = |status: fn(&Status) -> bool| self.outcomes.iter().filter(|o| status(&o.status)).count();
        Counts {
            created: done(Action::Create),
            updated: done(Action::Update),
            deleted: done(Action::Delete),
            unchanged: self.count(Action::NoOp, &Status::Unchanged),
            failed: with(|s| matches!(s, Status::Failed(_))),
            not_attempted: with(|s| *s == Status::NotAttempted),
        }
    }
}

/// The tally of an apply's outcomes, one for every front end. A change that was sent and failed
/// is `failed`; one never sent because the API server stopped answering is `not_attempted`:
/// neither was applied, and a run with either did not succeed.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub not_attempted: usize,
}

impl Counts {
    /// Objects created, updated or deleted.
    pub fn written(&self) -> usize {
        self.created + self.updated + self.deleted
    }
}

/// Why an apply refuses before any write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "refusing to prune: the repository yields no objects, so every one of the {deletes} objects mcp-gitops manages would be deleted (is the path right?)"
    )]
    EmptySet { deletes: usize },
    #[error(
        "refusing to prune {deletes} objects: more than --max-deletes {max_deletes}; review the plan, then raise --max-deletes if it is intended"
    )]
    OverBudget { deletes: usize, max_deletes: usize },
}

/// Refusals that come before any write: the deletion budget and the empty-set guard.
pub fn check_guards(plan: &Plan, options: &Options) -> Result<(), Refusal> {
    if !options.prune {
        return Ok(());
    }
    let deletes = plan.changes.iter().filter(|c| c.action == Action::Delete).count();
    let kept = plan.changes.iter().filter(|c| c.action != Action::Delete).count();
    if kept == 0 && deletes > 0 {
        return Err(Refusal::EmptySet { deletes });
    }
    if deletes > options.max_deletes {
        return Err(Refusal::OverBudget { deletes, max_deletes: options.max_deletes });
    }
    Ok(())
}

/// Applies `plan` (made against the live state now in the cluster). `progress` sees every outcome.
/// `inventory` is the inventory as read with the live state the plan was made from.
pub async fn apply(
    cluster: &Cluster,
    plan: &Plan,
    applyset: &ApplySet,
    inventory: Option<&Inventory>,
    options: &Options,
    mut progress: impl FnMut(&Outcome),
) -> Report {
    let mut report = Report::default();
    let kept: BTreeSet<ObjectId> = plan.changes.iter().filter(|c| c.action != Action::Delete).map(Change::id).collect();
    let previous: BTreeSet<ObjectId> = plan.changes.iter().filter(|c| c.action == Action::Delete).map(Change::id).collect();
    let listed = inventory.map(|i| i.objects.clone()).unwrap_or_default();
    let up_to_date =
        |objects: &BTreeSet<ObjectId>| inventory.is_some_and(|i| i.last_applied_revision == plan.desired_revision) && *objects == listed;
    if !options.dry_run && !kept.is_subset(&listed) {
        // Record what is about to exist before creating it: an interrupted run must not orphan.
        let superset: BTreeSet<ObjectId> = kept.union(&previous).cloned().collect();
        if let Err(e) = cluster.write_inventory(applyset, &superset, &plan.desired_revision, None).await {
            report.inventory_error = Some(describe(&e));
            for change in &plan.changes {
                let outcome = Outcome {
                    id: change.id(),
                    action: change.action,
                    status: Status::NotAttempted,
                    field: None,
                    resource_version: None,
                    rejected: false,
                };
                progress(&outcome);
                report.outcomes.push(outcome);
            }
            return report;
        }
    }
    // Cleared by the first answer that says the API server cannot take requests now (no
    // connection, a timeout, a 5xx): the requests after it are not sent, so that a run against
    // a dead server or a server without its etcd ends in one timeout, not one per object.
    let available = AtomicBool::new(true);
    for kind in Kind::ALL {
        let batch: Vec<&Change> = plan.changes.iter().filter(|c| c.kind == kind && c.action != Action::Delete).collect();
        let outcomes: Vec<Outcome> = futures::stream::iter(batch)
            .map(|change| apply_one(cluster, change, options, &available))
            .buffer_unordered(options.concurrency.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            progress(&outcome);
            report.outcomes.push(outcome);
        }
    }
    let mut deletes: Vec<&Change> = plan.changes.iter().filter(|c| c.action == Action::Delete).collect();
    deletes.sort_by_key(|c| std::cmp::Reverse(c.id()));
    for change in deletes {
        let status = if !options.prune {
            Status::Skipped("no longer declared; pass --prune to delete it".into())
        } else if !available.load(Ordering::Relaxed) {
            Status::NotAttempted
        } else {
            match cluster.delete(&change.id(), change.expected_resource_version.as_deref(), options.dry_run).await {
                Ok(()) => Status::Done,
                Err(e) => failure(&e, &available, "it changed since the plan was made; not deleted"),
            }
        };
        let outcome = Outcome { id: change.id(), action: Action::Delete, status, field: None, resource_version: None, rejected: false };
        progress(&outcome);
        report.outcomes.push(outcome);
    }
    let reachable = available.load(Ordering::Relaxed);
    if !options.dry_run && reachable {
        // What this run could not write is not ours, unless an earlier run applied it.
        let rejected: BTreeSet<&ObjectId> = report.outcomes.iter().filter(|o| o.rejected).map(|o| &o.id).collect();
        let mut remaining: BTreeSet<ObjectId> = kept.into_iter().filter(|id| listed.contains(id) || !rejected.contains(id)).collect();
        remaining.extend(report.outcomes.iter().filter(|o| o.action == Action::Delete && o.status != Status::Done).map(|o| o.id.clone()));
        let applied = (report.succeeded() && !options.held_back).then_some(plan.desired_revision.as_str());
        // A run that changed nothing writes nothing, the inventory included.
        let unchanged = applied.is_some() && up_to_date(&remaining);
        if !unchanged && let Err(e) = cluster.write_inventory(applyset, &remaining, &plan.desired_revision, applied).await {
            report.inventory_error = Some(describe(&e));
        }
    }
    report
}

async fn apply_one(cluster: &Cluster, change: &Change, options: &Options, available: &AtomicBool) -> Outcome {
    let id = change.id();
    let (mut field, mut resource_version, mut rejected) = (None, None, true);
    let status = match (&change.object, change.action) {
        (_, Action::NoOp) => Status::Unchanged,
        _ if !available.load(Ordering::Relaxed) => Status::NotAttempted,
        _ if change.adopt && !options.adopt => {
            Status::Failed("it exists and is not managed by mcp-gitops; it was not changed (pass --adopt to take it over)".into())
        }
        // Adopting takes over the fields the previous manager owned. A create is never forced:
        // an object that someone made since the plan must not be taken over without --adopt.
        (Some(object), action) => {
            match cluster.apply(&id, object, options.force_conflicts && action != Action::Create || change.adopt, options.dry_run).await {
                Ok(stored) => {
                    resource_version = stored.pointer("/metadata/resourceVersion").and_then(|v| v.as_str()).map(String::from);
                    Status::Done
                }
                Err(e) => {
                    if let ClusterError::Api { causes, .. } = &e {
                        field = causes.iter().map(|(f, _)| f.trim_start_matches('.').to_string()).find(|f| !f.is_empty());
                    }
                    rejected = e.is_permanent();
                    failure(&e, available, "")
                }
            }
        }
        (None, _) => Status::Failed("the plan holds no document for it".into()),
    };
    let rejected = rejected && matches!(status, Status::Failed(_));
    Outcome { id, action: change.action, status, field, resource_version, rejected }
}

/// The status of a failed request; one that says the server cannot take requests now stops the
/// run. `conflict` replaces a 409's text when given.
fn failure(error: &ClusterError, available: &AtomicBool, conflict: &str) -> Status {
    if !error.is_permanent() {
        available.store(false, Ordering::Relaxed);
    }
    match error {
        ClusterError::Unreachable(_) => Status::NotAttempted,
        e if e.code() == 409 && !conflict.is_empty() => Status::Failed(conflict.into()),
        e if !e.is_permanent() => {
            Status::Failed(format!("the API server could not complete it ({}); it may or may not be applied", describe(e)))
        }
        e => Status::Failed(describe(e)),
    }
}

/// A failed request in the user's terms.
pub fn describe(error: &ClusterError) -> String {
    match error {
        ClusterError::Api { code: 409, message, .. } if message.contains("conflict") => {
            format!("{message}; the object was not changed (pass --force-conflicts to take these fields)")
        }
        ClusterError::Api { code: 422, message, .. } => format!("the API server rejected it: {message}"),
        ClusterError::Api { code: 403, message, .. } => format!("permission denied: {message}"),
        ClusterError::Api { code: 500, message, .. } if message.starts_with("failed to create typed patch object") => {
            format!("the API server cannot apply it (a field the CRD does not declare?): {message}")
        }
        other => other.to_string(),
    }
}
