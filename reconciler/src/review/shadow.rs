//! Shadowed grants: those whose removal changes no decision of their server's access matrix
//! (every identity the policy names, and a stranger, x every tool: each call stays allowed or
//! denied, at the same effective trust). The decisions are the gateway's own (`gateway::authorize`);
//! a server's matrix with all its grants is decided once, whatever the number of candidates.

use crate::gateway::authorize::subject_matches;
use crate::gateway::{Identity, PolicyDocument, authorize, identities, tools};
use jiff::Timestamp;
use std::collections::HashMap;

/// For each of `candidates` (grants `NAMESPACE/NAME` of `document`), whether removing it alone
/// changes no decision at `at`.
pub fn shadowed(document: &PolicyDocument, candidates: &[&str], at: Timestamp) -> Vec<bool> {
    let stranger = Identity { human: "\u{0}anyone".into(), ..Identity::default() };
    let identities: Vec<Identity> = identities(document).into_iter().chain([stranger]).collect();
    let tools = tools(document);
    let decide = |document: &PolicyDocument, identity: &Identity, tool: &str| {
        let decision = authorize(document, identity, "tools/call", tool, at);
        (decision.allowed, decision.effective_trust)
    };
    let mut with: HashMap<(usize, &str), (bool, String)> = HashMap::new();
    let named = |grant: &str, g: &crate::gateway::document::GrantPolicy| format!("{}/{}", g.namespace, g.name) == grant;
    candidates
        .iter()
        .map(|grant| {
            let mut without = document.clone();
            without.grants.retain(|g| !named(grant, g));
            // The gateway weighs only the grants whose subject matches the caller: the decisions
            // of any other identity are the same with or without this grant.
            let touched = identities
                .iter()
                .enumerate()
                .filter(|(_, identity)| document.grants.iter().any(|g| named(grant, g) && subject_matches(g, identity)));
            touched.collect::<Vec<_>>().into_iter().all(|(i, identity)| {
                tools.iter().all(|tool| {
                    let before = with.entry((i, tool.as_str())).or_insert_with(|| decide(document, identity, tool));
                    *before == decide(&without, identity, tool)
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::document::*;
    use proptest::prelude::*;

    /// The matrix compared whole, cell by cell, as the review did grant by grant: the reference.
    fn shadowed_whole(document: &PolicyDocument, grant: &str, at: Timestamp) -> bool {
        let mut without = document.clone();
        without.grants.retain(|g| format!("{}/{}", g.namespace, g.name) != grant);
        let stranger = Identity { human: "\u{0}anyone".into(), ..Identity::default() };
        let tools = tools(document);
        identities(document).into_iter().chain([stranger]).all(|identity| {
            tools.iter().all(|tool| {
                let (with, without) =
                    (authorize(document, &identity, "tools/call", tool, at), authorize(&without, &identity, "tools/call", tool, at));
                with.allowed == without.allowed && with.effective_trust == without.effective_trust
            })
        })
    }

    fn pick(options: &'static [&'static str]) -> impl Strategy<Value = String> {
        proptest::sample::select(options).prop_map(str::to_string)
    }

    fn grant() -> impl Strategy<Value = GrantPolicy> {
        let subject = (pick(&["", "", "ann", "bob"]), pick(&["", "a1", "a2"]), pick(&["", "", "t1"]));
        let rules =
            proptest::collection::vec((pick(&["read_t", "write_t", "drop_t"]), pick(&["allow", "deny"]), pick(&["", "low", "high"])), 0..3);
        let effects = proptest::collection::vec(pick(&["read", "write", "destructive"]), 0..3);
        (0..6u8, subject, pick(&["", "low", "medium", "high"]), effects, rules, proptest::bool::weighted(0.1)).prop_map(
            |(n, (human_id, agent_id, team_id), max_trust, allowed_side_effects, rules, disabled)| GrantPolicy {
                name: format!("g{n}"),
                namespace: "ns".into(),
                human_id,
                agent_id,
                team_id,
                max_trust,
                allowed_side_effects,
                disabled,
                tool_rules: rules
                    .into_iter()
                    .map(|(name, decision, required_trust)| ToolRulePolicy { name, decision, required_trust })
                    .collect(),
                ..Default::default()
            },
        )
    }

    fn session() -> impl Strategy<Value = SessionPolicy> {
        (0..3u8, pick(&["", "ann", "bob"]), pick(&["", "a1", "a2"]), pick(&["", "low", "medium"]), proptest::bool::weighted(0.2)).prop_map(
            |(n, human_id, agent_id, consented_trust, revoked)| SessionPolicy {
                name: format!("s{n}"),
                namespace: "ns".into(),
                human_id,
                agent_id,
                consented_trust,
                revoked,
                ..Default::default()
            },
        )
    }

    fn document() -> impl Strategy<Value = PolicyDocument> {
        let grants = proptest::collection::vec(grant(), 0..7);
        let sessions = proptest::collection::vec(session(), 0..3);
        (grants, sessions, pick(&["allow-list", "allow-list", "observe"]), pick(&["deny", "deny", "allow"]), proptest::bool::ANY).prop_map(
            |(grants, sessions, mode, default_decision, required)| PolicyDocument {
                server: ServerInfo { name: "s".into(), namespace: "ns".into(), team_id: "t1".into(), ..Default::default() },
                policy: Some(PolicyConfig { mode, default_decision, policy_version: "v1".into(), ..Default::default() }),
                session: Some(SessionConfig { required, ..Default::default() }),
                tools: vec![
                    ToolPolicy { name: "read_t".into(), required_trust: "low".into(), side_effect: "read".into(), ..Default::default() },
                    ToolPolicy {
                        name: "write_t".into(),
                        required_trust: "medium".into(),
                        side_effect: "write".into(),
                        ..Default::default()
                    },
                    ToolPolicy {
                        name: "drop_t".into(),
                        required_trust: "high".into(),
                        side_effect: "destructive".into(),
                        ..Default::default()
                    },
                ],
                grants,
                sessions,
                ..Default::default()
            },
        )
    }

    proptest! {
        #[test]
        fn once_per_server_gives_what_the_whole_matrix_per_grant_gives(document in document()) {
            let at: Timestamp = "2026-06-01T12:00:00Z".parse().unwrap();
            let names: Vec<String> = document.grants.iter().map(|g| format!("{}/{}", g.namespace, g.name)).collect();
            let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
            let whole: Vec<bool> = candidates.iter().map(|g| shadowed_whole(&document, g, at)).collect();
            prop_assert_eq!(shadowed(&document, &candidates, at), whole);
        }
    }
}
