//! Validate: every offline check of a loaded repository, in the order DESIGN.md gives — JSON
//! Schema, object identity, cross-reference against the gateway metadata, guardrail policies —
//! plus the credential scan; then time-bound grants that have expired are disabled. Collects every problem (never stops at the first) into the state's diagnostics.
//! `ratchet` weighs two validated states: a built-in policy's violation a base already has is a warning.

pub mod break_glass;
pub mod clock;
pub mod expiry;
mod guardrails;
mod identity;
pub mod live_tools;
pub mod ratchet;
mod reference;
mod schema;
pub mod secrets;
mod signers;

pub use reference::fence;
pub use secrets::credential_kind;

use crate::cache::Cache;
use crate::load::Loaded;
use crate::model::{Code, DesiredState, Diagnostic, Pos, diagnostic};
use jiff::Timestamp;

/// Runs every check and returns the desired state with all diagnostics, sorted.
pub fn validate(loaded: Loaded, now: Timestamp) -> DesiredState {
    validate_cached(loaded, now, &Cache::off())
}

/// `validate`, taking from `cache` what the guardrail policies found on unchanged objects in an
/// earlier run (and keeping there what they find now).
pub fn validate_cached(mut loaded: Loaded, now: Timestamp, cache: &Cache) -> DesiredState {
    // The credential scan runs on another core while the checks before it in the order run.
    let (mut found, scanned) = std::thread::scope(|scope| {
        let scan = scope.spawn(|| {
            let mut found = Vec::new();
            secrets::check(&loaded, &cache.findings, &mut found);
            found
        });
        let mut found = Vec::new();
        schema::check(&loaded, &mut found);
        identity::check(&loaded.state, &mut found);
        reference::check(&loaded.state, now, &mut found);
        signers::check(&loaded.state, &mut found);
        (found, scan.join())
    });
    found.extend(scanned.unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
    let malformed = found.iter().filter(|d| d.code == crate::model::Code::SchemaViolation).map(|d| d.object.clone()).collect();
    guardrails::check(&loaded, now, &malformed, &cache.findings, &mut found);
    reference::one_cause_per_reference(&mut found);
    // Last: the checks see the grant as written; what is planned and applied is the grant as
    // it is at `now`.
    if !found.iter().chain(&loaded.state.diagnostics).any(Diagnostic::is_error) {
        found.extend(no_objects(&loaded.state));
    }
    found.extend(expiry::ignored(&loaded.state));
    found.extend(break_glass::late_reviews(&loaded.state, now));
    found.extend(expiry::expire(&mut loaded.state, now));
    loaded.state.diagnostics.extend(found);
    diagnostic::sort(&mut loaded.state.diagnostics);
    loaded.state
}

/// `no_objects`: a repository that declares nothing is more often a wrong path or an `ignore:`
/// glob that hides everything than an intent, and its plan deletes every object applied before.
/// Not said when errors already explain it (files that do not load).
fn no_objects(state: &DesiredState) -> Option<Diagnostic> {
    let hint = "check PATH (a platform repository holds .mcp/servers.yaml files and MCPAccessGrant / MCPAgentSession manifests) \
                and the ignore: globs of mcp-gitops.yaml";
    state.objects.is_empty().then(|| {
        Diagnostic::warning(
            Code::NoObjects,
            crate::load::CONFIG_FILE,
            Pos { line: 1, column: 1 },
            "the repository declares no server, grant or session: planned or applied, it deletes every object applied before",
        )
        .hint(hint)
    })
}
