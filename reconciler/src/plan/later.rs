//! Access changes after the plan's time. Decisions move at expiry instants only (a grant's
//! `mcp-gitops.io/expires-at`, a session's `expiresAt`), so a change that extends or removes an
//! expiry, or adds a grant that outlives one, changes nothing now and widens access from the old
//! expiry on. The access diff of the two states is taken again at each expiry instant of a server
//! the change touches; a widening (or a call allowed in both at a higher trust) not found at an
//! earlier instant joins the plan with the instant it holds from. Pure: no I/O.

use super::access::{self, AccessChange, Direction};
use super::{Work, changed_servers};
use crate::gateway::Identity;
use crate::gateway::authorize::trust_rank;
use crate::gateway::render::targets;
use crate::model::{DesiredState, Kind, Object};
use crate::validate::expiry::{EXPIRES_AT, disable_expired};
use jiff::Timestamp;
use std::collections::BTreeSet;

/// The changes that hold from an instant after `now` on, which `known` (the access diff at
/// `now`) does not already name, each with its `from`.
pub fn access_changes(
    base: &DesiredState,
    desired: &DesiredState,
    now: Timestamp,
    known: &[AccessChange],
    work: Work,
) -> Vec<AccessChange> {
    // Only the servers the change touches can decide differently at any instant: the states are
    // cut down to them (and what targets them) before being judged again at each instant.
    let servers = changed_servers(base, desired);
    let touched = |object: &Object| {
        let server = match targets(object) {
            Some((namespace, name)) => (namespace.to_string(), name.to_string()),
            None if object.id.kind == Kind::Server => (object.id.namespace.clone(), object.id.name.clone()),
            None => return false,
        };
        servers.as_ref().is_none_or(|s| s.contains(&server))
    };
    let cut = |state: &DesiredState| DesiredState {
        objects: state.objects.iter().filter(|o| touched(o)).cloned().collect(),
        config: state.config.clone(),
        ..DesiredState::default()
    };
    let (base, desired) = (cut(base), cut(desired));
    let mut seen: BTreeSet<(String, Identity, String, Direction)> = known.iter().map(key).collect();
    let mut found = Vec::new();
    for at in instants(&base, &desired, now) {
        let then = |state: &DesiredState| {
            let mut then = DesiredState { objects: state.objects.clone(), config: state.config.clone(), ..DesiredState::default() };
            disable_expired(&mut then, at);
            then
        };
        let (base_then, desired_then) = (then(&base), then(&desired));
        let (before, after) = super::render_changed(&base_then, &desired_then, work);
        for mut change in access::diff(&base_then, &before, &desired_then, &after, at) {
            let more = match change.direction {
                Direction::Widened => true,
                Direction::Changed => {
                    change.before.allowed
                        && change.after.allowed
                        && trust_rank(&change.after.effective_trust) > trust_rank(&change.before.effective_trust)
                }
                Direction::Narrowed => false,
            };
            if more && seen.insert(key(&change)) {
                change.from = Some(at.to_string());
                found.push(change);
            }
        }
    }
    found
}

fn key(change: &AccessChange) -> (String, Identity, String, Direction) {
    (change.server.clone(), change.subject.clone(), change.tool.clone(), change.direction)
}

/// Every instant after `now` at which a decision of either state may change: a grant expires
/// at its instant; a session is expired once its (rendered, whole-second) instant has passed.
fn instants(base: &DesiredState, desired: &DesiredState, now: Timestamp) -> BTreeSet<Timestamp> {
    let pointer = format!("/metadata/annotations/{}", EXPIRES_AT.replace('/', "~1"));
    let mut instants = BTreeSet::new();
    for object in base.objects.iter().chain(&desired.objects) {
        let at = match (object.grant(), object.session()) {
            (Some(_), _) => object.body.pointer(&pointer).and_then(|v| v.as_str()).and_then(|at| at.parse::<Timestamp>().ok()),
            (_, Some(session)) => {
                session.expires_at.parse::<Timestamp>().ok().and_then(|at| Timestamp::from_second(at.as_second().checked_add(1)?).ok())
            }
            _ => None,
        };
        instants.extend(at.filter(|at| *at > now));
    }
    instants
}
