//! Guardrail policies: organisation rules in CEL (with the Kubernetes CEL libraries), evaluated
//! on every object they match. Policies are the defaults shipped in `policies/` (compiled into
//! the binary), GuardrailPolicy documents found in the repository and in the directories
//! `mcp-gitops.yaml` adds; a later policy of the same name replaces an earlier one.
//!
//! CEL context: `object` (the document as the API server would store it), `server` (the server
//! it targets, or itself, from the metadata index; null when unknown), `servers` (the index:
//! "namespace/name" -> {name, namespace, teamID, tools: name -> {requiredTrust, sideEffect,
//! riskLevel}}), `now` (a timestamp) and `params`.
//!
//! What the policies that read neither `now` nor `servers` find on an object is kept in the cache
//! (`cache_keys`): an unchanged object is not evaluated again by them.
//!
//! Three rooms, walked in order by `check`: `compile` turns documents into the policies in force,
//! `cache` keys what the cacheable ones find on each object, `evaluate` runs them under the time
//! budget.

mod cache;
mod compile;
mod evaluate;
mod flips;

use crate::cache::{Key, Pack};
use crate::load::Loaded;
use crate::model::{Code, Diagnostic, Kind, Object, Pos, Severity};
use cache::cache_keys;
use compile::{Compiled, policies};
pub(super) use evaluate::built_in_policy;
use evaluate::{Running, budget, evaluate_all, overrun, overrun_diagnostic};
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The default policies, compiled into the binary so that it needs no files at run time.
pub const DEFAULTS: &[(&str, &str)] = &[
    (
        "policies/destructive-grants-need-high-trust-and-a-human.yaml",
        include_str!("../../../../policies/destructive-grants-need-high-trust-and-a-human.yaml"),
    ),
    ("policies/sessions-expire-within-a-day.yaml", include_str!("../../../../policies/sessions-expire-within-a-day.yaml")),
    ("policies/no-cross-namespace-server-ref.yaml", include_str!("../../../../policies/no-cross-namespace-server-ref.yaml")),
    ("policies/grants-list-side-effects.yaml", include_str!("../../../../policies/grants-list-side-effects.yaml")),
    ("policies/team-wide-grants-are-read-only.yaml", include_str!("../../../../policies/team-wide-grants-are-read-only.yaml")),
    ("policies/human-ids-look-right.yaml", include_str!("../../../../policies/human-ids-look-right.yaml")),
    ("policies/destructive-grants-expire.yaml", include_str!("../../../../policies/destructive-grants-expire.yaml")),
];

/// Evaluates every policy on every object it matches, except `skipped` objects (those that
/// already failed their schema: a policy over a malformed object only adds noise). The
/// evaluation runs on a worker thread and is abandoned when it overruns the budget (`budget`).
pub fn check(
    loaded: &Loaded,
    now: Timestamp,
    skipped: &std::collections::HashSet<String>,
    cache: &Pack,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut policies = policies(loaded, diagnostics);
    // A policy that overran once is not run again by this process (the daemon would otherwise
    // leave one more spinning thread behind on every reconcile of the same commit).
    policies.retain(|policy| {
        let overran = overrun().lock().map(|o| o.contains(&policy.expression)).unwrap_or(false);
        if overran {
            diagnostics.push(overrun_diagnostic(
                policy.name.clone(),
                policy.file.clone(),
                policy.expression_pos,
                "an earlier run",
                budget(),
            ));
        }
        !overran
    });
    if policies.is_empty() {
        return;
    }
    let expressions: Vec<String> = policies.iter().map(|p| p.expression.clone()).collect();
    let names: Vec<(String, String, Pos)> = policies.iter().map(|p| (p.name.clone(), p.file.clone(), p.expression_pos)).collect();
    let servers = server_index(loaded);
    let objects: Vec<&Object> = loaded
        .state
        .objects
        .iter()
        .filter(|o| !skipped.contains(&o.id.to_string()) && policies.iter().any(|p| p.kinds.contains(&o.id.kind)))
        .collect();
    let keys = cache_keys(loaded, &policies, &servers, &objects, cache);
    let work: Vec<Work> = objects
        .into_iter()
        .zip(keys)
        .map(|(object, key)| Work { object: object.clone(), known: key.and_then(|key| cache.get(&key)), key })
        .collect();
    let running = Arc::new(Running::default());
    let (sender, receiver) = std::sync::mpsc::channel();
    let progress = running.clone();
    let worker = std::thread::Builder::new().name("guardrails".into()).spawn(move || {
        let _ = sender.send(evaluate_all(&policies, &work, &servers, now, &progress));
    });
    if worker.is_err() {
        diagnostics.push(Diagnostic::error(
            Code::PolicyError,
            crate::load::CONFIG_FILE,
            Pos { line: 1, column: 1 },
            "cannot start the guardrail evaluation thread".to_string(),
        ));
        return;
    }
    let limit = budget();
    match receiver.recv_timeout(limit) {
        Ok(found) => {
            for (found, made) in found {
                diagnostics.extend(found);
                // (The cache does not keep `redact_source`; no policy sets it.)
                if let Some((key, findings)) = made.filter(|(_, findings)| findings.iter().all(|(_, d)| !d.redact_source)) {
                    cache.put(key, &findings);
                }
            }
        }
        Err(_) => {
            // The evaluations still running are the ones that overran.
            let (index, object) = running.lock().ok().and_then(|r| r.values().next().cloned()).unwrap_or_default();
            let (name, file, pos) = names.get(index).cloned().unwrap_or_default();
            if let (Ok(mut overrun), Some(expression)) = (overrun().lock(), expressions.get(index)) {
                overrun.insert(expression.clone());
            }
            diagnostics.push(overrun_diagnostic(name, file, pos, &object, limit));
        }
    }
}

pub(super) use flips::instants as now_instants;

/// One piece of a message template: text, or a `{{ expression }}`.
enum Part {
    Text(String),
    Expression(Compiled, String),
}

struct Policy {
    name: String,
    kinds: Vec<Kind>,
    program: Compiled,
    /// The parts of `object` the expression and the message read (`reads`).
    reads: Vec<Vec<String>>,
    /// Whether the expression or the message reads `server` (bound only for such policies:
    /// converting a server's entry for CEL costs more than most evaluations).
    reads_server: bool,
    /// Whether the expression or the message reads `now` (what it finds may change with the clock).
    reads_now: bool,
    /// Whether what it finds on an object depends on the object and its server alone: it reads
    /// neither `now` nor `servers` (its findings can be kept in the cache).
    cacheable: bool,
    /// The expression as written: the key under which an overrun is remembered.
    expression: String,
    expression_pos: Pos,
    message: Vec<Part>,
    severity: Severity,
    /// Pointer of the field findings point at (`/spec/maxTrust`), if the policy names one.
    field: Option<String>,
    params: Map<String, Value>,
    file: String,
    /// One of the `DEFAULTS`, compiled into the binary: its `file` is not in the repository.
    built_in: bool,
    pos: Pos,
}

/// An object to evaluate, with its cache key and what the cacheable policies found on it in an
/// earlier run (by policy index), when the cache has it.
struct Work {
    object: Object,
    key: Option<Key>,
    known: Option<Vec<(usize, Diagnostic)>>,
}

/// What the policies found on one object, and the entry to keep in the cache for it.
type Evaluated = (Vec<Diagnostic>, Option<(Key, Vec<(usize, Diagnostic)>)>);

/// The metadata index the expressions see as `servers`.
fn server_index(loaded: &Loaded) -> Map<String, Value> {
    loaded
        .state
        .of_kind(Kind::Server)
        .filter_map(|o| {
            let spec = o.server()?;
            let tools: Map<String, Value> = spec
                .tools
                .iter()
                .map(|t| {
                    (t.name.clone(), json!({"requiredTrust": t.required_trust, "sideEffect": t.side_effect, "riskLevel": t.risk_level}))
                })
                .collect();
            let entry = json!({"name": o.id.name, "namespace": o.id.namespace, "teamID": spec.team_id, "tools": tools});
            Some((format!("{}/{}", o.id.namespace, o.id.name), entry))
        })
        .collect()
}

/// The index key of the server an object is about: itself, or the one it targets.
fn server_key(object: &Object) -> String {
    match crate::gateway::render::targets(object) {
        Some((namespace, name)) => format!("{namespace}/{name}"),
        None => format!("{}/{}", object.id.namespace, object.id.name),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
