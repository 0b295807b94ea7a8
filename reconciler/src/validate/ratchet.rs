//! The ratchet: with a base to compare with (`plan --base`, `validate --base`, the daemon's live
//! revision), a built-in policy judges what a change introduces. A violation of a built-in
//! policy that the base already has is a warning, a new one stays an error, so that a default
//! added or made stricter by an upgrade never blocks the next change (a revocation included).
//! Takes two validated states, changes only the severity and hint of the first one's findings;
//! the repository opts out with `policies: {ratchet: false}` (docs/policies.md, Upgrades and the
//! ratchet).
//!
//! A violation is the policy and the object it is on (`Kind/namespace/name`): an object the
//! change edits but that violated the same policy in the base keeps its warning, so that
//! narrowing a grant that was already in breach is not blocked either. Rendered lines, messages
//! and files may differ between the two.

use super::guardrails::built_in_policy;
use crate::model::{DesiredState, Severity};
use std::collections::HashSet;

/// Whether `desired` has findings the ratchet could turn into warnings: only then is a base
/// worth reading and validating.
pub fn needs_base(desired: &DesiredState) -> bool {
    desired.config.policies.ratchet() && desired.diagnostics.iter().any(|d| d.is_error() && built_in_policy(d).is_some())
}

/// Turns every error of `desired` that violates a built-in policy on an object that violates the
/// same policy in `base` into a warning that says so; `base_name` names the base for people
/// (`main`, the live revision). Returns how many it turned.
pub fn inherit(desired: &mut DesiredState, base: &DesiredState, base_name: &str) -> usize {
    if !desired.config.policies.ratchet() {
        return 0;
    }
    let inherited: HashSet<(&str, &str)> =
        base.diagnostics.iter().filter_map(|d| built_in_policy(d).map(|policy| (policy, d.object.as_str()))).collect();
    let mut turned = 0;
    for diagnostic in desired.diagnostics.iter_mut().filter(|d| d.is_error()) {
        let Some(policy) = built_in_policy(diagnostic) else { continue };
        if diagnostic.object.is_empty() || !inherited.contains(&(policy, diagnostic.object.as_str())) {
            continue;
        }
        diagnostic.severity = Severity::Warning;
        diagnostic.hint = format!(
            "{}; inherited: {base_name} already violates it, so it is a warning here and a new violation is an error \
             (ratchet, docs/policies.md#upgrades-and-the-ratchet)",
            diagnostic.hint
        );
        turned += 1;
    }
    turned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load;
    use crate::source::{Snapshot, SourceFile};

    const SERVER: &str =
        "servers:\n  - name: pay\n    namespace: t\n    tools: [{name: refund, sideEffect: destructive, requiredTrust: high}]\n";

    fn grant(name: &str) -> String {
        format!(
            "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata: {{name: {name}, namespace: t}}\nspec:\n  serverRef: {{name: pay}}\n  subject: {{humanID: ann, agentID: {name}}}\n  maxTrust: high\n  allowedSideEffects: [destructive]\n---\n"
        )
    }

    /// The repository of one server and `grants`, with `config` as mcp-gitops.yaml and, when
    /// given, `policy` as a GuardrailPolicy file.
    fn validated(config: &str, grants: &[&str], policy: Option<&str>) -> DesiredState {
        let file = |path: &str, text: String| SourceFile { path: path.into(), bytes: text.into_bytes() };
        let mut files = vec![
            file(".mcp/servers.yaml", SERVER.into()),
            file("grants.yaml", grants.iter().map(|g| grant(g)).collect()),
            file("mcp-gitops.yaml", config.into()),
        ];
        files.extend(policy.map(|text| file("policy.yaml", text.into())));
        let now = "2026-11-25T00:00:00Z".parse().unwrap();
        crate::validate::validate(load(Snapshot { files, ..Snapshot::default() }), now)
    }

    fn severities(state: &DesiredState) -> Vec<(String, Severity)> {
        state.diagnostics.iter().filter(|d| built_in_policy(d).is_some()).map(|d| (d.object.clone(), d.severity)).collect()
    }

    #[test]
    fn a_violation_the_base_has_is_a_warning_and_a_new_one_an_error() {
        let base = validated("", &["old"], None);
        let mut desired = validated("", &["old", "new"], None);
        assert!(needs_base(&desired));
        assert_eq!(inherit(&mut desired, &base, "main"), 1);
        assert_eq!(
            severities(&desired),
            [("MCPAccessGrant/t/old".to_string(), Severity::Warning), ("MCPAccessGrant/t/new".to_string(), Severity::Error)]
        );
        let inherited = desired.diagnostics.iter().find(|d| d.object == "MCPAccessGrant/t/old").unwrap();
        assert!(inherited.hint.starts_with("built-in policy destructive-grants-expire"), "{}", inherited.hint);
        assert!(inherited.hint.contains("inherited: main already violates it"), "{}", inherited.hint);
    }

    #[test]
    fn the_repository_can_opt_out() {
        let config = "policies: {ratchet: false}\n";
        let base = validated(config, &["old"], None);
        let mut desired = validated(config, &["old"], None);
        assert!(!needs_base(&desired));
        assert_eq!(inherit(&mut desired, &base, "main"), 0);
        assert_eq!(severities(&desired), [("MCPAccessGrant/t/old".to_string(), Severity::Error)]);
    }

    #[test]
    fn a_repository_policy_is_never_ratcheted() {
        let policy = "apiVersion: mcp-gitops.mcpruntime.org/v1alpha1\nkind: GuardrailPolicy\nmetadata: {name: destructive-grants-expire}\nspec:\n  matchKinds: [MCPAccessGrant]\n  severity: error\n  expression: 'false'\n  message: the repository says so\n";
        let base = validated("", &["old"], Some(policy));
        let mut desired = validated("", &["old"], Some(policy));
        assert!(!needs_base(&desired));
        assert_eq!(inherit(&mut desired, &base, "main"), 0);
        assert!(desired.has_errors());
    }
}
