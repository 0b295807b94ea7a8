//! `policy.Validate` (DOMAIN.md §2.5, rules P1-P12): the check the operator runs before writing a
//! policy document and the gateway runs before activating one. Returns the first failing rule.

use super::document::PolicyDocument;
use super::revision::revision;
use std::collections::HashSet;

fn norm(value: &str) -> String {
    value.trim().to_lowercase()
}

fn one_of(value: &str, allowed: &[&str]) -> bool {
    allowed.contains(&norm(value).as_str())
}

const TRUSTS: &[&str] = &["", "low", "medium", "high"];
const SIDE_EFFECTS: &[&str] = &["", "read", "write", "destructive"];

/// The blanks the gateway fills after a document passed `check` (DOMAIN.md §5.1), with its
/// environment defaults: auth mode header, allow-list, deny. The policy version is left as the
/// document says: the evaluator reports the document's own `policy_version` or nothing (§5.4).
pub fn with_gateway_defaults(mut document: PolicyDocument) -> PolicyDocument {
    let fill = |value: &mut String, default: &str| {
        if value.is_empty() {
            *value = default.to_string();
        }
    };
    let auth = document.auth.get_or_insert_with(Default::default);
    fill(&mut auth.mode, "header");
    let policy = document.policy.get_or_insert_with(Default::default);
    fill(&mut policy.mode, "allow-list");
    fill(&mut policy.default_decision, "deny");
    document
}

/// Why the gateway refuses a policy document: the first rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unsupported schema version {0:?}")]
    UnsupportedSchemaVersion(String),
    #[error("revision is required")]
    RevisionRequired,
    #[error("revision mismatch: document says {stated}, contents hash to {computed}")]
    RevisionMismatch { stated: String, computed: String },
    #[error("server.name is required")]
    ServerNameRequired,
    #[error("invalid auth mode {0:?}")]
    InvalidAuthMode(String),
    #[error("auth.issuer_url is required for oauth mode")]
    IssuerUrlRequired,
    #[error("auth.trust_domain is required for mtls mode")]
    TrustDomainRequired,
    #[error("invalid policy mode {0:?}")]
    InvalidPolicyMode(String),
    #[error("invalid default decision {0:?}")]
    InvalidDefaultDecision(String),
    /// `tools[index]` has no name.
    #[error("tools[{index}].name is required")]
    ToolNameRequired { index: usize },
    #[error("duplicate tool {0:?}")]
    DuplicateTool(String),
    #[error("tool {tool:?}: invalid required_trust {value:?}")]
    ToolRequiredTrust { tool: String, value: String },
    #[error("tool {tool:?}: invalid side_effect {value:?}")]
    ToolSideEffect { tool: String, value: String },
    /// `grants[index]` has no name.
    #[error("grants[{index}].name is required")]
    GrantNameRequired { index: usize },
    #[error("duplicate grant name {0:?}")]
    DuplicateGrant(String),
    #[error("grant {grant:?}: invalid max_trust {value:?}")]
    GrantMaxTrust { grant: String, value: String },
    #[error("grant {grant:?}: invalid allowed side effect {value:?}")]
    GrantSideEffect { grant: String, value: String },
    /// `tool_rules[index]` of a grant has no name.
    #[error("grant {grant:?}: tool_rules[{index}].name is required")]
    RuleNameRequired { grant: String, index: usize },
    #[error("grant {grant:?}: duplicate tool rule {rule:?}")]
    DuplicateRule { grant: String, rule: String },
    #[error("grant {grant:?}: rule {rule:?}: invalid decision {value:?}")]
    RuleDecision { grant: String, rule: String, value: String },
    #[error("grant {grant:?}: rule {rule:?}: invalid required_trust {value:?}")]
    RuleRequiredTrust { grant: String, rule: String, value: String },
    /// `sessions[index]` has no name.
    #[error("sessions[{index}].name is required")]
    SessionNameRequired { index: usize },
    #[error("duplicate session name {0:?}")]
    DuplicateSession(String),
    #[error("session {session:?}: invalid consented_trust {value:?}")]
    SessionConsentedTrust { session: String, value: String },
}

pub fn check(document: &PolicyDocument) -> Result<(), Refusal> {
    if document.schema_version != super::document::SCHEMA_VERSION {
        return Err(Refusal::UnsupportedSchemaVersion(document.schema_version.clone()));
    }
    if document.revision.trim().is_empty() {
        return Err(Refusal::RevisionRequired);
    }
    let computed = revision(document);
    if document.revision != computed {
        return Err(Refusal::RevisionMismatch { stated: document.revision.clone(), computed });
    }
    if document.server.name.trim().is_empty() {
        return Err(Refusal::ServerNameRequired);
    }
    if let Some(auth) = &document.auth {
        if !one_of(&auth.mode, &["", "none", "header", "oauth", "mtls"]) {
            return Err(Refusal::InvalidAuthMode(auth.mode.clone()));
        }
        match norm(&auth.mode).as_str() {
            "oauth" if auth.issuer_url.trim().is_empty() => return Err(Refusal::IssuerUrlRequired),
            "mtls" if auth.trust_domain.trim().is_empty() => return Err(Refusal::TrustDomainRequired),
            _ => {}
        }
    }
    if let Some(policy) = &document.policy {
        if !one_of(&policy.mode, &["", "allow-list", "observe"]) {
            return Err(Refusal::InvalidPolicyMode(policy.mode.clone()));
        }
        if !one_of(&policy.default_decision, &["", "allow", "deny"]) {
            return Err(Refusal::InvalidDefaultDecision(policy.default_decision.clone()));
        }
    }
    let mut names = HashSet::new();
    for (i, tool) in document.tools.iter().enumerate() {
        if tool.name.trim().is_empty() {
            return Err(Refusal::ToolNameRequired { index: i });
        }
        if !names.insert(tool.name.as_str()) {
            return Err(Refusal::DuplicateTool(tool.name.clone()));
        }
        if !one_of(&tool.required_trust, TRUSTS) {
            return Err(Refusal::ToolRequiredTrust { tool: tool.name.clone(), value: tool.required_trust.clone() });
        }
        if !one_of(&tool.side_effect, SIDE_EFFECTS) {
            return Err(Refusal::ToolSideEffect { tool: tool.name.clone(), value: tool.side_effect.clone() });
        }
    }
    let mut names = HashSet::new();
    for (i, grant) in document.grants.iter().enumerate() {
        if grant.name.trim().is_empty() {
            return Err(Refusal::GrantNameRequired { index: i });
        }
        if !names.insert(grant.name.as_str()) {
            return Err(Refusal::DuplicateGrant(grant.name.clone()));
        }
        if !one_of(&grant.max_trust, TRUSTS) {
            return Err(Refusal::GrantMaxTrust { grant: grant.name.clone(), value: grant.max_trust.clone() });
        }
        if let Some(effect) = grant.allowed_side_effects.iter().find(|e| norm(e).is_empty() || !one_of(e, SIDE_EFFECTS)) {
            return Err(Refusal::GrantSideEffect { grant: grant.name.clone(), value: effect.clone() });
        }
        let mut rules = HashSet::new();
        for (j, rule) in grant.tool_rules.iter().enumerate() {
            if rule.name.trim().is_empty() {
                return Err(Refusal::RuleNameRequired { grant: grant.name.clone(), index: j });
            }
            if !rules.insert(rule.name.as_str()) {
                return Err(Refusal::DuplicateRule { grant: grant.name.clone(), rule: rule.name.clone() });
            }
            if !one_of(&rule.decision, &["", "allow", "deny"]) {
                return Err(Refusal::RuleDecision { grant: grant.name.clone(), rule: rule.name.clone(), value: rule.decision.clone() });
            }
            if !one_of(&rule.required_trust, TRUSTS) {
                return Err(Refusal::RuleRequiredTrust {
                    grant: grant.name.clone(),
                    rule: rule.name.clone(),
                    value: rule.required_trust.clone(),
                });
            }
        }
    }
    let mut names = HashSet::new();
    for (i, session) in document.sessions.iter().enumerate() {
        if session.name.trim().is_empty() {
            return Err(Refusal::SessionNameRequired { index: i });
        }
        if !names.insert(session.name.as_str()) {
            return Err(Refusal::DuplicateSession(session.name.clone()));
        }
        if !one_of(&session.consented_trust, TRUSTS) {
            return Err(Refusal::SessionConsentedTrust { session: session.name.clone(), value: session.consented_trust.clone() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::document::GrantPolicy;
    use crate::gateway::revision::stamp;

    #[test]
    fn a_stamped_document_passes_and_tampering_is_caught() {
        let mut doc = crate::gateway::revision::tests::vector_v2();
        stamp(&mut doc);
        assert_eq!(check(&doc), Ok(()));
        doc.grants[0].max_trust = "medium".into();
        let refusal = check(&doc).unwrap_err();
        assert!(matches!(refusal, Refusal::RevisionMismatch { .. }));
        assert!(refusal.to_string().starts_with("revision mismatch: document says "), "{refusal}");
    }

    #[test]
    fn duplicate_grant_names_fail_whatever_the_namespace() {
        let mut doc = crate::gateway::revision::tests::vector_v2();
        doc.grants.push(GrantPolicy { name: "ops".into(), namespace: "other".into(), ..Default::default() });
        stamp(&mut doc);
        assert_eq!(check(&doc), Err(Refusal::DuplicateGrant("ops".into())));
        assert_eq!(check(&doc).unwrap_err().to_string(), "duplicate grant name \"ops\"");
    }

    #[test]
    fn unsupported_schema_version_comes_first() {
        let doc = PolicyDocument { schema_version: "v2".into(), ..Default::default() };
        assert_eq!(check(&doc), Err(Refusal::UnsupportedSchemaVersion("v2".into())));
        assert_eq!(check(&doc).unwrap_err().to_string(), "unsupported schema version \"v2\"");
    }
}
