//! Bad input gets a diagnostic with a position, the run goes on with the other files, and
//! nothing panics: oversize files (up to 100 MiB), symlinks out of the repository, many files,
//! alias bombs, deep nesting, invalid UTF-8, metadata that is a directory, and random bytes; in a
//! directory and inside a git revision (`plan --base REV`, and the daemon reading a commit),
//! within a time bound and under a memory cap.

mod common;

use common::{NOW, json, run, run_bounded};
use proptest::prelude::*;
use std::fs;
use std::time::{Duration, Instant};

/// Address space the binary may use on a hostile repository (it needs well under 100 MiB of it).
const MEMORY_MIB: u64 = 1024;

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
    assert_eq!(codes(&report, "inside.yml"), ["symlink_not_followed"], "no link is followed, even inside");
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

/// The hostile files of the directory and git tests: (path, what the loader must say about it).
fn write_hostile(root: &std::path::Path) -> Vec<(&'static str, &'static str, &'static str)> {
    // 100 MiB, sparse on disk: the size cap must refuse it before reading a byte.
    fs::File::create(root.join("dump.yaml")).and_then(|f| f.set_len(100 * 1024 * 1024)).expect("big file");
    let mut bomb = String::from(
        "kind: MCPAccessGrant\nmetadata: {name: bomb, namespace: mcp-team-a}\nspec:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..12 {
        bomb.push_str(&format!("  a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", ")));
    }
    fs::write(root.join("bomb.yaml"), bomb).expect("write");
    fs::write(root.join("deep.yaml"), format!("kind: MCPAccessGrant\nspec: {}{}\n", "[".repeat(200_000), "]".repeat(200_000)))
        .expect("write");
    let block: String = (0..2_000).map(|i| format!("{}k{i}:\n", "  ".repeat(i))).collect();
    fs::write(root.join("deep-block.yaml"), block).expect("write");
    fs::write(root.join("latin1.yaml"), b"kind: MCPAccessGrant\nmetadata: {name: caf\xe9}\n".as_slice()).expect("write");
    fs::create_dir_all(root.join("team/.mcp/servers.yaml")).expect("mkdir");
    fs::write(root.join("team/.mcp/servers.yaml/inner.yaml"), "title: not metadata, its folder is\n").expect("write");
    let many = root.join("many");
    fs::create_dir_all(&many).expect("mkdir");
    for i in 0..10_000 {
        fs::write(many.join(format!("n{i}.yaml")), format!("title: note {i}\n")).expect("write");
    }
    vec![
        ("dump.yaml", "yaml_syntax", "over the 8 MiB cap"),
        ("bomb.yaml", "yaml_syntax", "alias expansion exceeds"),
        ("deep.yaml", "yaml_syntax", "nesting is deeper|recursion limit exceeded"),
        ("deep-block.yaml", "yaml_syntax", "nesting is deeper"),
        ("latin1.yaml", "yaml_syntax", "not valid UTF-8"),
    ]
}

fn has(report: &serde_json::Value, file: &str, code: &str, fragment: &str) -> bool {
    report["diagnostics"].as_array().into_iter().flatten().any(|d| {
        d["file"] == file
            && d["code"] == code
            && d["message"].as_str().is_some_and(|m| fragment.split('|').any(|f| m.contains(f)))
            && d["line"].as_u64() >= Some(1)
    })
}

#[test]
fn a_hostile_directory_gets_one_diagnostic_per_file_within_bounds() {
    let dir = repo_with_valid_minimal();
    let expected = write_hostile(dir.path());
    let outside = tempfile::tempdir().expect("outside");
    fs::write(outside.path().join("secret.yaml"), "kind: MCPAccessGrant\nmetadata: {name: stolen}\n").expect("write");
    std::os::unix::fs::symlink(outside.path().join("secret.yaml"), dir.path().join("escape.yaml")).expect("symlink");
    let root = dir.path().to_string_lossy().into_owned();

    let started = Instant::now();
    let out = run_bounded(&["validate", &root, "--format", "json", "--now", NOW], &[], MEMORY_MIB, Duration::from_secs(60));
    eprintln!("validate of the hostile directory: {:?}", started.elapsed());
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = json(&out.stdout);
    for (file, code, fragment) in expected.iter().chain(&[("escape.yaml", "path_outside_repo", "outside the repository")]) {
        assert!(has(&report, file, code, fragment), "{file}: want [{code}] {fragment}:\n{}", out.stdout);
    }
    // The metadata "file" that is a directory is walked as a folder; the rest of the repository loads.
    let text = run_bounded(&["validate", &root, "--now", NOW], &[], MEMORY_MIB, Duration::from_secs(60));
    assert!(text.stdout.contains("1 servers, 1 grants, 1 sessions"), "{}", text.stdout);
    assert!(!text.stdout.contains("stolen"));
}

#[test]
fn the_same_hostile_files_in_a_git_revision_are_reported_within_bounds() {
    use git2::{IndexAddOption, Repository, Signature};
    let work = repo_with_valid_minimal();
    let repo = Repository::init(work.path()).expect("init");
    let signature = Signature::now("Platform Team", "platform@fernhill.io").expect("signature");
    let commit = |message: &str| {
        let mut index = repo.index().expect("index");
        index.add_all(["*"], IndexAddOption::DEFAULT, None).expect("add");
        index.update_all(["*"], None).expect("update");
        index.write().expect("write");
        let tree = repo.find_tree(index.write_tree().expect("tree")).expect("tree");
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(Some("HEAD"), &signature, &signature, message, &tree, &parents).expect("commit")
    };
    commit("valid");
    // Not sparse in git: the blob really is 100 MiB (of zeros, so it compresses).
    let expected = write_hostile(work.path());
    std::os::unix::fs::symlink("../../../etc/passwd.yaml", work.path().join("escape.yaml")).expect("symlink");
    let hostile = commit("hostile").to_string();

    // The daemon's path: the commit read from the object database, loaded and validated.
    let started = Instant::now();
    let snapshot = mcp_gitops::source::from_git(work.path(), &hostile).expect("snapshot");
    let state = mcp_gitops::validate::validate(mcp_gitops::load::load(snapshot), NOW.parse().expect("time"));
    eprintln!("load + validate of the hostile commit: {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(60));
    let report = serde_json::json!({"diagnostics": state.diagnostics});
    for (file, code, fragment) in expected.iter().chain(&[("escape.yaml", "path_outside_repo", "outside the repository")]) {
        assert!(has(&report, file, code, fragment), "{file}: want [{code}] {fragment}:\n{report:#}");
    }

    // `plan --base REV` reads the same tree through git2, in the real binary under the cap.
    for entry in ["dump.yaml", "bomb.yaml", "deep.yaml", "deep-block.yaml", "latin1.yaml", "escape.yaml", "team", "many"] {
        let path = work.path().join(entry);
        let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
    }
    let root = work.path().to_string_lossy().into_owned();
    let started = Instant::now();
    let out = run_bounded(&["plan", &root, "--base", &hostile, "--format", "json", "--now", NOW], &[], MEMORY_MIB, Duration::from_secs(60));
    eprintln!("plan --base <hostile commit>: {:?}", started.elapsed());
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let plan = json(&out.stdout);
    assert_eq!(plan["base"]["revision"], hostile.as_str());
    // None of the hostile files yields an object, so the base holds what the work tree holds.
    for action in ["create", "update", "delete"] {
        assert_eq!(plan["summary"][action], 0, "{}", plan["summary"]);
    }
}

proptest! {
    #![proptest_config(common::properties::config("hostile_input", 2_000))]

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

/// A guardrail policy whose cost has no bound, in a commit the daemon follows: the reconcile
/// ends (invalid, with the policy named) instead of hanging, the daemon keeps serving, and the
/// next reconcile does not run the policy again.
#[test]
fn a_runaway_guardrail_policy_does_not_hang_the_daemon() {
    use git2::{IndexAddOption, Repository, Signature};
    let work = repo_with_valid_minimal();
    fs::copy(common::root().join("tests/fuzz/corpus/guardrail/nested-comprehensions.yaml"), work.path().join("runaway.yaml"))
        .expect("copy");
    let repo = Repository::init(work.path()).expect("init");
    let mut index = repo.index().expect("index");
    index.add_all(["*"], IndexAddOption::DEFAULT, None).expect("add");
    index.write().expect("write");
    let tree = repo.find_tree(index.write_tree().expect("tree")).expect("tree");
    let signature = Signature::now("Platform Team", "platform@fernhill.io").expect("signature");
    repo.commit(Some("refs/heads/main"), &signature, &signature, "a runaway policy", &tree, &[]).expect("commit");
    // Never contacted: an invalid commit stops before the cluster is read.
    let kubeconfig = work.path().join("unused.kubeconfig");
    fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n").expect("kubeconfig");
    let cache = tempfile::tempdir().expect("cache");
    let log = cache.path().join("daemon.log");
    // Killed on drop, a failed assertion included: a runaway policy keeps a core busy.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut daemon = Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_mcp-gitops"))
            .args(["daemon", "--repo", &work.path().to_string_lossy(), "--branch", "main", "--interval", "1s"])
            .args(["--listen", "127.0.0.1:0", "--kubeconfig", &kubeconfig.to_string_lossy()])
            .args(["--cache-dir", &cache.path().to_string_lossy(), "--log-format", "json"])
            .env("MCP_GITOPS_POLICY_TIMEOUT", "2")
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(&log).expect("log"))
            .spawn()
            .expect("daemon"),
    );
    let address = common::daemon::listen_address(&mut daemon.0, &log);
    let status =
        || -> serde_json::Value { reqwest::blocking::get(format!("http://{address}/status")).and_then(|r| r.json()).unwrap_or_default() };
    let wait = |what: &str, done: &dyn Fn(&serde_json::Value) -> bool| {
        let started = Instant::now();
        loop {
            let s = status();
            if done(&s) {
                return s;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "gave up waiting for {what}: {s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let first_error = |s: &serde_json::Value| {
        s["diagnostics"]["first"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str())
            .map(String::from)
            .find(|d| d.contains("nested-comprehensions"))
            .unwrap_or_default()
    };
    let first = wait("the first reconcile", &|s| s["last_result"] == "invalid");
    assert!(first_error(&first).contains("did not finish within 2s"), "{first}");
    let again = wait("a second reconcile", &|s| s["last_reconcile"] != first["last_reconcile"] && s["last_result"] == "invalid");
    // Still reported, and not run again: the daemon keeps the validation of an unchanged
    // revision (or, on a new one, remembers the policy ran away "on an earlier run").
    assert!(first_error(&again).contains("did not finish within 2s"), "{again}");
}

/// A grant as `tests/fixtures/valid-minimal` has it, for another subject, ending with `tail`
/// (more lines of its spec).
fn grant(name: &str, tail: &str) -> String {
    format!(
        "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: {name}\n  namespace: mcp-team-a\nspec:\n  serverRef:\n    name: payments-mcp\n  subject:\n    humanID: user-2@example.com\n    agentID: ops-agent\n  maxTrust: high\n  allowedSideEffects: [read]\n{tail}"
    )
}

/// (code, line, column, hint) of each diagnostic of `file`.
fn found(report: &serde_json::Value, file: &str) -> Vec<(String, u64, u64, String)> {
    let diagnostics = report["diagnostics"].as_array().into_iter().flatten().filter(|d| d["file"] == file);
    diagnostics
        .map(|d| {
            let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
            (text("code"), d["line"].as_u64().unwrap_or(0), d["column"].as_u64().unwrap_or(0), text("hint"))
        })
        .collect()
}

/// #25.8: a grant revoked with `disabled: true` and brought back by a merge key after it, which
/// kubectl's reader (sigs.k8s.io/yaml) applies in order and mcp-gitops does not; and a
/// `!!binary` value, which kubectl decodes and mcp-gitops would not. Each is refused where it is.
#[test]
fn yaml_that_kubectl_reads_differently_is_refused_in_objects() {
    let dir = repo_with_valid_minimal();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    };
    write("access/revoked.yaml", &grant("revoked", "  policyVersion: v1\n  disabled: true\n  <<: {disabled: false}\n"));
    write("access/binary.yaml", &grant("binary", "  policyVersion: !!binary djE=\n"));
    write("access/custom.yaml", &grant("custom", "  policyVersion: !v v1\n"));
    // `kind` and `apiVersion` as kubectl reads them (base64), unseen by a plain reading.
    write(
        "access/hidden.yaml",
        "? !!binary YXBpVmVyc2lvbg==\n: mcpruntime.org/v1alpha1\n? !!binary a2luZA==\n: MCPAccessGrant\nmetadata: {name: hidden}\n",
    );
    // A label key that YAML 1.1 reads as the boolean true.
    write(
        "access/label.yaml",
        &grant("label", "  policyVersion: v1\n").replace("  name: label\n", "  name: label\n  labels: {y: team-a}\n"),
    );
    // YAML that is not cluster state keeps its merge keys and tags.
    write(
        "ci/workflow.yml",
        "defaults: &defaults {runs-on: ubuntu-latest}\njobs:\n  plan:\n    <<: *defaults\n    steps: !reference [.setup, script]\n",
    );

    let out = run(&["validate", &dir.path().to_string_lossy(), "--format", "json", "--now", NOW]);
    let report = json(&out.stdout);
    assert_eq!(out.code, 1, "{report}");
    let ambiguous = |file: &str| -> Vec<(u64, u64)> {
        let found = found(&report, file);
        assert!(found.iter().all(|(code, _, _, hint)| code != "yaml_ambiguous" || !hint.is_empty()), "{found:?}");
        found.into_iter().filter(|(code, ..)| code == "yaml_ambiguous").map(|(_, line, column, _)| (line, column)).collect()
    };
    assert_eq!(ambiguous("access/revoked.yaml"), [(16, 3)], "{report}");
    assert_eq!(ambiguous("access/binary.yaml"), [(14, 18)], "{report}");
    assert_eq!(ambiguous("access/custom.yaml"), [(14, 18)], "{report}");
    assert_eq!(ambiguous("access/hidden.yaml"), [(1, 3), (3, 3)], "{report}");
    assert_eq!(ambiguous("access/label.yaml"), [(5, 12)], "{report}");
    assert!(ambiguous("ci/workflow.yml").is_empty(), "{report}");
    assert!(found(&report, "access/ops.yaml").is_empty(), "the ordinary file is unchanged: {report}");
}

/// #25.8: an expiry written where nothing reads it (on a session, which has spec.expiresAt; with
/// the key in another case) would leave the access on for good: each is a warning at the key.
#[test]
fn an_expiry_that_nothing_reads_is_a_warning() {
    let dir = repo_with_valid_minimal();
    let annotated = |kind: &str, name: &str, key: &str, spec: &str| {
        format!(
            "apiVersion: mcpruntime.org/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: mcp-team-a\n  annotations:\n    {key}: \"2026-11-20T18:00:00Z\"\nspec:\n  serverRef:\n    name: payments-mcp\n  subject:\n    humanID: user-2@example.com\n    agentID: ops-agent\n{spec}"
        )
    };
    let grant_spec = "  maxTrust: high\n  allowedSideEffects: [read]\n  policyVersion: v1\n";
    let session_spec = "  consentedTrust: medium\n  expiresAt: \"2099-01-01T00:00:00Z\"\n  policyVersion: v1\n";
    let files = [
        ("access/session.yaml", annotated("MCPAgentSession", "oncall", "mcp-gitops.io/expires-at", session_spec)),
        ("access/cased.yaml", annotated("MCPAccessGrant", "cased", "mcp-gitops.io/Expires-At", grant_spec)),
        ("access/underscored.yaml", annotated("MCPAccessGrant", "underscored", "mcp-gitops.io/expires_at", grant_spec)),
        ("access/exact.yaml", annotated("MCPAccessGrant", "exact", "mcp-gitops.io/expires-at", grant_spec)),
        ("access/foreign.yaml", annotated("MCPAccessGrant", "foreign", "example.com/expires-at", grant_spec)),
    ];
    for (path, text) in &files {
        fs::write(dir.path().join(path), text).expect("write");
    }
    let out = run(&["validate", &dir.path().to_string_lossy(), "--format", "json", "--now", NOW]);
    let report = json(&out.stdout);
    assert_eq!(out.code, 0, "warnings only: {report}");
    let ignored = |file: &str| -> Vec<(u64, u64)> {
        let found = found(&report, file);
        found.into_iter().filter(|(code, ..)| code == "annotation_ignored").map(|(_, line, column, _)| (line, column)).collect()
    };
    assert_eq!(ignored("access/session.yaml"), [(7, 5)], "{report}");
    assert_eq!(ignored("access/cased.yaml"), [(7, 5)], "{report}");
    assert_eq!(ignored("access/underscored.yaml"), [(7, 5)], "{report}");
    assert!(ignored("access/exact.yaml").is_empty(), "the grant's own expiry is read: {report}");
    assert!(found(&report, "access/exact.yaml").iter().any(|(code, ..)| code == "grant_expired"), "{report}");
    assert!(ignored("access/foreign.yaml").is_empty(), "another tool's annotation is its own: {report}");
    let session = report["diagnostics"].as_array().into_iter().flatten().find(|d| d["file"] == "access/session.yaml");
    assert!(session.is_some_and(|d| d["hint"].as_str().is_some_and(|h| h.contains("spec.expiresAt"))), "{report}");
}
