//! Required approvals, from what a change does to access: each access change of the plan is
//! matched against the `owners.approvals` rules of `mcp-gitops.yaml`; the word `owners` in a
//! rule stands for the owners of the server the access is on. A change that only narrows access
//! needs none unless a rule says so. A tool whose side effect is lowered needs approval by
//! itself, whoever it reaches today: the rules for a widening to its former class, and the
//! server's owners. Pure: no I/O.

use super::access::{AccessChange, Direction, danger};
use super::{Change, Plan};
use crate::gateway::authorize::side_effect as normalized_effect;
use crate::model::{ApprovalRule, Code, DesiredState, Diagnostic, Kind, ObjectId, OwnerMap, Owners, Severity};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The plan's `approvals`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approvals {
    pub required: Vec<Requirement>,
    /// The change opens break-glass access (`break_glass::judge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<super::break_glass::BreakGlass>,
}

/// `count` approvals from `approvers` (any of them), for what the change does on `servers`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Requirement {
    pub approvers: Vec<String>,
    pub count: usize,
    pub servers: Vec<String>,
    pub reason: String,
}

/// A tool whose declared side effect a change lowers, on a server both states declare.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Reclassification {
    /// `NAMESPACE/NAME` of the server.
    pub server: String,
    pub tool: String,
    /// The side effect before and after (as the gateway reads them: lower case).
    pub before: String,
    pub after: String,
}

/// The tools whose side effect `desired` lowers from `base`'s (to another known class: an
/// unknown one fails closed), by server and tool.
pub fn reclassified(base: &DesiredState, desired: &DesiredState) -> Vec<Reclassification> {
    let mut old: HashMap<&ObjectId, &crate::model::Object> = HashMap::new();
    for object in base.of_kind(Kind::Server) {
        old.entry(&object.id).or_insert(object);
    }
    let mut found = Vec::new();
    for object in desired.of_kind(Kind::Server) {
        let Some(was) = old.get(&object.id).filter(|was| was.body != object.body) else { continue };
        let (Some(before), Some(after)) = (was.server(), object.server()) else { continue };
        for tool in &after.tools {
            let Some(former) = before.tool(&tool.name) else { continue };
            let (from, to) = (normalized_effect(&former.side_effect), normalized_effect(&tool.side_effect));
            if danger(&to) > 0 && danger(&to) < danger(&from) {
                found.push(Reclassification {
                    server: format!("{}/{}", object.id.namespace, object.id.name),
                    tool: tool.name.clone(),
                    before: from,
                    after: to,
                });
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The rule that applies when `owners.approvals` lists none: a widening needs one owner.
fn default_rules() -> Vec<ApprovalRule> {
    vec![ApprovalRule { on: "widened".into(), approvers: vec!["owners".into()], count: 1, clusters: Vec::new() }]
}

/// Whether a rule's `on` covers an access change.
fn covers(on: &str, change: &AccessChange) -> bool {
    match (on, change.direction) {
        ("widened", Direction::Widened) | ("changed", Direction::Changed) | ("narrowed", Direction::Narrowed) => true,
        (on, Direction::Widened) => on.strip_prefix("widened-") == Some(change.side_effect.as_str()),
        _ => false,
    }
}

/// The approvals the access changes and the reclassifications need under `owners`; none when
/// no server has an owner.
pub fn required(owners: &Owners, access_changes: &[AccessChange], reclassified: &[Reclassification]) -> Approvals {
    if owners.servers.is_empty() {
        return Approvals::default();
    }
    let map = OwnerMap::new(owners);
    // A rule for some clusters applies in their slices alone, where `load::slice` makes it a rule for all.
    let rules: Vec<ApprovalRule> = owners.approvals.iter().filter(|rule| rule.clusters.is_empty()).cloned().collect();
    let rules = if rules.is_empty() { default_rules() } else { rules };
    // (rule, approvers) -> the servers and the number of calls it is needed for.
    let mut needed: BTreeMap<(usize, Vec<String>), (BTreeSet<String>, usize)> = BTreeMap::new();
    for change in access_changes {
        for (i, rule) in rules.iter().enumerate().filter(|(_, rule)| covers(&rule.on, change)) {
            // One entry per person or team, however often and in whatever case it is listed.
            let approvers: BTreeMap<String, String> = rule
                .approvers
                .iter()
                .flat_map(|a| if a == "owners" { map.of(&change.server).into_iter().collect() } else { vec![a.clone()] })
                .rev()
                .map(|a| (identity(&a), a))
                .collect();
            let mut approvers: Vec<String> = approvers.into_values().collect();
            approvers.sort();
            let entry = needed.entry((i, approvers)).or_default();
            entry.0.insert(change.server.clone());
            entry.1 += 1;
        }
    }
    let mut required: Vec<Requirement> = needed
        .into_iter()
        .map(|((i, approvers), (servers, calls))| {
            let rule = &rules[i];
            Requirement {
                approvers,
                count: rule.count.max(1),
                servers: servers.into_iter().collect(),
                reason: format!("access {} on {calls} call(s) (rule `on: {}`)", words(&rule.on), rule.on),
            }
        })
        .collect();
    required.extend(for_reclassifications(&map, &rules, reclassified));
    required.sort();
    required.dedup();
    Approvals { required, break_glass: None }
}

/// A lowered side effect is judged as a widening to a tool of its former class (the rules
/// `widened` and `widened-<former>`), and needs one of the server's owners besides, unless
/// such a rule already asks exactly the owners.
fn for_reclassifications(map: &OwnerMap, rules: &[ApprovalRule], reclassified: &[Reclassification]) -> Vec<Requirement> {
    // (rule, or none for the owners' own; approvers) -> the servers and the tools.
    type Ask = (Option<usize>, Vec<String>);
    let mut needed: BTreeMap<Ask, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for r in reclassified {
        let owners: Vec<String> = map.of(&r.server).into_iter().collect();
        let covering: Vec<usize> = (0..rules.len())
            .filter(|&i| rules[i].on == "widened" || rules[i].on.strip_prefix("widened-") == Some(r.before.as_str()))
            .collect();
        let mut asks: Vec<(Option<usize>, Vec<String>)> = covering
            .iter()
            .map(|&i| {
                let approvers: BTreeSet<String> =
                    rules[i].approvers.iter().flat_map(|a| if a == "owners" { owners.clone() } else { vec![a.clone()] }).collect();
                (Some(i), approvers.into_iter().collect())
            })
            .collect();
        if !covering.iter().any(|&i| rules[i].approvers == ["owners"]) {
            asks.push((None, owners.clone()));
        }
        let tool = format!("`{}/{}` {} → {}", r.server.rsplit('/').next().unwrap_or(&r.server), r.tool, r.before, r.after);
        for ask in asks {
            let entry = needed.entry(ask).or_default();
            entry.0.insert(r.server.clone());
            entry.1.insert(tool.clone());
        }
    }
    needed
        .into_iter()
        .map(|((rule, approvers), (servers, tools))| {
            let tools = tools.into_iter().collect::<Vec<_>>().join(", ");
            let (count, why) = match rule {
                Some(i) => (rules[i].count.max(1), format!("rule `on: {}`", rules[i].on)),
                None => (1, "the server's owners approve a reclassification".to_string()),
            };
            Requirement {
                approvers,
                count,
                servers: servers.into_iter().collect(),
                reason: format!("side effect lowered: {tools} ({why})"),
            }
        })
        .collect()
}

fn words(on: &str) -> String {
    match on.split_once('-') {
        Some((direction, effect)) => format!("{direction} to {effect} tools"),
        None => on.to_string(),
    }
}

/// `server_without_owner` for each changed object whose server no `owners.servers` glob covers
/// (only when owners are declared at all).
pub fn unowned(owners: &Owners, desired: &DesiredState, base: &DesiredState, changes: &[Change]) -> Vec<Diagnostic> {
    if owners.servers.is_empty() {
        return Vec::new();
    }
    let map = OwnerMap::new(owners);
    let severity = owners.unowned.unwrap_or(Severity::Warning);
    let objects: BTreeMap<&ObjectId, &crate::model::Object> = base.objects.iter().chain(&desired.objects).map(|o| (&o.id, o)).collect();
    let mut found = Vec::new();
    for change in changes.iter().filter(|c| c.action != super::Action::NoOp) {
        let Some(object) = objects.get(&change.id()) else { continue };
        let server = match object.id.kind {
            Kind::Server => format!("{}/{}", object.id.namespace, object.id.name),
            _ => match crate::gateway::render::targets(object) {
                Some((namespace, name)) => format!("{namespace}/{name}"),
                None => continue,
            },
        };
        if map.of(&server).is_empty() {
            found.push(
                Diagnostic::new(
                    severity,
                    Code::ServerWithoutOwner,
                    &object.origin.file,
                    object.pos("/metadata/name"),
                    format!(
                        "{} ({}) is on server {server}, which has no owner: no owner's approval is asked for it",
                        object.id,
                        change.action.as_str()
                    ),
                )
                .object(&object.id)
                .hint("add the server to owners.servers in mcp-gitops.yaml (globs over NAMESPACE/NAME)"),
            );
        }
    }
    found
}

pub use crate::model::spelling::identity;

/// Whether `approved_by` (less the author, who never approves their own change) meets each
/// requirement: the unmet ones, each with the approvals still missing. Names are compared as
/// `identity` says, and each person or team counts once.
pub fn unmet<'a>(approvals: &'a Approvals, approved_by: &[String], author: Option<&str>) -> Vec<(&'a Requirement, usize)> {
    let author = author.map(identity);
    let approved: BTreeSet<String> =
        approved_by.iter().map(|a| identity(a)).filter(|a| !a.is_empty() && Some(a) != author.as_ref()).collect();
    approvals
        .required
        .iter()
        .filter_map(|r| {
            let approvers: BTreeSet<String> = r.approvers.iter().map(|a| identity(a)).collect();
            let have = approvers.intersection(&approved).count();
            (have < r.count).then_some((r, r.count - have))
        })
        .collect()
}

/// An approver given to `approvals check` who meets no requirement: not the author, and named
/// by no requirement's approvers (as `identity` compares them); with the closest approver some
/// requirement names, when one is a slip of the keyboard away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmatched {
    pub approver: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closest: Option<String>,
}

/// The approvers of `approved_by` that count for no requirement of `approvals` (the author
/// is said apart), each once, in the order given.
pub fn unmatched(approvals: &Approvals, approved_by: &[String], author: Option<&str>) -> Vec<Unmatched> {
    let author = author.map(identity);
    let wanted: BTreeMap<String, &str> = approvals.required.iter().flat_map(|r| &r.approvers).map(|a| (identity(a), a.as_str())).collect();
    let mut seen = BTreeSet::new();
    approved_by
        .iter()
        .filter(|a| {
            let id = identity(a);
            !id.is_empty() && Some(&id) != author.as_ref() && !wanted.contains_key(&id) && seen.insert(id)
        })
        .map(|a| {
            let closest = crate::model::spelling::closest(&identity(a), wanted.keys().map(String::as_str));
            Unmatched { approver: a.trim().to_string(), closest: closest.and_then(|c| wanted.get(c)).map(|c| c.to_string()) }
        })
        .collect()
}

/// `approvals check`'s answer: each requirement with the approvals it still misses, and the
/// approvers that count for none.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub ok: bool,
    pub required: Vec<Checked>,
    pub unmatched: Vec<Unmatched>,
    /// The change opens break-glass access: `ok` without approvals when it passes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<CheckedBreakGlass>,
}

/// The plan's break-glass, and whether it passes for this author (else why not).
#[derive(Debug, Clone, Serialize)]
pub struct CheckedBreakGlass {
    #[serde(flatten)]
    pub break_glass: super::break_glass::BreakGlass,
    pub passes: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub requirement: Requirement,
    /// Approvals still needed; 0 when met.
    pub missing: usize,
}

/// Checks `approved_by` (less the `author`) against the requirements of `approvals`.
pub fn check(approvals: &Approvals, approved_by: &[String], author: Option<&str>) -> Check {
    let unmet = unmet(approvals, approved_by, author);
    let required = approvals
        .required
        .iter()
        .map(|r| Checked { requirement: r.clone(), missing: unmet.iter().find(|(u, _)| *u == r).map_or(0, |(_, n)| *n) })
        .collect();
    let break_glass = approvals.break_glass.clone().map(|break_glass| {
        let refused = super::break_glass::passes(&break_glass, author).err();
        CheckedBreakGlass { break_glass, passes: refused.is_none(), refused }
    });
    let ok = unmet.is_empty() || break_glass.as_ref().is_some_and(|b| b.passes);
    Check { ok, required, unmatched: unmatched(approvals, approved_by, author), break_glass }
}

/// The plan with its approvals and the `server_without_owner` diagnostics.
pub(super) fn add_to(plan: &mut Plan, owners: &Owners, desired: &DesiredState, base: &DesiredState) {
    plan.approvals = required(owners, &plan.access_changes, &plan.reclassified);
    let found = unowned(owners, desired, base, &plan.changes);
    plan.summary.errors += found.iter().filter(|d| d.is_error()).count();
    plan.summary.warnings += found.iter().filter(|d| !d.is_error()).count();
    plan.diagnostics.extend(found);
    crate::model::diagnostic::sort(&mut plan.diagnostics);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::Identity;
    use crate::plan::access::Outcome;

    fn change(direction: Direction, server: &str, effect: &str) -> AccessChange {
        let outcome =
            |allowed| Outcome { allowed, status: 200, reason: "r".into(), effective_trust: String::new(), matched_grant: String::new() };
        AccessChange {
            direction,
            server: server.into(),
            subject: Identity { agent: "a".into(), ..Identity::default() },
            tool: "t".into(),
            side_effect: effect.into(),
            required_trust: "low".into(),
            before: outcome(direction == Direction::Narrowed),
            after: outcome(direction == Direction::Widened),
            from: None,
            anyone: false,
        }
    }

    fn owners(rules: &[(&str, &[&str], usize)]) -> Owners {
        Owners {
            servers: BTreeMap::from([("pay/*".to_string(), vec!["pay-leads".to_string()])]),
            approvals: rules
                .iter()
                .map(|(on, who, count)| ApprovalRule {
                    on: on.to_string(),
                    approvers: who.iter().map(|w| w.to_string()).collect(),
                    count: *count,
                    clusters: Vec::new(),
                })
                .collect(),
            unowned: None,
            break_glass: None,
        }
    }

    #[test]
    fn a_widening_needs_an_owner_by_default_and_narrowing_needs_nobody() {
        let needed =
            required(&owners(&[]), &[change(Direction::Widened, "pay/p", "read"), change(Direction::Narrowed, "pay/p", "write")], &[]);
        assert_eq!(needed.required.len(), 1);
        assert_eq!((needed.required[0].approvers.clone(), needed.required[0].count), (vec!["pay-leads".to_string()], 1));
        assert!(required(&owners(&[]), &[change(Direction::Narrowed, "pay/p", "write")], &[]).required.is_empty());
        assert!(
            required(&Owners::default(), &[change(Direction::Widened, "pay/p", "read")], &[]).required.is_empty(),
            "no owners, no approvals"
        );
    }

    #[test]
    fn rules_match_the_side_effect_and_resolve_owners_per_server() {
        let rules = owners(&[("widened-destructive", &["owners", "security"], 2), ("widened-write", &["owners"], 1)]);
        let changes = [
            change(Direction::Widened, "pay/p", "destructive"),
            change(Direction::Widened, "other/o", "destructive"),
            change(Direction::Widened, "pay/p", "read"),
        ];
        let needed = required(&rules, &changes, &[]).required;
        assert_eq!(needed.len(), 2, "{needed:?}");
        let approvers: Vec<Vec<String>> = needed.iter().map(|r| r.approvers.clone()).collect();
        assert!(approvers.contains(&vec!["security".to_string()]), "an unowned server leaves only the named approvers: {approvers:?}");
        assert!(approvers.contains(&vec!["pay-leads".to_string(), "security".to_string()]));
        assert!(needed.iter().all(|r| r.count == 2));
    }

    #[test]
    fn a_lowered_side_effect_needs_the_rules_of_its_former_class_and_an_owner() {
        let lowered = Reclassification { server: "pay/p".into(), tool: "wipe".into(), before: "destructive".into(), after: "read".into() };
        let rules = owners(&[("widened-destructive", &["security"], 1), ("widened-write", &["writers"], 1)]);
        let needed = required(&rules, &[], std::slice::from_ref(&lowered)).required;
        let asked: Vec<(Vec<String>, usize)> = needed.iter().map(|r| (r.approvers.clone(), r.count)).collect();
        assert_eq!(asked, vec![(vec!["pay-leads".to_string()], 1), (vec!["security".to_string()], 1)], "{needed:?}");
        assert!(needed.iter().all(|r| r.reason.contains("`p/wipe` destructive → read")), "{needed:?}");
        // A rule that already asks the owners is the owners' approval.
        let needed = required(&owners(&[]), &[], &[lowered]).required;
        assert_eq!(needed.len(), 1, "{needed:?}");
    }

    #[test]
    fn the_author_never_approves_their_own_change() {
        let approvals = required(&owners(&[("widened", &["owners", "security"], 2)]), &[change(Direction::Widened, "pay/p", "read")], &[]);
        let by = |who: &[&str]| who.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert!(unmet(&approvals, &by(&["pay-leads", "security"]), None).is_empty());
        assert_eq!(unmet(&approvals, &by(&["pay-leads", "security"]), Some("pay-leads"))[0].1, 1);
        assert_eq!(unmet(&approvals, &by(&["someone-else"]), None)[0].1, 2);
    }

    #[test]
    fn identities_are_compared_as_the_forges_compare_them() {
        let approvals = required(&owners(&[("widened", &["owners", "Security"], 2)]), &[change(Direction::Widened, "pay/p", "read")], &[]);
        let by = |who: &[&str]| who.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert!(unmet(&approvals, &by(&["PAY-LEADS", " security "]), None).is_empty());
        assert!(unmet(&approvals, &by(&["@pay-leads", "@Security"]), None).is_empty());
        // The author in another spelling is still the author.
        assert_eq!(unmet(&approvals, &by(&["pay-leads", "security"]), Some(" Pay-Leads"))[0].1, 1);
        assert_eq!(unmet(&approvals, &by(&["pay-leads", "security"]), Some("@pay-leads"))[0].1, 1);
        // One person listed twice in two spellings is one approver, and one approval.
        let twice = required(&owners(&[("widened", &["owners", "Pay-Leads"], 2)]), &[change(Direction::Widened, "pay/p", "read")], &[]);
        assert_eq!(twice.required[0].approvers.len(), 1, "{twice:?}");
        let listed_twice = Approvals {
            required: vec![Requirement {
                approvers: by(&["dana", "Dana"]),
                count: 2,
                servers: vec!["pay/p".into()],
                reason: String::new(),
            }],
            break_glass: None,
        };
        assert_eq!(unmet(&listed_twice, &by(&["dana"]), None)[0].1, 1);
    }

    #[test]
    fn approvers_that_meet_no_requirement_are_named_with_the_close_name() {
        let approvals = required(&owners(&[("widened", &["owners", "security"], 2)]), &[change(Direction::Widened, "pay/p", "read")], &[]);
        let by = |who: &[&str]| who.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let found = unmatched(&approvals, &by(&[" @pay-leads", "pay-lead", "alice", "", "Alice", "mallory"]), Some("mallory"));
        let named: Vec<(&str, Option<&str>)> = found.iter().map(|u| (u.approver.as_str(), u.closest.as_deref())).collect();
        assert_eq!(named, vec![("pay-lead", Some("pay-leads")), ("alice", None)]);
    }
}
