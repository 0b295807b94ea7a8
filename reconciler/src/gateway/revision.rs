//! The policy revision: `sha256:` + hex of SHA-256 over the document's canonical JSON
//! (DOMAIN.md §4.8) — Go `encoding/json.Marshal` of the document with `revision` and
//! `generated_at` blanked: struct field order, compact, HTML-safe escaping.

use super::document::PolicyDocument;
use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};
use sha2::{Digest, Sha256};
use std::io;

/// Go's encoder escapes `<`, `>`, `&`, U+2028 and U+2029, and (in Go 1.19) writes `\b` and `\f`
/// as `\u0008` and `\u000c`.
struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escape = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escape.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(&mut self, writer: &mut W, escape: CharEscape) -> io::Result<()> {
        match escape {
            CharEscape::Backspace => writer.write_all(b"\\u0008"),
            CharEscape::FormFeed => writer.write_all(b"\\u000c"),
            other => CompactFormatter.write_char_escape(writer, other),
        }
    }
}

/// The bytes the revision is computed over.
pub fn canonical_bytes(document: &PolicyDocument) -> Vec<u8> {
    let mut copy = document.clone();
    copy.revision.clear();
    copy.generated_at.clear();
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // Serialising plain structs of strings and bools into a Vec cannot fail.
    let _ = copy.serialize(&mut serializer);
    out
}

/// The `<server>-gateway-policy` ConfigMap the operator writes the document into.
pub fn configmap(document: &PolicyDocument) -> serde_json::Value {
    let name = &document.server.name;
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": format!("{name}-gateway-policy"),
            "namespace": document.server.namespace,
            "labels": {"app": name, "app.kubernetes.io/managed-by": "mcp-runtime"},
        },
        "data": {"policy.json": indented_json(document)},
    })
}

/// The document as the operator writes it into the ConfigMap: 2-space indented, HTML-safe escaped.
pub fn indented_json(document: &PolicyDocument) -> String {
    // `<`, `>`, `&`, U+2028 and U+2029 only occur inside strings, so escaping the text is exact.
    serde_json::to_string_pretty(document)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

pub fn revision(document: &PolicyDocument) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(canonical_bytes(document))))
}

/// Stamps a document as the operator does before validating and writing it.
pub fn stamp(document: &mut PolicyDocument) {
    document.schema_version = super::document::SCHEMA_VERSION.to_string();
    document.generated_at.clear();
    document.revision = revision(document);
}

/// Whether `written`, a document the operator wrote, is the `predicted` one up to the order of
/// its tools, grants and sessions, and carries the revision of its own content. The operator
/// lists grants and sessions from its cache in an order that is not stable (DOMAIN.md §10.4), so
/// for a server with several of them its revision may differ from the predicted one (the
/// revision of the rendering sorted by namespace and name), and may change between reconciles.
pub fn written_as_predicted(predicted: &PolicyDocument, written: &PolicyDocument) -> Result<(), &'static str> {
    if written.revision != revision(written) {
        return Err("its revision is not the hash of its content");
    }
    if unordered(predicted) != unordered(written) {
        return Err("its tools, grants or sessions differ from the predicted ones");
    }
    Ok(())
}

/// A copy with no stamp and its lists in one fixed order, for comparisons as sets.
fn unordered(document: &PolicyDocument) -> PolicyDocument {
    fn sort<T: serde::Serialize>(items: &mut [T]) {
        items.sort_by_cached_key(|item| serde_json::to_string(item).unwrap_or_default());
    }
    let mut copy = PolicyDocument { revision: String::new(), generated_at: String::new(), ..document.clone() };
    sort(&mut copy.tools);
    sort(&mut copy.grants);
    sort(&mut copy.sessions);
    copy
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gateway::document::*;
    use std::collections::BTreeMap;

    #[test]
    fn vector_v1_minimal_document() {
        let mut doc = PolicyDocument {
            server: ServerInfo { name: "demo".into(), namespace: "mcp-servers".into(), ..Default::default() },
            ..Default::default()
        };
        stamp(&mut doc);
        assert_eq!(
            String::from_utf8_lossy(&canonical_bytes(&doc)),
            r#"{"schema_version":"v1","revision":"","server":{"name":"demo","namespace":"mcp-servers"}}"#
        );
        assert_eq!(doc.revision, "sha256:74535ec498d5d7a33b3f234173e606cdfd62e2b2b00e61c68aa6d655b86067cd");
    }

    pub(crate) fn vector_v2() -> PolicyDocument {
        PolicyDocument {
            server: ServerInfo {
                name: "payments".into(),
                namespace: "mcp-team-acme".into(),
                team_id: "team-1".into(),
                cluster: "local".into(),
            },
            auth: Some(AuthConfig {
                mode: "header".into(),
                human_id_header: "X-MCP-Human-ID".into(),
                agent_id_header: "X-MCP-Agent-ID".into(),
                team_id_header: "X-MCP-Team-ID".into(),
                session_id_header: "X-MCP-Agent-Session".into(),
                token_header: "Authorization".into(),
                ..Default::default()
            }),
            policy: Some(PolicyConfig {
                mode: "allow-list".into(),
                default_decision: "deny".into(),
                enforce_on: "call_tool".into(),
                policy_version: "v1".into(),
            }),
            session: Some(SessionConfig {
                required: false,
                store: "kubernetes".into(),
                header_name: "X-MCP-Agent-Session".into(),
                max_lifetime: "24h".into(),
                idle_timeout: "1h".into(),
                upstream_token_header: "Authorization".into(),
            }),
            tools: vec![
                ToolPolicy { name: "list_invoices".into(), required_trust: "low".into(), side_effect: "read".into(), ..Default::default() },
                ToolPolicy {
                    name: "refund_invoice".into(),
                    description: "a<b & c>d é".into(),
                    required_trust: "high".into(),
                    side_effect: "destructive".into(),
                    risk_level: "high".into(),
                    labels: BTreeMap::from([("zeta".into(), "1".into()), ("alpha".into(), "2".into())]),
                },
            ],
            grants: vec![GrantPolicy {
                name: "ops".into(),
                namespace: "mcp-team-acme".into(),
                human_id: "user-1".into(),
                team_id: "team-1".into(),
                max_trust: "high".into(),
                allowed_side_effects: vec!["read".into(), "destructive".into()],
                policy_version: "v1".into(),
                tool_rules: vec![ToolRulePolicy { name: "refund_invoice".into(), decision: "allow".into(), required_trust: "high".into() }],
                ..Default::default()
            }],
            sessions: vec![SessionPolicy {
                name: "sess-1".into(),
                namespace: "mcp-team-acme".into(),
                human_id: "user-1".into(),
                team_id: "team-1".into(),
                consented_trust: "medium".into(),
                expires_at: "2030-01-01T00:00:00Z".into(),
                policy_version: "v1".into(),
                upstream_token_ref: "tok/key".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn vector_v2_full_document() {
        let mut doc = vector_v2();
        stamp(&mut doc);
        let canonical = String::from_utf8_lossy(&canonical_bytes(&doc)).into_owned();
        assert!(canonical.contains(r#""session":{"store":"kubernetes","#), "{canonical}");
        assert!(canonical.contains(r#""description":"a\u003cb \u0026 c\u003ed é""#), "{canonical}");
        assert!(canonical.contains(r#""labels":{"alpha":"2","zeta":"1"}"#), "{canonical}");
        assert_eq!(doc.revision, "sha256:a366ddc1e7084e0c3d812d56254906089b3d25cf4f205d169b9c23d9ebb0bb2d");
        assert!(indented_json(&doc).contains(r#""description": "a\u003cb \u0026 c\u003ed é""#));
        doc.generated_at = "2026-11-25T10:00:00Z".into();
        assert_eq!(revision(&doc), "sha256:a366ddc1e7084e0c3d812d56254906089b3d25cf4f205d169b9c23d9ebb0bb2d");
    }

    #[test]
    fn a_document_in_another_order_is_written_as_predicted_with_another_revision() {
        let mut predicted = vector_v2();
        predicted.grants.push(GrantPolicy {
            name: "zz".into(),
            namespace: "mcp-team-acme".into(),
            agent_id: "a".into(),
            ..Default::default()
        });
        predicted.sessions.push(SessionPolicy { name: "aa".into(), agent_id: "a".into(), ..Default::default() });
        stamp(&mut predicted);
        let mut written = predicted.clone();
        written.grants.reverse();
        written.sessions.reverse();
        stamp(&mut written);
        written.generated_at = "2026-11-25T10:00:00Z".into();
        assert_ne!(written.revision, predicted.revision, "the list order is part of the revision");
        assert_eq!(written_as_predicted(&predicted, &written), Ok(()));

        let mut stale = written.clone();
        stale.grants[0].max_trust = "low".into();
        assert_eq!(written_as_predicted(&predicted, &stale), Err("its revision is not the hash of its content"));
        stamp(&mut stale);
        assert_eq!(written_as_predicted(&predicted, &stale), Err("its tools, grants or sessions differ from the predicted ones"));
    }
}
