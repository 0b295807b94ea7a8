//! A new user's mistakes (issue #31) get an answer, never silence: each test makes the mistake
//! with the real binary on the example repository and checks the answer and the exit code.

mod common;

use common::{NOW, run};

const PAYMENTS: &str = "mcp-team-payments/payments-mcp";
const TEAM: &str = "7f3c2a10-5d4e-4b8a-9c21-3e6f0a7d4b52";

#[test]
fn a_misspelled_tool_server_or_caller_is_an_error_with_the_close_name() {
    let who = run(&["access", "who-can", "examples/platform", "--server", PAYMENTS, "--tool", "issue_refnd", "--at", NOW]);
    assert_eq!(who.code, 1, "{}", who.stdout);
    assert_eq!(
        who.stderr,
        "error: no tool \"issue_refnd\" on mcp-team-payments/payments-mcp (neither its metadata nor a grant names it); did you mean issue_refund?\n"
    );
    assert!(who.stdout.is_empty(), "no answer of \"0 caller(s)\": {}", who.stdout);

    let explain =
        |extra: &[&str]| run(&[&["access", "explain", "examples/platform", "--server", PAYMENTS, "--at", NOW][..], extra].concat());
    let tool = explain(&["--tool", "issue_refnd", "--agent", "refund-copilot"]);
    assert_eq!((tool.code, tool.stdout.as_str()), (1, ""), "{}", tool.stderr);
    assert!(tool.stderr.contains("did you mean issue_refund?"), "{}", tool.stderr);
    let agent = explain(&["--tool", "issue_refund", "--agent", "refund-copilt"]);
    assert_eq!(agent.code, 1);
    assert_eq!(
        agent.stderr,
        "error: agent \"refund-copilt\" is named by no grant, session or server team of examples/platform; did you mean refund-copilot?\n"
    );
    let human = explain(&["--tool", "issue_refund", "--human", "marcus.oyelaran@fernhill.com"]);
    assert!(human.code == 1 && human.stderr.contains("did you mean marcus.oyelaran@fernhill.io?"), "{}", human.stderr);
    let team = explain(&["--tool", "issue_refund", "--agent", "refund-copilot", "--team", "payments"]);
    assert!(team.code == 1 && team.stderr.starts_with("error: team \"payments\" is named by no grant"), "{}", team.stderr);
    assert!(!team.stderr.contains("did you mean"), "nothing is close to payments: {}", team.stderr);
    // A caller the repository knows is answered, allowed or not: a denial is an answer.
    assert_eq!(explain(&["--tool", "issue_refund", "--agent", "refund-copilot"]).code, 0);

    let server = run(&["access", "who-can", "examples/platform", "--server", "mcp-team-payments/payment-mcp", "--tool", "issue_refund"]);
    assert_eq!(server.code, 1);
    assert!(server.stderr.ends_with("; did you mean mcp-team-payments/payments-mcp?\n"), "{}", server.stderr);

    let what = run(&["access", "what-can", "examples/platform", "--agent", "refund-copilt", "--at", NOW]);
    assert_eq!((what.code, what.stdout.as_str()), (1, ""));
    assert!(what.stderr.contains("did you mean refund-copilot?"), "{}", what.stderr);
}

#[test]
fn what_can_finding_nothing_says_what_else_the_grants_naming_the_caller_require() {
    let agent = run(&["access", "what-can", "examples/platform", "--agent", "refund-copilot", "--at", NOW]);
    assert_eq!(agent.code, 0, "{}", agent.stderr);
    assert_eq!(
        agent.stdout,
        format!(
            "agent=refund-copilot:\n0 tool(s) on 0 server(s).\n\
             Grants and sessions that name this caller on a server it may call nothing on also require:\n  \
             grant mcp-team-payments/refund-desk (mcp-team-payments/payments-mcp): --human marcus.oyelaran@fernhill.io --team {TEAM}\n  \
             session mcp-team-payments/refund-copilot-marcus (mcp-team-payments/payments-mcp): --human marcus.oyelaran@fernhill.io --team {TEAM}\n"
        )
    );
    // With the whole subject, the server's required session is what is missing.
    let whole = ["--agent", "refund-copilot", "--human", "marcus.oyelaran@fernhill.io", "--team", TEAM];
    let out = run(&[&["access", "what-can", "examples/platform", "--at", NOW][..], &whole].concat());
    assert!(
        out.stdout.ends_with(
            "  session mcp-team-payments/refund-copilot-marcus (mcp-team-payments/payments-mcp): --session refund-copilot-marcus\n"
        ),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("refund-desk"), "the grant matches this caller: {}", out.stdout);
    // JSON stays an array of cells; the note goes to stderr.
    let json =
        run(&[&["access", "what-can", "examples/platform", "--at", NOW, "--format", "json"][..], &["--agent", "refund-copilot"]].concat());
    assert_eq!((json.code, json.stdout.as_str()), (0, "[]\n"));
    assert!(json.stderr.contains("grant mcp-team-payments/refund-desk"), "{}", json.stderr);
    // Given the session too, the copilot may call what its grant allows, and no note is printed.
    let session =
        run(&[&["access", "what-can", "examples/platform", "--at", NOW, "--session", "refund-copilot-marcus"][..], &whole].concat());
    assert!(session.stdout.contains("get_invoice") && !session.stdout.contains("also require"), "{}", session.stdout);
}

/// A copy of examples/platform with `edit` applied to the text of `file`.
fn platform_with(file: &str, edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let repo = common::cluster::repo_copy("examples/platform", &[]);
    let path = repo.path().join(file);
    let text = std::fs::read_to_string(&path).expect("example file");
    std::fs::write(&path, edit(&text)).expect("write");
    repo
}

#[test]
fn a_misspelled_or_missing_kind_of_our_group_is_an_error_and_the_plan_says_so() {
    let grant = "teams/payments/grants/refund-desk.yaml";
    let misspelled = platform_with(grant, |text| text.replace("kind: MCPAccessGrant", "kind: MCPAccesGrant"));
    let path = misspelled.path().to_string_lossy().into_owned();
    let out = run(&["validate", &path, "--now", NOW]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        // Text names files as the command line named the repository: here by an absolute path.
        out.stdout.starts_with(&format!(
            "error[unknown_kind]: kind MCPAccesGrant is not a kind of the mcpruntime.org API group: ignored, it would leave the object out of every plan, and prune it from the cluster if applied before\n --> {path}/teams/payments/grants/refund-desk.yaml:4:7\n"
        )),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("= hint: did you mean MCPAccessGrant?"), "{}", out.stdout);
    // The plan that would delete the live grant exits 1 instead of 0.
    let plan = run(&["plan", &path, "--base", "examples/platform", "--format", "json", "--now", NOW]);
    assert_eq!(plan.code, 1, "{}", plan.stderr);
    assert_eq!(common::json(&plan.stdout)["summary"]["errors"], 1);

    let missing = platform_with(grant, |text| text.replace("kind: MCPAccessGrant\n", ""));
    let out = run(&["validate", &missing.path().to_string_lossy(), "--format", "json", "--now", NOW]);
    assert_eq!(out.code, 1);
    let report = common::json(&out.stdout);
    let d = &report["diagnostics"][0];
    assert_eq!(
        (d["code"].as_str(), d["severity"].as_str(), d["line"].as_u64()),
        (Some("unknown_kind"), Some("error"), Some(3)),
        "{report}"
    );
    assert!(d["message"].as_str().is_some_and(|m| m.starts_with("a document of the mcpruntime.org API group has no kind")), "{d}");
    assert_eq!(d["hint"], "the group's kinds are MCPServer, MCPAccessGrant, MCPAgentSession");

    // Another group's unknown kind stays a warning, and a document without apiVersion or kind is data.
    let other = platform_with(grant, |text| format!("{text}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\nfoo: bar\n"));
    let out = run(&["validate", &other.path().to_string_lossy(), "--format", "json", "--now", NOW]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let report = common::json(&out.stdout);
    assert_eq!(report["diagnostics"].as_array().map(Vec::len), Some(1), "{report}");
    assert_eq!(
        (report["diagnostics"][0]["code"].as_str(), report["diagnostics"][0]["severity"].as_str()),
        (Some("unknown_kind"), Some("warning"))
    );
}

#[test]
fn an_empty_repository_warns_and_a_plan_deleting_everything_says_so_in_every_format() {
    let empty = tempfile::tempdir().expect("tempdir");
    let path = empty.path().to_string_lossy().into_owned();
    let out = run(&["validate", &path, "--now", NOW]);
    assert_eq!(out.code, 0, "a warning, not an error: {}", out.stdout);
    assert!(
        out.stdout.starts_with("warning[no_objects]: the repository declares no server, grant or session: planned or applied, it deletes every object applied before\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.ends_with("0 servers, 0 grants, 0 sessions in 0 files; 0 errors, 1 warning\n"), "{}", out.stdout);

    let warning = "This plan deletes every object of the base (22 object(s)): the desired state declares no object. Check PATH and the ignore: globs of mcp-gitops.yaml before applying it.";
    let plan = |format: &str| run(&["plan", &path, "--base", "examples/platform", "--format", format, "--now", NOW]);
    let text = plan("text");
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert_eq!(
        text.stdout.matches(&format!("WARNING: {warning}\n")).count(),
        2,
        "above the changes and under the summary: {}",
        text.stdout
    );
    assert!(
        text.stdout.ends_with(&format!("22 to delete; access: 0 widened, 87 narrowed, 85 changed\nWARNING: {warning}\n")),
        "{}",
        text.stdout
    );
    let markdown = plan("markdown").stdout;
    assert!(markdown.contains(&format!("> [!CAUTION]\n> **{warning}**\n")), "{markdown}");
    let json = common::json(&plan("json").stdout);
    assert_eq!((json["summary"]["deletes_everything"].as_bool(), json["summary"]["delete"].as_u64()), (Some(true), Some(22)));

    // A plan that keeps anything says nothing of the kind, and its JSON has no such field.
    let json = common::json(&run(&["plan", "examples/pr-change", "--base", "examples/platform", "--format", "json", "--now", NOW]).stdout);
    assert!(json["summary"].get("deletes_everything").is_none(), "{}", json["summary"]);
    // Nor does one that only deletes, but keeps the files it did not touch (taken as they are by
    // the incremental plan against a git revision, which counts their objects afterwards).
    let repo = common::cluster::repo_copy("examples/platform", &[]);
    common::git(repo.path(), &[], &["init", "-q", "-b", "main"]);
    common::git(repo.path(), &[], &["add", "-A"]);
    common::git(repo.path(), &[], &["commit", "-q", "-m", "platform"]);
    std::fs::remove_dir_all(repo.path().join("teams/support")).expect("remove");
    let path = repo.path().to_string_lossy().into_owned();
    for incremental in [&[][..], &["--no-incremental", "--no-cache"][..]] {
        let args = [&["plan", &path, "--base", "HEAD", "--format", "json", "--now", NOW][..], incremental].concat();
        let json = common::json(&run(&args).stdout);
        assert_eq!((json["summary"]["delete"].as_u64(), json["summary"]["create"].as_u64()), (Some(7), Some(0)), "{}", json["summary"]);
        assert!(json["summary"].get("deletes_everything").is_none(), "{incremental:?}: {}", json["summary"]);
    }
}

#[test]
fn plan_without_a_cluster_or_with_a_wrong_base_says_what_to_do() {
    let home = tempfile::tempdir().expect("tempdir");
    let output = common::mcp_gitops()
        .args(["plan", "examples/platform", "--now", NOW])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", home.path())
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: no cluster configured (no --kubeconfig, no KUBECONFIG, no ~/.kube/config, not in a cluster) — to plan a pull request offline, pass --base DIR|REV\n"
    );

    // Outside any git repository a revision cannot be read.
    let copy = common::cluster::repo_copy("examples/platform", &[]);
    let path = copy.path().to_string_lossy().into_owned();
    let out = run(&["plan", &path, "--base", "origin/main", "--now", NOW]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!("error: --base \"origin/main\" is not a directory, and {path} is in no git repository to read it as a revision of\n")
    );

    // In one, a misspelled branch is answered with the close one.
    common::git(copy.path(), &[], &["init", "-q", "-b", "main"]);
    common::git(copy.path(), &[], &["add", "-A"]);
    common::git(copy.path(), &[], &["commit", "-q", "-m", "platform"]);
    common::git(copy.path(), &[], &["tag", "release-1"]);
    let base = |rev: &str| run(&["plan", &path, "--base", rev, "--now", NOW]);
    let mian = base("mian");
    assert_eq!(mian.code, 1);
    assert_eq!(
        mian.stderr,
        format!(
            "error: --base \"mian\" is neither a directory nor a git revision of the repository that holds {path}; did you mean main?\n"
        )
    );
    assert!(base("relase-1").stderr.ends_with("; did you mean release-1?\n"));
    assert!(base("feature/x").stderr.ends_with(&format!("holds {path}\n")), "nothing close, no suggestion");
    assert_eq!(base("main").code, 0);
}

#[test]
fn a_wrong_or_missing_server_ref_is_one_diagnostic_at_the_right_node_with_the_right_fix() {
    let grant = "teams/payments/grants/refund-desk.yaml";
    let diagnostics = |repo: &tempfile::TempDir| {
        let out = run(&["validate", &repo.path().to_string_lossy(), "--format", "json", "--now", NOW]);
        assert_eq!(out.code, 1, "{}", out.stdout);
        common::json(&out.stdout)["diagnostics"].as_array().cloned().unwrap_or_default()
    };
    let at = |d: &serde_json::Value| {
        (d["code"].as_str().map(String::from), d["line"].as_u64(), d["column"].as_u64(), d["path"].as_str().map(String::from))
    };
    let some = |s: &str| Some(s.to_string());

    // A misspelled namespace: not also "not in allowedNamespaces" and "move the grant to that
    // namespace" (the no-cross-namespace-server-ref policy), whose fixes contradict this one.
    let wrong = platform_with(grant, |text| {
        text.replacen("    namespace: mcp-team-payments\n  subject:", "    namespace: mcp-team-payment\n  subject:", 1)
    });
    let found = diagnostics(&wrong);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(at(&found[0]), (some("unknown_server"), Some(11), Some(16), some("spec.serverRef.namespace")));
    assert_eq!(found[0]["hint"], "payments-mcp is in mcp-team-payments: set serverRef.namespace: mcp-team-payments");

    // No namespace, and the object in another one than its server: at serverRef.
    let defaulted = platform_with(grant, |text| {
        text.replacen("    namespace: mcp-team-payments\n  subject:", "  subject:", 1)
            .replace("  namespace: mcp-team-payments\n", "  namespace: mcp-team-support\n")
    });
    let found = diagnostics(&defaulted);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(at(&found[0]), (some("unknown_server"), Some(10), Some(5), some("spec.serverRef.namespace")));

    // A misspelled name: at the name, with the close one in the same namespace.
    let name = platform_with(grant, |text| text.replacen("name: payments-mcp", "name: payment-mcp", 1));
    let found = diagnostics(&name);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(at(&found[0]), (some("unknown_server"), Some(10), Some(11), some("spec.serverRef.name")));
    assert_eq!(found[0]["hint"], "did you mean payments-mcp? (a server of mcp-team-payments)");

    // No serverRef at all: the schema's missing field, not also "matches no server" at the subject.
    let missing =
        platform_with(grant, |text| text.replacen("  serverRef:\n    name: payments-mcp\n    namespace: mcp-team-payments\n", "", 1));
    let found = diagnostics(&missing);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(at(&found[0]), (some("schema_violation"), Some(8), Some(1), some("spec")));
    assert_eq!(found[0]["message"], "missing required field \"serverRef\"");
}
