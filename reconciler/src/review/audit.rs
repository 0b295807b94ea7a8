//! The gateway's audit records, summed up for a review (DOMAIN.md §11): per grant, the calls it
//! allowed in the window and its last allowed call; per server, its first and last record. Only
//! `decision = allow` is use; a denial naming a grant is not, and an allow naming no grant
//! (observe mode, a default decision of allow) is counted apart, for nobody. Readers: a JSON
//! Lines file of the gateway's envelopes, summed here record by record; the ClickHouse `events`
//! table (`super::clickhouse`), summed by the database; `super::source` says which.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::BufRead;

/// The event type of the gateway's decisions (`pkg/events/envelope.go`'s default).
pub const GATEWAY_EVENT: &str = "mcp.request";

/// A grant or a server as the records name it: namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Named {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The time a review looks back over: from `start` to `end` (the review's time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// What the records say about one grant: the calls it allowed in the window, and its last
/// allowed call up to the window's end (earlier than the window, too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantUse {
    pub calls: u64,
    pub last_use: Option<Timestamp>,
}

/// What the records say about one server: its first and last record up to the window's end,
/// and the calls allowed in the window that name no grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRecords {
    pub first: Timestamp,
    pub last: Timestamp,
    pub unattributed: u64,
}

/// The records of a source, summed up for one window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub grants: BTreeMap<Named, GrantUse>,
    pub servers: BTreeMap<Named, ServerRecords>,
}

/// Why the records cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot read the audit records {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("--audit: {0}")]
    BadSource(String),
    #[error("ClickHouse at {url}: {message}")]
    ClickHouse { url: String, message: String },
    #[error("{path}:{line}: not a gateway event envelope ({reason})")]
    NotAnEnvelope { path: String, line: usize, reason: String },
}

/// One envelope as the ingest receives it; the payload is an object (or, as ClickHouse keeps
/// it, a string holding one).
#[derive(Deserialize)]
struct Envelope {
    timestamp: Timestamp,
    #[serde(default)]
    event_type: String,
    payload: serde_json::Value,
}

/// The fields of a decision's payload a review reads.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Payload {
    server: String,
    namespace: String,
    decision: String,
    matched_grant: String,
    matched_grant_namespace: String,
}

/// Sums up the JSON Lines file `path` (one envelope a line; blank lines skipped).
pub fn read_json_lines(path: &std::path::Path, window: Window) -> Result<Usage, AuditError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| AuditError::Read { path: shown.clone(), source })?;
    let mut usage = Usage::default();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| AuditError::Read { path: shown.clone(), source })?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| AuditError::NotAnEnvelope { path: shown.clone(), line: index + 1, reason };
        let envelope: Envelope = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let payload: Payload = match envelope.payload {
            serde_json::Value::String(text) => serde_json::from_str(&text),
            value => serde_json::from_value(value),
        }
        .map_err(|e| bad(format!("payload: {e}")))?;
        if (envelope.event_type.is_empty() || envelope.event_type == GATEWAY_EVENT) && envelope.timestamp <= window.end {
            usage.add(envelope.timestamp, &payload, window);
        }
    }
    Ok(usage)
}

impl Usage {
    fn add(&mut self, at: Timestamp, payload: &Payload, window: Window) {
        let server = Named { namespace: payload.namespace.clone(), name: payload.server.clone() };
        let records = self.servers.entry(server).or_insert(ServerRecords { first: at, last: at, unattributed: 0 });
        records.first = records.first.min(at);
        records.last = records.last.max(at);
        if payload.decision != "allow" {
            return;
        }
        let in_window = at >= window.start;
        if payload.matched_grant.is_empty() {
            records.unattributed += u64::from(in_window);
            return;
        }
        let grant = Named { namespace: payload.matched_grant_namespace.clone(), name: payload.matched_grant.clone() };
        let used = self.grants.entry(grant).or_default();
        used.calls += u64::from(in_window);
        used.last_use = used.last_use.max(Some(at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        Window { start: "2026-10-26T00:00:00Z".parse().unwrap(), end: "2026-11-25T00:00:00Z".parse().unwrap() }
    }

    #[test]
    fn a_payload_kept_as_a_string_reads_as_one_kept_as_an_object() {
        let payload = r#"{"server":"payments-mcp","namespace":"mcp-team-a","decision":"allow","matched_grant":"billing","matched_grant_namespace":"mcp-team-a"}"#;
        let as_object = format!(r#"{{"timestamp":"2026-11-10T10:00:00Z","event_type":"mcp.request","payload":{payload}}}"#);
        let as_string = format!(r#"{{"timestamp":"2026-11-11T10:00:00Z","payload":{}}}"#, serde_json::to_string(payload).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events.jsonl");
        std::fs::write(&file, format!("{as_object}\n\n{as_string}\n")).unwrap();
        let usage = read_json_lines(&file, window()).unwrap();
        let billing = Named { namespace: "mcp-team-a".into(), name: "billing".into() };
        assert_eq!(usage.grants[&billing], GrantUse { calls: 2, last_use: Some("2026-11-11T10:00:00Z".parse().unwrap()) });
    }
}
