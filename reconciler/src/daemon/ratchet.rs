//! The ratchet in the daemon (`validate::ratchet`): the base is the revision live in the
//! cluster, so a built-in policy's violation that is already live is a warning and does not keep
//! the next revision (a revocation, an expiry) from being applied; a new one makes the revision
//! invalid. A plain-directory source keeps no history: there, every violation is an error.

use super::Shared;
use crate::cache::Cache;
use crate::cluster::Cluster;
use crate::model::DesiredState;
use crate::model::live::ApplySet;
use crate::pipeline::desired;
use crate::source::mirror::Mirror;
use crate::validate::ratchet;
use jiff::Timestamp;

/// `desired` with the built-in policy violations that the live revision already has turned
/// into warnings. The live revision is read (and validated, at `now`, with the policy
/// directories as the tip names them) only when `desired` has such a finding; when it cannot
/// be read, `desired` stays as it is.
pub(super) async fn against_live(
    shared: &Shared,
    cluster: &Cluster,
    applyset: &ApplySet,
    mirror: &Mirror,
    desired: &mut DesiredState,
    now: Timestamp,
    cache: &Cache,
) {
    if !ratchet::needs_base(desired) {
        return;
    }
    let Ok(live) = super::live::revision(shared, cluster, applyset).await else { return };
    let base = if live == desired.revision {
        // Already live (a resync, drift, an expiry, the first pass after an upgrade): every
        // violation it has is inherited, and it is not validated twice.
        DesiredState { diagnostics: desired.diagnostics.clone(), ..DesiredState::default() }
    } else {
        let Some(Ok(snapshot)) = mirror.snapshot_at(&live) else { return };
        let snapshot = crate::source::Snapshot { cluster: shared.options.fleet_cluster.clone(), ..snapshot };
        let Ok(base) = desired::of_snapshot(snapshot, mirror, &shared.options.allowed_policy_dirs, now, None, cache) else { return };
        base
    };
    let turned = ratchet::inherit(desired, &base, &format!("the live revision {live}"));
    if turned > 0 {
        tracing::info!(violations = turned, live = %live, "violations of built-in policies that the live revision already has are warnings (ratchet)");
    }
}
