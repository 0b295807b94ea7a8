//! The access diff: for every identity named by a grant or session (and each server's team),
//! and anyone else, x every tool, the gateway's decision before and after, keeping only what
//! changed. A change's side effect is the more dangerous of the tool's class before and after:
//! a tool reclassified downward, or opened by a gateway switched off or observe mode (whose
//! decisions name no side effect), is judged by what it could do.

use crate::gateway::authorize::side_effect as normalized_effect;
use crate::gateway::{Decision, Identity, PolicyDocument, authorize, identities, tools};
use crate::model::{DesiredState, Kind, Object, ObjectId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Widened,
    Narrowed,
    Changed,
}

/// A decision as the plan shows it. `reason` is the gateway's code, or `no_server` (the server is
/// not declared) / `no_gateway` (its gateway is disabled: calls are not governed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub allowed: bool,
    pub status: u16,
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub effective_trust: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub matched_grant: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessChange {
    pub direction: Direction,
    pub server: String,
    pub subject: Identity,
    pub tool: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub side_effect: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub required_trust: String,
    pub before: Outcome,
    pub after: Outcome,
    /// The instant from which the change holds, when later than the plan's time: an expiry
    /// extended or removed widens access from the old expiry on (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The change is for any caller the repository names nowhere (`subject` is then empty):
    /// a gateway switched off, observe mode, a default decision of allow.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anyone: bool,
}

/// A caller no grant or session names (never a real header value).
fn stranger() -> Identity {
    Identity { human: "\u{0}anyone".into(), ..Identity::default() }
}

/// How much a side effect can do: destructive 3, write 2, read 1, unknown 0.
pub fn danger(effect: &str) -> u8 {
    match effect {
        "destructive" => 3,
        "write" => 2,
        "read" => 1,
        _ => 0,
    }
}

/// The more dangerous of two side effects.
fn worse(a: String, b: &str) -> String {
    if danger(b) > danger(&a) { b.to_string() } else { a }
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
fn absent(declared: &HashMap<&ObjectId, &Object>, server: &ObjectId) -> Outcome {
    if declared.contains_key(server) { ungoverned("no_gateway", true) } else { ungoverned("no_server", false) }
}

/// The side effect each tool declares in a state (normalized as the gateway does): from its
/// policy, else from the server's spec (gateway off).
fn declared_effects(document: Option<&PolicyDocument>, server: Option<&Object>) -> HashMap<String, String> {
    match (document, server.and_then(Object::server)) {
        (Some(document), _) => document.tools.iter().map(|t| (t.name.clone(), normalized_effect(&t.side_effect))).collect(),
        (None, Some(spec)) => spec.tools.iter().map(|t| (t.name.clone(), normalized_effect(&t.side_effect))).collect(),
        (None, None) => HashMap::new(),
    }
}

/// The servers of either state, by id (the first of an id declared twice).
fn servers_of(state: &DesiredState) -> HashMap<&ObjectId, &Object> {
    let mut servers = HashMap::new();
    for object in state.of_kind(Kind::Server) {
        servers.entry(&object.id).or_insert(object);
    }
    servers
}

pub fn diff(
    base: &DesiredState,
    before: &BTreeMap<ObjectId, PolicyDocument>,
    desired: &DesiredState,
    after: &BTreeMap<ObjectId, PolicyDocument>,
    now: Timestamp,
) -> Vec<AccessChange> {
    let (declared_before, declared_after) = (servers_of(base), servers_of(desired));
    // The servers with a policy in either state, and those with none in both (gateway off, or
    // not declared) whose object differs: a new server with its gateway off opens its tools.
    let mut servers: BTreeSet<&ObjectId> = before.keys().chain(after.keys()).filter(|id| id.kind == Kind::Server).collect();
    for (id, object) in declared_before.iter().chain(declared_after.iter()) {
        let (was, is) = (declared_before.get(id), declared_after.get(id));
        if !before.contains_key(*id) && !after.contains_key(*id) && !was.zip(is).is_some_and(|(a, b)| a.body == b.body) {
            servers.insert(&object.id);
        }
    }
    // Each server's decisions are its own: judged on every core (an expiry may reach thousands).
    let servers: Vec<&ObjectId> = servers.into_iter().collect();
    let sides = Sides { before, after, declared_before: &declared_before, declared_after: &declared_after };
    let mut changes = crate::parallel::ordered_map(&servers, 8, |server| sides.server_changes(server, now)).concat();
    changes.sort_by(|a, b| (a.direction, &a.server, &a.subject, &a.tool).cmp(&(b.direction, &b.server, &b.subject, &b.tool)));
    changes
}

/// The two sides of an access diff: each state's rendered policies and declared servers.
struct Sides<'a> {
    before: &'a BTreeMap<ObjectId, PolicyDocument>,
    after: &'a BTreeMap<ObjectId, PolicyDocument>,
    declared_before: &'a HashMap<&'a ObjectId, &'a Object>,
    declared_after: &'a HashMap<&'a ObjectId, &'a Object>,
}

impl Sides<'_> {
    /// The changed decisions of one server, unsorted.
    fn server_changes(&self, server: &ObjectId, now: Timestamp) -> Vec<AccessChange> {
        let (before, after, declared_before, declared_after) = (self.before, self.after, self.declared_before, self.declared_after);
        let mut changes = Vec::new();
        let old = before.get(server);
        let new = after.get(server);
        // A decision is a function of the policy document alone: an unchanged policy (most
        // servers, in a plan of a few grants) changes no decision.
        if let (Some(old), Some(new)) = (old, new)
            && old == new
        {
            return changes;
        }
        let effects_before = declared_effects(old, declared_before.get(server).copied());
        let effects_after = declared_effects(new, declared_after.get(server).copied());
        let mut subjects = BTreeSet::new();
        let mut tool_names: BTreeSet<String> = effects_before.keys().chain(effects_after.keys()).cloned().collect();
        for document in old.iter().chain(new.iter()) {
            subjects.extend(identities(document));
            tool_names.extend(tools(document));
        }
        let (absent_before, absent_after) = (absent(declared_before, server), absent(declared_after, server));
        let named = subjects.into_iter().map(|subject| (subject, false));
        for (subject, anyone) in named.chain([(stranger(), true)]) {
            for tool in &tool_names {
                let decide = |document: Option<&&PolicyDocument>, absent: &Outcome| match document {
                    Some(document) => {
                        let decision = authorize(document, &subject, "tools/call", tool, now);
                        (outcome(&decision), decision.required_side_effect, decision.required_trust)
                    }
                    None => (absent.clone(), String::new(), String::new()),
                };
                let (was, _, _) = decide(old.as_ref(), &absent_before);
                let (now_is, mut effect, trust) = decide(new.as_ref(), &absent_after);
                if was == now_is || (anyone && was.allowed == now_is.allowed) {
                    continue;
                }
                let direction = match (was.allowed, now_is.allowed) {
                    (false, true) => Direction::Widened,
                    (true, false) => Direction::Narrowed,
                    _ => Direction::Changed,
                };
                // Judged by the more dangerous class: a decision that names none (gateway off,
                // observe, default allow) or a tool reclassified downward does not hide it.
                let (class_before, class_after) = (effects_before.get(tool), effects_after.get(tool));
                let reclassified = class_before.zip(class_after).is_some_and(|(a, b)| a != b);
                if direction == Direction::Widened || reclassified {
                    for class in class_before.into_iter().chain(class_after) {
                        effect = worse(effect, class);
                    }
                }
                changes.push(AccessChange {
                    direction,
                    server: format!("{}/{}", server.namespace, server.name),
                    subject: if anyone { Identity::default() } else { subject.clone() },
                    tool: tool.clone(),
                    side_effect: effect,
                    required_trust: trust,
                    before: was,
                    after: now_is,
                    from: None,
                    anyone,
                });
            }
        }
        changes
    }
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
        let sentence = self.predicate_now(quoting);
        match &self.from {
            Some(from) => format!("{sentence} (from {} on)", (quoting.text)(from)),
            None => sentence,
        }
    }

    fn predicate_now(&self, quoting: &Quoting) -> String {
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
                let (after_grant, before_grant) = (&self.after.matched_grant, &self.before.matched_grant);
                let through = |grant: &str| if grant.is_empty() { "no grant".to_string() } else { format!("grant {}", name(grant)) };
                match (after_trust != before_trust, after_grant != before_grant) {
                    (false, true) => format!(
                        "still may call {tool}{effect} at trust {}, now through {} — was {}",
                        or_none(&after_trust),
                        through(after_grant),
                        through(before_grant)
                    ),
                    (true, true) => format!(
                        "still may call {tool}{effect}, now at trust {} through {} — was {} through {}",
                        or_none(&after_trust),
                        through(after_grant),
                        or_none(&before_trust),
                        through(before_grant)
                    ),
                    _ => format!("still may call {tool}{effect}, now at trust {} — was {}", or_none(&after_trust), or_none(&before_trust)),
                }
            }
            Direction::Changed => format!("calling {tool}{effect}: {after_reason} — was {before_reason}"),
        }
    }
}

impl AccessChange {
    /// Whether a reviewer decides on it: a call that becomes possible or impossible, or an
    /// allowed call whose trust or grant changes. A denial that only changes its reason is not.
    pub fn decisive(&self) -> bool {
        self.direction != Direction::Changed || self.before.allowed || self.after.allowed
    }

    /// How risky a widening is, by the side effect it opens: destructive 3, write 2, read 1;
    /// 0 for anything else, narrowing and changes included.
    pub fn widening_risk(&self) -> u8 {
        if self.direction == Direction::Widened { danger(&self.side_effect).max(1) } else { 0 }
    }
}

/// The changes a reviewer decides on (`AccessChange::decisive`), then the denials that only
/// changed their reason: every renderer shows the first and sets the second apart.
pub fn decisive_first(changes: &[AccessChange]) -> (Vec<&AccessChange>, Vec<&AccessChange>) {
    changes.iter().partition(|change| change.decisive())
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
    if *identity == Identity::default() {
        return "anyone (a caller no grant or session names)".to_string();
    }
    let mut parts = Vec::new();
    for (word, value) in [("human", &identity.human), ("agent", &identity.agent), ("team", &identity.team), ("session", &identity.session)]
    {
        if !value.is_empty() {
            parts.push(format!("{word} {}", (quoting.name)(value)));
        }
    }
    parts.join(" + ")
}
