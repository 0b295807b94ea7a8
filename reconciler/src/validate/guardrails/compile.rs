//! Compiling policies: takes the default policy documents, the repository's GuardrailPolicy
//! documents and the configuration's switches and overrides; gives back the policies in force,
//! each with its CEL programs (selections on `object` rewritten as indexes), its message template
//! and the parts of `object` it reads. A document that does not compile becomes a diagnostic,
//! never a policy. Evaluates nothing.

use super::{DEFAULTS, Part, Policy, one_line};
use crate::load::{Loaded, RawDocument};
use crate::model::object::{pointer_segment, pointer_to_path};
use crate::model::{Code, Diagnostic, Kind, Pos, Severity};
use crate::schema::schemas;
use kube_cel::cel;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every policy in force: defaults, then repository and directory policies, with the
/// configuration's switches and overrides applied.
pub(super) fn policies(loaded: &Loaded, diagnostics: &mut Vec<Diagnostic>) -> Vec<Policy> {
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
    let defaults = documents.len();
    for (index, document) in documents.iter().chain(&loaded.policies).enumerate() {
        let name = document.value["metadata"]["name"].as_str().unwrap_or_default().to_string();
        known.push(name.clone());
        if settings.disabled.contains(&name) {
            continue;
        }
        if let Some(policy) = compile(document, diagnostics) {
            by_name.insert(policy.name.clone(), Policy { built_in: index < defaults, ..policy });
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
    let (reads, reads_now) = (reading("object"), !reading("now").is_empty());
    let cacheable = !reads_now && reading("servers").is_empty();
    Some(Policy {
        reads,
        reads_now,
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
        built_in: false,
        pos: pos(""),
        name,
    })
}

/// A CEL expression compiled for evaluation: every chain of field selections on `object`
/// (`object.spec.subject`) is evaluated as indexes (`object['spec']['subject']`). On a map, and
/// the objects evaluated passed their schema, the two give the same value; but CEL 0.13 copies a
/// map to select a field of it, and lends the element it indexes. The default policies read a
/// few fields many times each, over 20,000 objects.
pub(super) struct Compiled {
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
    pub(super) fn expression(&self) -> &cel::IdedExpr {
        self.program.expression()
    }

    pub(super) fn execute(&self, context: &cel::Context) -> cel::ResolveResult {
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
pub(super) fn read_paths(expression: &cel::IdedExpr, root: &str, paths: &mut Vec<Vec<String>>) {
    use cel::common::ast::Expr;
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
            _ => pending.extend(children(expression)),
        }
    }
}

/// The expressions a node of an expression holds, one level down.
pub(super) fn children(expression: &cel::IdedExpr) -> Vec<&cel::IdedExpr> {
    use cel::common::ast::{EntryExpr, Expr};
    match &expression.expr {
        Expr::Select(select) => vec![&select.operand],
        Expr::Call(call) => call.target.iter().map(|t| &**t).chain(&call.args).collect(),
        Expr::Comprehension(c) => vec![&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result],
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(cel::common::ast::MapExpr { entries }) | Expr::Struct(cel::common::ast::StructExpr { entries, .. }) => entries
            .iter()
            .flat_map(|entry| match &entry.expr {
                EntryExpr::MapEntry(e) => vec![&e.key, &e.value],
                EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::evaluate::to_cel;
    use super::*;
    use serde_json::json;

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
}
