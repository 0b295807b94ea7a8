//! The time-bound grants a change creates or updates that are still live: when each expires
//! ("expires in N days") and what access it takes away then, computed as the access diff between
//! the desired state now and the same state at that instant. Pure: no I/O.

use super::access::{self, AccessChange};
use super::{Action, Change};
use crate::model::{DesiredState, Kind, Object, ObjectId};
use crate::validate::expiry::{EXPIRES_AT, disable_expired};
use jiff::Timestamp;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Expiring {
    /// `NAMESPACE/NAME` of the grant.
    pub grant: String,
    pub expires_at: String,
    /// Whole days from the plan's time to the expiry.
    pub in_days: i64,
    /// What the expiry alone changes, judged then.
    pub access_changes: Vec<AccessChange>,
}

/// The changed grants of `desired` that expire after `now`, soonest first.
pub fn expiring(desired: &DesiredState, changes: &[Change], now: Timestamp, work: super::Work) -> Vec<Expiring> {
    let changed: Vec<ObjectId> =
        changes.iter().filter(|c| c.kind == Kind::Grant && matches!(c.action, Action::Create | Action::Update)).map(Change::id).collect();
    let mut found: Vec<(Timestamp, &str, &ObjectId)> = desired
        .objects
        .iter()
        .filter(|o| changed.contains(&o.id))
        .filter_map(|o| expiry(o, now).map(|(at, text)| (at, text, &o.id)))
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(at, text, id)| Expiring {
            grant: format!("{}/{}", id.namespace, id.name),
            expires_at: text.to_string(),
            in_days: at.duration_since(now).as_secs() / 86_400,
            access_changes: taken_away(desired, at, work),
        })
        .collect()
}

/// What expiring every grant of `desired` that expires by `at` takes away, judged then: a
/// function of the state (as expired at the plan's time) and `at` alone.
pub fn taken_away(desired: &DesiredState, at: Timestamp, work: super::Work) -> Vec<AccessChange> {
    let mut then = DesiredState { objects: desired.objects.clone(), config: desired.config.clone(), ..DesiredState::default() };
    disable_expired(&mut then, at);
    let (before, after) = super::render_changed(desired, &then, work);
    access::diff(desired, &before, &then, &after, at)
}

/// A grant's expiry instant when it is after `now`, and its annotation as written.
pub fn expiry(object: &Object, now: Timestamp) -> Option<(Timestamp, &str)> {
    if object.id.kind != Kind::Grant {
        return None;
    }
    let pointer = format!("/metadata/annotations/{}", EXPIRES_AT.replace('/', "~1"));
    let text = object.body.pointer(&pointer)?.as_str()?;
    let at = text.parse::<Timestamp>().ok().filter(|at| *at > now)?;
    Some((at, text))
}
