//! The operator double's rendering (`tests/common/operator.py`) pinned to the operator's
//! documented canonicalisation (DOMAIN.md §4.6-4.8), and mcp-gitops' predictions checked against
//! it on the example repositories. The vectors give the input objects as the API server returns
//! them, the canonical bytes written out by hand from §4.7-4.8, and their sha256: V1 and V2 are
//! the vectors computed with the operator's Go code (DOMAIN.md §4.8); H1 covers what they do not.

mod common;

use common::operator::{CLUSTER, Renderer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The operator's answer for one request (see operator.py), with a fixed clock.
fn operator(servers: Value, grants: Value, sessions: Value, stored: Value) -> Vec<Value> {
    let request =
        json!({"cluster": CLUSTER, "now": common::NOW, "servers": servers, "grants": grants, "sessions": sessions, "stored": stored});
    Renderer::start().ask(&request).expect("operator.py answers")
}

/// Checks that the canonical bytes written by hand hash to the revision given with them, and
/// that the double produced both.
fn assert_vector(answer: &Value, canonical: &str, revision: &str) {
    assert_eq!(format!("sha256:{}", hex::encode(Sha256::digest(canonical.as_bytes()))), revision, "the vector itself");
    assert_eq!(answer["canonical"].as_str(), Some(canonical), "{answer:#}");
    assert_eq!(answer["revision"].as_str(), Some(revision));
}

#[test]
fn v1_a_stored_document_is_hashed_as_go_marshals_it() {
    // The gateway's and the operator's check of a stored document: parsed, then marshalled again,
    // so whitespace, key order and unknown fields do not count.
    let stored = r#"{ "server": {"namespace": "mcp-servers", "name": "demo", "owner": "x"}, "generated_at": "2026-01-01T00:00:00Z",
                      "revision": "sha256:74535ec498d5d7a33b3f234173e606cdfd62e2b2b00e61c68aa6d655b86067cd", "schema_version": "v1", "extra": [1] }"#;
    let request = json!({"cluster": CLUSTER, "now": common::NOW, "servers": [], "document": stored});
    let answer = Renderer::start().ask(&request).expect("operator.py answers");
    assert_vector(
        &answer[0],
        r#"{"schema_version":"v1","revision":"","server":{"name":"demo","namespace":"mcp-servers"}}"#,
        "sha256:74535ec498d5d7a33b3f234173e606cdfd62e2b2b00e61c68aa6d655b86067cd",
    );
}

fn v2_server() -> Value {
    json!({
        "apiVersion": "mcpruntime.org/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": "payments", "namespace": "mcp-team-acme", "uid": "0b1e", "resourceVersion": "42"},
        "spec": {
            "image": "registry.local/payments", "teamID": "team-1", "gateway": {"enabled": true}, "session": {"required": false},
            "tools": [
                {"name": "list_invoices", "requiredTrust": "low", "sideEffect": "read"},
                {"name": "refund_invoice", "description": "a<b & c>d é", "requiredTrust": "high", "sideEffect": "destructive",
                 "riskLevel": "high", "labels": {"zeta": "1", "alpha": "2"}},
            ],
        },
        "status": {"phase": "Ready"},
    })
}

const V2_CANONICAL: &str = concat!(
    r#"{"schema_version":"v1","revision":"","server":{"name":"payments","namespace":"mcp-team-acme","team_id":"team-1","cluster":"local"},"#,
    r#""auth":{"mode":"header","human_id_header":"X-MCP-Human-ID","agent_id_header":"X-MCP-Agent-ID","team_id_header":"X-MCP-Team-ID","session_id_header":"X-MCP-Agent-Session","token_header":"Authorization"},"#,
    r#""policy":{"mode":"allow-list","default_decision":"deny","enforce_on":"call_tool","policy_version":"v1"},"#,
    r#""session":{"store":"kubernetes","header_name":"X-MCP-Agent-Session","max_lifetime":"24h","idle_timeout":"1h","upstream_token_header":"Authorization"},"#,
    r#""tools":[{"name":"list_invoices","required_trust":"low","side_effect":"read"},"#,
    r#"{"name":"refund_invoice","description":"a\u003cb \u0026 c\u003ed é","required_trust":"high","side_effect":"destructive","risk_level":"high","labels":{"alpha":"2","zeta":"1"}}],"#,
    r#""grants":[{"name":"ops","namespace":"mcp-team-acme","human_id":"user-1","team_id":"team-1","max_trust":"high","allowed_side_effects":["read","destructive"],"policy_version":"v1","tool_rules":[{"name":"refund_invoice","decision":"allow","required_trust":"high"}]}],"#,
    r#""sessions":[{"name":"sess-1","namespace":"mcp-team-acme","human_id":"user-1","team_id":"team-1","consented_trust":"medium","expires_at":"2030-01-01T00:00:00Z","policy_version":"v1","upstream_token_ref":"tok/key"}]}"#,
);
const V2_REVISION: &str = "sha256:a366ddc1e7084e0c3d812d56254906089b3d25cf4f205d169b9c23d9ebb0bb2d";

fn v2_grants() -> Value {
    json!([{
        "apiVersion": "mcpruntime.org/v1alpha1", "kind": "MCPAccessGrant", "metadata": {"name": "ops", "namespace": "mcp-team-acme"},
        "spec": {"serverRef": {"name": "payments"}, "subject": {"humanID": "user-1", "teamID": "team-1"}, "maxTrust": "high",
                 "allowedSideEffects": ["read", "destructive"], "policyVersion": "v1",
                 "toolRules": [{"name": "refund_invoice", "decision": "allow", "requiredTrust": "high"}]},
    }])
}

fn v2_sessions() -> Value {
    json!([{
        "apiVersion": "mcpruntime.org/v1alpha1", "kind": "MCPAgentSession", "metadata": {"name": "sess-1", "namespace": "mcp-team-acme"},
        "spec": {"serverRef": {"name": "payments"}, "subject": {"humanID": "user-1", "teamID": "team-1"}, "consentedTrust": "medium",
                 "expiresAt": "2030-01-01T00:00:00Z", "policyVersion": "v1", "upstreamTokenSecretRef": {"name": "tok", "key": "key"}},
    }])
}

#[test]
fn v2_the_operator_renders_and_hashes_a_server_with_its_grant_and_session() {
    let answers = operator(json!([v2_server()]), v2_grants(), v2_sessions(), json!({}));
    assert_vector(&answers[0], V2_CANONICAL, V2_REVISION);
    assert_eq!(answers[0]["action"], "write");
    // Written indented by two spaces, with generated_at; that does not move the revision.
    let payload = answers[0]["payload"].as_str().expect("payload");
    assert!(payload.starts_with(&format!("{{\n  \"schema_version\": \"v1\",\n  \"revision\": \"{V2_REVISION}\",\n  \"generated_at\": \"{}\",\n  \"server\": {{\n    \"name\": \"payments\",", common::NOW)), "{payload}");
}

#[test]
fn the_stored_payload_is_kept_only_while_its_revision_is_its_own() {
    let written = operator(json!([v2_server()]), v2_grants(), v2_sessions(), json!({}));
    let payload = written[0]["payload"].as_str().expect("payload");
    let again = operator(json!([v2_server()]), v2_grants(), v2_sessions(), json!({"mcp-team-acme/payments": payload}));
    assert_eq!(again[0]["action"], "keep", "{again:?}");
    // Same revision field, other content: the operator writes the document again.
    let tampered = payload.replace("\"max_trust\": \"high\"", "\"max_trust\": \"medium\"");
    assert_ne!(tampered, payload);
    for stored in [tampered.as_str(), "not json", "{\"schema_version\": 1}"] {
        let answer = operator(json!([v2_server()]), v2_grants(), v2_sessions(), json!({"mcp-team-acme/payments": stored}));
        assert_eq!(answer[0]["action"], "write", "stored {stored}");
    }
}

#[test]
fn h1_defaults_targets_order_escaping_and_times() {
    let server = json!({
        "apiVersion": "mcpruntime.org/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": "edge", "namespace": "team-a", "uid": "u1", "resourceVersion": "7"},
        "spec": {
            "image": "r/edge", "teamID": "  team-a  ", "gateway": {"enabled": true},
            "auth": {"mode": "oauth", "issuerURL": "https://id.example/?a=1&b=<2>"},
            "policy": {"mode": "observe", "defaultDecision": "allow"},
            "session": {"required": true, "maxLifetime": "8h"},
            "tools": [
                {"name": "t\"q", "description": "tab\there\u{2028}nl\nbs\\ \u{8}", "sideEffect": "write", "labels": {"é": "1", "Z": "2", "a": "3"}},
                {"name": "drop", "requiredTrust": "high", "sideEffect": "destructive", "riskLevel": "high"},
            ],
        },
    });
    let grant = |name: &str, namespace: &str, spec: Value| json!({"kind": "MCPAccessGrant", "metadata": {"name": name, "namespace": namespace}, "spec": spec});
    // In list order; the second targets edge in team-b, the fourth another server.
    let grants = json!([
        grant(
            "g-local",
            "team-a",
            json!({"serverRef": {"name": "edge"}, "subject": {"humanID": "h", "teamID": "t9"}, "maxTrust": "medium"})
        ),
        grant("g-elsewhere", "team-b", json!({"serverRef": {"name": "edge"}, "subject": {"agentID": "bot"}})),
        grant(
            "g-cross",
            "team-b",
            json!({"serverRef": {"name": "edge", "namespace": " team-a "}, "subject": {"agentID": "bot"},
                                          "allowedSideEffects": ["write"], "disabled": true, "toolRules": [{"name": "drop", "decision": "deny"}]})
        ),
        grant("g-othername", "team-a", json!({"serverRef": {"name": "core"}, "subject": {"agentID": "bot"}})),
    ]);
    let sessions = json!([{"kind": "MCPAgentSession", "metadata": {"name": "s1", "namespace": "team-a"},
        "spec": {"serverRef": {"name": "edge"}, "subject": {"agentID": "bot"}, "revoked": true,
                 "expiresAt": "2030-06-30T23:30:00.5+02:00", "upstreamTokenSecretRef": {"name": "tok", "key": "k"}}}]);
    let answers = operator(json!([server]), grants, sessions, json!({}));
    assert_vector(
        &answers[0],
        concat!(
            r#"{"schema_version":"v1","revision":"","server":{"name":"edge","namespace":"team-a","team_id":"team-a","cluster":"local"},"#,
            r#""auth":{"mode":"oauth","human_id_header":"X-MCP-Human-ID","agent_id_header":"X-MCP-Agent-ID","team_id_header":"X-MCP-Team-ID","session_id_header":"X-MCP-Agent-Session","token_header":"Authorization","issuer_url":"https://id.example/?a=1\u0026b=\u003c2\u003e"},"#,
            r#""policy":{"mode":"observe","default_decision":"allow","enforce_on":"call_tool","policy_version":"v1"},"#,
            r#""session":{"required":true,"store":"kubernetes","header_name":"X-MCP-Agent-Session","max_lifetime":"8h","idle_timeout":"1h","upstream_token_header":"Authorization"},"#,
            r#""tools":[{"name":"t\"q","description":"tab\there\u2028nl\nbs\\ \u0008","required_trust":"low","side_effect":"write","labels":{"Z":"2","a":"3","é":"1"}},"#,
            r#"{"name":"drop","required_trust":"high","side_effect":"destructive","risk_level":"high"}],"#,
            r#""grants":[{"name":"g-local","namespace":"team-a","human_id":"h","team_id":"t9","max_trust":"medium"},"#,
            r#"{"name":"g-cross","namespace":"team-b","agent_id":"bot","team_id":"team-a","max_trust":"low","allowed_side_effects":["write"],"disabled":true,"tool_rules":[{"name":"drop","decision":"deny","required_trust":"low"}]}],"#,
            r#""sessions":[{"name":"s1","namespace":"team-a","agent_id":"bot","team_id":"team-a","consented_trust":"low","revoked":true,"expires_at":"2030-06-30T21:30:00Z","upstream_token_ref":"tok/k"}]}"#,
        ),
        "sha256:b15e23df4939192997a2a852867e11fd4933112a092031fbcf2be7cc480dcb23",
    );
}

#[test]
fn a_server_without_gateway_has_its_policy_deleted() {
    let mut server = v2_server();
    server["spec"]["gateway"] = json!({"enabled": false});
    let answers = operator(json!([server]), v2_grants(), v2_sessions(), json!({}));
    assert_eq!(answers[0]["action"], "delete", "{answers:?}");
}

/// mcp-gitops (`plan`'s predicted revisions, `render`'s document) and the double agree on every
/// server of a repository: the double takes the objects `plan` would apply, in the order a LIST
/// returns them. `byte_for_byte`: `render` prints the very bytes the operator writes (it does
/// not for U+0008 and U+000C, which it writes `\b` and `\f` where Go 1.19 writes `\u0008` and
/// `\u000c`; the revision, over the compact form, is the same).
fn assert_agree(repo: &str, byte_for_byte: bool) {
    let empty = tempfile::tempdir().expect("empty base");
    let base = empty.path().to_string_lossy();
    let plan = common::run(&["plan", repo, "--base", &base, "--format", "json", "--no-cache", "--now", common::NOW]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let plan: Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
    let objects = |kind: &str| {
        let mut objects: Vec<Value> =
            plan["changes"].as_array().expect("changes").iter().filter(|c| c["kind"] == kind).map(|c| c["object"].clone()).collect();
        objects.sort_by_key(|o| (o["metadata"]["namespace"].to_string(), o["metadata"]["name"].to_string()));
        Value::Array(objects)
    };
    let answers = operator(objects("MCPServer"), objects("MCPAccessGrant"), objects("MCPAgentSession"), json!({}));
    let predicted = plan["policy_revisions"].as_array().expect("policy_revisions");
    // A server with no policy in either state is not in the plan's list.
    let written: Vec<&Value> = answers.iter().filter(|a| a["action"] == "write").collect();
    assert_eq!(written.len(), predicted.len(), "{repo}: {answers:?}");
    for answer in &answers {
        let server = format!("{}/{}", answer["namespace"].as_str().unwrap_or(""), answer["name"].as_str().unwrap_or(""));
        let prediction = predicted.iter().find(|p| p["server"] == server.as_str()).map_or(&Value::Null, |p| &p["after"]);
        assert_eq!(prediction, &answer["revision"], "{repo} {server}");
        let rendered = common::run(&["render", repo, "--server", &server]);
        if answer["action"] == "delete" {
            assert_eq!(rendered.code, 1, "{repo} {server}: no policy for a server without gateway");
            continue;
        }
        assert_eq!(rendered.code, 0, "{}", rendered.stderr);
        let written = answer["payload"].as_str().expect("payload").replace(&format!("  \"generated_at\": \"{}\",\n", common::NOW), "");
        let parsed = |text: &str| serde_json::from_str::<Value>(text).expect("a JSON document");
        assert_eq!(parsed(&rendered.stdout), parsed(&written), "{repo} {server}: render prints the document the operator writes");
        if byte_for_byte {
            assert_eq!(rendered.stdout.trim_end(), written, "{repo} {server}: and with the same bytes");
        }
    }
}

#[test]
fn mcp_gitops_predicts_what_the_double_writes_on_the_examples() {
    for example in ["examples/platform", "examples/pr-change"] {
        assert_agree(example, true);
    }
}

/// What the examples do not hold: a team id with spaces, a grant from another namespace, a
/// session's expiry with an offset and a fraction, text Go escapes, labels out of order, a server
/// without gateway.
#[test]
fn mcp_gitops_predicts_what_the_double_writes_on_the_edges_of_the_mapping() {
    let repo = tempfile::tempdir().expect("repo");
    let files = [
        ("mcp-gitops.yaml", "policies:\n  disabled: [no-cross-namespace-server-ref]\n"),
        (
            ".mcp/servers.yaml",
            r#"servers:
  - name: edge
    namespace: team-a
    teamID: "  team-a  "
    gateway: {enabled: true}
    tools:
      - {name: "t<q>", description: "tab\there \u2028 & \b \"", sideEffect: write, labels: {"é": "1", "Z": "2", a: "3"}}
      - {name: drop, requiredTrust: high, sideEffect: destructive, riskLevel: high}
  - name: plain
    namespace: team-a
    tools: [{name: read, sideEffect: read}]
"#,
        ),
        (
            "access/edge.yaml",
            r#"apiVersion: mcpruntime.org/v1alpha1
kind: MCPAccessGrant
metadata: {name: g-cross, namespace: team-b}
spec:
  serverRef: {name: edge, namespace: team-a}
  subject: {agentID: bot}
  allowedSideEffects: [write]
  disabled: true
  toolRules: [{name: "t<q>", decision: deny}]
---
apiVersion: mcpruntime.org/v1alpha1
kind: MCPAccessGrant
metadata: {name: g-local, namespace: team-a}
spec:
  serverRef: {name: edge}
  subject: {humanID: h, teamID: t9}
  maxTrust: medium
  allowedSideEffects: [write]
---
apiVersion: mcpruntime.org/v1alpha1
kind: MCPAgentSession
metadata: {name: s1, namespace: team-a}
spec:
  serverRef: {name: edge}
  subject: {agentID: bot}
  revoked: true
  expiresAt: "2030-06-30T23:30:00.5+02:00"
  upstreamTokenSecretRef: {name: tok, key: k}
"#,
        ),
    ];
    for (path, text) in files {
        let file = repo.path().join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, text).expect("write");
    }
    assert_agree(&repo.path().to_string_lossy(), false);
}
