//! The plan of a repository that declares `clusters:` (docs/fleet.md): each cluster's plan of
//! its own slice, and their union as the plan's top-level fields, so that what reads a plan
//! (`--detailed-exitcode`, `approvals check`, the summary) sees every cluster's changes. Pure.

use super::{Plan, Summary};
use crate::model::Diagnostic;
use serde::Serialize;

/// One cluster's plan, as the plan's `clusters[]` holds it.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterPlan {
    /// Its name in `clusters:`.
    pub name: String,
    /// The gateway's MCP_CLUSTER_NAME there (`clusterName`).
    pub cluster_name: String,
    #[serde(flatten)]
    pub plan: Plan,
}

/// The plan of every cluster of `clusters` (at least one): each cluster's changes (but no-ops),
/// access changes, approvals and the rest, one after the other; `diagnostics` are the clusters'
/// problems, each once (`pipeline::fleet::merged`).
pub fn union(clusters: Vec<ClusterPlan>, diagnostics: Vec<Diagnostic>) -> Option<Plan> {
    let mut plan = clusters.first()?.plan.clone();
    plan.changes.clear();
    plan.access_changes.clear();
    plan.policy_revisions.clear();
    plan.reclassified.clear();
    plan.expiring.clear();
    plan.base_diagnostics.clear();
    plan.approvals.required.clear();
    let mut summary = Summary::default();
    for cluster in &clusters {
        let one = &cluster.plan;
        // Each cluster lists its no-ops; the union what changes somewhere.
        plan.changes.extend(one.changes.iter().filter(|c| c.action != super::Action::NoOp).cloned());
        plan.access_changes.extend(one.access_changes.iter().cloned());
        plan.policy_revisions.extend(one.policy_revisions.iter().cloned());
        plan.reclassified.extend(one.reclassified.iter().cloned());
        plan.expiring.extend(one.expiring.iter().cloned());
        plan.base_diagnostics
            .extend(one.base_diagnostics.iter().filter(|d| !plan.base_diagnostics.contains(d)).cloned().collect::<Vec<_>>());
        plan.approvals.required.extend(one.approvals.required.iter().cloned());
        if plan.approvals.break_glass.is_none() {
            plan.approvals.break_glass = one.approvals.break_glass.clone();
        }
        let s = &one.summary;
        summary.create += s.create;
        summary.update += s.update;
        summary.delete += s.delete;
        summary.no_op += s.no_op;
        summary.access_widened += s.access_widened;
        summary.access_narrowed += s.access_narrowed;
        summary.access_changed += s.access_changed;
        summary.deletes_everything |= s.deletes_everything;
    }
    plan.approvals.required.sort();
    plan.approvals.required.dedup();
    summary.errors = diagnostics.iter().filter(|d| d.is_error()).count();
    summary.warnings = diagnostics.len() - summary.errors;
    plan.summary = summary;
    plan.diagnostics = diagnostics;
    plan.clusters = clusters;
    Some(plan)
}
