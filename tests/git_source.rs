//! Plans against a git revision: real repositories with real commits (git2), read from the
//! object database without a checkout.

mod common;

use common::{NOW, json, run};
use git2::{Commit, IndexAddOption, Repository, Signature};
use std::fs;

/// Replaces the work tree under `sub` (or adds to the root, for "") with `example` and commits everything.
fn commit_example(repo: &Repository, sub: &str, example: &str, message: &str) -> git2::Oid {
    let workdir = repo.workdir().expect("work tree").to_path_buf();
    if !sub.is_empty() {
        let _ = fs::remove_dir_all(workdir.join(sub));
    }
    common::copy_dir(&common::root().join(example), &workdir.join(sub));
    let mut index = repo.index().expect("index");
    index.add_all(["*"], IndexAddOption::DEFAULT, None).expect("add");
    index.update_all(["*"], None).expect("update");
    index.write().expect("write index");
    let tree = repo.find_tree(index.write_tree().expect("tree")).expect("find tree");
    let signature = Signature::now("Platform Team", "platform@fernhill.io").expect("signature");
    let parent: Option<Commit> = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &signature, &signature, message, &tree, &parents).expect("commit")
}

#[test]
fn plan_against_the_previous_commit_matches_the_directory_plan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init(dir.path()).expect("init");
    let base = commit_example(&repo, "platform", "examples/platform", "platform as deployed");
    commit_example(&repo, "platform", "examples/pr-change", "widen refund-desk, revoke nightly session");
    let path = dir.path().join("platform").to_string_lossy().into_owned();

    // The work tree equals HEAD; the base is read from the previous commit's tree.
    let from_git = json(&run(&["plan", &path, "--base", "HEAD~1", "--format", "json", "--now", NOW]).stdout);
    assert_eq!(from_git["base"]["kind"], "git");
    assert_eq!(from_git["base"]["revision"], base.to_string());
    let from_dir = json(&run(&["plan", "examples/pr-change", "--base", "examples/platform", "--format", "json", "--now", NOW]).stdout);
    assert_eq!(from_git["changes"], from_dir["changes"]);
    assert_eq!(from_git["access_changes"], from_dir["access_changes"]);
    assert_eq!(from_git["policy_revisions"], from_dir["policy_revisions"]);

    // A full commit id and a branch name work too; HEAD itself has no changes.
    assert_eq!(
        json(&run(&["plan", &path, "--base", &base.to_string(), "--format", "json", "--now", NOW]).stdout)["summary"],
        from_git["summary"]
    );
    let head = run(&["plan", &path, "--base", "HEAD", "--detailed-exitcode", "--now", NOW]);
    assert_eq!(head.code, 0, "{}", head.stdout);
}

#[test]
fn uncommitted_edits_are_planned_against_the_committed_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init(dir.path()).expect("init");
    commit_example(&repo, "", "examples/platform", "initial");
    let grant = dir.path().join("teams/support/grants/support-leads.yaml");
    let text = fs::read_to_string(&grant).expect("grant file");
    fs::write(&grant, text.replacen("maxTrust: high", "maxTrust: medium", 1)).expect("edit");
    let root = dir.path().to_string_lossy().into_owned();
    let out = run(&["plan", &root, "--base", "HEAD", "--format", "json", "--now", NOW]);
    let plan = json(&out.stdout);
    assert_eq!(plan["summary"]["update"], 1, "{}", out.stdout);
    let diff = plan["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["action"] == "update"))
        .map(|c| c["diff"].as_str().unwrap_or_default().to_string());
    assert!(diff.is_some_and(|d| d.contains("-  maxTrust: high") && d.contains("+  maxTrust: medium")));
}

#[test]
fn symlinks_in_a_commit_that_leave_the_tree_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init(dir.path()).expect("init");
    commit_example(&repo, "", "tests/fixtures/valid-minimal", "initial");
    std::os::unix::fs::symlink("../../etc/passwd.yaml", dir.path().join("escape.yaml")).expect("symlink");
    std::os::unix::fs::symlink("README.md", dir.path().join("inside.yaml")).expect("symlink");
    commit_example(&repo, "keep", "tests/fixtures/valid-minimal", "add links");
    let root = dir.path().to_string_lossy().into_owned();
    let snapshot = mcp_gitops::source::from_git(dir.path(), "HEAD").expect("snapshot");
    assert!(snapshot.files.iter().all(|f| f.path != "inside.yaml"), "no link is followed, even inside the tree");
    assert!(snapshot.diagnostics.iter().any(|d| d.file == "inside.yaml" && d.code == mcp_gitops::model::Code::SymlinkNotFollowed));
    assert!(snapshot.diagnostics.iter().any(|d| d.file == "escape.yaml" && d.code == mcp_gitops::model::Code::PathOutsideRepo));
    let out = run(&["plan", &root, "--base", "HEAD~1", "--now", NOW]);
    assert!(out.stdout.contains("path_outside_repo"), "{}", out.stdout);
}

/// The attack: a file in a guarded folder is a link to a file elsewhere (here a chain of two
/// links), so an edit where the signers' path rules do not look changes the guarded object; and
/// the work tree and a revision read the chain differently. One rule for both readers: no link
/// is followed, each is an error naming it and its target, and nothing is declared through it.
#[test]
fn a_symlink_is_refused_alike_in_the_work_tree_and_at_a_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init(dir.path()).expect("init");
    commit_example(&repo, "", "tests/fixtures/valid-minimal", "initial");
    fs::create_dir_all(dir.path().join("teams/payments")).expect("mkdir");
    fs::create_dir_all(dir.path().join("scratch")).expect("mkdir");
    let grant = "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata: {name: through-a-link, namespace: mcp-team-a}\nspec:\n  serverRef: {name: tickets}\n  subject: {agentID: bot}\n  allowedSideEffects: [read]\n";
    fs::write(dir.path().join("scratch/notes.txt"), grant).expect("write");
    std::os::unix::fs::symlink("notes.txt", dir.path().join("scratch/hop.txt")).expect("symlink");
    std::os::unix::fs::symlink("../../scratch/hop.txt", dir.path().join("teams/payments/grants.yaml")).expect("symlink");
    std::os::unix::fs::symlink("../scratch", dir.path().join("teams/linked")).expect("symlink");
    commit_example(&repo, "keep", "tests/fixtures/valid-minimal", "guarded links");
    let root = dir.path().to_string_lossy().into_owned();

    let work_tree = json(&run(&["validate", &root, "--format", "json", "--now", NOW]).stdout);
    let snapshot = mcp_gitops::source::from_git(dir.path(), "HEAD").expect("snapshot");
    let at_revision: Vec<(String, String)> = snapshot.diagnostics.iter().map(|d| (d.file.clone(), d.code.to_string())).collect();
    for link in ["teams/payments/grants.yaml", "teams/linked"] {
        let found =
            work_tree["diagnostics"].as_array().into_iter().flatten().any(|d| d["file"] == link && d["code"] == "symlink_not_followed");
        assert!(found, "work tree, {link}: {work_tree}");
        assert!(at_revision.contains(&(link.to_string(), "symlink_not_followed".to_string())), "revision, {link}: {at_revision:?}");
    }
    assert!(!work_tree.to_string().contains("through-a-link"), "nothing is declared through a link: {work_tree}");
    assert!(snapshot.files.iter().all(|f| !String::from_utf8_lossy(&f.bytes).contains("through-a-link")));
    assert_eq!(work_tree["ok"], false);
}

#[test]
fn a_directory_added_since_the_base_plans_as_creates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init(dir.path()).expect("init");
    commit_example(&repo, "other", "tests/fixtures/valid-minimal", "another team's folder");
    commit_example(&repo, "platform", "examples/platform", "add the platform");
    let path = dir.path().join("platform").to_string_lossy().into_owned();
    let plan = json(&run(&["plan", &path, "--base", "HEAD~1", "--format", "json", "--now", NOW]).stdout);
    assert_eq!(plan["summary"]["create"], 22, "{}", plan["summary"]);
    assert_eq!(plan["summary"]["delete"], 0);
}

/// Commits the work tree as it is.
fn commit_all(repo: &Repository, message: &str) {
    let mut index = repo.index().expect("index");
    index.add_all(["*"], IndexAddOption::DEFAULT, None).expect("add");
    index.write().expect("write index");
    let tree = repo.find_tree(index.write_tree().expect("tree")).expect("find tree");
    let signature = Signature::now("Platform Team", "platform@fernhill.io").expect("signature");
    let parent = repo.head().expect("head").peel_to_commit().expect("parent");
    repo.commit(Some("HEAD"), &signature, &signature, message, &tree, &[&parent]).expect("commit");
}

#[test]
fn a_base_file_that_does_not_parse_is_reported_and_its_creates_are_uncertain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init(dir.path()).expect("init");
    commit_example(&repo, "", "examples/platform", "platform as deployed");
    let grant = dir.path().join("teams/payments/grants/refund-desk.yaml");
    let good = fs::read_to_string(&grant).expect("grant file");
    fs::write(&grant, good.replacen("  maxTrust: medium", "  maxTrust: [medium", 1)).expect("break");
    commit_all(&repo, "a broken edit lands on main");
    fs::write(&grant, &good).expect("fix");
    commit_all(&repo, "fix it");
    let root = dir.path().to_string_lossy().into_owned();

    let out = run(&["plan", &root, "--base", "HEAD~1", "--format", "json", "--now", NOW]);
    assert_eq!(out.code, 0, "the base's problems are not the change's: {}", out.stderr);
    let plan = json(&out.stdout);
    assert!(plan["diagnostics"].as_array().is_some_and(Vec::is_empty), "{}", plan["diagnostics"]);
    let base_problems = plan["base_diagnostics"].as_array().cloned().unwrap_or_default();
    assert!(
        base_problems
            .iter()
            .any(|d| d["code"] == "yaml_syntax" && d["file"] == "teams/payments/grants/refund-desk.yaml" && d["line"].as_u64() >= Some(15)),
        "{base_problems:?}"
    );
    let creates: Vec<&serde_json::Value> =
        plan["changes"].as_array().map(|c| c.iter().filter(|c| c["action"] == "create").collect()).unwrap_or_default();
    assert_eq!(creates.len(), 1, "{}", plan["changes"]);
    assert_eq!(creates[0]["name"], "refund-desk");
    assert!(creates[0]["uncertain"].as_str().is_some_and(|u| u.contains("refund-desk.yaml could not be read")), "{}", creates[0]);

    let text = run(&["plan", &root, "--base", "HEAD~1", "--now", NOW]).stdout;
    assert!(text.contains("Problems in the base"), "{text}");
    assert!(text.contains("allowedSideEffects: [read, write]"), "the base's line is shown: {text}");
    assert!(text.contains("uncertain:"), "{text}");
    let markdown = run(&["plan", &root, "--base", "HEAD~1", "--format", "markdown", "--now", NOW]).stdout;
    assert!(markdown.contains("#### Problems in the base") && markdown.contains("⚠️ uncertain"), "{markdown}");

    // A clean base has none of it.
    let clean = json(&run(&["plan", &root, "--base", "HEAD", "--format", "json", "--now", NOW]).stdout);
    assert_eq!(clean["base_diagnostics"], serde_json::json!([]));
}

#[test]
fn access_explain_at_a_revision_names_the_commit_that_last_changed_the_deciding_grant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init(dir.path()).expect("init");
    let deployed = commit_example(&repo, "platform", "examples/platform", "platform as deployed");
    let widened = commit_example(&repo, "platform", "examples/pr-change", "widen refund-desk, revoke nightly session");
    // An edit of the grant's file that leaves the grant as it was: provenance follows content.
    let file = dir.path().join("platform/teams/payments/grants/refund-desk.yaml");
    let text = fs::read_to_string(&file).expect("read");
    fs::write(&file, format!("# reviewed in the Q3 access review\n{text}")).expect("write");
    commit_all(&repo, "comment on the refund desk");
    let path = dir.path().join("platform").to_string_lossy().into_owned();
    let explain = |revision: &str| {
        let out = run(&[
            "access",
            "explain",
            &path,
            "--server",
            "mcp-team-payments/payments-mcp",
            "--tool",
            "get_invoice",
            "--human",
            "marcus.oyelaran@fernhill.io",
            "--agent",
            "refund-copilot",
            "--team",
            "7f3c2a10-5d4e-4b8a-9c21-3e6f0a7d4b52",
            "--session",
            "refund-copilot-marcus",
            "--at",
            NOW,
            "--revision",
            revision,
            "--format",
            "json",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        json(&out.stdout)
    };

    let at_head = explain("HEAD");
    assert_eq!(at_head["matched_grant"], "refund-desk");
    let provenance = at_head["provenance"].as_array().expect("provenance");
    assert_eq!(provenance.len(), 2, "{provenance:?}");
    assert_eq!(provenance[0]["object"], "MCPAccessGrant/mcp-team-payments/refund-desk");
    assert_eq!(provenance[0]["source"], "platform/teams/payments/grants/refund-desk.yaml:4");
    assert_eq!(provenance[0]["commit"], widened.to_string());
    assert_eq!(provenance[0]["summary"], "widen refund-desk, revoke nightly session");
    assert_eq!(provenance[0]["signed"], false);
    assert_eq!(provenance[1]["object"], "MCPAgentSession/mcp-team-payments/refund-copilot-marcus");
    assert_eq!(provenance[1]["commit"], widened.to_string(), "its consentedTrust was raised there");
    assert_eq!(explain("HEAD~2")["provenance"][0]["commit"], deployed.to_string());

    let text = run(&[
        "access",
        "explain",
        &path,
        "--server",
        "mcp-team-payments/payments-mcp",
        "--tool",
        "get_invoice",
        "--human",
        "marcus.oyelaran@fernhill.io",
        "--agent",
        "refund-copilot",
        "--team",
        "7f3c2a10-5d4e-4b8a-9c21-3e6f0a7d4b52",
        "--session",
        "refund-copilot-marcus",
        "--at",
        NOW,
        "--revision",
        "HEAD",
    ])
    .stdout;
    assert!(text.contains(&format!("last changed in {} \"widen refund-desk", &widened.to_string()[..7])), "{text}");
    let bad = run(&["access", "explain", &path, "--server", "mcp-team-payments/payments-mcp", "--tool", "x", "--revision", "nope"]);
    assert!(bad.code == 1 && bad.stderr.contains("--revision \"nope\""), "{}", bad.stderr);
}
