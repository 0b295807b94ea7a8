//! `plan --format github|gitlab|junit` end to end through the binary, each output parsed the way
//! its reader parses it and compared with the plan's own JSON; and the GitHub job summary: appended
//! when `GITHUB_STEP_SUMMARY` names a file, nothing written anywhere when it is unset or empty.

mod common;

use common::{NOW, json, mcp_gitops};
use std::collections::BTreeMap;
use std::path::Path;

const BROKEN: &str = "tests/fixtures/schema-violation";
const BASE: &str = "tests/fixtures/valid-minimal";

/// `plan BROKEN --base BASE --format FORMAT` with `summary` as GITHUB_STEP_SUMMARY (None: unset),
/// run in `dir`: (exit code, stdout, stderr).
fn plan(format: &str, summary: Option<&std::ffi::OsStr>, dir: &Path) -> (i32, String, String) {
    let (broken, base) = (common::root().join(BROKEN), common::root().join(BASE));
    let mut command = mcp_gitops();
    command.current_dir(dir).arg("plan").arg(&broken).arg("--base").arg(&base).args(["--format", format, "--now", NOW]);
    match summary {
        Some(file) => command.env("GITHUB_STEP_SUMMARY", file),
        None => command.env_remove("GITHUB_STEP_SUMMARY"),
    };
    let out = command.output().expect("runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The diagnostics of `plan --format json`, with their files as the forge formats name them:
/// relative to the git repository (the fixtures live in this project's own repository).
fn diagnostics(dir: &Path) -> Vec<serde_json::Value> {
    let (code, stdout, stderr) = plan("json", None, dir);
    assert_eq!(code, 1, "{stderr}");
    let mut diagnostics = json(&stdout)["diagnostics"].as_array().cloned().unwrap_or_default();
    assert_eq!(diagnostics.len(), 4, "the fixture's four schema violations: {diagnostics:?}");
    for d in &mut diagnostics {
        d["file"] = format!("{BROKEN}/{}", d["file"].as_str().unwrap_or_default()).into();
    }
    diagnostics
}

#[test]
fn github_gitlab_and_junit_carry_every_diagnostic_of_the_plan() {
    let dir = tempfile::tempdir().expect("dir");
    let expected = diagnostics(dir.path());

    // GitHub workflow commands: `::severity file=F,line=L,col=C,title=CODE::MESSAGE`, one a line.
    let (code, stdout, _) = plan("github", None, dir.path());
    assert_eq!(code, 1);
    let commands: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(commands.len(), expected.len(), "{stdout}");
    for (line, d) in commands.iter().zip(&expected) {
        let (head, message) = line[2..].split_once("::").expect("::command properties::message");
        let (severity, properties) = head.split_once(' ').expect("a command and its properties");
        let properties: BTreeMap<&str, &str> = properties.split(',').filter_map(|p| p.split_once('=')).collect();
        assert_eq!(severity, d["severity"].as_str().unwrap_or("?"), "{line}");
        // Only the properties GitHub reads.
        let known = ["file", "line", "endLine", "col", "endColumn", "title"];
        assert!(properties.keys().all(|k| known.contains(k)), "{line}");
        let (file, at, column) = (d["file"].as_str().unwrap_or("?"), d["line"].to_string(), d["column"].to_string());
        let code = d["code"].as_str().unwrap_or("?");
        let wanted = BTreeMap::from([("file", file), ("line", at.as_str()), ("col", column.as_str()), ("title", code)]);
        assert!(wanted.iter().all(|(k, v)| properties.get(k) == Some(v)), "{line}: want {wanted:?}");
        // GitHub's escapes undone give the message back.
        let unescaped = message.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%");
        assert!(unescaped.contains(d["message"].as_str().unwrap_or("?")), "{line} / {}", d["message"]);
    }

    // GitLab Code Quality: a JSON array of issues with unique fingerprints.
    let (code, stdout, _) = plan("gitlab", None, dir.path());
    assert_eq!(code, 1);
    let issues = json(&stdout).as_array().cloned().unwrap_or_default();
    assert_eq!(issues.len(), expected.len(), "{stdout}");
    for (issue, d) in issues.iter().zip(&expected) {
        assert_eq!(issue["check_name"], d["code"]);
        assert_eq!(issue["location"]["path"], d["file"]);
        assert_eq!(issue["location"]["lines"]["begin"], d["line"]);
        assert_eq!(issue["severity"], if d["severity"] == "error" { "major" } else { "minor" });
        assert!(issue["description"].as_str().is_some_and(|t| t.contains(d["message"].as_str().unwrap_or("?"))), "{issue}");
    }
    let mut fingerprints: Vec<&str> = issues.iter().filter_map(|i| i["fingerprint"].as_str()).collect();
    fingerprints.sort_unstable();
    fingerprints.dedup();
    assert_eq!(fingerprints.len(), issues.len(), "unique fingerprints: {stdout}");

    // JUnit XML, read by an XML parser: a failure per error, in a case named after its file.
    let (code, stdout, _) = plan("junit", None, dir.path());
    assert_eq!(code, 1);
    let document = roxmltree::Document::parse(&stdout).expect("well-formed XML");
    let failures: Vec<roxmltree::Node> = document.descendants().filter(|n| n.has_tag_name("failure")).collect();
    let errors: Vec<&serde_json::Value> = expected.iter().filter(|d| d["severity"] == "error").collect();
    assert_eq!(failures.len(), errors.len(), "{stdout}");
    for (failure, d) in failures.iter().zip(&errors) {
        assert_eq!(failure.attribute("type"), d["code"].as_str());
        assert_eq!(failure.attribute("message"), d["message"].as_str());
        assert_eq!(failure.parent().and_then(|case| case.attribute("classname")), d["file"].as_str());
    }
    let suite = document.descendants().find(|n| n.has_tag_name("testsuite")).expect("a suite");
    assert_eq!(suite.attribute("failures").and_then(|t| t.parse::<usize>().ok()), Some(errors.len()));
}

#[test]
fn the_job_summary_is_appended_when_set_and_nothing_is_written_when_unset_or_empty() {
    let dir = tempfile::tempdir().expect("dir");
    let (_, comment, _) = plan("markdown", None, dir.path());
    assert_eq!(comment.lines().next(), Some("<!-- mcp-gitops-plan -->"));

    // Set: the plan is appended after what earlier steps wrote.
    let summary = dir.path().join("step-summary.md");
    std::fs::write(&summary, "## an earlier step\n").expect("write");
    for format in ["github", "gitlab", "junit"] {
        let (code, _, stderr) = plan(format, Some(summary.as_os_str()), dir.path());
        assert_eq!(code, 1, "{stderr}");
        assert!(!stderr.contains("GITHUB_STEP_SUMMARY"), "{stderr}");
    }
    let written = std::fs::read_to_string(&summary).expect("read");
    assert_eq!(written, format!("## an earlier step\n{comment}{comment}{comment}"));

    // Unset or empty: the same outputs and exit code, no warning, and no file anywhere in the
    // working directory.
    let quiet = tempfile::tempdir().expect("dir");
    for summary in [None, Some(std::ffi::OsStr::new(""))] {
        for format in ["github", "gitlab", "junit"] {
            let (code, stdout, stderr) = plan(format, summary, quiet.path());
            let (expected_code, expected_stdout, _) = plan(format, Some(dir.path().join("other.md").as_os_str()), dir.path());
            assert_eq!((code, stdout), (expected_code, expected_stdout), "{format} with GITHUB_STEP_SUMMARY {summary:?}");
            assert!(!stderr.contains("GITHUB_STEP_SUMMARY"), "{stderr}");
        }
    }
    let left: Vec<_> = std::fs::read_dir(quiet.path()).expect("read dir").flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "written with no job summary: {left:?}");
}
