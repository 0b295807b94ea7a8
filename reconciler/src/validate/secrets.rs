//! Credential material in the repository (`secret_in_repo`). Every string value of every
//! document is matched against well-known token shapes. The diagnostic names the kind of
//! credential and its position, never the value, and asks renderers to hide the source line.
//! What a file holds is kept in the cache (`validate_cached`).

use crate::cache::{Key, Pack};
use crate::load::Loaded;
use crate::model::object::{pointer_segment, pointer_to_path};
use crate::model::{Code, Diagnostic, Pos};
use regex::RegexSet;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

const SHAPES: &[(&str, &str)] = &[
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----", "a private key"),
    (r"\bgh[pousr]_[A-Za-z0-9]{30,}", "a GitHub token"),
    (r"\bgithub_pat_[A-Za-z0-9_]{40,}", "a GitHub token"),
    (r"\bglpat-[A-Za-z0-9_-]{20,}", "a GitLab token"),
    (r"\bxox[abprs]-[A-Za-z0-9-]{10,}", "a Slack token"),
    (r"\bAKIA[0-9A-Z]{16}\b", "an AWS access key"),
    (r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", "a JSON Web Token"),
    (r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{20,}", "a bearer token"),
    (r"\bsk-[A-Za-z0-9_-]{32,}", "an API secret key"),
];

fn shapes() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    #[allow(clippy::expect_used)] // constant patterns, covered by tests
    SET.get_or_init(|| RegexSet::new(SHAPES.iter().map(|(re, _)| re)).expect("credential patterns compile"))
}

/// What kind of credential `text` looks like, if any.
pub fn credential_kind(text: &str) -> Option<&'static str> {
    // Telling whether any shape matches is much cheaper than telling which.
    if !shapes().is_match(text) {
        return None;
    }
    shapes().matches(text).iter().next().map(|i| SHAPES[i].1)
}

/// Scans every document; a file the cache has the findings of (by its key and the default
/// namespace, which a document without one takes) is not scanned again.
pub fn check(loaded: &Loaded, cache: &Pack, diagnostics: &mut Vec<Diagnostic>) {
    let namespace = loaded.state.config.default_namespace();
    let key = |file: &str| loaded.keys.get(file).map(|key| Key::of(&[b"secrets", &key.bytes(), namespace.as_bytes()]));
    let known: BTreeMap<&str, Vec<Diagnostic>> = loaded
        .keys
        .keys()
        .filter_map(|file| {
            Some((file.as_str(), cache.get::<Vec<Diagnostic>>(&key(file)?)?.into_iter().map(Diagnostic::redacted).collect()))
        })
        .collect();
    // What the files the cache has not are found to hold, to keep there.
    let mut by_file: BTreeMap<&str, Vec<Diagnostic>> =
        loaded.keys.keys().filter(|file| !known.contains_key(file.as_str())).map(|file| (file.as_str(), Vec::new())).collect();
    let mut add = |file: &str, diagnostic: Diagnostic| match by_file.get_mut(file) {
        Some(found) => found.push(diagnostic),
        None => diagnostics.push(diagnostic),
    };
    for object in loaded.state.objects.iter().filter(|o| !o.origin.from_metadata && !known.contains_key(o.origin.file.as_str())) {
        scan(&object.body, &mut String::new(), &mut |pointer, kind| {
            let path = pointer_to_path(&pointer);
            add(&object.origin.file, found(&object.origin.file, object.origin.pos(&pointer), kind, &path).object(&object.id));
        });
    }
    for document in loaded.metadata.iter().chain(&loaded.others).filter(|d| !known.contains_key(d.file.as_str())) {
        scan(&document.value, &mut String::new(), &mut |pointer, kind| {
            let pos = document.spans.values.get(&pointer).copied().unwrap_or(Pos { line: 1, column: 1 });
            add(&document.file, found(&document.file, pos, kind, &pointer_to_path(&pointer)));
        });
    }
    for (file, found) in by_file {
        if let Some(key) = key(file) {
            cache.put(key, &found);
        }
        diagnostics.extend(found);
    }
    diagnostics.extend(known.into_values().flatten());
}

fn found(file: &str, pos: Pos, kind: &str, path: &str) -> Diagnostic {
    Diagnostic::error(Code::SecretInRepo, file, pos, format!("this value looks like {kind}; credentials must not be stored in git"))
        .path(path)
        .hint("revoke the credential now (it is in the git history), store it in a Kubernetes Secret and reference it with upstreamTokenSecretRef")
        .redacted()
}

/// Calls `found` with the pointer and the kind of every string below `value` (at `pointer`) that
/// looks like a credential. The walk shares one pointer: almost no string is a credential.
fn scan(value: &Value, pointer: &mut String, found: &mut impl FnMut(String, &'static str)) {
    let at = pointer.len();
    let mut below = |segment: &dyn std::fmt::Display, value: &Value, pointer: &mut String| {
        // Writing to a String cannot fail.
        let _ = write!(pointer, "/{segment}");
        scan(value, pointer, found);
        pointer.truncate(at);
    };
    match value {
        Value::String(text) => {
            if let Some(kind) = credential_kind(text) {
                found(pointer.clone(), kind);
            }
        }
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| below(&i, v, pointer)),
        Value::Object(map) => map.iter().for_each(|(k, v)| below(&pointer_segment(k), v, pointer)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::credential_kind;

    #[test]
    fn token_shapes_are_recognised_and_references_are_not() {
        assert_eq!(credential_kind("ghp_0123456789abcdefghijABCDEFGHIJ0123456789"), Some("a GitHub token"));
        assert_eq!(credential_kind("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijkl"), Some("a JSON Web Token"));
        assert_eq!(credential_kind("-----BEGIN RSA PRIVATE KEY-----"), Some("a private key"));
        assert_eq!(credential_kind("payments-upstream-token"), None);
        assert_eq!(credential_kind("Authorization"), None);
    }
}
