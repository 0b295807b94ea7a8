//! Evaluating policies under the time budget: takes the compiled policies, the objects to
//! evaluate (with what the cache already knows of them), the `servers` index and `now`; gives back
//! what each object's policies found, in the objects' order, and the entries to keep in the cache.
//! Holds the budget itself and the bookkeeping of the expressions that overran it in this process.

use super::cache::matches_with_cache;
use super::{Evaluated, Part, Policy, Work, one_line, server_key};
use crate::model::object::pointer_to_path;
use crate::model::{Code, Diagnostic, Object, Pos};
use jiff::Timestamp;
use kube_cel::{KubeCelExt, cel};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// How long the guardrail policies together may run on one repository, unless
/// `MCP_GITOPS_POLICY_TIMEOUT` (seconds) says otherwise. Sound policies take microseconds per
/// object; CEL has no cost limit here, so one whose cost has no bound (comprehensions nested over
/// lists, `[..].all(a, [..].all(b, ...))`) is stopped at this budget and reported, instead of
/// hanging validate, CI and the daemon.
const EVALUATION_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

pub(super) fn budget() -> std::time::Duration {
    std::env::var("MCP_GITOPS_POLICY_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(EVALUATION_BUDGET, std::time::Duration::from_secs_f64)
}

/// Expressions that overran the budget in this process.
pub(super) fn overrun() -> &'static Mutex<std::collections::HashSet<String>> {
    static OVERRUN: std::sync::OnceLock<Mutex<std::collections::HashSet<String>>> = std::sync::OnceLock::new();
    OVERRUN.get_or_init(Default::default)
}

pub(super) fn overrun_diagnostic(name: String, file: String, pos: Pos, object: &str, limit: std::time::Duration) -> Diagnostic {
    Diagnostic::error(
        Code::PolicyError,
        &file,
        Pos { line: pos.line.max(1), column: pos.column.max(1) },
        format!(
            "policy {name} did not finish within {}s (on {object}): its cost grows without bound (comprehensions nested over lists?); it was stopped",
            limit.as_secs_f64()
        ),
    )
    .object(format!("GuardrailPolicy/{name}"))
    .path("spec.expression")
    .hint("rewrite the expression without nesting all/exists/map/filter over lists, or switch the policy off in mcp-gitops.yaml")
}

/// Objects per unit of parallel work: big enough that the hand-over is noise, small enough that
/// a core slowed by another process does not keep the others waiting.
const OBJECTS_PER_CHUNK: usize = 64;

/// What each evaluating thread is on: (policy index, object id), for the report of an overrun.
pub(super) type Running = Mutex<HashMap<std::thread::ThreadId, (usize, String)>>;

/// The worker of `check`: every policy on every object it matches.
///
/// Turning a JSON value into a CEL value costs as much as evaluating a policy, so each value is
/// converted once: `servers` and `now` in one root scope shared by all policies and threads,
/// `server` once per object, `object` once per object and set of parts read (each policy sees
/// only the parts of the object it reads: `pruned`), and only `params` per policy.
/// Objects are spread over the cores; the findings come out in the sequential order.
pub(super) fn evaluate_all(
    policies: &[Policy],
    work: &[Work],
    servers: &Map<String, Value>,
    now: Timestamp,
    running: &Running,
) -> Vec<Evaluated> {
    let servers_value = cel_map(servers.iter().map(|(key, entry)| (key, to_cel(entry))));
    let now_value = cel::Program::compile(&format!("timestamp('{}')", now.strftime("%Y-%m-%dT%H:%M:%SZ")))
        .ok()
        .and_then(|p| p.execute(&cel::Context::default()).ok())
        .unwrap_or(cel::Value::Null);
    // Converted once and shared by every policy (CEL values are reference-counted).
    let server_values: BTreeMap<&String, cel::Value> = servers.iter().map(|(k, v)| (k, to_cel(v))).collect();
    let params: Vec<cel::Value> = policies.iter().map(|policy| cel_map(policy.params.iter().map(|(k, v)| (k, to_cel(v))))).collect();
    let mut root = cel::Context::default().with_all();
    root.add_function("matches", matches_with_cache());
    root.add_variable_from_value("servers", servers_value);
    root.add_variable_from_value("now", now_value);
    let on = |entry: Option<(usize, String)>| {
        if let Ok(mut running) = running.lock() {
            let thread = std::thread::current().id();
            match entry {
                Some(entry) => running.insert(thread, entry),
                None => running.remove(&thread),
            };
        }
    };
    // Policies that read the same parts of `object` share its CEL value.
    let mut shapes: Vec<&Vec<Vec<String>>> = Vec::new();
    let shape_of: Vec<usize> = policies
        .iter()
        .map(|policy| {
            shapes.iter().position(|s| **s == policy.reads).unwrap_or_else(|| {
                shapes.push(&policy.reads);
                shapes.len() - 1
            })
        })
        .collect();
    let shapes: Vec<Vec<&[String]>> = shapes.iter().map(|paths| paths.iter().map(Vec::as_slice).collect()).collect();
    crate::parallel::ordered_map(work, OBJECTS_PER_CHUNK, |Work { object, key, known }| {
        let matching: Vec<usize> = (0..policies.len()).filter(|&i| policies[i].kinds.contains(&object.id.kind)).collect();
        let evaluated = |i: &usize| known.is_none() || !policies[*i].cacheable;
        let mut scope = root.new_inner_scope();
        if matching.iter().any(|i| evaluated(i) && policies[*i].reads_server) {
            scope.add_variable_from_value("server", server_values.get(&server_key(object)).cloned().unwrap_or(cel::Value::Null));
        }
        let mut values: Vec<Option<cel::Value>> = vec![None; shapes.len()];
        let found: Vec<(usize, Diagnostic)> = matching
            .into_iter()
            .filter_map(|i| {
                if !evaluated(&i) {
                    return known.iter().flatten().find(|(j, _)| *j == i).cloned();
                }
                on(Some((i, object.id.to_string())));
                let value = values[shape_of[i]].get_or_insert_with(|| pruned(&object.body, &shapes[shape_of[i]]));
                let mut context = scope.new_inner_scope();
                context.add_variable_from_value("object", value.clone());
                context.add_variable_from_value("params", params[i].clone());
                evaluate(&policies[i], object, &context).map(|found| (i, found))
            })
            .collect();
        on(None);
        let made = key
            .filter(|_| known.is_none())
            .map(|key| (key, found.iter().filter(|(i, _)| policies[*i].cacheable).cloned().collect::<Vec<(usize, Diagnostic)>>()));
        (found.into_iter().map(|(_, found)| found).collect(), made)
    })
}

fn evaluate(policy: &Policy, object: &Object, context: &cel::Context) -> Option<Diagnostic> {
    let failed = |message: String| {
        Diagnostic::error(Code::PolicyError, &object.origin.file, object.pos(""), message)
            .object(&object.id)
            .hint(format!("fix policy {} ({}:{}), or switch it off in mcp-gitops.yaml", policy.name, policy.file, policy.pos.line))
    };
    match policy.program.execute(context) {
        Ok(cel::Value::Bool(true)) => None,
        Ok(cel::Value::Bool(false)) => {
            // The field the rule is about, or the object's first line when it is absent.
            let pointer = policy.field.clone().filter(|p| object.body.pointer(p).is_some()).unwrap_or_default();
            let message = format!("[{}] {}", policy.name, render_message(&policy.message, context));
            let mut diagnostic =
                Diagnostic::new(policy.severity, Code::PolicyViolation, &object.origin.file, object.pos(&pointer), message)
                    .object(&object.id)
                    .hint(origin_hint(policy));
            if !pointer.is_empty() {
                diagnostic = diagnostic.path(pointer_to_path(&pointer));
            }
            Some(diagnostic)
        }
        Ok(other) => Some(failed(format!("policy {} did not evaluate to a boolean on this object (got {})", policy.name, text_of(&other)))),
        Err(e) => Some(failed(format!("policy {} failed to evaluate on this object: {e}", policy.name))),
    }
}

/// How the hint of a built-in policy's finding starts (`built_in_policy` reads it back).
const BUILT_IN: &str = "built-in policy ";

/// The name of the built-in policy whose violation `diagnostic` is, if it is one: what the
/// ratchet weighs (`validate::ratchet`). Read from the hint, the one place every finding (the
/// cache's too) carries its origin.
pub fn built_in_policy(diagnostic: &Diagnostic) -> Option<&str> {
    if diagnostic.code != Code::PolicyViolation {
        return None;
    }
    let rest = diagnostic.hint.strip_prefix(BUILT_IN)?;
    rest.split_once(" (docs/policies.md)").map(|(name, _)| name)
}

/// Where the policy comes from and how to switch it off: a built-in one is not a file of the repository.
fn origin_hint(policy: &Policy) -> String {
    let switch = "switch it off or override it under policies: in mcp-gitops.yaml";
    if policy.built_in {
        format!("{BUILT_IN}{} (docs/policies.md); {switch}", policy.name)
    } else {
        format!("policy {} ({}); {switch}", policy.name, policy.file)
    }
}

fn render_message(parts: &[Part], context: &cel::Context) -> String {
    let text: String = parts
        .iter()
        .map(|part| match part {
            Part::Text(text) => text.clone(),
            Part::Expression(program, source) => match program.execute(context) {
                Ok(value) => text_of(&value),
                Err(_) => format!("{{{{{source}}}}}"),
            },
        })
        .collect();
    one_line(&text)
}

fn text_of(value: &cel::Value) -> String {
    match value {
        cel::Value::String(s) => s.to_string(),
        cel::Value::Int(i) => i.to_string(),
        cel::Value::UInt(u) => u.to_string(),
        cel::Value::Float(f) => f.to_string(),
        cel::Value::Bool(b) => b.to_string(),
        cel::Value::Null => "null".into(),
        cel::Value::List(items) => items.iter().map(text_of).collect::<Vec<_>>().join(", "),
        other => format!("{other:?}"),
    }
}

/// `value` as a CEL value with only the parts at `paths` (each kept whole); all of it when a
/// path is empty. A policy evaluated on it sees what it would see on the whole value: CEL copies
/// a map each time a field of it is selected, so the less there is, the less is copied.
pub(super) fn pruned(value: &Value, paths: &[&[String]]) -> cel::Value {
    match value {
        Value::Object(map) if !paths.iter().any(|p| p.is_empty()) => cel_map(map.iter().filter_map(|(key, child)| {
            let below: Vec<&[String]> = paths.iter().filter(|p| p[0] == *key).map(|p| &p[1..]).collect();
            (!below.is_empty()).then(|| (key, pruned(child, &below)))
        })),
        _ => to_cel(value),
    }
}

/// The CEL value of a JSON value, as `cel::to_value` makes it (a non-negative integer is a
/// `uint`, a negative one an `int`), without going through serde.
// pub(super): compile's tests build their CEL contexts with it.
pub(super) fn to_cel(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => cel::Value::UInt(u),
            (None, Some(i)) => cel::Value::Int(i),
            (None, None) => cel::Value::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(text) => cel::Value::String(Arc::new(text.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(map) => cel_map(map.iter().map(|(key, child)| (key, to_cel(child)))),
    }
}

fn cel_map<'a>(entries: impl Iterator<Item = (&'a String, cel::Value)>) -> cel::Value {
    let map = entries.map(|(key, value)| (cel::objects::Key::String(Arc::new(key.clone())), value)).collect();
    cel::Value::Map(cel::objects::Map { map: Arc::new(map) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pruned_object_keeps_whole_what_is_read_and_nothing_else() {
        let object = json!({"kind": "K", "metadata": {"name": "n", "labels": {"a": "b"}}, "spec": {"x": {"y": [1, -2, 0.5]}, "z": 3}});
        let path = |p: &'static [&str]| p.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        let prune = |paths: &[Vec<String>]| pruned(&object, &paths.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let cel = |value: Value| cel::to_value(value).expect("converts");
        assert_eq!(
            prune(&[path(&["spec", "x"]), path(&["metadata", "name"]), path(&["spec", "absent"])]),
            cel(json!({"metadata": {"name": "n"}, "spec": {"x": {"y": [1, -2, 0.5]}}}))
        );
        // Whole: the value serde would make, numbers included.
        assert_eq!(prune(&[path(&[]), path(&["kind"])]), cel(object.clone()));
        // Selecting into a value that is not a map keeps the value, so the same error follows.
        assert_eq!(prune(&[path(&["kind", "deeper"])]), cel(json!({"kind": "K"})));
    }
}
