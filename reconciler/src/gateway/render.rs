//! The operator's policy rendering (DOMAIN.md §4.6): an MCPServer after in-memory defaulting,
//! plus every grant and session that targets it, -> a policy document (`revision::stamp` gives it
//! its revision).
//!
//! Go appends grants and sessions in informer-cache order, which is not deterministic (§10.4);
//! mcp-gitops renders them sorted by namespace and name, the order a LIST returns.

use super::document::*;
use crate::model::Object;
use crate::model::spec::{GrantSpec, ServerSpec, SessionSpec, target_namespace};

/// What the renderer needs of a server: its identity and spec.
pub struct ServerInput<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub spec: &'a ServerSpec,
}

/// Renders the policy of one server from the grants and sessions that target it (see
/// `targets`), without its revision; `None` when the gateway is disabled (the operator then deletes
/// `<server>-gateway-policy`).
pub fn render(server: &ServerInput, targeting: &[&Object], cluster: &str) -> Option<PolicyDocument> {
    let spec = server.spec;
    if !spec.gateway_enabled() {
        return None;
    }
    let team = spec.team_id.trim();
    let mut doc = PolicyDocument {
        server: ServerInfo { name: server.name.into(), namespace: server.namespace.into(), team_id: team.into(), cluster: cluster.into() },
        auth: Some(auth(spec)),
        policy: Some(policy(spec)),
        session: Some(session_config(spec)),
        tools: spec
            .tools
            .iter()
            .map(|t| ToolPolicy {
                name: t.name.clone(),
                description: t.description.clone(),
                required_trust: or(&t.required_trust, "low"),
                side_effect: t.side_effect.clone(),
                risk_level: t.risk_level.clone(),
                labels: t.labels.clone(),
            })
            .collect(),
        ..Default::default()
    };
    let mut targeting = targeting.to_vec();
    targeting.sort_by(|a, b| (&a.id.namespace, &a.id.name).cmp(&(&b.id.namespace, &b.id.name)));
    for object in targeting {
        if let Some(g) = object.grant() {
            doc.grants.push(grant(&object.id.name, &object.id.namespace, g, team));
        } else if let Some(s) = object.session() {
            doc.sessions.push(session(&object.id.name, &object.id.namespace, s, team));
        }
    }
    Some(doc)
}

/// The server (namespace, name) a grant or session targets (DOMAIN.md §4.6); `None` for other kinds.
pub fn targets(object: &Object) -> Option<(&str, &str)> {
    let server_ref = match (object.grant(), object.session()) {
        (Some(g), _) => &g.server_ref,
        (_, Some(s)) => &s.server_ref,
        _ => return None,
    };
    Some((target_namespace(server_ref, &object.id.namespace), server_ref.name.as_str()))
}

fn or(value: &str, default: &str) -> String {
    if value.is_empty() { default.to_string() } else { value.to_string() }
}

/// Webhook/operator defaulting of `spec.auth` (DOMAIN.md §1.3): created when the gateway is on.
fn auth(spec: &ServerSpec) -> AuthConfig {
    let a = spec.auth.clone().unwrap_or_default();
    AuthConfig {
        mode: or(&a.mode, "header"),
        human_id_header: or(&a.human_id_header, "X-MCP-Human-ID"),
        agent_id_header: or(&a.agent_id_header, "X-MCP-Agent-ID"),
        team_id_header: or(&a.team_id_header, "X-MCP-Team-ID"),
        session_id_header: or(&a.session_id_header, "X-MCP-Agent-Session"),
        token_header: or(&a.token_header, "Authorization"),
        issuer_url: a.issuer_url,
        audience: a.audience,
        trust_domain: a.trust_domain,
    }
}

fn policy(spec: &ServerSpec) -> PolicyConfig {
    let p = spec.policy.clone().unwrap_or_default();
    PolicyConfig {
        mode: or(&p.mode, "allow-list"),
        default_decision: or(&p.default_decision, "deny"),
        enforce_on: or(&p.enforce_on, "call_tool"),
        policy_version: or(&p.policy_version, "v1"),
    }
}

fn session_config(spec: &ServerSpec) -> SessionConfig {
    let s = spec.session.clone().unwrap_or_default();
    SessionConfig {
        required: s.required,
        store: or(&s.store, "kubernetes"),
        header_name: or(&s.header_name, "X-MCP-Agent-Session"),
        max_lifetime: or(&s.max_lifetime, "24h"),
        idle_timeout: or(&s.idle_timeout, "1h"),
        upstream_token_header: or(&s.upstream_token_header, "Authorization"),
    }
}

fn grant(name: &str, namespace: &str, g: &GrantSpec, server_team: &str) -> GrantPolicy {
    GrantPolicy {
        name: name.into(),
        namespace: namespace.into(),
        human_id: g.subject.human_id.clone(),
        agent_id: g.subject.agent_id.clone(),
        team_id: or(&g.subject.team_id, server_team),
        max_trust: or(&g.max_trust, "low"),
        allowed_side_effects: g.allowed_side_effects.clone(),
        policy_version: g.policy_version.clone(),
        disabled: g.disabled,
        tool_rules: g
            .tool_rules
            .iter()
            .map(|r| ToolRulePolicy {
                name: r.name.clone(),
                decision: or(&r.decision, "allow"),
                required_trust: or(&r.required_trust, "low"),
            })
            .collect(),
    }
}

fn session(name: &str, namespace: &str, s: &SessionSpec, server_team: &str) -> SessionPolicy {
    SessionPolicy {
        name: name.into(),
        namespace: namespace.into(),
        human_id: s.subject.human_id.clone(),
        agent_id: s.subject.agent_id.clone(),
        team_id: or(&s.subject.team_id, server_team),
        consented_trust: or(&s.consented_trust, "low"),
        revoked: s.revoked,
        expires_at: utc_seconds(&s.expires_at),
        policy_version: s.policy_version.clone(),
        upstream_token_ref: s.upstream_token_secret_ref.as_ref().map(|r| format!("{}/{}", r.name, r.key)).unwrap_or_default(),
    }
}

/// metav1.Time renders as UTC RFC 3339 with whole seconds.
fn utc_seconds(value: &str) -> String {
    match value.parse::<jiff::Timestamp>() {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_rendered_in_utc_seconds() {
        assert_eq!(utc_seconds("2030-01-01T02:00:00.75+02:00"), "2030-01-01T00:00:00Z");
        assert_eq!(utc_seconds(""), "");
    }
}
