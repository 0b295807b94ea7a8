//! The gateway policy document (`policy.json` in `<server>-gateway-policy`), field for field and
//! in the Go struct order of DOMAIN.md §4.7, with the same omit-when-empty rules, so that its
//! canonical JSON (and so its revision) matches the operator's byte for byte.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: &str = "v1";

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyDocument {
    pub schema_version: String,
    pub revision: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub generated_at: String,
    pub server: ServerInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolPolicy>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<GrantPolicy>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<SessionPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerInfo {
    pub name: String,
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub team_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mode: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub human_id_header: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub agent_id_header: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub team_id_header: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub session_id_header: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token_header: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub issuer_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub audience: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub trust_domain: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mode: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub default_decision: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub enforce_on: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub policy_version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionConfig {
    #[serde(skip_serializing_if = "is_false")]
    pub required: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub store: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub header_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub max_lifetime: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub idle_timeout: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub upstream_token_header: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolPolicy {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub required_trust: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub side_effect: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub risk_level: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GrantPolicy {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub human_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub agent_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub team_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub max_trust: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_side_effects: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub policy_version: String,
    #[serde(skip_serializing_if = "is_false")]
    pub disabled: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_rules: Vec<ToolRulePolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolRulePolicy {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub decision: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub required_trust: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionPolicy {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub human_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub agent_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub team_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub consented_trust: String,
    #[serde(skip_serializing_if = "is_false")]
    pub revoked: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub expires_at: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub policy_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub upstream_token_ref: String,
}

/// The subject fields shared by grants and sessions.
pub trait Subjected {
    fn subject(&self) -> (&str, &str, &str);
}

impl Subjected for GrantPolicy {
    fn subject(&self) -> (&str, &str, &str) {
        (&self.human_id, &self.agent_id, &self.team_id)
    }
}

impl Subjected for SessionPolicy {
    fn subject(&self) -> (&str, &str, &str) {
        (&self.human_id, &self.agent_id, &self.team_id)
    }
}
