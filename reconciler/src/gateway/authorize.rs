//! `policy.Authorize` (DOMAIN.md §5.4-5.8) to the letter: one tool call, one decision with the
//! gateway's reason code, HTTP status, trust triple and the grant and session it matched.

use super::document::{GrantPolicy, PolicyDocument, SessionPolicy, Subjected, ToolPolicy};
use jiff::Timestamp;
use serde::Serialize;

/// Who is calling: the identity headers the gateway resolved, and the session header.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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

pub fn authorize(document: &PolicyDocument, identity: &Identity, method: &str, tool: &str, now: Timestamp) -> Decision {
    let pv = document.policy.as_ref().map(|p| p.policy_version.clone()).unwrap_or_default();
    let mut d = Decision {
        allowed: true,
        status: 200,
        reason: ALLOWED,
        policy_version: pv.clone(),
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
    };
    if !is_tool_call(method) {
        return d;
    }
    let (tool_trust, tool_effect, risk) = tool_metadata(document, tool);
    d.risk_level = risk;
    let policy = document.policy.clone().unwrap_or_default();
    if norm(&policy.mode) == "observe" {
        return d;
    }
    let deny = |d: &mut Decision, status: u16, reason: &'static str| {
        d.allowed = false;
        d.status = status;
        d.reason = reason;
    };
    let default_allows = norm(&policy.default_decision) == "allow";
    let by_default = |d: &mut Decision, reason: &'static str| {
        d.allowed = default_allows;
        d.status = if default_allows { 200 } else { 403 };
        d.reason = reason;
    };
    if identity.human.is_empty() && identity.agent.is_empty() && identity.team.is_empty() {
        deny(&mut d, 401, MISSING_IDENTITY);
        return d;
    }
    let required = document.session.as_ref().is_some_and(|s| s.required);
    if required && identity.session.is_empty() {
        deny(&mut d, 401, MISSING_SESSION);
        return d;
    }

    let found = find_session(document, identity);
    let mut session: Option<&SessionPolicy> = None;
    if required {
        let Some(s) = found else {
            deny(&mut d, 401, SESSION_NOT_FOUND);
            return d;
        };
        let failure = if s.revoked {
            Some(SESSION_REVOKED)
        } else if session_expired(s, now) {
            Some(SESSION_EXPIRED)
        } else {
            None
        };
        if let Some(reason) = failure {
            deny(&mut d, 401, reason);
            d.matched_session = s.name.clone();
            d.matched_session_namespace = s.namespace.clone();
            d.policy_version = if s.policy_version.is_empty() { pv } else { s.policy_version.clone() };
            return d;
        }
        session = Some(s);
    } else if !identity.session.is_empty() {
        session = found.filter(|s| !s.revoked && !session_expired(s, now));
    }
    if let Some(s) = session {
        d.matched_session = s.name.clone();
        d.matched_session_namespace = s.namespace.clone();
    }

    let mut matching: Vec<&GrantPolicy> = document.grants.iter().filter(|g| subject_matches(*g, identity)).collect();
    if matching.is_empty() {
        by_default(&mut d, NO_MATCHING_GRANT);
        return d;
    }
    matching.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));

    let best = match best_grant_for(&matching, tool, &tool_trust, &tool_effect) {
        Ok(best) => best,
        Err(denying) => {
            deny(&mut d, 403, TOOL_DENIED);
            attribute(&mut d, denying, &pv);
            return d;
        }
    };
    let Some(attributed) = best.attributed else {
        by_default(&mut d, TOOL_NOT_GRANTED);
        return d;
    };
    attribute(&mut d, attributed, &pv);
    d.required_trust = trust_name(best.required_rank).into();
    d.required_side_effect = tool_effect.clone();
    if tool_effect.is_empty() {
        deny(&mut d, 403, TOOL_SIDE_EFFECT_UNKNOWN);
        return d;
    }
    if !best.effect_allowed {
        deny(&mut d, 403, SIDE_EFFECT_NOT_ALLOWED);
        return d;
    }
    if best.admin_rank == 0 {
        by_default(&mut d, GRANT_WITHOUT_TRUST);
        return d;
    }
    let consented = match session {
        Some(s) if !s.consented_trust.is_empty() => trust_rank(&s.consented_trust),
        _ => best.admin_rank,
    };
    let effective = best.admin_rank.min(consented);
    d.admin_trust = trust_name(best.admin_rank).into();
    d.consented_trust = trust_name(consented).into();
    d.effective_trust = trust_name(effective).into();
    if effective < best.required_rank {
        deny(&mut d, 403, TRUST_TOO_LOW);
    }
    d
}

fn attribute(d: &mut Decision, grant: &GrantPolicy, pv: &str) {
    d.matched_grant = grant.name.clone();
    d.matched_grant_namespace = grant.namespace.clone();
    d.policy_version = if grant.policy_version.is_empty() { pv.to_string() } else { grant.policy_version.clone() };
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
