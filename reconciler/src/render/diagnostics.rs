//! Diagnostics in the compiler style: the code, the position, the offending line with a caret,
//! the object and field path, and a hint. Lines flagged as holding credentials are not shown.

use super::Palette;
use super::escape::terminal;
use crate::model::{Diagnostic, Severity};
use crate::source::root::Shown;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

/// `diagnostics`, each file named as `shown` names it (relative to the current directory).
pub fn render(diagnostics: &[Diagnostic], sources: &BTreeMap<String, Arc<str>>, shown: &Shown, palette: Palette) -> String {
    let mut out = String::new();
    for d in diagnostics {
        render_one(&mut out, d, sources.get(&d.file).map(|s| &**s), shown, palette);
    }
    out
}

fn render_one(out: &mut String, d: &Diagnostic, source: Option<&str>, shown: &Shown, palette: Palette) {
    let head = format!("{}[{}]", d.severity, d.code);
    let head = match d.severity {
        Severity::Error => palette.red(&head),
        Severity::Warning => palette.yellow(&head),
    };
    let clusters = terminal(&super::in_clusters(d));
    let _ = writeln!(out, "{clusters}{}{} {}", head, palette.bold(":"), palette.bold(&terminal(&d.message)));
    let gutter = " ".repeat(d.line.to_string().len());
    let _ = writeln!(out, "{gutter}{} {}:{}:{}", palette.dim("-->"), terminal(&shown.name(&d.file)), d.line, d.column);
    let line = source.and_then(|s| s.lines().nth(d.line.saturating_sub(1)));
    match line {
        Some(_) if d.redact_source => {
            let _ = writeln!(out, "{gutter} {}", palette.dim("|"));
            let _ = writeln!(out, "{} {} {}", d.line, palette.dim("|"), palette.dim("(line hidden: it holds credential material)"));
        }
        Some(text) => {
            // The caret stands under the character it points at, as the line is shown.
            let text = text.replace('\t', " ");
            let caret_at: usize = text.chars().take(d.column.saturating_sub(1)).map(|c| terminal(&c.to_string()).chars().count()).sum();
            let text = terminal(&text);
            let _ = writeln!(out, "{gutter} {}", palette.dim("|"));
            let _ = writeln!(out, "{} {} {}", d.line, palette.dim("|"), text);
            let _ = writeln!(out, "{gutter} {} {}{}", palette.dim("|"), " ".repeat(caret_at), palette.red("^"));
        }
        None => {}
    }
    let mut notes = Vec::new();
    if !d.object.is_empty() {
        notes.push(format!("object: {}", terminal(&d.object)));
    }
    if !d.path.is_empty() {
        notes.push(format!("field: {}", terminal(&d.path)));
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "{gutter} = {}", notes.join(", "));
    }
    if !d.hint.is_empty() {
        let _ = writeln!(out, "{gutter} = {} {}", palette.bold("hint:"), terminal(&d.hint));
    }
    out.push('\n');
}

/// `3 errors, 1 warning`
pub fn counts(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!("{}, {}", plural(errors, "error"), plural(warnings, "warning"))
}

/// `validate`'s closing line: what the repository at `path` declares, and its diagnostics.
pub fn summary(path: &str, state: &crate::model::DesiredState) -> String {
    let objects = |kind| state.of_kind(kind).count();
    format!(
        "{}: {} servers, {} grants, {} sessions in {} files; {}\n",
        terminal(path),
        objects(crate::model::Kind::Server),
        objects(crate::model::Kind::Grant),
        objects(crate::model::Kind::Session),
        state.sources.len(),
        counts(&state.diagnostics)
    )
}
