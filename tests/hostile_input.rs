//! Bad input gets a diagnostic with a position, the run goes on with the other files, and
//! nothing panics: oversize files, symlinks out of the repository, many files, deep nesting,
//! and random bytes.

mod common;

use common::{NOW, json, run};
use proptest::prelude::*;
use std::fs;

fn codes(report: &serde_json::Value, file: &str) -> Vec<String> {
    report["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["file"] == file)
        .map(|d| d["code"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn repo_with_valid_minimal() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let from = common::root().join("tests/fixtures/valid-minimal");
    for entry in walk(&from) {
        let rel = entry.strip_prefix(&from).expect("inside");
        let to = dir.path().join(rel);
        fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        fs::copy(&entry, &to).expect("copy");
    }
    dir
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("read").flatten() {
        if entry.path().is_dir() {
            files.extend(walk(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

#[test]
fn oversize_files_and_escaping_symlinks_are_reported_and_the_rest_still_loads() {
    let dir = repo_with_valid_minimal();
    let big = "# padding line that is not a manifest\n".repeat(8 * 1024 * 1024 / 38 + 20_000);
    fs::write(dir.path().join("huge.yaml"), big).expect("write big file");
    let outside = tempfile::tempdir().expect("outside");
    fs::write(outside.path().join("grant.yaml"), "kind: MCPAccessGrant\nmetadata: {name: stolen}\n").expect("write");
    std::os::unix::fs::symlink(outside.path().join("grant.yaml"), dir.path().join("linked.yaml")).expect("symlink");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linked-dir")).expect("symlink");
    fs::write(dir.path().join("notes.txt"), "title: release notes\n").expect("write");
    std::os::unix::fs::symlink(dir.path().join("notes.txt"), dir.path().join("inside.yml")).expect("symlink");

    let root = dir.path().to_string_lossy().into_owned();
    let out = run(&["validate", &root, "--format", "json", "--now", NOW]);
    let report = json(&out.stdout);
    assert_eq!(codes(&report, "huge.yaml"), ["yaml_syntax"]);
    assert_eq!(codes(&report, "linked.yaml"), ["path_outside_repo"]);
    assert_eq!(codes(&report, "linked-dir"), ["path_outside_repo"]);
    assert!(codes(&report, "inside.yml").is_empty());
    let text = run(&["validate", &root, "--now", NOW]);
    assert!(text.stdout.contains("1 servers, 1 grants, 1 sessions"), "the valid files still load:\n{}", text.stdout);
    assert!(!text.stdout.contains("stolen"));
}

#[test]
fn ten_thousand_files_in_one_directory_load() {
    let dir = repo_with_valid_minimal();
    let many = dir.path().join("many");
    fs::create_dir(&many).expect("mkdir");
    for i in 0..10_000 {
        fs::write(many.join(format!("note-{i}.yaml")), format!("title: note {i}\n")).expect("write");
    }
    let out = run(&["validate", &dir.path().to_string_lossy(), "--now", NOW]);
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn metadata_that_is_a_directory_is_not_a_crash() {
    let dir = repo_with_valid_minimal();
    fs::create_dir_all(dir.path().join("team/.mcp/servers.yaml")).expect("mkdir");
    let out = run(&["validate", &dir.path().to_string_lossy(), "--now", NOW]);
    assert_eq!(out.code, 0, "{}", out.stdout);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_loader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let snapshot = mcp_gitops::source::Snapshot {
            files: vec![mcp_gitops::source::SourceFile { path: "x.yaml".into(), bytes }],
            ..Default::default()
        };
        let now = NOW.parse().expect("time");
        let _ = mcp_gitops::validate::validate(mcp_gitops::load::load(snapshot), now);
    }

    #[test]
    fn the_loader_never_panics_on_yaml_shaped_text(text in "(kind: (MCPAccessGrant|MCPServer|MCPAgentSession|Secret)\n)?(metadata:\n  name: [a-z]{1,5}\n)?(spec:\n)?([ -]{0,4}[a-zA-Z]{1,8}: ?[\\[\\]{}&*!|>'\"a-z0-9:,-]{0,12}\n){0,12}(---\n)?") {
        let snapshot = mcp_gitops::source::Snapshot {
            files: vec![mcp_gitops::source::SourceFile { path: "x.yaml".into(), bytes: text.into_bytes() }],
            ..Default::default()
        };
        let now = NOW.parse().expect("time");
        let _ = mcp_gitops::validate::validate(mcp_gitops::load::load(snapshot), now);
    }
}
