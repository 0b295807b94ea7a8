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
