//! Diagnostics as GitHub Actions workflow commands: one `::error`/`::warning` line each, which
//! GitHub shows as an annotation on the file and line. Paths are relative to the repository.

use crate::model::{Diagnostic, Severity};
use std::fmt::Write;

/// GitHub shows at most this many errors, and as many warnings, of one step as annotations.
pub const SHOWN_PER_STEP: usize = 10;

/// `root` is the path of the validated directory inside the repository (`""` or `"platform/"`).
pub fn render(diagnostics: &[Diagnostic], root: &str) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let command = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = format!("{}{}", super::in_clusters(d), d.message);
        if !d.object.is_empty() {
            message.push_str(&format!("\n{}", d.object));
        }
        if !d.hint.is_empty() {
            message.push_str(&format!("\nhint: {}", d.hint));
        }
        let _ = writeln!(
            out,
            "::{command} file={},line={},col={},endLine={},title={}::{}",
            property(&format!("{root}{}", d.file)),
            d.line,
            d.column,
            d.line,
            property(d.code.as_str()),
            data(&message)
        );
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    if errors > SHOWN_PER_STEP || warnings > SHOWN_PER_STEP {
        let _ = writeln!(
            out,
            "mcp-gitops: {errors} error(s) and {warnings} warning(s); GitHub annotates only {SHOWN_PER_STEP} of each per step: the job summary (or --format text) has all of them"
        );
    }
    out
}

/// Escapes a command's message as GitHub's toolkit does.
fn data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a command property: a message's escapes, and the separators `:` and `,`.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Code, Pos};

    #[test]
    fn messages_and_properties_are_escaped() {
        let d = Diagnostic::error(Code::SchemaViolation, "a,b:c.yaml", Pos { line: 3, column: 7 }, "100% wrong\r\nhere")
            .object("MCPAccessGrant/ns/g")
            .hint("fix it");
        assert_eq!(
            render(&[d], "platform/"),
            "::error file=platform/a%2Cb%3Ac.yaml,line=3,col=7,endLine=3,title=schema_violation::100%25 wrong%0D%0Ahere%0AMCPAccessGrant/ns/g%0Ahint: fix it\n"
        );
    }

    #[test]
    fn more_than_github_shows_is_said() {
        let many: Vec<Diagnostic> =
            (0..11).map(|i| Diagnostic::warning(Code::UnknownKind, "x.yaml", Pos { line: i + 1, column: 1 }, "w")).collect();
        let out = render(&many, "");
        assert_eq!(out.lines().filter(|l| l.starts_with("::warning ")).count(), 11);
        assert!(out.lines().last().is_some_and(|l| l.contains("11 warning(s)") && l.contains("only 10")), "{out}");
        assert!(!render(&many[..10], "").contains("only 10"));
    }
}
