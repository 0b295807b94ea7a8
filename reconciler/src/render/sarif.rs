//! Diagnostics as SARIF 2.1.0, the format code scanning reads: one rule per diagnostic code,
//! described from docs/diagnostics.md (built into the binary), one result per diagnostic with a
//! repository-relative location and a fingerprint that survives moved lines.

use crate::model::{Code, Diagnostic, Severity};
use serde_json::{Value, json};

const DIAGNOSTICS_DOC: &str = include_str!("../../../docs/diagnostics.md");

/// `root` is the path of the validated directory inside the repository (`""` or `"platform/"`).
pub fn render(diagnostics: &[Diagnostic], root: &str) -> String {
    let rules: Vec<Value> = Code::ALL.iter().map(|code| rule(*code)).collect();
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let mut message = format!("{}{}", super::in_clusters(d), d.message);
            if !d.hint.is_empty() {
                message.push_str(&format!(" (hint: {})", d.hint));
            }
            json!({
                "ruleId": d.code.as_str(),
                "ruleIndex": Code::ALL.iter().position(|c| *c == d.code),
                "level": level(d.severity),
                "message": {"text": message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": super::escape::uri_path(&format!("{root}{}", d.file)), "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": d.line.max(1), "startColumn": d.column.max(1)},
                    },
                    "logicalLocations": if d.object.is_empty() { json!([]) } else { json!([{"fullyQualifiedName": d.object, "kind": "object"}]) },
                }],
                "partialFingerprints": {"mcpGitopsDiagnostic/v1": d.fingerprint()},
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "mcp-gitops",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&log).unwrap_or_default() + "\n"
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A rule from the code's row in "Codes at a glance" (short) and its own section (full, help).
fn rule(code: Code) -> Value {
    let id = code.as_str();
    // | [`code`](#code) | severity | what it catches before the cluster does |
    let row: Vec<&str> =
        DIAGNOSTICS_DOC.lines().find(|l| l.starts_with(&format!("| [`{id}`]"))).map(|row| row.split(" | ").collect()).unwrap_or_default();
    let short = row
        .get(2)
        .map(|what| format!("Catches before the cluster does: {}", what.trim_end_matches(" |").replace('`', "")))
        .unwrap_or_else(|| id.to_string());
    let default_level = if row.get(1).is_some_and(|severity| severity.starts_with("warning")) { "warning" } else { "error" };
    let section = DIAGNOSTICS_DOC
        .split("\n## ")
        .find(|s| s.starts_with(&format!("{id}\n")))
        .map(|s| s[id.len()..].trim().trim_end_matches("---").trim().to_string())
        .unwrap_or_default();
    let full = section
        .split("\n\n")
        .find(|p| p.starts_with("**Triggered by**"))
        .map(|p| p.replace("**", "").replace('\n', " "))
        .unwrap_or_else(|| short.clone());
    json!({
        "id": id,
        "name": id.split('_').map(|w| w[..1].to_uppercase() + &w[1..]).collect::<String>(),
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": section, "markdown": section},
        "defaultConfiguration": {"level": default_level},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_rule_described_by_the_docs() {
        for code in Code::ALL {
            let rule = rule(code);
            assert!(rule["help"]["text"].as_str().is_some_and(|h| h.contains("**Fix:**") || h.contains("Fix")), "{code}: {rule}");
            assert!(rule["fullDescription"]["text"].as_str().is_some_and(|t| t.starts_with("Triggered by")), "{code}: {rule}");
            assert!(rule["shortDescription"]["text"].as_str().is_some_and(|t| t.starts_with("Catches")), "{code}: {rule}");
        }
    }
}
