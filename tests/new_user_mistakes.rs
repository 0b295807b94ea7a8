//! The mistakes a new user makes in their first hour (issue #31), each with the answer it gets
//! and the exit code: the mistake in, the answer out. Runs the real binary on the examples and on
//! small repositories written for the test.

mod common;

use common::{NOW, json, run};

/// #31.8: one name per meaning. `--at` is the time of every command; `--now`, its old name on
/// validate and plan, still works everywhere, and both give the same answer.
#[test]
fn the_time_is_at_on_every_command_and_now_still_works() {
    for command in [&["validate", "examples/platform"][..], &["plan", "examples/pr-change", "--base", "examples/platform"]] {
        let at = run(&[command, &["--at", NOW, "--format", "json"]].concat());
        let now = run(&[command, &["--now", NOW, "--format", "json"]].concat());
        assert_eq!(at.code, 0, "{command:?}: {}", at.stderr);
        assert_eq!(at.stdout, now.stdout, "{command:?}: --at and --now differ");
    }
    let explain = ["access", "explain", "examples/platform", "--server", "mcp-team-payments/payments-mcp", "--tool", "issue_refund"];
    let at = run(&[&explain[..], &["--agent", "claude-code", "--at", NOW, "--format", "json"]].concat());
    let now = run(&[&explain[..], &["--agent", "claude-code", "--now", NOW, "--format", "json"]].concat());
    assert_eq!(at.code, 0, "{}", at.stderr);
    assert_eq!(at.stdout, now.stdout);
    let bad = run(&["validate", "examples/platform", "--at", "yesterday"]);
    assert_eq!(bad.code, 64);
    assert!(bad.stderr.contains("--at \"yesterday\" is not an RFC 3339 time"), "{}", bad.stderr);
}

/// #31.8: `--server NAME` is taken by every command when one server has that name, as validate
/// took it; a name two namespaces share asks for NAMESPACE/NAME (64), an unknown one is an error (1).
#[test]
fn a_unique_server_name_is_enough_for_every_command() {
    let who = |server: &str| {
        run(&["access", "who-can", "examples/platform", "--server", server, "--tool", "issue_refund", "--at", NOW, "--format", "json"])
    };
    let short = who("payments-mcp");
    assert_eq!(short.code, 0, "{}", short.stderr);
    assert_eq!(short.stdout, who("mcp-team-payments/payments-mcp").stdout);
    assert_eq!(json(&short.stdout)["server"], "mcp-team-payments/payments-mcp");
    for command in [
        &["access", "explain", "examples/platform", "--tool", "get_ticket", "--at", NOW][..],
        &["access", "matrix", "examples/platform", "--at", NOW],
        &["render", "examples/platform"],
    ] {
        let out = run(&[command, &["--server", "ticketing-mcp"]].concat());
        assert_eq!(out.code, 0, "{command:?}: {}", out.stderr);
    }
    let unknown = who("payment-mcp");
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("no server payment-mcp in examples/platform; servers: "), "{}", unknown.stderr);
    let malformed = who("a/b/c");
    assert_eq!(malformed.code, 64);
    assert!(malformed.stderr.contains("--server \"a/b/c\" must be NAME or NAMESPACE/NAME"), "{}", malformed.stderr);

    // The same server name in two namespaces.
    let repo = tempfile::tempdir().expect("tempdir");
    let metadata = std::fs::read_to_string(common::root().join("tests/fixtures/valid-minimal/.mcp/servers.yaml")).expect("fixture");
    let (head, server) = metadata.split_once("servers:\n").expect("a server list");
    let twice = format!("{head}servers:\n{server}{}", server.replace("namespace: mcp-team-a", "namespace: mcp-team-b"));
    std::fs::create_dir_all(repo.path().join(".mcp")).expect("mkdir");
    std::fs::write(repo.path().join(".mcp/servers.yaml"), twice).expect("write");
    let ambiguous = run(&["access", "matrix", &repo.path().to_string_lossy(), "--server", "payments-mcp", "--at", NOW]);
    assert_eq!(ambiguous.code, 64, "{}", ambiguous.stderr);
    assert!(
        ambiguous.stderr.contains(
            "--server payments-mcp names several servers (mcp-team-a/payments-mcp, mcp-team-b/payments-mcp); give NAMESPACE/NAME"
        ),
        "{}",
        ambiguous.stderr
    );
}

/// #31.8: the daemon's git mirror is `--mirror-dir`; `--cache-dir`, the parse cache of validate
/// and plan, is still taken by the daemon as the old name of the mirror.
#[test]
fn the_daemon_mirror_is_mirror_dir_and_cache_dir_still_works() {
    let help = run(&["daemon", "--help"]);
    assert!(help.stdout.contains("--mirror-dir <DIR>"), "{}", help.stdout);
    assert!(!help.stdout.contains("--cache-dir <DIR>"), "{}", help.stdout);
    for flag in ["--mirror-dir", "--cache-dir"] {
        let out = run(&["daemon", "--repo", "/nonexistent", flag, "/tmp/x", "--interval", "soon"]);
        assert_eq!(out.code, 64, "{flag}: {}", out.stderr);
        assert!(out.stderr.contains("--interval \"soon\" is not a duration"), "{flag}: {}", out.stderr);
    }
}

/// Runs the binary in `dir` instead of the workspace root.
fn run_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> common::Run {
    let output = common::mcp_gitops().current_dir(dir).envs(env.iter().copied()).args(args).output().expect("binary runs");
    common::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// #31.3: run in a directory of the repository, validate works on the repository its
/// `mcp-gitops.yaml` belongs to (the example's switches off two default policies), and says so.
#[test]
fn validate_in_a_subdirectory_uses_the_configuration_above_it() {
    let teams = common::root().join("examples/platform/teams");
    let out = run_in(&teams, &["validate", "--at", NOW], &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.ends_with("..: 3 servers, 12 grants, 7 sessions in 13 files; 0 errors, 0 warnings\n"), "{}", out.stdout);
    assert_eq!(
        out.stderr,
        "note: using ../mcp-gitops.yaml, found above .: the repository is .., and all of it is read (JSON names files relative to it)\n"
    );
    // The same from the workspace root, naming the subdirectory.
    let named = run(&["validate", "examples/platform/teams/payments", "--at", NOW, "--format", "json"]);
    assert_eq!(named.code, 0, "{}", named.stderr);
    assert!(named.stderr.contains("using examples/platform/mcp-gitops.yaml, found above examples/platform/teams/payments"));
    assert_eq!(named.stdout, run(&["validate", "examples/platform", "--at", NOW, "--format", "json"]).stdout);
    // A plan of a subdirectory against a subdirectory plans the two repositories.
    let plan = |head: &str, base: &str| run(&["plan", head, "--base", base, "--at", NOW, "--format", "json"]);
    let whole = plan("examples/pr-change", "examples/platform");
    let below = plan("examples/pr-change/teams", "examples/platform/teams");
    assert_eq!(below.code, 0, "{}", below.stderr);
    assert_eq!(below.stdout, whole.stdout);
}

/// A copy of the valid-minimal fixture whose configuration leaves the guardrail
/// destructive-grants-expire on: its standing destructive grant breaks it.
fn repository_breaking_a_built_in_policy() -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("tempdir");
    common::copy_dir(&common::root().join("tests/fixtures/valid-minimal"), repo.path());
    std::fs::write(repo.path().join("mcp-gitops.yaml"), "policies:\n  disabled: [sessions-expire-within-a-day]\n").expect("write");
    repo
}

/// #31.3 and #31.11: a finding of a built-in policy names no file the repository lacks, and text
/// names files relative to the current directory (clickable), JSON relative to the repository.
#[test]
fn text_names_files_from_the_current_directory_and_built_in_policies_name_no_file() {
    let repo = repository_breaking_a_built_in_policy();
    let access = repo.path().join("access");
    let out = run_in(&access, &["validate", "--at", NOW], &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains("\n --> ops.yaml:4:3\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "= hint: built-in policy destructive-grants-expire (docs/policies.md); switch it off or override it under policies: in mcp-gitops.yaml"
        ),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("policies/destructive-grants-expire.yaml"), "{}", out.stdout);
    let from_elsewhere = run_in(&repo.path().join(".mcp"), &["validate", "--at", NOW], &[]);
    assert!(from_elsewhere.stdout.contains("\n --> ../access/ops.yaml:4:3\n"), "{}", from_elsewhere.stdout);
    let json = json(&run_in(&access, &["validate", "--at", NOW, "--format", "json"], &[]).stdout);
    assert_eq!(json["diagnostics"][0]["file"], "access/ops.yaml");

    let fixture = run(&["validate", "tests/fixtures/schema-violation", "--at", NOW]);
    assert!(fixture.stdout.contains("--> tests/fixtures/schema-violation/grants/invalid.yaml:12:13"), "{}", fixture.stdout);
    let absolute = repo.path().to_string_lossy().into_owned();
    let out = run(&["validate", &absolute, "--at", NOW]);
    assert!(out.stdout.contains(&format!(" --> {absolute}/access/ops.yaml:4:3\n")), "{}", out.stdout);
}

/// #31.11: `--color auto` colours a terminal, but not one that says it cannot show colour
/// (`TERM=dumb`), nor when NO_COLOR is set. The binary runs under `script`, on a terminal.
#[test]
fn a_dumb_terminal_gets_no_colour() {
    common::install(&["bsdutils"]);
    let repo = repository_breaking_a_built_in_policy();
    let on_a_terminal = |env: &[(&str, &str)]| {
        let command = format!("'{}' validate . --at {NOW}", env!("CARGO_BIN_EXE_mcp-gitops"));
        let output = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(repo.path())
            .env_remove("NO_COLOR")
            .envs(env.iter().copied())
            .output()
            .expect("script runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let colour = "\u{1b}[31merror[policy_violation]";
    let xterm = on_a_terminal(&[("TERM", "xterm-256color")]);
    assert!(xterm.contains(colour), "no colour on a terminal: {xterm:?}");
    for env in [&[("TERM", "dumb")][..], &[("TERM", "xterm-256color"), ("NO_COLOR", "1")]] {
        let plain = on_a_terminal(env);
        assert!(plain.contains("error[policy_violation]"), "{env:?}: {plain:?}");
        assert!(!plain.contains('\u{1b}'), "{env:?} got colour: {plain:?}");
    }
}

/// A copy of the valid-minimal fixture with `file` written into it.
fn repository_with(file: &str, text: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("tempdir");
    common::copy_dir(&common::root().join("tests/fixtures/valid-minimal"), repo.path());
    std::fs::write(repo.path().join(file), text).expect("write");
    repo
}

const GRANT_HEAD: &str = "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: readers\n  namespace: mcp-team-a\nspec:\n  serverRef:\n    name: payments-mcp\n  subject:\n    agentID: ops-agent\n";

/// #31.6: an indentation mistake is named at its line, in words, with the fix; the parser's
/// words come after, for whoever searches them.
#[test]
fn an_indentation_mistake_is_named_at_its_line() {
    let cases = [
        (
            "  maxTrust: high\n   allowedSideEffects: [read]\n",
            "access/readers.yaml:12:4",
            "invalid YAML: `allowedSideEffects` (line 12) is indented further than `maxTrust` above it, whose value is already given, so YAML reads it as more of that value (the YAML parser says: mapping values are not allowed in this context)",
            "indent `allowedSideEffects` by 2 spaces, as `maxTrust`, to make it a key beside it",
        ),
        (
            "  maxTrust high\n  allowedSideEffects: [read]\n",
            "access/readers.yaml:11:3",
            "invalid YAML: line 11 has no \":\" after its key `maxTrust`",
            "write `maxTrust: high`",
        ),
        (
            "   maxTrust: high\n",
            "access/readers.yaml:11:4",
            "invalid YAML: `maxTrust` (line 11) is indented by 3 spaces, which lines up with no key above it",
            "indent it as the key it belongs beside: 4 spaces beside `agentID`, 2 spaces beside `subject`, 0 spaces beside `spec`",
        ),
    ];
    for (tail, at, message, hint) in cases {
        let repo = repository_with("access/readers.yaml", &format!("{GRANT_HEAD}{tail}"));
        let out = run(&["validate", &repo.path().to_string_lossy(), "--at", NOW, "--format", "json"]);
        assert_eq!(out.code, 1, "{tail}");
        let report = json(&out.stdout);
        let found = &report["diagnostics"][0];
        assert_eq!(found["code"], "yaml_syntax", "{found}");
        assert_eq!(format!("{}:{}:{}", found["file"].as_str().unwrap_or_default(), found["line"], found["column"]), at, "{found}");
        assert!(found["message"].as_str().unwrap_or_default().starts_with(message), "{found}");
        assert_eq!(found["hint"], hint);
    }
}

/// #31.6: a known field indented one level too far is not only "unknown": the hint names where
/// it belongs.
#[test]
fn an_over_indented_known_field_says_where_it_belongs() {
    let repo = repository_with(
        "access/readers.yaml",
        &format!("{GRANT_HEAD}    maxTrust: high\n  allowedSideEffects: [read]\n  policyVersion: v1\n"),
    );
    let out = run(&["validate", &repo.path().to_string_lossy(), "--at", NOW, "--format", "json"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let report = json(&out.stdout);
    let unknown = report["diagnostics"].as_array().into_iter().flatten().find(|d| d["path"] == "spec.subject.maxTrust").expect("reported");
    assert_eq!(unknown["message"], "unknown field \"maxTrust\"");
    assert_eq!(unknown["hint"], "did you mean spec.maxTrust? it is one level up: indent this line as far as the fields of spec");

    let under =
        "  serverRef: {name: payments-mcp}\n  agentID: ops-agent\n  maxTrust: high\n  allowedSideEffects: [read]\n  policyVersion: v1\n";
    let repo = repository_with(
        "access/readers.yaml",
        &format!(
            "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: readers\n  namespace: mcp-team-a\nspec:\n{under}"
        ),
    );
    let report = json(&run(&["validate", &repo.path().to_string_lossy(), "--at", NOW, "--format", "json"]).stdout);
    let unknown = report["diagnostics"].as_array().into_iter().flatten().find(|d| d["path"] == "spec.agentID").expect("reported");
    assert_eq!(unknown["hint"], "did you mean spec.subject.agentID? it is one level down: indent this line under spec.subject");
}

/// #31.9: a call still allowed, at the same trust, through another grant says which grant
/// changed (it said "now at trust medium — was medium"); a denial that only changes its reason is
/// set apart in the text as in the Markdown; a destructive widening is red, not green.
#[test]
fn the_access_diff_says_which_grant_changed_and_colours_widening_by_risk() {
    let base = tempfile::tempdir().expect("tempdir");
    common::copy_dir(&common::root().join("tests/fixtures/valid-minimal"), base.path());
    let head = tempfile::tempdir().expect("tempdir");
    common::copy_dir(base.path(), head.path());
    let grants = std::fs::read_to_string(base.path().join("access/ops.yaml")).expect("fixture");
    std::fs::write(head.path().join("access/ops.yaml"), grants.replacen("name: ops\n", "name: ops-v2\n", 1)).expect("write");
    let (base, head) = (base.path().to_string_lossy().into_owned(), head.path().to_string_lossy().into_owned());
    let plan = |format: &str| run(&["plan", &head, "--base", &base, "--at", NOW, "--format", format, "--color", "always"]);
    let text = plan("text");
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains(
            "still may call `payments-mcp/list_invoices` (read) at trust medium, now through grant `mcp-team-a/ops-v2` — was grant `mcp-team-a/ops`"
        ),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("now at trust medium — was medium"), "{}", text.stdout);

    // The example change: a destructive widening, and denials whose reason alone changes.
    let example = |format: &str| {
        run(&["plan", "examples/pr-change", "--base", "examples/platform", "--at", NOW, "--format", format, "--color", "always"])
    };
    let (text, markdown) = (example("text").stdout, example("markdown").stdout);
    let red_plus = "\u{1b}[31m+\u{1b}[0m may now call `payments-mcp/issue_refund` (destructive)";
    assert!(text.contains(red_plus), "{text}");
    assert!(markdown.contains("| 🔴 widened | may now call `payments-mcp/issue_refund` (destructive)"), "{markdown}");
    assert!(text.contains("Approvals needed (every line must hold):"), "{text}");
    assert!(markdown.contains("#### Approvals needed\n\nEvery line must hold: the change needs all of them."), "{markdown}");
    // The same denials are set apart in both, and only they.
    let (listed, apart) = text.split_once("5 call(s) still denied, for another reason:").expect("set apart in the text");
    let (table, folded) = markdown.split_once("5 call(s) still denied, for another reason</summary>").expect("folded in the Markdown");
    for tool in ["cancel_subscription", "issue_refund", "update_billing_address", "void_invoice", "write_off_invoice"] {
        let denial = format!("calling `payments-mcp/{tool}`: `session_revoked`");
        assert!(apart.contains(&denial) && folded.contains(&denial), "{denial}");
        assert!(!listed.contains(&denial) && !table.contains(&denial), "{denial} listed with the decisive changes");
    }
}
