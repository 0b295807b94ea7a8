//! Diagnostics as a JUnit XML report, as GitLab, Jenkins and most CI servers read test results:
//! one suite, one passing test case per file without errors, one failing test case per error
//! (named by code and place, its class the file), warnings as output of their file's case.

use super::escape::xml;
use crate::model::Diagnostic;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::collections::BTreeMap;

/// `files` are every file read (relative to the validated directory); `root` is that directory's
/// path inside the repository (`""` or `"platform/"`).
pub fn render<'a>(diagnostics: &[Diagnostic], files: impl IntoIterator<Item = &'a str>, root: &str) -> String {
    let mut by_file: BTreeMap<&str, Vec<&Diagnostic>> = files.into_iter().map(|f| (f, Vec::new())).collect();
    for d in diagnostics {
        by_file.entry(d.file.as_str()).or_default().push(d);
    }
    let mut suite = TestSuite::new("mcp-gitops validate");
    for (file, found) in by_file {
        // XML 1.0 cannot hold every character a file name or a message may have.
        let path = xml(&format!("{root}{file}"));
        let (errors, warnings): (Vec<&Diagnostic>, Vec<&Diagnostic>) = found.into_iter().partition(|d| d.is_error());
        if errors.is_empty() {
            let mut case = TestCase::new(path.clone(), TestCaseStatus::success());
            case.set_classname(path.clone());
            if !warnings.is_empty() {
                case.set_system_out(warnings.iter().map(|d| format!("{}\n", xml(&one_line(d, &path)))).collect::<String>());
            }
            suite.add_test_case(case);
        }
        for d in errors {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_type(d.code.as_str());
            status.set_message(xml(&format!("{}{}", super::in_clusters(d), d.message)));
            status.set_description(xml(&one_line(d, &path)));
            let mut case = TestCase::new(format!("{} {path}:{}:{}", d.code, d.line, d.column), status);
            case.set_classname(path.clone());
            suite.add_test_case(case);
        }
    }
    let mut report = Report::new("mcp-gitops");
    report.add_test_suite(suite);
    report.to_string().unwrap_or_default()
}

/// `path:line:column: code: message (object, field) hint: ...`
fn one_line(d: &Diagnostic, path: &str) -> String {
    let mut line = format!("{path}:{}:{}: {}: {}{}", d.line, d.column, d.code, super::in_clusters(d), d.message);
    let place: Vec<&str> = [d.object.as_str(), d.path.as_str()].into_iter().filter(|s| !s.is_empty()).collect();
    if !place.is_empty() {
        line.push_str(&format!(" ({})", place.join(", ")));
    }
    if !d.hint.is_empty() {
        line.push_str(&format!(" hint: {}", d.hint));
    }
    line
}
