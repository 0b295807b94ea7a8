//! The live state a reconcile plans against, read in proportion to what changed.
//!
//! A full read is one LIST per kind: the first reconcile does one, and then one every
//! `--resync-interval`. In between, the watches keep each member's resourceVersion (`Members`).
//! The `Ledger` keeps, for each object, the digest of the document last found equal to the live
//! object (or applied to it) and the resourceVersion it was live at then. An object whose
//! document and version both still match is unchanged without a request. The others are read one
//! by one and planned exactly as a full read would plan them: new or changed documents, objects
//! someone else wrote, members the repository no longer declares.

use super::Shared;
use crate::cluster::{Cluster, ClusterError};
use crate::model::live::{ApplySet, LiveState, Members, Provenance};
use crate::model::{DesiredState, Object, ObjectId};
use crate::plan::live::Diffs;
use crate::plan::{self, Action, Plan};
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// More objects to read than this, and one LIST per kind is cheaper than a GET each.
const MAX_READS: usize = 500;

type Digest = [u8; 32];

/// What is known to be in sync, from the plans and applies of this process.
#[derive(Debug, Default)]
pub struct Ledger {
    in_sync: HashMap<ObjectId, (Digest, String)>,
    /// When the live state was last read in full.
    listed: Option<Instant>,
}

/// A plan against the live cluster, and what the ledger needs to take it in after the apply.
pub struct LivePlan {
    pub plan: Plan,
    pub inventory: Option<crate::model::live::Inventory>,
    /// Whether the live state was read in full (else: `read` objects, one by one).
    pub listed: bool,
    pub read: usize,
    digests: HashMap<ObjectId, Digest>,
}

/// The digest of what is applied of an object: its document (the membership labels and the
/// provenance annotations are the same for every object, or not compared).
fn digest(object: &Object) -> Digest {
    Sha256::digest(serde_json::to_vec(&object.body).unwrap_or_default()).into()
}

/// Plans `desired` against the cluster: from a full read when the ledger has none younger than
/// `resync`, the watches have not listed every kind yet or too many objects may differ; else
/// from the objects that may differ alone. The objects are taken (their bodies become the
/// documents to apply) and the plan has no diff texts.
pub async fn plan(
    cluster: &Cluster,
    applyset: &ApplySet,
    members: &Mutex<Members>,
    ledger: &Ledger,
    mut desired: DesiredState,
    provenance: Option<&Provenance>,
    resync: Duration,
) -> Result<LivePlan, ClusterError> {
    let objects = std::mem::take(&mut desired.objects);
    let digests: HashMap<ObjectId, Digest> = objects.iter().map(|o| (o.id.clone(), digest(o))).collect();
    if let Some((unchanged, gone)) = ledger.split(members, &objects, &digests, resync) {
        let in_sync: HashSet<ObjectId> = unchanged.iter().map(plan::Change::id).collect();
        let doubtful: Vec<Object> = objects.into_iter().filter(|o| !in_sync.contains(&o.id)).collect();
        let ids: Vec<&ObjectId> = doubtful.iter().map(|o| &o.id).chain(&gone).collect();
        let (live_objects, inventory) = futures::try_join!(cluster.objects(&ids), cluster.inventory(applyset))?;
        let read = ids.len();
        let live = LiveState { source: cluster.label.clone(), objects: live_objects, inventory };
        let mut changes = plan::live::changes(&live, doubtful, applyset, provenance, Diffs::Skipped);
        // Unchanged objects go where a full plan puts them: by id, before the deletions.
        let deletions = changes.iter().position(|c| c.action == Action::Delete).unwrap_or(changes.len());
        let mut kept: Vec<plan::Change> = changes.drain(..deletions).chain(unchanged).collect();
        kept.sort_by_key(plan::Change::id);
        kept.append(&mut changes);
        let plan = plan::of_changes(&desired, plan::live::base_of(&live), kept);
        return Ok(LivePlan { plan, inventory: live.inventory, listed: false, read, digests });
    }
    let live = cluster.live_state(applyset).await?;
    let changes = plan::live::changes(&live, objects, applyset, provenance, Diffs::Skipped);
    let plan = plan::of_changes(&desired, plan::live::base_of(&live), changes);
    Ok(LivePlan { plan, read: live.objects.len(), inventory: live.inventory, listed: true, digests })
}

impl Ledger {
    /// The no-op changes of the objects known to be in sync and the members no longer desired;
    /// `None` when the live state must be read in full.
    fn split(
        &self,
        members: &Mutex<Members>,
        desired: &[Object],
        digests: &HashMap<ObjectId, Digest>,
        resync: Duration,
    ) -> Option<(Vec<plan::Change>, Vec<ObjectId>)> {
        self.listed.filter(|at| at.elapsed() < resync)?;
        let members = members.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !members.synced() {
            return None;
        }
        let (mut unchanged, mut doubtful) = (Vec::new(), 0);
        for object in desired {
            let version = members.version(&object.id);
            match self.in_sync.get(&object.id) {
                Some((digest, at)) if Some(at.as_str()) == version && Some(digest) == digests.get(&object.id) => {
                    let mut change = plan::change(&object.id, Action::NoOp, String::new());
                    change.expected_resource_version = Some(at.clone());
                    unchanged.push(change);
                }
                _ => doubtful += 1,
            }
            if doubtful > MAX_READS {
                return None;
            }
        }
        let gone: Vec<ObjectId> = members.ids().filter(|id| !digests.contains_key(*id)).cloned().collect();
        (doubtful + gone.len() <= MAX_READS).then_some((unchanged, gone))
    }

    /// Takes in a plan and what its apply did: an object the plan found unchanged (drift left
    /// alone in report mode is not) is in sync at the version it was seen at, one written at the
    /// version the write stored; of the rest nothing is known.
    pub fn record(&mut self, planned: LivePlan, report: &crate::apply::Report) {
        if planned.listed {
            self.in_sync.clear();
            self.listed = Some(Instant::now());
        }
        let mut digests = planned.digests;
        let written: HashMap<&ObjectId, &String> = report
            .outcomes
            .iter()
            .filter(|o| o.status == crate::apply::Status::Done && o.action != Action::Delete)
            .filter_map(|o| Some((&o.id, o.resource_version.as_ref()?)))
            .collect();
        for change in &planned.plan.changes {
            let id = change.id();
            let unchanged = change.action == Action::NoOp && change.drift.is_empty();
            let at = if unchanged { change.expected_resource_version.as_ref() } else { written.get(&id).copied() };
            match (at, digests.remove(&id)) {
                (Some(at), Some(digest)) => self.in_sync.insert(id, (digest, at.clone())),
                _ => self.in_sync.remove(&id),
            };
        }
        let declared: HashSet<ObjectId> =
            planned.plan.changes.iter().filter(|c| c.action != Action::Delete).map(plan::Change::id).collect();
        self.in_sync.retain(|id, _| declared.contains(id));
    }
}

/// The revision live in the cluster: this daemon's last success, else (the first reconcile
/// since it started) the one the inventory records, so that a restart neither judges the branch
/// by its tip alone nor misses a force-push over what is live.
pub(super) async fn revision(shared: &Shared, cluster: &Cluster, applyset: &ApplySet) -> Result<String, ClusterError> {
    let own = shared.report().revision.clone();
    if !own.is_empty() {
        return Ok(own);
    }
    Ok(cluster.inventory(applyset).await?.map(|i| i.last_applied_revision).unwrap_or_default())
}
