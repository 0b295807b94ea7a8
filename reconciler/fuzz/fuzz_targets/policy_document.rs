//! Feeds bytes to the gateway policy-document parser and check as `access explain --policy` reads a file, then stamps, round-trips and decides on it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gitops::gateway::{self, Identity, PolicyDocument, check, revision};
use mcp_gitops::render::text;

/// A fixed clock, so that a session's expiry is decided the same way on every run.
const NOW: &str = "2026-11-25T00:00:00Z";

fuzz_target!(|data: &[u8]| {
    // `read_policy`: the file as UTF-8 text, then JSON, then the gateway's check.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(document) = serde_json::from_str::<PolicyDocument>(text) else { return };
    if check::check(&document).is_ok() {
        decide(check::with_gateway_defaults(document.clone()));
    }

    // The same contents stamped as the operator stamps them: past the revision rule to the others.
    let mut stamped = document;
    revision::stamp(&mut stamped);
    let checked = check::check(&stamped);
    if let Err(reason) = &checked {
        let on_revision = matches!(reason, check::Refusal::RevisionRequired | check::Refusal::RevisionMismatch { .. });
        assert!(!on_revision, "a stamped document failed on its revision: {reason}");
        return;
    }
    // What passes is written into the ConfigMap and read back by the gateway: unchanged, and still passing.
    let written = revision::indented_json(&stamped);
    let read: PolicyDocument = serde_json::from_str(&written).expect("the operator's own output parses");
    assert_eq!(read, stamped, "the policy changed on its way through the ConfigMap: {written}");
    assert_eq!(check::check(&read), Ok(()));
    decide(check::with_gateway_defaults(read));
});

/// `access explain` for the first grant's and the first session's subject calling the first tool.
fn decide(document: PolicyDocument) {
    let grant = document.grants.first();
    let identity = Identity {
        human: grant.map(|g| g.human_id.clone()).unwrap_or_default(),
        agent: grant.map(|g| g.agent_id.clone()).unwrap_or_default(),
        team: grant.map(|g| g.team_id.clone()).unwrap_or_default(),
        session: document.sessions.first().map(|s| s.name.clone()).unwrap_or_default(),
    };
    let tool = document.tools.first().map(|t| t.name.clone()).unwrap_or_default();
    let now = NOW.parse().expect("a fixed time");
    let decision = gateway::authorize(&document, &identity, "tools/call", &tool, now);
    assert_eq!(decision.allowed, decision.status == 200, "{decision:?}");
    assert_eq!(decision, gateway::authorize(&document, &identity, "tools/call", &tool, now));
    let _ = text::explain(&document, &identity, &tool, &decision, &[]);
}
