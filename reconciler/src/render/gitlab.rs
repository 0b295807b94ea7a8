//! Diagnostics as a GitLab Code Quality report (the merge-request widget): a JSON array of
//! issues with a fingerprint that is unique in the report and stable when lines move.

use crate::model::{Diagnostic, Severity};
use serde_json::{Value, json};
use std::collections::HashMap;

/// `root` is the path of the validated directory inside the repository (`""` or `"platform/"`).
pub fn render(diagnostics: &[Diagnostic], root: &str) -> String {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let issues: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            // The same problem twice in one file (two identical duplicate keys, say) still
            // needs two fingerprints: the n-th occurrence is numbered.
            let base = d.fingerprint();
            let n = seen.entry(base.clone()).and_modify(|n| *n += 1).or_insert(0);
            let fingerprint = if *n == 0 { base } else { format!("{base}-{n}") };
            let mut description = format!("{}: {}{}", d.code, super::in_clusters(d), d.message);
            if !d.object.is_empty() {
                description.push_str(&format!(" ({})", d.object));
            }
            json!({
                "description": description,
                "check_name": d.code.as_str(),
                "fingerprint": fingerprint,
                "severity": match d.severity { Severity::Error => "major", Severity::Warning => "minor" },
                "location": {"path": format!("{root}{}", d.file), "lines": {"begin": d.line.max(1)}},
            })
        })
        .collect();
    serde_json::to_string_pretty(&issues).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Code, Pos};

    #[test]
    fn fingerprints_are_unique_and_do_not_move_with_lines() {
        let at = |line| Diagnostic::error(Code::YamlSyntax, "a.yaml", Pos { line, column: 1 }, "duplicate key");
        let report: Value = serde_json::from_str(&render(&[at(3), at(9)], "")).unwrap_or_default();
        let moved: Value = serde_json::from_str(&render(&[at(4), at(10)], "")).unwrap_or_default();
        assert_ne!(report[0]["fingerprint"], report[1]["fingerprint"]);
        assert_eq!(report[0]["fingerprint"], moved[0]["fingerprint"]);
        assert_eq!(report[1]["location"], json!({"path": "a.yaml", "lines": {"begin": 9}}));
        assert_eq!(report[0]["severity"], "major");
    }
}
