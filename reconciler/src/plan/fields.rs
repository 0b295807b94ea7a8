//! Reading `metadata.managedFields`: which fields of a live object mcp-gitops owns (so that a
//! re-apply of unchanged content is recognised without a request) and which manager owns a
//! field that drifted.

use serde_json::{Map, Value};

/// The managedFields `fieldsV1` trie of one manager's `Apply` entry, if any.
fn fields_of<'a>(live: &'a Value, manager: &str, operation: Option<&str>) -> impl Iterator<Item = &'a Value> {
    live.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |e| e["manager"] == manager && operation.is_none_or(|op| e["operation"] == op))
        .filter_map(|e| e.get("fieldsV1"))
}

/// Whether `manager` has applied (server-side apply) any field of the live object: what makes an
/// object ours to prune, beyond labels anyone can copy.
pub fn applied_by(live: &Value, manager: &str) -> bool {
    fields_of(live, manager, Some("Apply")).next().is_some()
}

/// The live object as mcp-gitops sees it: the fields it owns, and the fields the desired object
/// names (with their live values). Fields only other managers care about are left out, since a
/// server-side apply leaves them alone.
pub fn view(live: &Value, desired: &Value, manager: &str) -> Value {
    let owned: Vec<&Value> = fields_of(live, manager, Some("Apply")).collect();
    let mut out = Map::new();
    for key in ["apiVersion", "kind"] {
        if let Some(v) = live.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Value::Object(view) = project(live, Some(desired), &owned) {
        for (k, v) in view {
            out.entry(k).or_insert(v);
        }
    }
    if let (Some(Value::Object(metadata)), Some(live_meta)) = (out.get_mut("metadata"), live.get("metadata")) {
        for key in ["name", "namespace"] {
            if let Some(v) = live_meta.get(key) {
                metadata.insert(key.into(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn project(live: &Value, desired: Option<&Value>, owned: &[&Value]) -> Value {
    let Value::Object(map) = live else { return live.clone() };
    let mut out = Map::new();
    for (key, value) in map {
        let field = format!("f:{key}");
        let owned_here: Vec<&Value> = owned.iter().filter_map(|trie| trie.get(&field)).collect();
        let wanted = desired.and_then(|d| d.get(key));
        if owned_here.is_empty() && wanted.is_none() {
            continue;
        }
        // A leaf in the trie owns the whole value (a scalar or an atomic list).
        let whole = owned_here.iter().any(|t| t.as_object().is_none_or(Map::is_empty));
        let projected = if whole || !value.is_object() { value.clone() } else { project(value, wanted, &owned_here) };
        out.insert(key.clone(), projected);
    }
    Value::Object(out)
}

/// Managers other than `ours` that own the field at `path` (a pointer such as `/spec/maxTrust`).
pub fn other_managers(live: &Value, path: &str, ours: &str) -> Vec<String> {
    let Some(entries) = live.pointer("/metadata/managedFields").and_then(Value::as_array) else { return Vec::new() };
    let mut managers: Vec<String> = entries
        .iter()
        .filter(|e| e["manager"] != ours)
        .filter(|e| e.get("fieldsV1").is_some_and(|trie| owns(trie, path)))
        .filter_map(|e| e["manager"].as_str().map(String::from))
        .collect();
    managers.sort();
    managers.dedup();
    managers
}

fn owns(trie: &Value, path: &str) -> bool {
    let mut node = trie;
    for segment in path.split('/').skip(1) {
        match node.get(format!("f:{}", segment.replace("~1", "/").replace("~0", "~"))) {
            Some(child) => node = child,
            // Below an atomic list or a leaf: the whole value is owned here.
            None => return node.as_object().is_some_and(|m| m.is_empty()),
        }
    }
    true
}

/// Pointers of the leaves where `a` and `b` differ.
pub fn changed_paths(a: &Value, b: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    walk(a, b, String::new(), &mut paths);
    paths
}

fn walk(a: &Value, b: &Value, pointer: String, paths: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let child = format!("{pointer}/{}", crate::model::object::pointer_segment(key));
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => walk(p, q, child, paths),
                    _ => paths.push(child),
                }
            }
        }
        _ if a != b => paths.push(pointer),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live() -> Value {
        json!({
            "apiVersion": "mcpruntime.org/v1alpha1", "kind": "MCPAccessGrant",
            "metadata": {"name": "g", "namespace": "ns", "labels": {"a": "1", "theirs": "x"}, "resourceVersion": "5",
                "managedFields": [
                    {"manager": "mcp-gitops", "operation": "Apply", "fieldsV1": {"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:serverRef": {"f:name": {}}, "f:toolRules": {}}}},
                    {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:metadata": {"f:labels": {"f:theirs": {}}}, "f:spec": {"f:maxTrust": {}}}}
                ]},
            "spec": {"serverRef": {"name": "s"}, "toolRules": [{"name": "t", "decision": "allow"}], "maxTrust": "high"}
        })
    }

    #[test]
    fn the_view_keeps_owned_and_desired_fields_only() {
        let desired = json!({"metadata": {"name": "g", "labels": {"a": "1"}}, "spec": {"serverRef": {"name": "s"}, "maxTrust": "low"}});
        let v = view(&live(), &desired, "mcp-gitops");
        assert_eq!(v["metadata"]["labels"], json!({"a": "1"}), "a label only another manager set is not ours to diff");
        assert_eq!(v["spec"]["maxTrust"], "high", "a desired field shows its live value");
        assert_eq!(v["spec"]["toolRules"][0]["name"], "t", "an owned field the desired object dropped still shows");
        assert_eq!(other_managers(&live(), "/spec/maxTrust", "mcp-gitops"), ["kubectl-edit"]);
        assert_eq!(other_managers(&live(), "/spec/toolRules/0/name", "mcp-gitops"), Vec::<String>::new());
        assert_eq!(changed_paths(&json!({"a": 1, "b": {"c": 2}}), &json!({"a": 1, "b": {"c": 3}, "d": 4})), ["/b/c", "/d"]);
    }
}
