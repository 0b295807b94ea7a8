//! Normalized YAML of an object and the unified diff between two of them.

use serde_json::Value;
use similar::TextDiff;

/// Metadata the API server owns; never part of a diff.
const SERVER_METADATA: &[&str] = &[
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "managedFields",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The object as compared: no status, no server-owned metadata, no empty containers.
pub fn normalize(body: &Value) -> Value {
    let mut body = body.clone();
    if let Value::Object(map) = &mut body {
        map.remove("status");
        if let Some(Value::Object(metadata)) = map.get_mut("metadata") {
            for key in SERVER_METADATA {
                metadata.remove(*key);
            }
        }
    }
    prune_empty(&mut body);
    body
}

/// Drops nulls and empty maps, which the API server does not store either.
fn prune_empty(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.values_mut().for_each(prune_empty);
            map.retain(|_, v| !v.is_null() && !matches!(v, Value::Object(m) if m.is_empty()));
        }
        Value::Array(items) => items.iter_mut().for_each(prune_empty),
        _ => {}
    }
}

pub fn to_yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|e| format!("# cannot render as YAML: {e}\n"))
}

/// A unified diff (3 lines of context) from `before` to `after`; `None` is an absent object.
/// Values that look like credentials are masked (`validate` reports them as `secret_in_repo`).
pub fn unified(before: Option<&Value>, after: Option<&Value>) -> String {
    let before = before.map(|v| to_yaml(&masked(v))).unwrap_or_default();
    let after = after.map(|v| to_yaml(&masked(v))).unwrap_or_default();
    TextDiff::from_lines(&before, &after).unified_diff().context_radius(3).header("before", "after").to_string()
}

/// `value` with every string that looks like a credential replaced by what kind it is and a
/// short digest, so that a diff still shows that it changed but never what it is.
pub fn masked(value: &Value) -> Value {
    match value {
        Value::String(text) => match crate::validate::secrets::credential_kind(text) {
            Some(kind) => {
                use sha2::{Digest, Sha256};
                let digest = hex::encode(Sha256::digest(text.as_bytes()));
                Value::String(format!("<hidden: {kind}, sha256 {}>", &digest[..8]))
            }
            None => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), masked(v))).collect()),
        other => other.clone(),
    }
}

/// Serializes a plan's documents masked (`masked`); the plan in memory keeps them as they are.
pub fn serialize_masked<S: serde::Serializer>(value: &Option<Value>, serializer: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&value.as_ref().map(masked), serializer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_owned_fields_do_not_count() {
        let a = json!({"metadata": {"name": "g", "resourceVersion": "7", "uid": "x"}, "spec": {"a": 1}, "status": {"phase": "Ready"}});
        let b = json!({"metadata": {"name": "g", "annotations": {}}, "spec": {"a": 1, "b": null}});
        assert_eq!(normalize(&a), normalize(&b));
    }

    #[test]
    fn credentials_are_masked_but_their_change_shows() {
        let token = |c: char| format!("ghp_{}", c.to_string().repeat(36));
        let diff = unified(
            Some(&json!({"metadata": {"annotations": {"t": token('a')}}})),
            Some(&json!({"metadata": {"annotations": {"t": token('b')}}})),
        );
        assert!(!diff.contains("ghp_"), "{diff}");
        assert!(
            diff.contains("-    t: \"<hidden: a GitHub token, sha256 ") && diff.contains("+    t: \"<hidden: a GitHub token, sha256 "),
            "{diff}"
        );
    }

    #[test]
    fn diffs_show_the_changed_field() {
        let diff = unified(Some(&json!({"spec": {"maxTrust": "low", "x": 1}})), Some(&json!({"spec": {"maxTrust": "high", "x": 1}})));
        assert!(diff.contains("-  maxTrust: low\n"), "{diff}");
        assert!(diff.contains("+  maxTrust: high\n"), "{diff}");
    }
}
