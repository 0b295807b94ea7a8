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

pub fn check(document: &PolicyDocument) -> Result<(), String> {
    if document.schema_version != super::document::SCHEMA_VERSION {
        return Err(format!("unsupported schema version {:?}", document.schema_version));
    }
    if document.revision.trim().is_empty() {
        return Err("revision is required".into());
    }
    let computed = revision(document);
    if document.revision != computed {
        return Err(format!("revision mismatch: document says {}, contents hash to {computed}", document.revision));
    }
    if document.server.name.trim().is_empty() {
        return Err("server.name is required".into());
    }
    if let Some(auth) = &document.auth {
        if !one_of(&auth.mode, &["", "none", "header", "oauth", "mtls"]) {
            return Err(format!("invalid auth mode {:?}", auth.mode));
        }
        match norm(&auth.mode).as_str() {
            "oauth" if auth.issuer_url.trim().is_empty() => return Err("auth.issuer_url is required for oauth mode".into()),
            "mtls" if auth.trust_domain.trim().is_empty() => return Err("auth.trust_domain is required for mtls mode".into()),
            _ => {}
        }
    }
    if let Some(policy) = &document.policy {
        if !one_of(&policy.mode, &["", "allow-list", "observe"]) {
            return Err(format!("invalid policy mode {:?}", policy.mode));
        }
        if !one_of(&policy.default_decision, &["", "allow", "deny"]) {
            return Err(format!("invalid default decision {:?}", policy.default_decision));
        }
    }
    let mut names = HashSet::new();
    for (i, tool) in document.tools.iter().enumerate() {
        if tool.name.trim().is_empty() {
            return Err(format!("tools[{i}].name is required"));
        }
        if !names.insert(tool.name.as_str()) {
            return Err(format!("duplicate tool {:?}", tool.name));
        }
        if !one_of(&tool.required_trust, TRUSTS) {
            return Err(format!("tool {:?}: invalid required_trust {:?}", tool.name, tool.required_trust));
        }
        if !one_of(&tool.side_effect, SIDE_EFFECTS) {
            return Err(format!("tool {:?}: invalid side_effect {:?}", tool.name, tool.side_effect));
        }
    }
    let mut names = HashSet::new();
    for (i, grant) in document.grants.iter().enumerate() {
        if grant.name.trim().is_empty() {
            return Err(format!("grants[{i}].name is required"));
        }
        if !names.insert(grant.name.as_str()) {
            return Err(format!("duplicate grant name {:?}", grant.name));
        }
        if !one_of(&grant.max_trust, TRUSTS) {
            return Err(format!("grant {:?}: invalid max_trust {:?}", grant.name, grant.max_trust));
        }
        if let Some(effect) = grant.allowed_side_effects.iter().find(|e| norm(e).is_empty() || !one_of(e, SIDE_EFFECTS)) {
            return Err(format!("grant {:?}: invalid allowed side effect {effect:?}", grant.name));
        }
        let mut rules = HashSet::new();
        for (j, rule) in grant.tool_rules.iter().enumerate() {
            if rule.name.trim().is_empty() {
                return Err(format!("grant {:?}: tool_rules[{j}].name is required", grant.name));
            }
            if !rules.insert(rule.name.as_str()) {
                return Err(format!("grant {:?}: duplicate tool rule {:?}", grant.name, rule.name));
            }
            if !one_of(&rule.decision, &["", "allow", "deny"]) {
                return Err(format!("grant {:?}: rule {:?}: invalid decision {:?}", grant.name, rule.name, rule.decision));
            }
            if !one_of(&rule.required_trust, TRUSTS) {
                return Err(format!("grant {:?}: rule {:?}: invalid required_trust {:?}", grant.name, rule.name, rule.required_trust));
            }
        }
    }
    let mut names = HashSet::new();
    for (i, session) in document.sessions.iter().enumerate() {
        if session.name.trim().is_empty() {
            return Err(format!("sessions[{i}].name is required"));
        }
        if !names.insert(session.name.as_str()) {
            return Err(format!("duplicate session name {:?}", session.name));
        }
        if !one_of(&session.consented_trust, TRUSTS) {
            return Err(format!("session {:?}: invalid consented_trust {:?}", session.name, session.consented_trust));
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
        assert!(check(&doc).unwrap_err().starts_with("revision mismatch"));
    }

    #[test]
    fn duplicate_grant_names_fail_whatever_the_namespace() {
        let mut doc = crate::gateway::revision::tests::vector_v2();
        doc.grants.push(GrantPolicy { name: "ops".into(), namespace: "other".into(), ..Default::default() });
        stamp(&mut doc);
        assert_eq!(check(&doc), Err("duplicate grant name \"ops\"".into()));
    }

    #[test]
    fn unsupported_schema_version_comes_first() {
        let doc = PolicyDocument { schema_version: "v2".into(), ..Default::default() };
        assert_eq!(check(&doc), Err("unsupported schema version \"v2\"".into()));
    }
}
