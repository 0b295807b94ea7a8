//! The access diff: for every identity named by a grant or session (and each server's team) x
//! every tool, the gateway's decision before and after, keeping only what changed.

use crate::gateway::{Decision, Identity, PolicyDocument, authorize, identities, tools};
use crate::model::{DesiredState, Kind, ObjectId};
use jiff::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Widened,
    Narrowed,
    Changed,
}

/// A decision as the plan shows it. `reason` is the gateway's code, or `no_server` (the server is
/// not declared) / `no_gateway` (its gateway is disabled: calls are not governed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub allowed: bool,
    pub status: u16,
    pub reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub effective_trust: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub matched_grant: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccessChange {
    pub direction: Direction,
    pub server: String,
    pub subject: Identity,
    pub tool: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub side_effect: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub required_trust: String,
    pub before: Outcome,
    pub after: Outcome,
}

fn outcome(decision: &Decision) -> Outcome {
    Outcome {
        allowed: decision.allowed,
        status: decision.status,
        reason: decision.reason.to_string(),
        effective_trust: decision.effective_trust.clone(),
        matched_grant: if decision.matched_grant.is_empty() {
            String::new()
        } else {
            format!("{}/{}", decision.matched_grant_namespace, decision.matched_grant)
        },
    }
}

fn ungoverned(reason: &str, allowed: bool) -> Outcome {
    Outcome {
        allowed,
        status: if allowed { 200 } else { 404 },
        reason: reason.into(),
        effective_trust: String::new(),
        matched_grant: String::new(),
    }
}

/// What a call meets when the server has no rendered policy in a state.
fn absent(declared: &HashSet<ObjectId>, server: &ObjectId) -> Outcome {
    if declared.contains(server) { ungoverned("no_gateway", true) } else { ungoverned("no_server", false) }
}

pub fn diff(
    base: &DesiredState,
    before: &BTreeMap<ObjectId, PolicyDocument>,
    desired: &DesiredState,
    after: &BTreeMap<ObjectId, PolicyDocument>,
    now: Timestamp,
) -> Vec<AccessChange> {
    let servers: BTreeSet<&ObjectId> = before.keys().chain(after.keys()).filter(|id| id.kind == Kind::Server).collect();
    let declared = |state: &'_ DesiredState| -> HashSet<ObjectId> { state.of_kind(Kind::Server).map(|o| o.id.clone()).collect() };
    let (declared_before, declared_after) = (declared(base), declared(desired));
    let mut changes = Vec::new();
    for server in servers {
        let old = before.get(server);
        let new = after.get(server);
        // A decision is a function of the policy document alone: an unchanged policy (most
        // servers, in a plan of a few grants) changes no decision.
        if let (Some(old), Some(new)) = (old, new)
            && old == new
        {
            continue;
        }
        let mut subjects = BTreeSet::new();
        let mut tool_names = BTreeSet::new();
        for document in old.iter().chain(new.iter()) {
            subjects.extend(identities(document));
            tool_names.extend(tools(document));
        }
        let (absent_before, absent_after) = (absent(&declared_before, server), absent(&declared_after, server));
        for subject in &subjects {
            for tool in &tool_names {
                let decide = |document: Option<&&PolicyDocument>, absent: &Outcome| match document {
                    Some(document) => {
                        let decision = authorize(document, subject, "tools/call", tool, now);
                        (outcome(&decision), decision.required_side_effect, decision.required_trust)
                    }
                    None => (absent.clone(), String::new(), String::new()),
                };
                let (was, _, _) = decide(old.as_ref(), &absent_before);
                let (now_is, effect, trust) = decide(new.as_ref(), &absent_after);
                if was == now_is {
                    continue;
                }
                let direction = match (was.allowed, now_is.allowed) {
                    (false, true) => Direction::Widened,
                    (true, false) => Direction::Narrowed,
                    _ => Direction::Changed,
                };
                changes.push(AccessChange {
                    direction,
                    server: format!("{}/{}", server.namespace, server.name),
                    subject: subject.clone(),
                    tool: tool.clone(),
                    side_effect: effect,
                    required_trust: trust,
                    before: was,
                    after: now_is,
                });
            }
        }
    }
    changes.sort_by(|a, b| (a.direction, &a.server, &a.subject, &a.tool).cmp(&(b.direction, &b.server, &b.subject, &b.tool)));
    changes
}

/// How a sentence shows what the repository wrote, for the place it is read: names quoted (in
/// backticks for a terminal, as a code span for Markdown) and other words escaped. The plan does
/// not know its readers; each renderer brings its own.
pub struct Quoting<'a> {
    pub name: &'a dyn Fn(&str) -> String,
    pub text: &'a dyn Fn(&str) -> String,
}

impl Quoting<'_> {
    /// Names in plain backticks, words as they are: for a reader that interprets nothing.
    pub const PLAIN: Quoting<'static> = Quoting { name: &|name| format!("`{name}`"), text: &|text| text.to_string() };
}

impl AccessChange {
    /// One sentence in the gateway's terms, e.g. "agent `cursor` may now call
    /// `payments/refund_invoice` (destructive) at trust high — was `tool_not_granted`".
    pub fn sentence(&self) -> String {
        self.sentence_in(&Quoting::PLAIN)
    }

    pub fn sentence_in(&self, quoting: &Quoting) -> String {
        format!("{} {}", subject_words(&self.subject, quoting), self.predicate_in(quoting))
    }

    /// The sentence without its subject: "may now call `payments/refund_invoice` ...".
    pub fn predicate(&self) -> String {
        self.predicate_in(&Quoting::PLAIN)
    }

    pub fn predicate_in(&self, quoting: &Quoting) -> String {
        let (name, text) = (quoting.name, quoting.text);
        let tool = name(&format!("{}/{}", self.server.rsplit('/').next().unwrap_or(&self.server), self.tool));
        let effect = if self.side_effect.is_empty() { String::new() } else { format!(" ({})", text(&self.side_effect)) };
        let (after_trust, before_trust) = (text(&self.after.effective_trust), text(&self.before.effective_trust));
        let (after_reason, before_reason) = (name(&self.after.reason), name(&self.before.reason));
        match self.direction {
            Direction::Widened => {
                let trust = if after_trust.is_empty() { String::new() } else { format!(" at trust {after_trust}") };
                format!("may now call {tool}{effect}{trust} — was {before_reason}")
            }
            Direction::Narrowed => format!("may no longer call {tool}{effect}: {after_reason} — was {before_reason}"),
            Direction::Changed if self.after.allowed => {
                format!("still may call {tool}{effect}, now at trust {} — was {}", or_none(&after_trust), or_none(&before_trust))
            }
            Direction::Changed => format!("calling {tool}{effect}: {after_reason} — was {before_reason}"),
        }
    }
}

/// Access changes grouped for a reviewer: one group per subject (in subject order), and in each
/// the most dangerous first: destructive, write, read, then the rest; then by direction, server
/// and tool.
pub fn by_subject<'a>(changes: impl IntoIterator<Item = &'a AccessChange>, quoting: &Quoting) -> Vec<(String, Vec<&'a AccessChange>)> {
    let mut groups: BTreeMap<&Identity, Vec<&AccessChange>> = BTreeMap::new();
    for change in changes {
        groups.entry(&change.subject).or_default().push(change);
    }
    let danger = |effect: &str| match effect {
        "destructive" => 0,
        "write" => 1,
        "read" => 2,
        _ => 3,
    };
    groups
        .into_iter()
        .map(|(subject, mut changes)| {
            changes.sort_by(|a, b| {
                (danger(&a.side_effect), a.direction, &a.server, &a.tool).cmp(&(danger(&b.side_effect), b.direction, &b.server, &b.tool))
            });
            (subject_words(subject, quoting), changes)
        })
        .collect()
}

fn or_none(trust: &str) -> &str {
    if trust.is_empty() { "none" } else { trust }
}

fn subject_words(identity: &Identity, quoting: &Quoting) -> String {
    let mut parts = Vec::new();
    for (word, value) in [("human", &identity.human), ("agent", &identity.agent), ("team", &identity.team), ("session", &identity.session)]
    {
        if !value.is_empty() {
            parts.push(format!("{word} {}", (quoting.name)(value)));
        }
    }
    parts.join(" + ")
}
