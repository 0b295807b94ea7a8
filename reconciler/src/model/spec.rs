//! Typed specs of the three kinds: only the fields mcp-gitops reasons about (DOMAIN.md §1.3,
//! §1.5, §1.6). The full document stays in `Object::body`; these views are read-only.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerSpec {
    #[serde(rename = "teamID")]
    pub team_id: String,
    pub tools: Vec<Tool>,
    pub auth: Option<Auth>,
    pub policy: Option<Policy>,
    pub session: Option<SessionConfig>,
    pub gateway: Option<Gateway>,
}

impl ServerSpec {
    pub fn gateway_enabled(&self) -> bool {
        self.gateway.as_ref().is_some_and(|g| g.enabled)
    }

    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.name == name)
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub required_trust: String,
    pub side_effect: String,
    pub risk_level: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Auth {
    pub mode: String,
    #[serde(rename = "humanIDHeader")]
    pub human_id_header: String,
    #[serde(rename = "agentIDHeader")]
    pub agent_id_header: String,
    #[serde(rename = "teamIDHeader")]
    pub team_id_header: String,
    #[serde(rename = "sessionIDHeader")]
    pub session_id_header: String,
    pub token_header: String,
    #[serde(rename = "issuerURL")]
    pub issuer_url: String,
    pub audience: String,
    pub trust_domain: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Policy {
    pub mode: String,
    pub default_decision: String,
    pub enforce_on: String,
    pub policy_version: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionConfig {
    pub required: bool,
    pub store: String,
    pub header_name: String,
    pub max_lifetime: String,
    pub idle_timeout: String,
    pub upstream_token_header: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Gateway {
    pub enabled: bool,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerRef {
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(default)]
pub struct Subject {
    #[serde(rename = "humanID")]
    pub human_id: String,
    #[serde(rename = "agentID")]
    pub agent_id: String,
    #[serde(rename = "teamID")]
    pub team_id: String,
}

impl Subject {
    pub fn is_empty(&self) -> bool {
        self.human_id.is_empty() && self.agent_id.is_empty() && self.team_id.is_empty()
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct GrantSpec {
    pub server_ref: ServerRef,
    pub subject: Subject,
    pub max_trust: String,
    pub allowed_side_effects: Vec<String>,
    pub policy_version: String,
    pub disabled: bool,
    pub tool_rules: Vec<ToolRule>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ToolRule {
    pub name: String,
    pub decision: String,
    pub required_trust: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionSpec {
    pub server_ref: ServerRef,
    pub subject: Subject,
    pub consented_trust: String,
    pub expires_at: String,
    pub revoked: bool,
    pub upstream_token_secret_ref: Option<SecretRef>,
    pub policy_version: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SecretRef {
    pub name: String,
    pub key: String,
}

/// The namespace a grant or session targets: `serverRef.namespace` trimmed, or its own (§4.6).
pub fn target_namespace<'a>(server_ref: &'a ServerRef, own_namespace: &'a str) -> &'a str {
    let ns = server_ref.namespace.trim();
    if ns.is_empty() { own_namespace } else { ns }
}
