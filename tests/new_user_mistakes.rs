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
