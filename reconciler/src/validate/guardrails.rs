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

use crate::cache::{Key, Pack};
use crate::load::{Loaded, RawDocument};
use crate::model::object::{pointer_segment, pointer_to_path};
use crate::model::{Code, Diagnostic, Kind, Object, Pos, Severity};
use crate::schema::schemas;
use jiff::Timestamp;
use kube_cel::{KubeCelExt, cel};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The default policies, compiled into the binary so that it needs no files at run time.
pub const DEFAULTS: &[(&str, &str)] = &[
    (
        "policies/destructive-grants-need-high-trust-and-a-human.yaml",
        include_str!("../../../policies/destructive-grants-need-high-trust-and-a-human.yaml"),
    ),
    ("policies/sessions-expire-within-a-day.yaml", include_str!("../../../policies/sessions-expire-within-a-day.yaml")),
    ("policies/no-cross-namespace-server-ref.yaml", include_str!("../../../policies/no-cross-namespace-server-ref.yaml")),
    ("policies/grants-list-side-effects.yaml", include_str!("../../../policies/grants-list-side-effects.yaml")),
    ("policies/team-wide-grants-are-read-only.yaml", include_str!("../../../policies/team-wide-grants-are-read-only.yaml")),
    ("policies/human-ids-look-right.yaml", include_str!("../../../policies/human-ids-look-right.yaml")),
    ("policies/destructive-grants-expire.yaml", include_str!("../../../policies/destructive-grants-expire.yaml")),
];

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
    pos: Pos,
}

/// Parses, checks and compiles one GuardrailPolicy document; problems become diagnostics.
fn compile(document: &RawDocument, diagnostics: &mut Vec<Diagnostic>) -> Option<Policy> {
    let pos = |pointer: &str| document.spans.values.get(pointer).copied().unwrap_or(Pos { line: 1, column: 1 });
    let before = diagnostics.len();
    for error in schemas().policy.iter_errors(&document.value) {
        let pointer = error.instance_path().as_str().to_string();
        diagnostics.push(
            Diagnostic::error(Code::SchemaViolation, &document.file, pos(&pointer), error.to_string())
                .path(pointer_to_path(&pointer))
                .hint("see schema/policy.schema.json and docs/policies.md"),
        );
    }
    if diagnostics.len() > before {
        return None;
    }
    let spec = &document.value["spec"];
    let name = document.value["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let text = |key: &str| spec[key].as_str().unwrap_or_default().to_string();
    let invalid = |diagnostics: &mut Vec<Diagnostic>, pointer: &str, message: String| {
        diagnostics.push(
            Diagnostic::error(Code::PolicyError, &document.file, pos(pointer), message)
                .object(format!("GuardrailPolicy/{name}"))
                .path(pointer_to_path(pointer))
                .hint("fix the CEL; see docs/policies.md for the variables and functions available"),
        );
    };
    let program = match Compiled::compile(&text("expression")) {
        Ok(program) => program,
        Err(e) => {
            invalid(
                diagnostics,
                "/spec/expression",
                format!("policy {name}: the expression is not valid CEL: {}", one_line(&e.to_string())),
            );
            return None;
        }
    };
    let mut message = Vec::new();
    let mut rest = text("message");
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else { break };
        message.push(Part::Text(rest[..start].to_string()));
        let source = rest[start + 2..start + len].trim().to_string();
        match Compiled::compile(&source) {
            Ok(program) => message.push(Part::Expression(program, source)),
            Err(e) => {
                invalid(
                    diagnostics,
                    "/spec/message",
                    format!("policy {name}: {{{{ {source} }}}} in the message is not valid CEL: {}", one_line(&e.to_string())),
                );
                return None;
            }
        }
        rest = rest[start + len + 2..].to_string();
    }
    message.push(Part::Text(rest));
    let programs = || {
        std::iter::once(&program).chain(message.iter().filter_map(|part| match part {
            Part::Expression(program, _) => Some(program),
            Part::Text(_) => None,
        }))
    };
    let reading = |root: &str| {
        let mut reads = Vec::new();
        programs().for_each(|program| read_paths(program.expression(), root, &mut reads));
        reads.sort();
        reads.dedup();
        reads
    };
    let (reads, cacheable) = (reading("object"), reading("now").is_empty() && reading("servers").is_empty());
    Some(Policy {
        reads,
        reads_server: !reading("server").is_empty(),
        cacheable,
        kinds: spec["matchKinds"].as_array().into_iter().flatten().filter_map(|k| Kind::from_name(k.as_str()?)).collect(),
        program,
        expression: text("expression"),
        expression_pos: pos("/spec/expression"),
        message,
        severity: if spec["severity"] == "warning" { Severity::Warning } else { Severity::Error },
        field: spec["field"].as_str().map(|f| f.split('.').map(|s| format!("/{}", pointer_segment(s))).collect()),
        params: spec["params"].as_object().cloned().unwrap_or_default(),
        file: document.file.clone(),
        pos: pos(""),
        name,
    })
}

/// A CEL expression compiled for evaluation: every chain of field selections on `object`
/// (`object.spec.subject`) is evaluated as indexes (`object['spec']['subject']`). On a map, and
/// the objects evaluated passed their schema, the two give the same value; but CEL 0.13 copies a
/// map to select a field of it, and lends the element it indexes. The default policies read a
/// few fields many times each, over 20,000 objects.
struct Compiled {
    program: cel::Program,
    lent: cel::IdedExpr,
}

impl Compiled {
    fn compile(source: &str) -> Result<Compiled, cel::ParseErrors> {
        let program = cel::Program::compile(source)?;
        // Parsed again, not cloned: cloning walks the tree by recursion, and a policy's
        // expression may nest deeper than a thread's stack.
        let mut lent = cel::parser::Parser::default().parse(source)?;
        index_selections(&mut lent, "object");
        Ok(Compiled { program, lent })
    }

    /// The expression as written.
    fn expression(&self) -> &cel::IdedExpr {
        self.program.expression()
    }

    fn execute(&self, context: &cel::Context) -> cel::ResolveResult {
        cel::Value::resolve(&self.lent, context)
    }
}

/// Rewrites each field selection (not a `has()` test) in a chain that starts at the variable
/// `root` as an index by the field's name. Not below a comprehension that binds `root` (there
/// it is another value). Walks with a stack of its own, as `read_paths` does.
fn index_selections(expression: &mut cel::IdedExpr, root: &str) {
    use cel::common::ast::{CallExpr, EntryExpr, Expr, LiteralValue, operators};
    let rooted = |mut expression: &cel::IdedExpr| loop {
        match &expression.expr {
            Expr::Select(select) if !select.test => expression = &select.operand,
            Expr::Ident(name) => return name == root,
            _ => return false,
        }
    };
    let mut pending = vec![expression];
    while let Some(expression) = pending.pop() {
        if let Expr::Select(select) = &mut expression.expr
            && !select.test
            && rooted(&select.operand)
        {
            let field = cel::IdedExpr { id: expression.id, expr: Expr::Literal(LiteralValue::String(select.field.as_str().into())) };
            let operand = std::mem::take(&mut *select.operand);
            expression.expr = Expr::Call(CallExpr { func_name: operators::INDEX.to_string(), target: None, args: vec![operand, field] });
        }
        match &mut expression.expr {
            Expr::Select(select) => pending.push(&mut select.operand),
            Expr::Call(call) => pending.extend(call.target.iter_mut().map(|t| &mut **t).chain(&mut call.args)),
            Expr::Comprehension(c) => {
                let binds = c.iter_var == root || c.accu_var == root || c.iter_var2.as_deref() == Some(root);
                pending.extend([&mut c.iter_range, &mut c.accu_init]);
                if !binds {
                    pending.extend([&mut c.loop_cond, &mut c.loop_step, &mut c.result]);
                }
            }
            Expr::List(list) => pending.extend(&mut list.elements),
            Expr::Map(cel::common::ast::MapExpr { entries }) | Expr::Struct(cel::common::ast::StructExpr { entries, .. }) => {
                for entry in entries {
                    match &mut entry.expr {
                        EntryExpr::MapEntry(e) => pending.extend([&mut e.key, &mut e.value]),
                        EntryExpr::StructField(f) => pending.push(&mut f.value),
                    }
                }
            }
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
}

/// The parts of the variable `root` that an expression reads, as paths of fields: `object.spec.
/// toolRules.exists(...)` reads `["spec", "toolRules"]`; a use other than a chain of field
/// selections (`size(object)`, `object['spec']`) reads all of it (the empty path). The value a
/// chain ends at is read whole; the maps it passes through only for the field it selects.
/// Walks the tree with a stack of its own, not by recursion: a policy's expression comes from the
/// repository and may nest deeper than a thread's stack.
fn read_paths(expression: &cel::IdedExpr, root: &str, paths: &mut Vec<Vec<String>>) {
    use cel::common::ast::{EntryExpr, Expr};
    let mut pending = vec![expression];
    while let Some(expression) = pending.pop() {
        match &expression.expr {
            Expr::Select(select) => {
                let mut fields = vec![select.field.clone()];
                let mut operand = &select.operand;
                while let Expr::Select(inner) = &operand.expr {
                    fields.push(inner.field.clone());
                    operand = &inner.operand;
                }
                match &operand.expr {
                    Expr::Ident(name) if name == root => {
                        fields.reverse();
                        paths.push(fields);
                    }
                    _ => pending.push(operand),
                }
            }
            Expr::Ident(name) if name == root => paths.push(Vec::new()),
            Expr::Call(call) => pending.extend(call.target.iter().map(|t| &**t).chain(&call.args)),
            Expr::Comprehension(c) => pending.extend([&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result]),
            Expr::List(list) => pending.extend(&list.elements),
            Expr::Map(cel::common::ast::MapExpr { entries }) | Expr::Struct(cel::common::ast::StructExpr { entries, .. }) => {
                for entry in entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(e) => pending.extend([&e.key, &e.value]),
                        EntryExpr::StructField(f) => pending.push(&f.value),
                    }
                }
            }
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
}

/// `value` as a CEL value with only the parts at `paths` (each kept whole); all of it when a
/// path is empty. A policy evaluated on it sees what it would see on the whole value: CEL copies
/// a map each time a field of it is selected, so the less there is, the less is copied.
fn pruned(value: &Value, paths: &[&[String]]) -> cel::Value {
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
fn to_cel(value: &Value) -> cel::Value {
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

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every policy in force: defaults, then repository and directory policies, with the
/// configuration's switches and overrides applied.
fn policies(loaded: &Loaded, diagnostics: &mut Vec<Diagnostic>) -> Vec<Policy> {
    let mut documents: Vec<RawDocument> = Vec::new();
    for (file, text) in DEFAULTS {
        let (parsed, problems) = crate::load::yaml::parse(file, text);
        diagnostics.extend(problems);
        documents.extend(parsed.into_iter().map(|d| RawDocument {
            file: file.to_string(),
            value: d.value,
            spans: Arc::new(crate::model::object::Spans::Made(d.spans)),
        }));
    }
    let settings = &loaded.state.config.policies;
    let mut by_name: BTreeMap<String, Policy> = BTreeMap::new();
    let mut known: Vec<String> = Vec::new();
    for document in documents.iter().chain(&loaded.policies) {
        let name = document.value["metadata"]["name"].as_str().unwrap_or_default().to_string();
        known.push(name.clone());
        if settings.disabled.contains(&name) {
            continue;
        }
        if let Some(policy) = compile(document, diagnostics) {
            by_name.insert(policy.name.clone(), policy);
        }
    }
    // A misspelt name would leave the policy it meant running unchanged.
    for name in settings.disabled.iter().chain(settings.overrides.keys()).filter(|n| !known.contains(n)) {
        diagnostics.push(
            Diagnostic::warning(
                Code::PolicyError,
                crate::load::CONFIG_FILE,
                Pos { line: 1, column: 1 },
                format!("policies: no policy is named {name:?}"),
            )
            .path("policies")
            .hint(format!("known policies: {}", known.join(", "))),
        );
    }
    let mut policies: Vec<Policy> = by_name.into_values().collect();
    for policy in &mut policies {
        if let Some(changes) = settings.overrides.get(&policy.name) {
            if let Some(severity) = changes.severity {
                policy.severity = severity;
            }
            policy.params.extend(changes.params.clone().unwrap_or_default());
        }
    }
    policies
}

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

/// How long the guardrail policies together may run on one repository, unless
/// `MCP_GITOPS_POLICY_TIMEOUT` (seconds) says otherwise. Sound policies take microseconds per
/// object; CEL has no cost limit here, so one whose cost has no bound (comprehensions nested over
/// lists, `[..].all(a, [..].all(b, ...))`) is stopped at this budget and reported, instead of
/// hanging validate, CI and the daemon.
pub const EVALUATION_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

fn budget() -> std::time::Duration {
    std::env::var("MCP_GITOPS_POLICY_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(EVALUATION_BUDGET, std::time::Duration::from_secs_f64)
}

/// Objects per unit of parallel work: big enough that the hand-over is noise, small enough that
/// a core slowed by another process does not keep the others waiting.
const OBJECTS_PER_CHUNK: usize = 64;

/// What each evaluating thread is on: (policy index, object id), for the report of an overrun.
type Running = Mutex<HashMap<std::thread::ThreadId, (usize, String)>>;

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

/// Expressions that overran the budget in this process.
fn overrun() -> &'static Mutex<std::collections::HashSet<String>> {
    static OVERRUN: std::sync::OnceLock<Mutex<std::collections::HashSet<String>>> = std::sync::OnceLock::new();
    OVERRUN.get_or_init(Default::default)
}

fn overrun_diagnostic(name: String, file: String, pos: Pos, object: &str, limit: std::time::Duration) -> Diagnostic {
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

/// The worker of `check`: every policy on every object it matches.
///
/// Turning a JSON value into a CEL value costs as much as evaluating a policy, so each value is
/// converted once: `servers` and `now` in one root scope shared by all policies and threads,
/// `server` once per object, `object` once per object and set of parts read (each policy sees
/// only the parts of the object it reads: `pruned`), and only `params` per policy.
/// Objects are spread over the cores; the findings come out in the sequential order.
fn evaluate_all(policies: &[Policy], work: &[Work], servers: &Map<String, Value>, now: Timestamp, running: &Running) -> Vec<Evaluated> {
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

/// An object to evaluate, with its cache key and what the cacheable policies found on it in an
/// earlier run (by policy index), when the cache has it.
struct Work {
    object: Object,
    key: Option<Key>,
    known: Option<Vec<(usize, Diagnostic)>>,
}

/// What the policies found on one object, and the entry to keep in the cache for it.
type Evaluated = (Vec<Diagnostic>, Option<(Key, Vec<(usize, Diagnostic)>)>);

/// The cache key of what the cacheable policies find on each object: the policies (all of them:
/// an index names one), the object's file (path and text), where it starts there, the default
/// namespace (which a document without one takes) and its server's index entry. None with the
/// cache off or no cacheable policy.
fn cache_keys(loaded: &Loaded, policies: &[Policy], servers: &Map<String, Value>, objects: &[&Object], cache: &Pack) -> Vec<Option<Key>> {
    if !cache.is_on() || !policies.iter().any(|p| p.cacheable) {
        return vec![None; objects.len()];
    }
    let described: Vec<String> = policies
        .iter()
        .map(|p| {
            let message: Vec<(bool, &str)> = p
                .message
                .iter()
                .map(|part| match part {
                    Part::Text(text) => (false, text.as_str()),
                    Part::Expression(_, source) => (true, source.as_str()),
                })
                .collect();
            format!(
                "{:?}",
                (
                    &p.name,
                    &p.kinds,
                    &p.expression,
                    &p.expression_pos,
                    message,
                    p.severity,
                    &p.field,
                    &p.params,
                    &p.file,
                    &p.pos,
                    p.cacheable
                )
            )
        })
        .collect();
    // Hashed once: the policies' text is kilobytes, and there is a key per object.
    let policies = Key::of(&[described.join("\n").as_bytes()]).bytes();
    let namespace = loaded.state.config.default_namespace();
    let entries: HashMap<&str, Vec<u8>> =
        servers.iter().filter_map(|(key, entry)| Some((key.as_str(), serde_json::to_vec(entry).ok()?))).collect();
    crate::parallel::ordered_map(objects, 1024, |object| {
        let file = loaded.keys.get(&object.origin.file)?;
        let server = entries.get(server_key(object).as_str()).map_or(&b"null"[..], Vec::as_slice);
        Some(Key::of(&[
            b"findings",
            &policies,
            &file.bytes(),
            &object.origin.line.to_le_bytes(),
            object.origin.prefix.as_bytes(),
            namespace.as_bytes(),
            server,
        ]))
    })
}

/// CEL's `matches`, with each pattern compiled once rather than on every call (the same regex
/// crate and the same error text as the built-in one; compiling was 5% of a validate).
fn matches_with_cache()
-> impl Fn(&cel::FunctionContext, cel::extractors::This<Arc<String>>, Arc<String>) -> Result<bool, cel::ExecutionError> + Send + Sync + 'static
{
    let compiled: Mutex<HashMap<String, Result<regex::Regex, String>>> = Mutex::default();
    move |ftx: &cel::FunctionContext, cel::extractors::This(text): cel::extractors::This<Arc<String>>, pattern: Arc<String>| {
        let regex = {
            let mut compiled = compiled.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            compiled.entry(pattern.to_string()).or_insert_with(|| regex::Regex::new(&pattern).map_err(|e| e.to_string())).clone()
        };
        match regex {
            Ok(regex) => Ok(regex.is_match(&text)),
            Err(error) => Err(ftx.error(format!("'{pattern}' not a valid regex:\n{error}"))),
        }
    }
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
                    .hint(format!(
                        "policy {} ({}); switch it off or override it under policies: in mcp-gitops.yaml",
                        policy.name, policy.file
                    ));
            if !pointer.is_empty() {
                diagnostic = diagnostic.path(pointer_to_path(&pointer));
            }
            Some(diagnostic)
        }
        Ok(other) => Some(failed(format!("policy {} did not evaluate to a boolean on this object (got {})", policy.name, text_of(&other)))),
        Err(e) => Some(failed(format!("policy {} failed to evaluate on this object: {e}", policy.name))),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(expression: &str) -> Vec<Vec<String>> {
        let mut paths = Vec::new();
        read_paths(cel::Program::compile(expression).expect("compiles").expression(), "object", &mut paths);
        paths.sort();
        paths.dedup();
        paths
    }

    #[test]
    fn the_parts_of_object_an_expression_reads() {
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        assert_eq!(
            reads("has(object.spec.disabled) || object.spec.toolRules.exists(r, r.decision == 'deny' && object.metadata.name != '')"),
            [path(&["metadata", "name"]), path(&["spec", "disabled"]), path(&["spec", "toolRules"])]
        );
        // Any use but a chain of selections reads it all.
        assert_eq!(reads("size(object) > 0 && object.kind == 'x'"), [path(&[]), path(&["kind"])]);
        assert_eq!(reads("object['spec'].x == 1"), [path(&[])]);
        assert_eq!(reads("server.tools.exists(t, t == 'x')"), Vec::<Vec<String>>::new());
        // A deep expression (5,000 `||`: a corpus policy overflowed the stack of a recursive
        // walk) is read on a small stack.
        let chain = vec!["object.x == 1"; 5000].join(" || ");
        let deep = cel::Program::compile(&chain).map_err(|_| "does not compile").expect("compiles");
        let mut paths = Vec::new();
        std::thread::scope(|scope| {
            let walker = std::thread::Builder::new().stack_size(64 * 1024);
            walker
                .spawn_scoped(scope, || read_paths(deep.expression(), "object", &mut paths))
                .expect("spawns")
                .join()
                .expect("no overflow");
        });
        paths.dedup();
        assert_eq!(paths, [path(&["x"])]);
    }

    #[test]
    fn selections_on_object_evaluate_as_indexes_to_the_same_values() {
        let mut context = cel::Context::default();
        context.add_variable_from_value("object", to_cel(&json!({"spec": {"subject": {"humanID": "h"}, "rules": [{"name": "r"}]}})));
        context.add_variable_from_value("other", to_cel(&json!({"spec": {"x": 1}})));
        for expression in [
            "object.spec.subject.humanID == 'h'",
            "has(object.spec.subject.humanID) && !has(object.spec.absent)",
            "object.spec.rules.exists(r, r.name == 'r') && object.spec.rules.map(object, object.name) == ['r']",
            "other.spec.x + 1",
            "object.spec.absent",
            "[object.spec].exists(s, s.subject.humanID == 'h')",
        ] {
            let compiled = Compiled::compile(expression).expect("compiles");
            let written = cel::Program::compile(expression).expect("compiles");
            assert_eq!(format!("{:?}", compiled.execute(&context)), format!("{:?}", written.execute(&context)), "{expression}");
        }
        // Selections are indexes on `object` alone, and not where a comprehension rebinds it.
        let lent = |expression: &str| format!("{:?}", Compiled::compile(expression).expect("compiles").lent);
        assert!(!lent("object.spec.subject").contains("Select"));
        assert!(lent("other.spec").contains("Select"));
        assert!(lent("[1].exists(object, object.x == 1)").contains("Select"));
    }

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
