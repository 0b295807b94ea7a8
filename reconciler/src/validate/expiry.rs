//! Time-bound grants: an MCPAccessGrant annotated `mcp-gitops.io/expires-at` (RFC 3339) is
//! desired as `spec.disabled: true` from that instant on, so the gateway stops matching it
//! (a disabled grant is still rendered, and grants nothing). Everything that takes a time
//! (validate --now, plan, apply, access --at, render) sees the grant as it is at that time.

use crate::model::Spec;
use crate::model::object::pointer_segment;
use crate::model::{Code, DesiredState, Diagnostic, Kind, Object};
use jiff::Timestamp;
use std::sync::Arc;

pub const EXPIRES_AT: &str = "mcp-gitops.io/expires-at";

/// `annotation_ignored` for an expiry mcp-gitops would not read: `mcp-gitops.io/expires-at` on
/// a session or a server (only grants expire by it; a session has `spec.expiresAt`), or an
/// annotation that differs from it only in case or punctuation (`mcp-gitops.io/Expires-At`:
/// annotation keys are case-sensitive). Without the warning the access silently never ends.
pub fn ignored(state: &DesiredState) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for object in &state.objects {
        let Some(annotations) = object.body.pointer("/metadata/annotations").and_then(|a| a.as_object()) else { continue };
        for key in annotations.keys() {
            let why = if key == EXPIRES_AT {
                match object.id.kind {
                    Kind::Grant => continue,
                    Kind::Session => {
                        format!("{EXPIRES_AT} is read on MCPAccessGrant only: this session does not expire by it")
                    }
                    Kind::Server => format!("{EXPIRES_AT} is read on MCPAccessGrant only: a server does not expire"),
                }
            } else if meant_as_expiry(key) {
                format!(
                    "annotation {key:?} is not {EXPIRES_AT} (annotation keys are case-sensitive): it is ignored and nothing expires by it"
                )
            } else {
                continue;
            };
            found.push(annotation_ignored(object, key, why));
        }
    }
    found
}

fn annotation_ignored(object: &Object, key: &str, why: String) -> Diagnostic {
    let pointer = format!("/metadata/annotations/{}", pointer_segment(key));
    let hint = match object.id.kind {
        Kind::Session => "set spec.expiresAt on the session (RFC 3339): the gateway refuses the session from then on",
        Kind::Server => "remove the annotation; put the expiry on the grants that give access to the server",
        Kind::Grant => "write the key as mcp-gitops.io/expires-at",
    };
    Diagnostic::warning(Code::AnnotationIgnored, &object.origin.file, object.origin.key_pos(&pointer), why)
        .object(&object.id)
        .path(format!("metadata.annotations[{key}]"))
        .hint(hint)
}

/// `mcp-gitops.io/Expires-At`, `MCP-GitOps.io/expires_at`, `expires-at`: our expiry in another
/// spelling (another tool's `example.com/expires-at` is its own).
fn meant_as_expiry(key: &str) -> bool {
    let (prefix, name) = key.rsplit_once('/').unwrap_or(("", key));
    squashed(name) == "expiresat" && (prefix.is_empty() || squashed(prefix).starts_with("mcpgitops"))
}

/// Letters and digits, lowercased: `Expires_At` and `expiresAt` are `expiresat`.
fn squashed(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// The next instant after `now` at which a grant of `state` expires: when the desired state
/// changes without a commit.
pub fn next_expiry(state: &DesiredState, now: Timestamp) -> Option<Timestamp> {
    let pointer = format!("/metadata/annotations/{}", EXPIRES_AT.replace('/', "~1"));
    state
        .objects
        .iter()
        .filter(|o| o.id.kind == Kind::Grant)
        .filter_map(|o| o.body.pointer(&pointer)?.as_str()?.parse::<Timestamp>().ok())
        .filter(|at| *at > now)
        .min()
}

/// Disables the grants whose expiry is at or before `now`. Returns a `grant_expired` warning for
/// each, and an error for a value that is not an RFC 3339 time (such a grant is left as it is).
pub fn expire(state: &mut DesiredState, now: Timestamp) -> Vec<Diagnostic> {
    let pointer = format!("/metadata/annotations/{}", EXPIRES_AT.replace('/', "~1"));
    let mut found = Vec::new();
    for object in state.objects.iter_mut().filter(|o| o.id.kind == Kind::Grant) {
        let Some(value) = object.body.pointer(&pointer).and_then(|v| v.as_str()).map(str::to_string) else { continue };
        // Asked for only when a diagnostic is made: a position builds the span map of the whole
        // file (a second parse, kept), which every time-bound grant of the tree paid at each
        // validation (a third of a cached validate at 105,000 objects, #30).
        let at = || object.pos(&pointer);
        let path = format!("metadata.annotations[{EXPIRES_AT}]");
        let expires = match value.parse::<Timestamp>() {
            Ok(expires) => expires,
            Err(e) => {
                found.push(
                    Diagnostic::error(
                        Code::SchemaViolation,
                        &object.origin.file,
                        at(),
                        format!("{EXPIRES_AT} {value:?} is not an RFC 3339 time ({e})"),
                    )
                    .object(&object.id)
                    .path(path)
                    .hint("write it like 2030-01-31T18:00:00Z"),
                );
                continue;
            }
        };
        if now < expires {
            continue;
        }
        let at = at();
        if let Some(spec) = Arc::make_mut(&mut object.body).get_mut("spec").and_then(|s| s.as_object_mut()) {
            spec.insert("disabled".into(), true.into());
        }
        if let Spec::Grant(grant) = Arc::make_mut(&mut object.spec) {
            grant.disabled = true;
        }
        found.push(
            Diagnostic::warning(
                Code::GrantExpired,
                &object.origin.file,
                at,
                format!("grant expired at {value}: it is applied as spec.disabled: true and grants nothing"),
            )
            .object(&object.id)
            .path(path)
            .hint("remove the grant from the repository, or move its expiry forward"),
        );
    }
    found
}
