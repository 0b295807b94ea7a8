//! DOMAIN.md §5.10: the behavioural vectors verified against the gateway's own evaluator, and
//! property tests of the decision function.

use super::authorize::*;
use super::document::*;
use jiff::Timestamp;
use proptest::prelude::*;

fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

fn tool(name: &str, trust: &str, effect: &str) -> ToolPolicy {
    ToolPolicy { name: name.into(), required_trust: trust.into(), side_effect: effect.into(), ..Default::default() }
}

/// Base: allow-list/deny/v1; tools read_t (low, read), write_t (medium, write), nose_t (low, none).
fn base() -> PolicyDocument {
    PolicyDocument {
        schema_version: "v1".into(),
        server: ServerInfo { name: "s".into(), namespace: "ns".into(), ..Default::default() },
        policy: Some(PolicyConfig {
            mode: "allow-list".into(),
            default_decision: "deny".into(),
            policy_version: "v1".into(),
            ..Default::default()
        }),
        tools: vec![tool("read_t", "low", "read"), tool("write_t", "medium", "write"), tool("nose_t", "low", "")],
        ..Default::default()
    }
}

fn grant(name: &str, human: &str, max: &str, effects: &[&str], rules: &[(&str, &str, &str)]) -> GrantPolicy {
    GrantPolicy {
        name: name.into(),
        namespace: "ns".into(),
        human_id: human.into(),
        max_trust: max.into(),
        allowed_side_effects: effects.iter().map(|e| e.to_string()).collect(),
        tool_rules: rules
            .iter()
            .map(|(n, d, t)| ToolRulePolicy { name: n.to_string(), decision: d.to_string(), required_trust: t.to_string() })
            .collect(),
        ..Default::default()
    }
}

fn human(h: &str) -> Identity {
    Identity { human: h.into(), ..Default::default() }
}

fn call(doc: &PolicyDocument, identity: &Identity, tool: &str) -> Decision {
    authorize(doc, identity, "tools/call", tool, now())
}

fn required_sessions(mut doc: PolicyDocument) -> PolicyDocument {
    doc.session = Some(SessionConfig { required: true, ..Default::default() });
    doc
}

#[test]
fn no_grants_denies_with_no_matching_grant() {
    let d = call(&base(), &human("h"), "read_t");
    assert_eq!((d.allowed, d.status, d.reason), (false, 403, NO_MATCHING_GRANT));
}

#[test]
fn default_allow_allows_without_grants() {
    let mut doc = base();
    if let Some(p) = doc.policy.as_mut() {
        p.default_decision = "allow".into();
    }
    let d = call(&doc, &human("h"), "read_t");
    assert_eq!((d.allowed, d.status, d.reason), (true, 200, NO_MATCHING_GRANT));
}

#[test]
fn a_session_id_alone_is_no_identity() {
    let d = call(&base(), &Identity { session: "s1".into(), ..Default::default() }, "read_t");
    assert_eq!((d.status, d.reason), (401, MISSING_IDENTITY));
}

#[test]
fn unknown_tools_and_tools_without_side_effect_are_unknown() {
    let mut doc = base();
    doc.grants = vec![grant("g", "h", "high", &["read"], &[])];
    assert_eq!(call(&doc, &human("h"), "ghost").reason, TOOL_SIDE_EFFECT_UNKNOWN);
    assert_eq!(call(&doc, &human("h"), "nose_t").reason, TOOL_SIDE_EFFECT_UNKNOWN);
    let d = call(&doc, &human("h"), "write_t");
    assert_eq!((d.status, d.reason), (403, SIDE_EFFECT_NOT_ALLOWED));
}

#[test]
fn any_deny_rule_wins() {
    let mut doc = base();
    doc.grants =
        vec![grant("a", "h", "high", &["read"], &[("read_t", "allow", "")]), grant("b", "h", "low", &["read"], &[("read_t", "deny", "")])];
    let d = call(&doc, &human("h"), "read_t");
    assert_eq!((d.status, d.reason, d.matched_grant.as_str()), (403, TOOL_DENIED, "b"));
    doc.grants[1].disabled = true;
    let d = call(&doc, &human("h"), "read_t");
    assert_eq!((d.allowed, d.admin_trust.as_str()), (true, "high"));
}

#[test]
fn a_disabled_only_grant_does_not_grant() {
    let mut doc = base();
    let mut g = grant("g", "h", "high", &["read"], &[]);
    g.disabled = true;
    doc.grants = vec![g];
    assert_eq!(call(&doc, &human("h"), "read_t").reason, TOOL_NOT_GRANTED);
}

#[test]
fn required_trust_and_admin_trust_come_from_different_grants() {
    let mut doc = base();
    doc.grants = vec![
        grant("a", "h", "medium", &["read"], &[("read_t", "allow", "low")]),
        grant("b", "h", "low", &["read"], &[("read_t", "allow", "high")]),
    ];
    let d = call(&doc, &human("h"), "read_t");
    assert_eq!((d.reason, d.required_trust.as_str(), d.admin_trust.as_str()), (TRUST_TOO_LOW, "high", "medium"));
}

#[test]
fn observe_mode_allows_anything() {
    let mut doc = base();
    if let Some(p) = doc.policy.as_mut() {
        p.mode = "Observe".into();
    }
    let d = call(&doc, &Identity::default(), "ghost");
    assert_eq!((d.allowed, d.reason), (true, ALLOWED));
}

fn optional_session_doc(revoked: bool) -> PolicyDocument {
    let mut doc = base();
    doc.grants = vec![grant("g", "h", "high", &["read", "write"], &[])];
    doc.sessions =
        vec![SessionPolicy { name: "s1".into(), human_id: "h".into(), consented_trust: "low".into(), revoked, ..Default::default() }];
    doc
}

#[test]
fn optional_sessions_only_ever_lower_trust() {
    let with_session = Identity { human: "h".into(), session: "s1".into(), ..Default::default() };
    let d = call(&optional_session_doc(true), &with_session, "write_t");
    assert_eq!((d.allowed, d.admin_trust.as_str(), d.matched_session.as_str()), (true, "high", ""));
    let d = call(&optional_session_doc(false), &with_session, "write_t");
    assert_eq!((d.reason, d.consented_trust.as_str()), (TRUST_TOO_LOW, "low"));
    assert!(call(&optional_session_doc(false), &human("h"), "write_t").allowed);
}

#[test]
fn required_sessions_must_be_sent_and_found() {
    let doc = required_sessions(optional_session_doc(false));
    assert_eq!(call(&doc, &human("h"), "read_t").reason, MISSING_SESSION);
    let d = call(&doc, &Identity { human: "h".into(), session: "nope".into(), ..Default::default() }, "read_t");
    assert_eq!((d.status, d.reason), (401, SESSION_NOT_FOUND));
    let d = call(&doc, &Identity { human: "other".into(), session: "s1".into(), ..Default::default() }, "read_t");
    assert_eq!(d.reason, SESSION_NOT_FOUND);
}

#[test]
fn expiry_is_strictly_after_and_garbage_is_expired() {
    let mut doc = required_sessions(optional_session_doc(false));
    let identity = Identity { human: "h".into(), session: "s1".into(), ..Default::default() };
    doc.sessions[0].expires_at = "2026-06-01T12:00:00Z".into();
    assert_eq!(call(&doc, &identity, "read_t").reason, ALLOWED);
    doc.sessions[0].expires_at = "garbage".into();
    let d = call(&doc, &identity, "read_t");
    assert_eq!((d.status, d.reason, d.matched_session.as_str()), (401, SESSION_EXPIRED, "s1"));
}

#[test]
fn agent_only_grants_match_any_human_and_team() {
    let mut doc = base();
    doc.grants = vec![GrantPolicy { agent_id: "a".into(), ..grant("g", "", "medium", &["write"], &[]) }];
    let d = call(&doc, &Identity { human: "anyone".into(), agent: "a".into(), team: "t".into(), session: String::new() }, "write_t");
    assert!(d.allowed, "{d:?}");
}

#[test]
fn all_empty_subjects_never_match() {
    let mut doc = base();
    doc.grants = vec![grant("g", "", "high", &["read"], &[])];
    assert_eq!(call(&doc, &human("x"), "read_t").reason, NO_MATCHING_GRANT);
}

#[test]
fn other_methods_are_not_governed() {
    let d = authorize(&base(), &Identity::default(), "tools/list", "", now());
    assert_eq!((d.allowed, d.reason), (true, ALLOWED));
}

#[test]
fn risk_levels_are_derived_when_not_declared() {
    assert_eq!(risk_level("", "low", "destructive"), "high");
    assert_eq!(risk_level("", "medium", "read"), "medium");
    assert_eq!(risk_level("", "low", "read"), "low");
    assert_eq!(risk_level("", "low", ""), "");
    assert_eq!(risk_level("LOW", "high", "destructive"), "low");
}

fn arb_grant() -> impl Strategy<Value = GrantPolicy> {
    let trust = prop_oneof![Just(""), Just("low"), Just("medium"), Just("high")];
    let effects = proptest::sample::subsequence(vec!["read", "write", "destructive"], 0..=3);
    let rules = proptest::collection::vec(
        (
            prop_oneof![Just("read_t"), Just("write_t"), Just("nose_t")],
            prop_oneof![Just("allow"), Just("deny")],
            prop_oneof![Just(""), Just("high")],
        ),
        0..3,
    );
    (0u32..1000, prop_oneof![Just("h"), Just("")], prop_oneof![Just("a"), Just("")], trust, effects, rules, any::<bool>()).prop_map(
        |(n, h, a, max, effects, mut rules, disabled)| {
            rules.dedup_by_key(|r| r.0);
            let mut g = grant(&format!("g{n}"), h, max, &effects, &rules);
            g.agent_id = a.into();
            g.disabled = disabled;
            g
        },
    )
}

proptest! {
    #[test]
    fn adding_a_deny_rule_never_widens_access(grants in proptest::collection::vec(arb_grant(), 0..4), tool_name in prop_oneof![Just("read_t"), Just("write_t"), Just("nose_t"), Just("ghost")]) {
        let mut doc = base();
        doc.grants = grants;
        let identity = Identity { human: "h".into(), agent: "a".into(), ..Default::default() };
        let before = call(&doc, &identity, tool_name);
        doc.grants.push(grant("zz-deny", "h", "low", &[], &[(tool_name, "deny", "")]));
        let after = call(&doc, &identity, tool_name);
        prop_assert!(!after.allowed || before.allowed);
        prop_assert_eq!(after.reason, TOOL_DENIED);
    }

    #[test]
    fn observe_mode_allows_every_tool_call(grants in proptest::collection::vec(arb_grant(), 0..4), human_id in "[a-z]{0,3}", tool_name in "[a-z_]{0,8}") {
        let mut doc = base();
        doc.grants = grants;
        if let Some(p) = doc.policy.as_mut() { p.mode = "observe".into(); }
        prop_assert!(call(&doc, &human(&human_id), &tool_name).allowed);
    }

    #[test]
    fn allowed_calls_have_enough_effective_trust(grants in proptest::collection::vec(arb_grant(), 0..4), tool_name in prop_oneof![Just("read_t"), Just("write_t")]) {
        let mut doc = base();
        doc.grants = grants;
        let d = call(&doc, &Identity { human: "h".into(), agent: "a".into(), ..Default::default() }, tool_name);
        if d.allowed && d.reason == ALLOWED {
            prop_assert!(trust_rank(&d.effective_trust) >= trust_rank(&d.required_trust));
        }
    }
}

/// Every decision path with the exact fields the gateway's decision carries (DOMAIN.md §5.4,
/// "Which fields each decision carries"), as `access explain --format json` prints them.
mod fields {
    use super::*;
    use serde_json::{Value, json};

    fn fields(d: &Decision) -> Value {
        serde_json::to_value(d).unwrap_or_default()
    }

    /// The base document with its own version `doc-v` and the server's risky tool.
    fn doc() -> PolicyDocument {
        let mut doc = base();
        if let Some(p) = doc.policy.as_mut() {
            p.policy_version = "doc-v".into();
        }
        doc.tools.push(ToolPolicy { risk_level: "high".into(), ..tool("wipe_t", "high", "destructive") });
        doc
    }

    fn with_session(mut doc: PolicyDocument, required: bool) -> PolicyDocument {
        doc.session = Some(SessionConfig { required, ..Default::default() });
        doc.sessions = vec![SessionPolicy {
            name: "s1".into(),
            namespace: "team".into(),
            human_id: "h".into(),
            consented_trust: "medium".into(),
            policy_version: "session-v".into(),
            ..Default::default()
        }];
        doc
    }

    fn h_s1() -> Identity {
        Identity { human: "h".into(), session: "s1".into(), ..Default::default() }
    }

    #[test]
    fn a_call_that_is_not_a_tool_call_carries_the_version_only() {
        let d = authorize(&doc(), &Identity::default(), "tools/list", "wipe_t", now());
        assert_eq!(fields(&d), json!({"allowed": true, "status": 200, "reason": "allowed", "policy_version": "doc-v"}));
    }

    #[test]
    fn observe_mode_carries_the_risk() {
        let mut doc = doc();
        if let Some(p) = doc.policy.as_mut() {
            p.mode = "observe".into();
        }
        let d = call(&doc, &Identity::default(), "wipe_t");
        assert_eq!(
            fields(&d),
            json!({"allowed": true, "status": 200, "reason": "allowed", "policy_version": "doc-v", "risk_level": "high"})
        );
    }

    #[test]
    fn identity_and_session_denials_carry_no_risk() {
        let d = call(&doc(), &Identity { session: "s1".into(), ..Default::default() }, "wipe_t");
        assert_eq!(fields(&d), json!({"allowed": false, "status": 401, "reason": "missing_identity", "policy_version": "doc-v"}));
        let required = with_session(doc(), true);
        let d = call(&required, &human("h"), "wipe_t");
        assert_eq!(fields(&d), json!({"allowed": false, "status": 401, "reason": "missing_session", "policy_version": "doc-v"}));
        let d = call(&required, &Identity { human: "h".into(), session: "nope".into(), ..Default::default() }, "wipe_t");
        assert_eq!(fields(&d), json!({"allowed": false, "status": 401, "reason": "session_not_found", "policy_version": "doc-v"}));
    }

    #[test]
    fn revoked_and_expired_sessions_carry_the_session_and_its_version() {
        let mut doc = with_session(doc(), true);
        doc.sessions[0].revoked = true;
        let expected = |reason: &str| {
            json!({"allowed": false, "status": 401, "reason": reason, "policy_version": "session-v",
                   "matched_session": "s1", "matched_session_namespace": "team"})
        };
        assert_eq!(fields(&call(&doc, &h_s1(), "wipe_t")), expected("session_revoked"));
        doc.sessions[0].revoked = false;
        doc.sessions[0].expires_at = "2026-01-01T00:00:00Z".into();
        assert_eq!(fields(&call(&doc, &h_s1(), "wipe_t")), expected("session_expired"));
    }

    #[test]
    fn default_decisions_carry_the_document_version_and_the_live_session() {
        let mut doc = with_session(doc(), false);
        let d = call(&doc, &h_s1(), "wipe_t");
        assert_eq!(
            fields(&d),
            json!({"allowed": false, "status": 403, "reason": "no_matching_grant", "policy_version": "doc-v",
                   "matched_session": "s1", "matched_session_namespace": "team"})
        );
        doc.grants =
            vec![GrantPolicy { policy_version: "grant-v".into(), ..grant("g", "h", "high", &["read"], &[("read_t", "allow", "")]) }];
        if let Some(p) = doc.policy.as_mut() {
            p.default_decision = "allow".into();
        }
        let d = call(&doc, &human("h"), "wipe_t");
        assert_eq!(fields(&d), json!({"allowed": true, "status": 200, "reason": "tool_not_granted", "policy_version": "doc-v"}));
    }

    #[test]
    fn a_deny_rule_carries_the_grant_its_version_and_no_risk() {
        let mut doc = with_session(doc(), false);
        doc.grants =
            vec![GrantPolicy { policy_version: "grant-v".into(), ..grant("g", "h", "high", &["destructive"], &[("wipe_t", "deny", "")]) }];
        let d = call(&doc, &h_s1(), "wipe_t");
        assert_eq!(
            fields(&d),
            json!({"allowed": false, "status": 403, "reason": "tool_denied", "policy_version": "grant-v",
                   "matched_grant": "g", "matched_grant_namespace": "ns", "matched_session": "s1", "matched_session_namespace": "team"})
        );
    }

    #[test]
    fn side_effect_denials_carry_required_trust_and_risk() {
        let mut doc = doc();
        doc.grants = vec![grant("g", "h", "high", &["read"], &[])];
        let d = call(&doc, &human("h"), "nose_t");
        assert_eq!(
            fields(&d),
            json!({"allowed": false, "status": 403, "reason": "tool_side_effect_unknown", "policy_version": "doc-v",
                   "required_trust": "low", "matched_grant": "g", "matched_grant_namespace": "ns"})
        );
        let d = call(&doc, &human("h"), "wipe_t");
        assert_eq!(
            fields(&d),
            json!({"allowed": false, "status": 403, "reason": "side_effect_not_allowed", "policy_version": "doc-v",
                   "required_trust": "high", "required_side_effect": "destructive", "risk_level": "high",
                   "matched_grant": "g", "matched_grant_namespace": "ns"})
        );
    }

    #[test]
    fn trust_decisions_carry_the_trust_triple() {
        let mut doc = with_session(doc(), false);
        doc.grants = vec![grant("g", "h", "high", &["destructive"], &[])];
        let expected = |allowed: bool, status: u16, reason: &str, consented: &str, effective: &str| {
            json!({"allowed": allowed, "status": status, "reason": reason, "policy_version": "doc-v",
                   "required_trust": "high", "required_side_effect": "destructive", "risk_level": "high",
                   "admin_trust": "high", "consented_trust": consented, "effective_trust": effective,
                   "matched_grant": "g", "matched_grant_namespace": "ns", "matched_session": "s1", "matched_session_namespace": "team"})
        };
        assert_eq!(fields(&call(&doc, &h_s1(), "wipe_t")), expected(false, 403, "trust_too_low", "medium", "medium"));
        doc.sessions[0].consented_trust = "high".into();
        assert_eq!(fields(&call(&doc, &h_s1(), "wipe_t")), expected(true, 200, "allowed", "high", "high"));
    }

    #[test]
    fn a_document_without_a_version_reports_none() {
        let mut doc = doc();
        doc.policy = None;
        let d = call(&doc, &human("h"), "wipe_t");
        assert_eq!(fields(&d), json!({"allowed": false, "status": 403, "reason": "no_matching_grant"}));
    }
}
