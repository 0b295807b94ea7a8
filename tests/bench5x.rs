//! The repository of the 5x benchmark (`tests/bench.sh --size 5x`, issue #30) follows the
//! default guardrails: with `--time-bound` the generator (tests/bench/generate.rs, included here
//! as it is) gives every grant that can reach a destructive tool `mcp-gitops.io/expires-at`
//! and leaves `destructive-grants-expire` on, so `validate` passes it with every default policy;
//! the same repository with one grant's expiry taken away is refused. Without the flag the
//! generator writes what the 1x benchmark has always measured.

#[allow(dead_code)]
#[path = "bench/generate.rs"]
mod generate;

mod common;

use clap::Parser;
use common::{NOW, json, run};
use std::path::Path;

/// A small repository from the benchmark's generator (8 teams, 40 servers, 400 grants, 400
/// sessions), `extra` flags added.
fn generated(dir: &Path, extra: &[&str]) {
    let out = dir.to_string_lossy();
    let args = [
        &["generate", "--seed", "7", "--namespaces", "8", "--servers", "40", "--grants", "400", "--sessions", "400", "--now", NOW][..],
        extra,
        &[&out],
    ]
    .concat();
    generate::run(&generate::Options::parse_from(args)).expect("the generator writes the repository");
}

/// `validate --format json` at the generation's clock: exit code, errors and warnings.
fn validated(dir: &Path) -> (i32, Vec<String>, usize) {
    let out = run(&["validate", &dir.to_string_lossy(), "--format", "json", "--now", NOW]);
    let report = json(&out.stdout);
    let diagnostics = report["diagnostics"].as_array().cloned().unwrap_or_default();
    let errors =
        diagnostics.iter().filter(|d| d["severity"] == "error").map(|d| d["message"].as_str().unwrap_or_default().to_string()).collect();
    let warnings = diagnostics.iter().filter(|d| d["severity"] == "warning").count();
    (out.code, errors, warnings)
}

/// Every grants file of the repository, with its text.
fn grant_files(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut files = Vec::new();
    for team in std::fs::read_dir(dir.join("teams")).expect("teams/").flatten() {
        for file in std::fs::read_dir(team.path().join("grants")).expect("grants/").flatten() {
            let text = std::fs::read_to_string(file.path()).expect("read");
            files.push((file.path(), text));
        }
    }
    files.sort();
    files
}

#[test]
fn time_bound_repository_passes_every_default_policy_and_an_expiry_taken_away_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    generated(dir.path(), &["--time-bound"]);
    let config = std::fs::read_to_string(dir.path().join("mcp-gitops.yaml")).expect("mcp-gitops.yaml");
    assert!(!config.contains("policies:"), "no default policy is disabled:\n{config}");

    let (code, errors, warnings) = validated(dir.path());
    assert_eq!((code, errors.len(), warnings), (0, 0, 0), "errors: {errors:?}");

    // The attack: a destructive grant without its expiry, as a hurried edit would leave it.
    let files = grant_files(dir.path());
    let expiring: usize = files.iter().map(|(_, text)| text.matches("mcp-gitops.io/expires-at").count()).sum();
    assert!(expiring > 20, "the destructive grants carry an expiry ({expiring})");
    let (path, text) = files.iter().find(|(_, text)| text.contains("mcp-gitops.io/expires-at")).expect("a time-bound grant");
    let start = text.find("  annotations:\n").expect("the annotation block");
    let end = start + text[start..].find("spec:").expect("spec after the annotations");
    let name = text[..start].rsplit("name: ").next().and_then(|rest| rest.lines().next()).expect("the grant's name").to_string();
    std::fs::write(path, format!("{}{}", &text[..start], &text[end..])).expect("write");

    let (code, errors, _) = validated(dir.path());
    assert_eq!(code, 1, "a standing destructive grant is an error");
    assert_eq!(errors.len(), 1, "only that grant: {errors:?}");
    assert!(errors[0].contains(&format!("grant {name} can reach destructive tools")) && errors[0].contains("it has none"), "{errors:?}");
}

#[test]
fn without_time_bound_the_generator_writes_the_1x_benchmark_repository() {
    let dir = tempfile::tempdir().expect("tempdir");
    generated(dir.path(), &[]);
    let config = std::fs::read_to_string(dir.path().join("mcp-gitops.yaml")).expect("mcp-gitops.yaml");
    assert!(config.contains("policies:\n  disabled: [destructive-grants-expire]\n"), "{config}");
    assert!(grant_files(dir.path()).iter().all(|(_, text)| !text.contains("expires-at")), "no grant carries an expiry");
    let (code, errors, warnings) = validated(dir.path());
    assert_eq!((code, errors.len(), warnings), (0, 0, 0), "errors: {errors:?}");
}
