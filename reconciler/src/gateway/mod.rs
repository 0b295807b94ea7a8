//! The gateway model: the policy document (`document`), its revision (`revision`), the checks
//! the gateway runs before activating one (`check`), the operator's rendering (`render`) and the
//! decision function (`authorize`). Pure functions; no I/O.

pub mod authorize;
pub mod check;
pub mod document;
pub mod render;
pub mod revision;

#[cfg(test)]
mod vectors;

pub use authorize::{Decision, Identity, authorize};
pub use document::PolicyDocument;

use crate::model::{DesiredState, Kind, Object, ObjectId};
use document::Subjected;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// The rendered policy of every gateway-enabled server of a desired state, keyed by server.
pub fn render_all(state: &DesiredState) -> Vec<(ObjectId, PolicyDocument)> {
    render_some(state, |_| true)
}

/// The rendered policy of the gateway-enabled servers that `wanted` picks.
pub fn render_some(state: &DesiredState, wanted: impl Fn(&ObjectId) -> bool) -> Vec<(ObjectId, PolicyDocument)> {
    rendered(state, wanted, true)
}

/// `render_some` without the revisions (hashing a document is most of rendering it), for what
/// reads the grants and sessions alone.
pub fn render_unstamped(state: &DesiredState, wanted: impl Fn(&ObjectId) -> bool) -> Vec<(ObjectId, PolicyDocument)> {
    rendered(state, wanted, false)
}

/// The servers `wanted` picks rendered (and `stamped` with their revisions), on every core: a
/// plan of a grant change renders a few, the expiry of a grant many.
fn rendered(state: &DesiredState, wanted: impl Fn(&ObjectId) -> bool, stamped: bool) -> Vec<(ObjectId, PolicyDocument)> {
    let mut targeting: HashMap<(&str, &str), Vec<&Object>> = HashMap::new();
    for object in &state.objects {
        if let Some(target) = render::targets(object) {
            targeting.entry(target).or_default().push(object);
        }
    }
    let servers: Vec<&Object> = state.of_kind(Kind::Server).filter(|object| wanted(&object.id)).collect();
    let cluster = state.config.cluster_name();
    let documents = crate::parallel::ordered_map(&servers, 16, |object| {
        let spec = object.server()?;
        let input = render::ServerInput { name: &object.id.name, namespace: &object.id.namespace, spec };
        let objects = targeting.get(&(object.id.namespace.as_str(), object.id.name.as_str())).map(Vec::as_slice).unwrap_or_default();
        let mut document = render::render(&input, objects, cluster)?;
        if stamped {
            revision::stamp(&mut document);
        }
        Some((object.id.clone(), document))
    });
    documents.into_iter().flatten().collect()
}

/// Every identity a policy names: each grant's and session's subject (a session's with its
/// session id) and the server's team.
pub fn identities(document: &PolicyDocument) -> BTreeSet<Identity> {
    let of = |subject: (&str, &str, &str), session: &str| Identity {
        human: subject.0.to_string(),
        agent: subject.1.to_string(),
        team: subject.2.to_string(),
        session: session.to_string(),
    };
    let mut identities: BTreeSet<Identity> = document.grants.iter().map(|g| of(g.subject(), "")).collect();
    identities.extend(document.sessions.iter().map(|s| of(s.subject(), &s.name)));
    if !document.server.team_id.is_empty() {
        identities.insert(of(("", "", &document.server.team_id), ""));
    }
    identities.retain(|i| !(i.human.is_empty() && i.agent.is_empty() && i.team.is_empty()));
    identities
}

/// Every tool a policy names: declared tools and tools named by grant rules.
pub fn tools(document: &PolicyDocument) -> BTreeSet<String> {
    let mut tools: BTreeSet<String> = document.tools.iter().map(|t| t.name.clone()).collect();
    tools.extend(document.grants.iter().flat_map(|g| g.tool_rules.iter().map(|r| r.name.clone())));
    tools
}

/// One cell of the access matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Access {
    pub server: String,
    pub identity: Identity,
    pub tool: String,
    pub decision: Decision,
}

/// Every identity x tool decision of one server's policy, for `tools/call` at `now`.
pub fn matrix(server: &ObjectId, document: &PolicyDocument, now: Timestamp) -> Vec<Access> {
    decisions(server, document, &identities(document), &tools(document), now)
}

/// Who may call `tool` of this server at `now`: the identities the policy names (grant subjects,
/// sessions, the server's team) whose call the gateway allows, each with the allowing decision.
pub fn who_can(server: &ObjectId, document: &PolicyDocument, tool: &str, now: Timestamp) -> Vec<Access> {
    let mut cells = decisions(server, document, &identities(document), &BTreeSet::from([tool.to_string()]), now);
    cells.retain(|c| c.decision.allowed);
    cells
}

/// Whether a caller the policy names nowhere may call `tool` (observe mode, or a default
/// decision of allow): the decision such a caller gets, when it is an allow.
pub fn anyone_can(document: &PolicyDocument, tool: &str, now: Timestamp) -> Option<Decision> {
    let stranger = Identity { human: "\u{0}anyone".into(), ..Identity::default() };
    Some(authorize(document, &stranger, "tools/call", tool, now)).filter(|d| d.allowed)
}

/// What `identity` may call at `now`: every tool of this server the gateway allows it.
pub fn what_can(server: &ObjectId, document: &PolicyDocument, identity: &Identity, now: Timestamp) -> Vec<Access> {
    let mut cells = decisions(server, document, &BTreeSet::from([identity.clone()]), &tools(document), now);
    cells.retain(|c| c.decision.allowed);
    cells
}

/// A grant or session of a server that names part of a caller but not all of it, or a session
/// the caller would need: the flags that would complete the caller for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NearMiss {
    pub server: String,
    /// `grant NAMESPACE/NAME` or `session NAMESPACE/NAME`.
    pub object: String,
    /// (flag, value) pairs: `("human", "marcus@…")`, `("session", "refund-copilot-marcus")`.
    pub requires: Vec<(&'static str, String)>,
}

/// Why `identity` may call nothing on this server although the policy names it: each grant or
/// session that names the caller's human or agent (its team, for a caller named by team alone)
/// and what else its subject requires; and, when the
/// server requires a session and none was given, the sessions whose subject the caller matches.
pub fn near_misses(server: &ObjectId, document: &PolicyDocument, identity: &Identity) -> Vec<NearMiss> {
    let server = format!("{}/{}", server.namespace, server.name);
    let given = [("human", &identity.human), ("agent", &identity.agent), ("team", &identity.team)];
    let missing = |subject: (&str, &str, &str)| -> Option<Vec<(&'static str, String)>> {
        let wanted = [subject.0, subject.1, subject.2];
        // A team is shared by many: it makes a near miss only for a caller named by team alone.
        let by_team = identity.human.is_empty() && identity.agent.is_empty();
        let shares = given.iter().zip(wanted).any(|((flag, have), want)| (by_team || *flag != "team") && !have.is_empty() && *have == want);
        let requires: Vec<(&'static str, String)> = given
            .iter()
            .zip(wanted)
            .filter(|((_, have), want)| !want.is_empty() && *have != want)
            .map(|((flag, _), want)| (*flag, want.to_string()))
            .collect();
        (shares && !requires.is_empty()).then_some(requires)
    };
    let mut found = Vec::new();
    for grant in document.grants.iter().filter(|g| !g.disabled) {
        if let Some(requires) = missing(grant.subject()) {
            found.push(NearMiss { server: server.clone(), object: format!("grant {}/{}", grant.namespace, grant.name), requires });
        }
    }
    let session_required = document.session.as_ref().is_some_and(|s| s.required) && identity.session.is_empty();
    for session in document.sessions.iter().filter(|s| !s.revoked) {
        let object = format!("session {}/{}", session.namespace, session.name);
        if let Some(requires) = missing(session.subject()) {
            found.push(NearMiss { server: server.clone(), object, requires });
        } else if session_required && authorize::subject_matches(session, identity) {
            found.push(NearMiss { server: server.clone(), object, requires: vec![("session", session.name.clone())] });
        }
    }
    found
}

fn decisions(
    server: &ObjectId,
    document: &PolicyDocument,
    identities: &BTreeSet<Identity>,
    tools: &BTreeSet<String>,
    now: Timestamp,
) -> Vec<Access> {
    let mut cells = Vec::new();
    for identity in identities {
        for tool in tools {
            cells.push(Access {
                server: format!("{}/{}", server.namespace, server.name),
                identity: identity.clone(),
                tool: tool.clone(),
                decision: authorize(document, identity, "tools/call", tool, now),
            });
        }
    }
    cells
}

impl std::fmt::Display for Identity {
    /// `human=a agent=b team=c session=d`, empty fields left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [("human", &self.human), ("agent", &self.agent), ("team", &self.team), ("session", &self.session)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        f.write_str(&parts.join(" "))
    }
}
