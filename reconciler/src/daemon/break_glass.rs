//! Break-glass in the daemon (docs/daemon.md): the break-glass grants of the revision that are
//! still open (the `break_glass_active_grants` gauge), and a `BreakGlass` Event for each one a
//! reconcile writes. Its revocation is the expiry path's: the grant is applied disabled at
//! `mcp-gitops.io/expires-at`.

use crate::apply::{Report, Status};
use crate::model::{DesiredState, Kind, ObjectId};
use crate::validate::break_glass::{REASON, REQUESTER, annotation, ends_at, is_break_glass};
use jiff::Timestamp;
use std::collections::BTreeMap;

/// The break-glass grants of a desired state that have not expired, each with what its Event says.
#[derive(Debug, Default)]
pub struct Open(BTreeMap<ObjectId, String>);

impl Open {
    pub fn of(desired: &DesiredState, now: Timestamp) -> Open {
        let open = desired
            .of_kind(Kind::Grant)
            .filter(|o| is_break_glass(o))
            .filter_map(|o| Some((o, ends_at(o).filter(|ends| *ends > now)?)))
            .map(|(o, ends)| {
                let note = format!(
                    "break-glass {} applied: opened by {} ({}), until {ends}",
                    o.id,
                    annotation(o, REQUESTER).unwrap_or_default(),
                    annotation(o, REASON).unwrap_or_default()
                );
                (o.id.clone(), note)
            })
            .collect();
        Open(open)
    }

    pub fn count(&self) -> i64 {
        self.0.len() as i64
    }

    /// What to tell of the open break-glass grants that `report` wrote.
    pub fn applied(&self, report: &Report) -> Vec<String> {
        report.outcomes.iter().filter(|o| o.status == Status::Done).filter_map(|o| self.0.get(&o.id).cloned()).collect()
    }
}
