//! When the policies that read `now` may change their verdict: for each object, the clocks at
//! which a comparison of `now` (moved by durations) with a value that does not depend on `now`
//! may flip (`destructive-grants-expire`: `timestamp(expires-at) <= now + 30 days` flips at
//! `expires-at - 30 days`). Takes the loaded repository; gives back those instants (`clock`
//! keys a validation by the window between them), or `None` when a policy reads `now` in a
//! way this analysis does not follow (the caller then holds the validation for one second).
//! Evaluates the parts of expressions that do not read `now`, never a policy's verdict.
//!
//! Sound because CEL sees `now` to the second (`evaluate`): a comparison `now + d op x` is
//! `s op x - d` for the second `s` of the clock, which can only change at `ceil(x - d)` or at
//! `floor(x - d) + 1s`; an expression whose every use of `now` is such a comparison is constant
//! between consecutive such instants. A part that fails to evaluate fails at every clock (it
//! does not read `now`); values of types the arithmetic does not follow fall back.

use super::cache::matches_with_cache;
use super::compile::policies;
use super::evaluate::{pruned, to_cel};
use super::{Part, Policy, server_index, server_key};
use crate::load::Loaded;
use crate::model::Object;
use jiff::Timestamp;
use kube_cel::{KubeCelExt, cel};
use std::collections::HashSet;

/// The clocks this analysis holds for: `now` moved by the durations of a comparison stays within
/// CEL's timestamps (years 1 to 9999), so no comparison's arithmetic overflows at one of them.
const DOMAIN: (&str, &str) = ("1000-01-01T00:00:00Z", "9000-01-01T00:00:00Z");

/// At most how far a comparison may move `now` (the sum of its durations): 900 years.
const MOST_MOVED: i128 = 900 * 366 * 86_400 * 1_000_000_000;

/// Each clock at which a policy in force that reads `now` may find otherwise on an object of
/// `loaded` (as the first clock that sees the change), and the ends of `DOMAIN`; `None` when one
/// reads `now` otherwise than in comparisons this analysis follows, a comparison's values are
/// not timestamps and durations that line up, or `now` is outside `DOMAIN`.
pub(in crate::validate) fn instants(loaded: &Loaded, now: Timestamp) -> Option<Vec<Timestamp>> {
    let policies = policies(loaded, &mut Vec::new());
    let matched = |p: &Policy| loaded.state.objects.iter().any(|o| p.kinds.contains(&o.id.kind));
    let reading: Vec<&Policy> = policies.iter().filter(|p| p.reads_now && matched(p)).collect();
    let mut comparisons = Vec::new();
    for (index, policy) in reading.iter().enumerate() {
        let programs = std::iter::once(&policy.program).chain(policy.message.iter().filter_map(|part| match part {
            Part::Expression(program, _) => Some(program),
            Part::Text(_) => None,
        }));
        for program in programs {
            comparisons.extend(comparisons_of(program.expression())?.into_iter().map(|c| (index, c)));
        }
    }
    if comparisons.is_empty() {
        return Some(Vec::new());
    }
    let domain = [DOMAIN.0, DOMAIN.1].map(|end| end.parse::<Timestamp>().ok());
    let [Some(first), Some(end)] = domain else { return None };
    if now < first || now >= end {
        return None;
    }
    let objects: Vec<&Object> = loaded.state.objects.iter().filter(|o| reading.iter().any(|p| p.kinds.contains(&o.id.kind))).collect();
    let servers = server_index(loaded);
    let reads_servers = comparisons.iter().any(|(_, c)| c.reads("servers"));
    let mut root = cel::Context::default().with_all();
    root.add_function("matches", matches_with_cache());
    if reads_servers {
        root.add_variable_from_value("servers", to_cel(&serde_json::Value::Object(servers.clone())));
    }
    let params: Vec<cel::Value> = reading.iter().map(|p| to_cel(&serde_json::Value::Object(p.params.clone()))).collect();
    let mut reads: Vec<Vec<String>> = comparisons.iter().flat_map(|(_, c)| c.object_paths()).collect();
    reads.sort();
    reads.dedup();
    let reads: Vec<&[String]> = reads.iter().map(Vec::as_slice).collect();
    let reads_server = comparisons.iter().any(|(_, c)| c.reads("server"));
    let found = crate::parallel::ordered_map(&objects, 256, |object| {
        let mut scope = root.new_inner_scope();
        scope.add_variable_from_value("object", pruned(&object.body, &reads));
        if reads_server {
            let entry = servers.get(&server_key(object)).map_or(cel::Value::Null, to_cel);
            scope.add_variable_from_value("server", entry);
        }
        let mut found = Vec::new();
        for (index, comparison) in comparisons.iter().filter(|(i, _)| reading[*i].kinds.contains(&object.id.kind)) {
            let mut context = scope.new_inner_scope();
            context.add_variable_from_value("params", params[*index].clone());
            if let Some(at) = comparison.flips_at(&context)? {
                found.extend(at);
            }
        }
        Some(found)
    });
    found.into_iter().try_fold(vec![first, end], |mut all, found| {
        all.extend(found?);
        Some(all)
    })
}

/// One comparison of `now` moved by `terms` (`now + d - e`: `[(+, d), (-, e)]`, in the order
/// CEL applies them) with `other`, which does not read `now`.
#[derive(Debug)]
struct Comparison<'a> {
    terms: Vec<(Sign, &'a cel::IdedExpr)>,
    other: &'a cel::IdedExpr,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Sign {
    Plus,
    Minus,
}

/// A timestamp or a duration, in nanoseconds (since the epoch for a timestamp).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Time {
    At(i128),
    For(i128),
}

impl Time {
    fn of(value: &cel::Value) -> Option<Time> {
        match value {
            cel::Value::Timestamp(at) => {
                Some(Time::At(i128::from(at.timestamp()) * 1_000_000_000 + i128::from(at.timestamp_subsec_nanos())))
            }
            cel::Value::Duration(d) => Some(Time::For(i128::from(d.num_seconds()) * 1_000_000_000 + i128::from(d.subsec_nanos()))),
            _ => None,
        }
    }
}

impl Comparison<'_> {
    /// The instants at which the comparison may flip, on the object `context` holds: none when
    /// it fails at every clock; `None` (the analysis gives up) when its values do not line up.
    fn flips_at(&self, context: &cel::Context) -> Option<Option<[Timestamp; 2]>> {
        // `now`'s side, as CEL evaluates it: `timestamp ± duration`, then `timestamp - timestamp`
        // (a duration) and `duration ± duration`.
        let (mut side, mut moved, mut shift) = (Time::At(0), 0i128, 0i128);
        for (sign, term) in &self.terms {
            let Ok(value) = cel::Value::resolve(term, context) else {
                // Fails here at every clock (a type mismatch before it would have given up).
                return Some(None);
            };
            let value = Time::of(&value)?;
            side = match (side, *sign, value) {
                (Time::At(_), _, Time::For(d)) | (Time::For(_), _, Time::For(d)) => {
                    moved += d.abs();
                    shift += if *sign == Sign::Plus { d } else { -d };
                    side
                }
                (Time::At(_), Sign::Minus, Time::At(at)) => {
                    shift -= at;
                    Time::For(0)
                }
                _ => return None,
            };
            // Beyond it, the arithmetic could overflow at some clocks of `DOMAIN` and not at others.
            if moved > MOST_MOVED {
                return None;
            }
        }
        let Ok(other) = cel::Value::resolve(self.other, context) else {
            return Some(None);
        };
        // `now + shift op other`: it flips where `now` is `other - shift`.
        let at = match (side, Time::of(&other)?) {
            (Time::At(_), Time::At(other)) | (Time::For(_), Time::For(other)) => other - shift,
            _ => return None,
        };
        let second = 1_000_000_000i128;
        let floor = at.div_euclid(second);
        let ceil = floor + i128::from(at.rem_euclid(second) != 0);
        let instant = |seconds: i128| Timestamp::from_second(i64::try_from(seconds).ok()?).ok();
        match (instant(ceil), instant(floor + 1)) {
            (Some(a), Some(b)) => Some(Some([a, b])),
            // Outside jiff's range: far outside `DOMAIN`, where no window is kept.
            _ => Some(None),
        }
    }

    /// Whether a part of the comparison reads the variable `name`.
    fn reads(&self, name: &str) -> bool {
        self.parts().any(|part| idents(part).contains(name))
    }

    /// The parts of `object` the comparison reads (`compile::read_paths`).
    fn object_paths(&self) -> Vec<Vec<String>> {
        let mut paths = Vec::new();
        for part in self.parts() {
            super::compile::read_paths(part, "object", &mut paths);
        }
        paths
    }

    fn parts(&self) -> impl Iterator<Item = &cel::IdedExpr> {
        self.terms.iter().map(|(_, term)| *term).chain([self.other])
    }
}

/// Every comparison of `now` in `expression`, or `None` when `now` is read otherwise, is
/// rebound by a comprehension, or compared with a value that reads a comprehension's variable
/// (that value is not one per object). Walks with a stack of its own (`compile::read_paths`).
fn comparisons_of(expression: &cel::IdedExpr) -> Option<Vec<Comparison<'_>>> {
    use cel::common::ast::{EntryExpr, Expr, operators};
    const COMPARING: [&str; 6] =
        [operators::LESS, operators::LESS_EQUALS, operators::GREATER, operators::GREATER_EQUALS, operators::EQUALS, operators::NOT_EQUALS];
    let mut found = Vec::new();
    let mut pending: Vec<(&cel::IdedExpr, Vec<&str>)> = vec![(expression, Vec::new())];
    while let Some((expression, bound)) = pending.pop() {
        match &expression.expr {
            Expr::Call(call) if call.target.is_none() && call.args.len() == 2 && COMPARING.contains(&call.func_name.as_str()) => {
                let [left, right] = [&call.args[0], &call.args[1]];
                let (side, other) = match (idents(left).contains("now"), idents(right).contains("now")) {
                    (true, false) => (left, right),
                    (false, true) => (right, left),
                    (false, false) => continue,
                    (true, true) => return None,
                };
                let comparison = Comparison { terms: moved(side)?, other };
                if comparison.parts().any(|part| idents(part).iter().any(|name| bound.contains(name))) {
                    return None;
                }
                found.push(comparison);
            }
            Expr::Ident(name) if name == "now" => return None,
            Expr::Select(select) => pending.push((&select.operand, bound)),
            Expr::Call(call) => pending.extend(call.target.iter().map(|t| &**t).chain(&call.args).map(|e| (e, bound.clone()))),
            Expr::Comprehension(c) => {
                let mut inner = bound.clone();
                inner.extend([c.iter_var.as_str(), c.accu_var.as_str()].into_iter().chain(c.iter_var2.as_deref()));
                if inner.contains(&"now") {
                    return None;
                }
                pending.extend([(&c.iter_range, bound.clone()), (&c.accu_init, bound)]);
                pending.extend([&c.loop_cond, &c.loop_step, &c.result].map(|e| (e, inner.clone())));
            }
            Expr::List(list) => pending.extend(list.elements.iter().map(|e| (e, bound.clone()))),
            Expr::Map(cel::common::ast::MapExpr { entries }) | Expr::Struct(cel::common::ast::StructExpr { entries, .. }) => {
                for entry in entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(e) => pending.extend([(&e.key, bound.clone()), (&e.value, bound.clone())]),
                        EntryExpr::StructField(f) => pending.push((&f.value, bound.clone())),
                    }
                }
            }
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
    Some(found)
}

/// `side` as `now` moved by terms that do not read `now` (innermost first), or `None`.
fn moved(mut side: &cel::IdedExpr) -> Option<Vec<(Sign, &cel::IdedExpr)>> {
    use cel::common::ast::{Expr, operators};
    let mut terms = Vec::new();
    loop {
        match &side.expr {
            Expr::Ident(name) if name == "now" => break,
            Expr::Call(call) if call.target.is_none() && call.args.len() == 2 => {
                let [left, right] = [&call.args[0], &call.args[1]];
                let sign = match call.func_name.as_str() {
                    operators::ADD => Sign::Plus,
                    operators::SUBSTRACT => Sign::Minus,
                    _ => return None,
                };
                // Only `now` on the left: CEL has no `duration + timestamp`, and its error names `now`.
                if !idents(left).contains("now") || idents(right).contains("now") {
                    return None;
                }
                terms.push((sign, right));
                side = left;
            }
            _ => return None,
        }
    }
    terms.reverse();
    Some(terms)
}

/// The identifiers an expression names (a comprehension's own variables too).
fn idents(expression: &cel::IdedExpr) -> HashSet<&str> {
    let mut names = HashSet::new();
    let mut pending = vec![expression];
    while let Some(expression) = pending.pop() {
        if let cel::common::ast::Expr::Ident(name) = &expression.expr {
            names.insert(name.as_str());
        }
        pending.extend(super::compile::children(expression));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn analysed(expression: &str) -> Option<usize> {
        let program = cel::Program::compile(expression).expect("compiles");
        comparisons_of(program.expression()).map(|found| found.len())
    }

    #[test]
    fn comparisons_of_now_moved_by_durations_are_followed_and_nothing_else() {
        for (expression, found) in [
            ("timestamp(object.at) <= now + duration(string(params.days * 24) + 'h')", 1),
            ("has(object.at) && (now - duration('1h') < timestamp(object.at) || now + duration('2h') >= timestamp(object.at))", 2),
            ("now - timestamp(object.at) > duration('1h')", 1),
            ("object.items.exists(i, i == 'x' && timestamp(object.at) == now)", 1),
            ("object.name == 'x'", 0),
        ] {
            assert_eq!(analysed(expression), Some(found), "{expression}");
        }
        for expression in [
            "now.getHours() > 3",
            "string(now) == 'x'",
            "timestamp(object.at) - now > duration('1h')",
            "now < now + duration('1h')",
            "duration('1h') + now > timestamp(object.at)",
            "object.items.exists(i, timestamp(i) < now)",
            "[1].exists(now, now == 1)",
            "(now < timestamp(object.at)) == true",
        ] {
            assert_eq!(analysed(expression), None, "{expression}");
        }
    }

    /// The verdict of `expression` on `object` at the clock `t`, as `evaluate` gives it (`now` to the second).
    fn verdict(expression: &str, object: &serde_json::Value, t: Timestamp) -> String {
        let mut context = cel::Context::default().with_all();
        let now = cel::Program::compile(&format!("timestamp('{}')", t.strftime("%Y-%m-%dT%H:%M:%SZ"))).expect("compiles");
        context.add_variable_from_value("now", now.execute(&cel::Context::default()).expect("a timestamp"));
        context.add_variable_from_value("object", to_cel(object));
        context.add_variable_from_value("params", to_cel(&json!({"days": 30})));
        format!("{:?}", cel::Program::compile(expression).expect("compiles").execute(&context))
    }

    #[test]
    fn a_verdict_holds_between_consecutive_flips_on_both_sides_and_at_each() {
        let expressions = [
            "timestamp(object.at) <= now + duration(string(params.days * 24) + 'h')",
            "timestamp(object.at) < now - duration('1h30m0.5s')",
            "now - timestamp(object.at) >= duration('90s')",
            "now + duration('1h') > timestamp(object.at) && now != timestamp(object.at)",
            "now == timestamp(object.at)",
        ];
        let ats = ["2030-01-01T00:00:00Z", "2030-01-01T00:00:00.5Z", "1969-12-31T23:59:59.25Z", "not a time"];
        let nano = jiff::SignedDuration::from_nanos(1);
        for expression in expressions {
            let program = cel::Program::compile(expression).expect("compiles");
            let comparisons = comparisons_of(program.expression()).expect("followed");
            for at in ats {
                let object = json!({"at": at});
                let mut context = cel::Context::default().with_all();
                context.add_variable_from_value("object", to_cel(&object));
                context.add_variable_from_value("params", to_cel(&json!({"days": 30})));
                let mut flips: Vec<Timestamp> =
                    comparisons.iter().filter_map(|c| c.flips_at(&context).expect("lines up")).flatten().collect();
                flips.sort();
                let mut clocks: Vec<Timestamp> =
                    vec!["2026-01-01T00:00:00Z".parse().expect("t"), "2090-01-01T00:00:00Z".parse().expect("t")];
                for flip in &flips {
                    for step in [-1_000_000_000, -500_000_000, -1, 0, 1, 500_000_000, 999_999_999] {
                        clocks.push(flip.checked_add(nano * step).expect("t"));
                    }
                }
                let verdicts: Vec<(usize, Timestamp, String)> =
                    clocks.iter().map(|t| (flips.partition_point(|f| f <= t), *t, verdict(expression, &object, *t))).collect();
                for (interval, t, found) in &verdicts {
                    for (other, u, also) in &verdicts {
                        if interval == other {
                            assert_eq!(found, also, "{expression} on {at}: {t} and {u}, between the same flips {flips:?}");
                        }
                    }
                }
                if at == "not a time" {
                    assert!(flips.is_empty(), "a part that fails at every clock flips nowhere");
                }
            }
        }
    }
}
