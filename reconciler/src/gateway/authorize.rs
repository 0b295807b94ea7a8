//! `policy.Authorize` (DOMAIN.md §5.4-5.8) to the letter: one tool call, one decision with the
//! gateway's reason code, HTTP status, trust triple and the grant and session it matched.

use super::document::{GrantPolicy, PolicyDocument, SessionPolicy, Subjected, ToolPolicy};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Who is calling: the identity headers the gateway resolved, and the session header.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Identity {
    pub human: String,
    pub agent: String,
    pub team: String,
    pub session: String,
}

/// The gateway's decision, in its own field names (empty strings omitted in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub status: u16,
    pub reason: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub policy_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub required_trust: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub required_side_effect: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub risk_level: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub admin_trust: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub consented_trust: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub effective_trust: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub matched_grant: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub matched_grant_namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub matched_session: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub matched_session_namespace: String,
}

pub const ALLOWED: &str = "allowed";
pub const MISSING_IDENTITY: &str = "missing_identity";
pub const MISSING_SESSION: &str = "missing_session";
pub const SESSION_NOT_FOUND: &str = "session_not_found";
pub const SESSION_REVOKED: &str = "session_revoked";
pub const SESSION_EXPIRED: &str = "session_expired";
pub const NO_MATCHING_GRANT: &str = "no_matching_grant";
pub const TOOL_DENIED: &str = "tool_denied";
pub const TOOL_NOT_GRANTED: &str = "tool_not_granted";
pub const TOOL_SIDE_EFFECT_UNKNOWN: &str = "tool_side_effect_unknown";
pub const SIDE_EFFECT_NOT_ALLOWED: &str = "side_effect_not_allowed";
pub const GRANT_WITHOUT_TRUST: &str = "grant_without_trust";
pub const TRUST_TOO_LOW: &str = "trust_too_low";

fn norm(value: &str) -> String {
    value.trim().to_lowercase()
}

/// Trust rank: high 3, medium 2, anything else (empty and unknown included) low 1.
pub fn trust_rank(trust: &str) -> u8 {
    match norm(trust).as_str() {
        "high" => 3,
        "medium" => 2,
        _ => 1,
    }
}

pub fn trust_name(rank: u8) -> &'static str {
    match rank {
        3.. => "high",
        2 => "medium",
        _ => "low",
    }
}

/// Side effect normalisation: unknown becomes "" (fails closed).
pub fn side_effect(value: &str) -> String {
    let value = norm(value);
    if matches!(value.as_str(), "read" | "write" | "destructive") { value } else { String::new() }
}

/// NormalizeRiskLevel: a declared level wins; else derived from side effect and trust.
pub fn risk_level(declared: &str, trust: &str, side_effect: &str) -> String {
    let declared = norm(declared);
    if matches!(declared.as_str(), "low" | "medium" | "high") {
        return declared;
    }
    let trust = trust_name(trust_rank(trust));
    match (side_effect, trust) {
        ("destructive", _) | (_, "high") => "high",
        ("write", _) | (_, "medium") => "medium",
        ("read", "low") => "low",
        _ => "",
    }
    .to_string()
}

pub fn is_tool_call(method: &str) -> bool {
    method == "tools/call" || method == "call_tool"
}

/// Subject matching (§5.5): every non-empty field equal; an all-empty subject never matches.
pub fn subject_matches(subject: &impl Subjected, identity: &Identity) -> bool {
    let (human, agent, team) = subject.subject();
    if human.is_empty() && agent.is_empty() && team.is_empty() {
        return false;
    }
    (human.is_empty() || human == identity.human)
        && (agent.is_empty() || agent == identity.agent)
        && (team.is_empty() || team == identity.team)
}

/// Expired: `expires_at` set and unparsable, or `now` strictly after it.
pub fn session_expired(session: &SessionPolicy, now: Timestamp) -> bool {
    if session.expires_at.trim().is_empty() {
        return false;
    }
    match session.expires_at.parse::<Timestamp>() {
        Ok(expires) => now > expires,
        Err(_) => true,
    }
}

fn tool_metadata(document: &PolicyDocument, tool: &str) -> (String, String, String) {
    match document.tools.iter().find(|t: &&ToolPolicy| t.name == tool) {
        Some(t) => {
            let trust = trust_name(trust_rank(&t.required_trust)).to_string();
            let effect = side_effect(&t.side_effect);
            let risk = risk_level(&t.risk_level, &trust, &effect);
            (trust, effect, risk)
        }
        None => ("low".into(), String::new(), String::new()),
    }
}

impl Decision {
    /// A decision that carries only status, reason and policy version: the evaluator's `Deny`
    /// (and `decideByDefault`), before any matched names are added.
    fn bare(allowed: bool, status: u16, reason: &'static str, policy_version: &str) -> Decision {
        Decision {
            allowed,
            status,
            reason,
            policy_version: policy_version.to_string(),
            required_trust: String::new(),
            required_side_effect: String::new(),
            risk_level: String::new(),
            admin_trust: String::new(),
            consented_trust: String::new(),
            effective_trust: String::new(),
            matched_grant: String::new(),
            matched_grant_namespace: String::new(),
            matched_session: String::new(),
            matched_session_namespace: String::new(),
        }
    }

    fn with_session(mut self, session: Option<&SessionPolicy>) -> Decision {
        if let Some(s) = session {
            self.matched_session = s.name.clone();
            self.matched_session_namespace = s.namespace.clone();
        }
        self
    }

    fn with_grant(mut self, grant: &GrantPolicy, pv: &str) -> Decision {
        self.matched_grant = grant.name.clone();
        self.matched_grant_namespace = grant.namespace.clone();
        self.policy_version = choose_policy_version(&grant.policy_version, pv);
        self
    }
}

/// ChoosePolicyVersion: an object's own version wins over the document's.
fn choose_policy_version(own: &str, pv: &str) -> String {
    if own.is_empty() { pv.to_string() } else { own.to_string() }
}

/// `policy.Authorize`. Each path carries exactly the fields the gateway's decision carries
/// (DOMAIN.md §5.4, "Which fields each decision carries"): denials of identity, session and
/// deny rules, and default decisions, carry no risk, trust or required trust.
pub fn authorize(document: &PolicyDocument, identity: &Identity, method: &str, tool: &str, now: Timestamp) -> Decision {
    let pv = document.policy.as_ref().map(|p| p.policy_version.as_str()).unwrap_or_default();
    let allow = Decision::bare(true, 200, ALLOWED, pv);
    if !is_tool_call(method) {
        return allow;
    }
    let (tool_trust, tool_effect, risk) = tool_metadata(document, tool);
    let policy = document.policy.clone().unwrap_or_default();
    if norm(&policy.mode) == "observe" {
        return Decision { risk_level: risk, ..allow };
    }
    let deny = |status: u16, reason: &'static str| Decision::bare(false, status, reason, pv);
    let by_default = |reason: &'static str| {
        let allows = norm(&policy.default_decision) == "allow";
        Decision::bare(allows, if allows { 200 } else { 403 }, reason, pv)
    };
    if identity.human.is_empty() && identity.agent.is_empty() && identity.team.is_empty() {
        return deny(401, MISSING_IDENTITY);
    }
    let required = document.session.as_ref().is_some_and(|s| s.required);
    if required && identity.session.is_empty() {
        return deny(401, MISSING_SESSION);
    }

    let found = find_session(document, identity);
    let session = if required {
        let Some(s) = found else { return deny(401, SESSION_NOT_FOUND) };
        let failure = if s.revoked {
            Some(SESSION_REVOKED)
        } else if session_expired(s, now) {
            Some(SESSION_EXPIRED)
        } else {
            None
        };
        if let Some(reason) = failure {
            return Decision::bare(false, 401, reason, &choose_policy_version(&s.policy_version, pv)).with_session(Some(s));
        }
        Some(s)
    } else if identity.session.is_empty() {
        None
    } else {
        found.filter(|s| !s.revoked && !session_expired(s, now))
    };

    let mut matching: Vec<&GrantPolicy> = document.grants.iter().filter(|g| subject_matches(*g, identity)).collect();
    if matching.is_empty() {
        return by_default(NO_MATCHING_GRANT).with_session(session);
    }
    matching.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));

    let best = match best_grant_for(&matching, tool, &tool_trust, &tool_effect) {
        Ok(best) => best,
        Err(denying) => return deny(403, TOOL_DENIED).with_grant(denying, pv).with_session(session),
    };
    let Some(attributed) = best.attributed else {
        return by_default(TOOL_NOT_GRANTED).with_session(session);
    };
    let matched = |d: Decision| d.with_grant(attributed, pv).with_session(session);
    let judged = |d: Decision| Decision { required_trust: trust_name(best.required_rank).into(), risk_level: risk.clone(), ..matched(d) };
    if tool_effect.is_empty() {
        return judged(deny(403, TOOL_SIDE_EFFECT_UNKNOWN));
    }
    if !best.effect_allowed {
        return Decision { required_side_effect: tool_effect, ..judged(deny(403, SIDE_EFFECT_NOT_ALLOWED)) };
    }
    if best.admin_rank == 0 {
        let d = by_default(GRANT_WITHOUT_TRUST);
        return Decision { policy_version: d.policy_version.clone(), ..matched(d) };
    }
    let consented = match session {
        Some(s) if !s.consented_trust.is_empty() => trust_rank(&s.consented_trust),
        _ => best.admin_rank,
    };
    let effective = best.admin_rank.min(consented);
    let d = if effective < best.required_rank { deny(403, TRUST_TOO_LOW) } else { allow };
    Decision {
        required_side_effect: tool_effect,
        admin_trust: trust_name(best.admin_rank).into(),
        consented_trust: trust_name(consented).into(),
        effective_trust: trust_name(effective).into(),
        ..judged(d)
    }
}

fn find_session<'a>(document: &'a PolicyDocument, identity: &Identity) -> Option<&'a SessionPolicy> {
    document.sessions.iter().find(|s| (identity.session.is_empty() || s.name == identity.session) && subject_matches(*s, identity))
}

struct Best<'a> {
    attributed: Option<&'a GrantPolicy>,
    effect_allowed: bool,
    admin_rank: u8,
    required_rank: u8,
}

/// bestGrantFor (§5.6). `Err` carries the grant whose deny rule names the tool.
fn best_grant_for<'a>(grants: &[&'a GrantPolicy], tool: &str, tool_trust: &str, effect: &str) -> Result<Best<'a>, &'a GrantPolicy> {
    let mut best = Best { attributed: None, effect_allowed: false, admin_rank: 0, required_rank: trust_rank(tool_trust) };
    for grant in grants.iter().copied().filter(|g| !g.disabled) {
        let effect_allowed = !effect.is_empty() && grant.allowed_side_effects.iter().any(|e| side_effect(e) == effect);
        let max_rank = trust_rank(&grant.max_trust);
        let covers = if grant.tool_rules.is_empty() {
            true
        } else {
            let mut covers = false;
            for rule in grant.tool_rules.iter().filter(|r| r.name == tool) {
                if norm(&rule.decision) == "deny" {
                    return Err(grant);
                }
                covers = true;
                if effect_allowed && trust_rank(&rule.required_trust) > best.required_rank {
                    best.required_rank = trust_rank(&rule.required_trust);
                    best.attributed = Some(grant);
                }
            }
            covers
        };
        if !covers {
            continue;
        }
        best.attributed.get_or_insert(grant);
        if effect_allowed {
            best.effect_allowed = true;
            if max_rank > best.admin_rank {
                best.admin_rank = max_rank;
                best.attributed = Some(grant);
            }
        }
    }
    Ok(best)
}
