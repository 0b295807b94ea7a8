//! What the expiry of each changed time-bound grant takes away (`plan::expiring`), for the
//! partial plan (`incremental`). The expiry of a grant counts every grant that expires by then, on
//! every server, so judging it from the objects a plan loads would load most of a repository whose
//! grants are all time-bound. It is the work tree's alone (its state as expired at the plan's
//! time, judged at the instant), whatever the base: the run that validates the tree judges it from
//! the validated state and records it in `trees.pack`, by the tree's key and the instant, with
//! the window of clocks the validation holds for; a later plan of the same tree in that window
//! takes it from there. Gives back the judgements, or `None` when one must come from the plan.

use crate::cache::{Cache, Key};
use crate::model::{DesiredState, Object, ObjectId};
use crate::plan::expiring::{self, Expiring};
use crate::plan::{AccessChange, Plan, Work};
use crate::validate::clock;
use jiff::Timestamp;
use std::collections::HashMap;

/// The tree's key and the clocks its validation holds for.
pub(super) struct Tree<'a> {
    pub key: &'a Key,
    pub window: clock::Window,
}

/// What each expiry takes away, by its annotation as written.
pub(super) struct Taken {
    by_expiry: HashMap<String, Vec<AccessChange>>,
    /// Judged by this run, to be recorded.
    judged: bool,
}

/// What the expiry of each time-bound grant that `changed` (the objects of the changed files)
/// has otherwise than `base` takes away: judged from `validated` (every object of the tree)
/// when this run validated it, else as recorded, or `None` when one was not.
pub(super) fn taken_away(
    tree: &Tree,
    validated: Option<&DesiredState>,
    base: &DesiredState,
    changed: &DesiredState,
    now: Timestamp,
    cache: &Cache,
) -> Option<Taken> {
    let was: HashMap<&ObjectId, &Object> = base.objects.iter().map(|o| (&o.id, o)).collect();
    let mut expiries: Vec<(Timestamp, &str)> = changed
        .objects
        .iter()
        .filter(|o| was.get(&o.id).is_none_or(|old| old.body != o.body))
        .filter_map(|o| expiring::expiry(o, now))
        .collect();
    expiries.sort();
    expiries.dedup();
    let by_expiry = match validated {
        Some(state) => expiries.into_iter().map(|(at, text)| (text.to_string(), expiring::taken_away(state, at, Work::Changed))).collect(),
        None => expiries
            .into_iter()
            .map(|(at, text)| {
                let recorded = cache.trees.get::<Recorded>(&key(tree.key, at)).filter(|r| r.window == tree.window)?;
                Some((text.to_string(), recorded.access_changes))
            })
            .collect::<Option<_>>()?,
    };
    Some(Taken { by_expiry, judged: validated.is_some() })
}

/// Puts what each expiry takes away in `plan` (made from the changed servers' objects alone, it
/// is short of the rest), and records what this run judged.
pub(super) fn fill(plan: &mut Plan, taken: Taken, tree: &Tree, cache: &Cache) {
    for e in &mut plan.expiring {
        e.access_changes = taken.by_expiry.get(&e.expires_at).cloned().unwrap_or_default();
    }
    if taken.judged {
        record(plan, tree, cache);
    }
}

/// Records what each expiry of `plan` (a plan that judged them from every object they need)
/// takes away.
pub(super) fn record(plan: &Plan, tree: &Tree, cache: &Cache) {
    for Expiring { expires_at, access_changes, .. } in &plan.expiring {
        if let Ok(at) = expires_at.parse::<Timestamp>() {
            cache.trees.put(key(tree.key, at), &Recorded { window: tree.window, access_changes: access_changes.clone() });
        }
    }
}

fn key(tree: &Key, at: Timestamp) -> Key {
    Key::of(&[b"expiring", &tree.bytes(), at.to_string().as_bytes()])
}

/// What an expiry takes away, and the clocks of the tree's validation it was judged at.
#[derive(serde::Serialize, serde::Deserialize)]
struct Recorded {
    window: clock::Window,
    access_changes: Vec<AccessChange>,
}
