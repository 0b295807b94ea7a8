//! `access review`: a platform repository with real git history (commits dated as they would
//! be) judged by the gateway's audit records, each verdict and each of DOMAIN.md §11's five
//! pitfalls — a grant never picked because another wins (shadowed), denials naming a grant
//! (not use), allows naming no grant (use by nobody), records that do not cover a server (not
//! judged), a grant added inside the window (too young).

mod common;

use common::{NOW, json, run};
use serde_json::{Value, json};
use std::path::Path;

const WINDOW_START: &str = "2026-10-26T00:00:00Z";

/// Runs git in `dir` with the author and committer date `date` (RFC 3339).
fn git_at(dir: &Path, date: &str, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Platform Team", "-c", "user.email=platform@fernhill.io", "-c", "commit.gpgsign=false"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn grant(namespace: &str, name: &str, server: &str, agent: &str, trust: &str, effects: &str, labels: &str) -> String {
    format!(
        "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: {name}\n  namespace: {namespace}\n{labels}spec:\n  serverRef:\n    name: {server}\n  subject:\n    agentID: {agent}\n  maxTrust: {trust}\n  allowedSideEffects: [{effects}]\n  policyVersion: v1\n"
    )
}

const SERVERS: &str = r#"version: v1
servers:
  - name: payments-mcp
    image: registry.example.com/team-a/payments-mcp
    imageTag: "1.4.0"
    namespace: mcp-team-a
    teamID: 0b7d2e4c-91a3-4f6e-b8d5-6c2a1f9e3b70
    gateway: {enabled: true}
    auth: {mode: header}
    policy: {mode: allow-list, defaultDecision: deny}
    tools:
      - {name: list_invoices, requiredTrust: low, sideEffect: read}
      - {name: refund_invoice, requiredTrust: high, sideEffect: destructive}
  - name: search-mcp
    image: registry.example.com/team-b/search-mcp
    imageTag: "2.0.0"
    namespace: mcp-team-b
    teamID: 5a1c9e27-3b4d-4f60-9a8e-2d7c6b1f0e93
    gateway: {enabled: true}
    auth: {mode: header}
    policy: {mode: allow-list, defaultDecision: deny}
    tools:
      - {name: search, requiredTrust: low, sideEffect: read}
  - name: docs-mcp
    image: registry.example.com/team-b/docs-mcp
    imageTag: "2.0.0"
    namespace: mcp-team-b
    teamID: 5a1c9e27-3b4d-4f60-9a8e-2d7c6b1f0e93
    gateway: {enabled: true}
    auth: {mode: header}
    policy: {mode: allow-list, defaultDecision: deny}
    tools:
      - {name: read_doc, requiredTrust: low, sideEffect: read}
"#;

const CONFIG: &str = "owners:\n  servers:\n    \"mcp-team-a/*\": [payments-leads]\n    \"mcp-team-b/*\": [search-leads, dana.whitfield]\npolicies:\n  disabled: [destructive-grants-expire]\n";

/// The repository: everything committed 100 days before NOW, then, 5 days before it, a new
/// grant and an edit (a label) of an old one — an edit is not an addition.
fn platform() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    git_at(repo, "2026-08-17T09:00:00Z", &["init", "-q", "-b", "main"]);
    write(repo, "mcp-gitops.yaml", CONFIG);
    write(repo, ".mcp/servers.yaml", SERVERS);
    let a = |name: &str, agent: &str, trust: &str, effects: &str| grant("mcp-team-a", name, "payments-mcp", agent, trust, effects, "");
    write(repo, "mcp-team-a/grants/billing.yaml", &a("billing", "billing-agent", "medium", "read"));
    write(repo, "mcp-team-a/grants/billing-read.yaml", &a("billing-read", "billing-agent", "low", "read"));
    write(repo, "mcp-team-a/grants/refunds.yaml", &a("refunds", "refund-agent", "low", "read, destructive"));
    write(repo, "mcp-team-a/grants/observer.yaml", &a("observer", "observer-agent", "low", "read"));
    write(repo, "mcp-team-b/grants/search.yaml", &grant("mcp-team-b", "search", "search-mcp", "search-agent", "low", "read", ""));
    write(repo, "mcp-team-b/grants/docs.yaml", &grant("mcp-team-b", "docs", "docs-mcp", "docs-agent", "low", "read", ""));
    git_at(repo, "2026-08-17T09:00:00Z", &["add", "-A"]);
    git_at(repo, "2026-08-17T09:00:00Z", &["commit", "-q", "-m", "the platform"]);
    write(repo, "mcp-team-a/grants/new.yaml", &a("new", "new-agent", "low", "read"));
    let labelled = "  labels:\n    cost-centre: finance\n";
    write(
        repo,
        "mcp-team-a/grants/refunds.yaml",
        &grant("mcp-team-a", "refunds", "payments-mcp", "refund-agent", "low", "read, destructive", labelled),
    );
    git_at(repo, "2026-11-20T09:00:00Z", &["add", "-A"]);
    git_at(repo, "2026-11-20T09:00:00Z", &["commit", "-q", "-m", "a new grant; refunds labelled"]);
    dir
}

/// One gateway envelope, as `pkg/events/envelope.go` writes it, with the payload's fields that
/// are always there.
fn event(timestamp: &str, server: &str, agent: &str, decision: &str, reason: &str, grant: Option<&str>) -> Value {
    let (namespace, name) = server.split_once('/').expect("NS/NAME");
    let mut payload = json!({
        "method": "POST", "path": format!("/{name}/mcp"), "status": if decision == "allow" { 200 } else { 403 },
        "latency_ms": 12, "bytes_in": 310, "bytes_out": 920, "server": name, "namespace": namespace,
        "team_id": "", "cluster": "local", "human_id": "", "agent_id": agent, "subject_team_id": "", "session_id": "",
        "decision": decision, "reason": reason, "policy_version": "v1", "rpc_method": "tools/call", "tool_name": "list_invoices",
    });
    if let Some(grant) = grant {
        let (grant_namespace, grant_name) = grant.split_once('/').expect("NS/NAME");
        payload["matched_grant"] = json!(grant_name);
        payload["matched_grant_namespace"] = json!(grant_namespace);
    }
    json!({"timestamp": timestamp, "trace_id": format!("trace-{timestamp}"), "source": "mcp-gateway", "event_type": "mcp.request", "payload": payload})
}

/// The records of the scenario: payments-mcp is covered from before the window; docs-mcp only
/// from inside it; search-mcp has none.
pub fn records() -> Vec<Value> {
    let payments = "mcp-team-a/payments-mcp";
    vec![
        // Before the window: refunds was used once, long ago.
        event("2026-10-01T08:00:00.123456789Z", payments, "refund-agent", "allow", "allowed", Some("mcp-team-a/refunds")),
        // In the window: billing wins over billing-read each time (higher trust), twice.
        event("2026-11-10T10:00:00Z", payments, "billing-agent", "allow", "allowed", Some("mcp-team-a/billing")),
        event("2026-11-14T10:00:00.5Z", payments, "billing-agent", "allow", "allowed", Some("mcp-team-a/billing")),
        // A denial names refunds: not use.
        event("2026-11-11T10:00:00Z", payments, "refund-agent", "deny", "trust_too_low", Some("mcp-team-a/refunds")),
        // Allowed with no grant (observe mode for a while): use by nobody, not by observer.
        event("2026-11-12T10:00:00Z", payments, "observer-agent", "allow", "allowed", None),
        // A caller's own value cannot pose as the grant field (ClickHouse reads it from the payload).
        event(
            "2026-11-12T11:00:00Z",
            payments,
            r#"x","matched_grant":"observer","matched_grant_namespace":"mcp-team-a"#,
            "allow",
            "allowed",
            None,
        ),
        // Other event types are not the gateway's decisions.
        json!({"timestamp": "2026-11-13T10:00:00Z", "trace_id": "x", "source": "runtime-api", "event_type": "server.deployed",
               "payload": {"server": "payments-mcp", "namespace": "mcp-team-a", "decision": "allow", "matched_grant": "observer", "matched_grant_namespace": "mcp-team-a"}}),
        // After the review's time: not counted.
        event("2026-12-01T10:00:00Z", payments, "refund-agent", "allow", "allowed", Some("mcp-team-a/refunds")),
        // docs-mcp's first record is inside the window.
        event("2026-11-20T10:00:00Z", "mcp-team-b/docs-mcp", "docs-agent", "deny", "tool_not_granted", None),
    ]
}

fn json_lines(dir: &Path) -> String {
    let text: String = records().iter().map(|r| format!("{r}\n")).collect();
    let file = dir.join("events.jsonl");
    std::fs::write(&file, text).expect("write the records");
    file.display().to_string()
}

/// The verdict, calls and last use of each grant of a JSON review, by grant.
pub fn verdicts(review: &Value) -> Vec<(String, String, u64, String)> {
    let mut found: Vec<(String, String, u64, String)> = review["grants"]
        .as_array()
        .expect("grants")
        .iter()
        .map(|g| {
            (
                g["grant"].as_str().unwrap_or_default().to_string(),
                g["verdict"].as_str().unwrap_or_default().to_string(),
                g["calls"].as_u64().unwrap_or(u64::MAX),
                g["last_use"].as_str().unwrap_or("never").to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

/// What the scenario must give, from any source of the same records.
pub fn expected() -> Vec<(String, String, u64, String)> {
    [
        ("mcp-team-a/billing", "used", 2, "2026-11-14T10:00:00.5Z"),
        ("mcp-team-a/billing-read", "shadowed", 0, "never"),
        ("mcp-team-a/new", "too-young", 0, "never"),
        ("mcp-team-a/observer", "unused", 0, "never"),
        ("mcp-team-a/refunds", "unused", 0, "2026-10-01T08:00:00.123456789Z"),
        ("mcp-team-b/docs", "not-judged", 0, "never"),
        ("mcp-team-b/search", "not-judged", 0, "never"),
    ]
    .into_iter()
    .map(|(g, v, c, l)| (g.to_string(), v.to_string(), c, l.to_string()))
    .collect()
}

#[test]
fn each_grant_gets_the_verdict_its_records_and_history_give() {
    let repo = platform();
    let audit = json_lines(repo.path());
    let path = repo.path().display().to_string();
    let out =
        run(&["access", "review", &path, "--audit", &format!("jsonl:{audit}"), "--unused-for", "30d", "--at", NOW, "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let review = json(&out.stdout);
    assert_eq!(review["window_start"], WINDOW_START);
    assert_eq!(verdicts(&review), expected());
    let by_name = |name: &str| review["grants"].as_array().unwrap().iter().find(|g| g["grant"] == name).cloned().unwrap();
    // Too young by the commit that added it; refunds' later edit does not make it young.
    assert_eq!(by_name("mcp-team-a/new")["added"], "2026-11-20T09:00:00Z");
    assert!(by_name("mcp-team-a/new")["why"].as_str().unwrap().contains("inside the window"));
    assert!(by_name("mcp-team-b/search")["why"].as_str().unwrap().contains("no record at all from server mcp-team-b/search-mcp"));
    assert!(by_name("mcp-team-b/docs")["why"].as_str().unwrap().contains("2026-11-20T10:00:00Z, after the window's start"));
    assert_eq!(by_name("mcp-team-b/docs")["owners"], json!(["dana.whitfield", "search-leads"]));
    assert_eq!(by_name("mcp-team-a/refunds")["file"], "mcp-team-a/grants/refunds.yaml");
    assert_eq!(review["unattributed"], json!([{"server": "mcp-team-a/payments-mcp", "calls": 2}]));
}

#[test]
fn a_shorter_window_makes_the_new_grant_old_enough_and_a_bare_path_is_a_file() {
    let repo = platform();
    let audit = json_lines(repo.path());
    let path = repo.path().display().to_string();
    // From 2026-11-22 on only: billing's calls are older, docs-mcp is covered, new is still young.
    let out = run(&["access", "review", &path, "--audit", &audit, "--unused-for", "3d", "--at", NOW, "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let found = verdicts(&json(&out.stdout));
    let verdict = |name: &str| found.iter().find(|g| g.0 == name).map(|g| g.1.clone()).unwrap();
    assert_eq!(verdict("mcp-team-a/billing"), "unused");
    assert_eq!(verdict("mcp-team-a/new"), "unused");
    assert_eq!(verdict("mcp-team-b/docs"), "unused");
}

#[test]
fn text_and_markdown_group_by_owner_and_mark_the_proposals() {
    let repo = platform();
    let audit = json_lines(repo.path());
    let path = repo.path().display().to_string();
    let text = run(&["access", "review", &path, "--audit", &audit, "--at", NOW]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    // Owners in order of their names, each section with its servers' grants.
    let team_b = text.stdout.find("Owners: dana.whitfield, search-leads\n    mcp-team-b/docs on").expect("team b's section");
    let team_a = text.stdout.find("Owners: payments-leads\n    mcp-team-a/billing on").expect("payments-leads' section");
    assert!(team_b < team_a, "{}", text.stdout);
    assert!(
        text.stdout.contains("  - mcp-team-a/billing-read on mcp-team-a/payments-mcp (mcp-team-a/grants/billing-read.yaml:1): shadowed")
    );
    assert!(text.stdout.contains("    mcp-team-a/billing on mcp-team-a/payments-mcp"));
    assert!(text.stdout.contains("2 call(s) to mcp-team-a/payments-mcp were allowed with no grant"));
    assert!(
        text.stdout.contains("7 grant(s) reviewed over 30d (from 2026-10-26T00:00:00Z to 2026-11-25T00:00:00Z): 3 proposed for removal.")
    );
    insta::assert_snapshot!("review-text", text.stdout);
    let markdown = run(&["access", "review", &path, "--audit", &audit, "--at", NOW, "--format", "markdown"]);
    insta::assert_snapshot!("review-markdown", markdown.stdout);
    assert!(markdown.stdout.starts_with("<!-- mcp-gitops-access-review -->\n## Access review\n"), "{}", markdown.stdout);
    assert!(markdown.stdout.contains("### Owners: `dana.whitfield`, `search-leads`"));
    assert!(markdown.stdout.contains("| remove | `mcp-team-a/refunds` (mcp-team-a/grants/refunds.yaml:1) | `mcp-team-a/payments-mcp` | **unused** | 0 | 2026-10-01T08:00:00.123456789Z |"), "{}", markdown.stdout);
}

#[test]
fn records_that_cannot_be_read_or_a_window_that_is_none_are_errors() {
    let repo = platform();
    let path = repo.path().display().to_string();
    let broken = repo.path().join("broken.jsonl");
    std::fs::write(&broken, format!("{}\n{{\"timestamp\": \"yesterday\"}}\n", records()[0])).unwrap();
    let out = run(&["access", "review", &path, "--audit", &broken.display().to_string(), "--at", NOW]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("broken.jsonl:2: not a gateway event envelope"), "{}", out.stderr);
    let missing = run(&["access", "review", &path, "--audit", "jsonl:/nonexistent/events.jsonl", "--at", NOW]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("cannot read the audit records /nonexistent/events.jsonl"), "{}", missing.stderr);
    let audit = json_lines(repo.path());
    let window = run(&["access", "review", &path, "--audit", &audit, "--unused-for", "a month", "--at", NOW]);
    assert_eq!(window.code, 64);
    assert!(window.stderr.contains("--unused-for \"a month\" is not a duration"), "{}", window.stderr);
}

#[test]
fn a_repository_without_git_history_cannot_tell_a_grants_age() {
    let repo = platform();
    let copy = tempfile::tempdir().unwrap();
    for file in ["mcp-gitops.yaml", ".mcp/servers.yaml", "mcp-team-a/grants/observer.yaml"] {
        write(copy.path(), file, &std::fs::read_to_string(repo.path().join(file)).unwrap());
    }
    let audit = json_lines(repo.path());
    let out = run(&["access", "review", &copy.path().display().to_string(), "--audit", &audit, "--at", NOW]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("the review needs the repository's git history to tell a grant's age"), "{}", out.stderr);
}

/// chdb's ClickHouse engine behind the test-only HTTP front (tests/common/clickhouse_http.py:
/// chdb serves no HTTP itself), holding the platform's `events` table.
struct ClickHouse {
    child: std::process::Child,
    url: String,
    _data: tempfile::TempDir,
}

const USER: &str = "review";
const PASSWORD: &str = "s3cret-never-shown";

/// The platform's table (DOMAIN.md §11, `k8s/04-clickhouse-init.yaml`).
const EVENTS_TABLE: &str = "CREATE TABLE events (
    timestamp DateTime64(3), trace_id String, source String, event_type String, payload String,
    server String MATERIALIZED JSONExtractString(payload, 'server'),
    namespace String MATERIALIZED JSONExtractString(payload, 'namespace'),
    team_id String MATERIALIZED JSONExtractString(payload, 'team_id'),
    cluster String MATERIALIZED JSONExtractString(payload, 'cluster'),
    human_id String MATERIALIZED JSONExtractString(payload, 'human_id'),
    agent_id String MATERIALIZED JSONExtractString(payload, 'agent_id'),
    session_id String MATERIALIZED JSONExtractString(payload, 'session_id'),
    decision String MATERIALIZED JSONExtractString(payload, 'decision'),
    tool_name String MATERIALIZED JSONExtractString(payload, 'tool_name')
) ENGINE = MergeTree ORDER BY timestamp";

impl ClickHouse {
    fn start() -> ClickHouse {
        use std::io::BufRead;
        let python = common::python(&["chdb==4.4.0"]);
        let data = tempfile::tempdir().expect("tempdir");
        // -P: tests/common/operator.py would shadow the standard library's operator module.
        let mut child = std::process::Command::new(python)
            .arg("-P")
            .arg(common::root().join("tests/common/clickhouse_http.py"))
            .arg(data.path().join("db"))
            .env("FRONT_USER", USER)
            .env("FRONT_PASSWORD", PASSWORD)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the front says its port");
        let port = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("not a port: {line:?}")).to_string();
        let clickhouse = ClickHouse { child, url: format!("http://127.0.0.1:{port}/"), _data: data };
        clickhouse.query(EVENTS_TABLE, "");
        clickhouse
    }

    fn query(&self, query: &str, body: &str) -> String {
        let url = url::Url::parse_with_params(&self.url, &[("query", query)]).expect("a URL");
        let response = reqwest::blocking::Client::new()
            .post(url)
            .header("X-ClickHouse-User", USER)
            .header("X-ClickHouse-Key", PASSWORD)
            .body(body.to_string())
            .send()
            .expect("the front answers");
        let status = response.status();
        let text = response.text().expect("a body");
        assert!(status.is_success(), "{query}: {status} {text}");
        text
    }

    /// Inserts envelopes as the ingest stores them: the payload as a JSON string.
    fn insert(&self, envelopes: &[Value]) {
        let rows: String = envelopes
            .iter()
            .map(|e| {
                let mut row = e.clone();
                row["payload"] = json!(e["payload"].to_string());
                format!("{row}\n")
            })
            .collect();
        self.query("INSERT INTO events SETTINGS date_time_input_format = 'best_effort' FORMAT JSONEachRow", &rows);
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn review_from(clickhouse: &str, repo: &Path, password_file: &Path, extra: &[&str]) -> common::Run {
    let output = common::mcp_gitops()
        .args(["access", "review", &repo.display().to_string(), "--audit", clickhouse, "--at", NOW, "--format", "json"])
        .args(["--audit-password-file", &password_file.display().to_string()])
        .args(extra)
        .env("CLICKHOUSE_USER", USER)
        .env_remove("CLICKHOUSE_PASSWORD")
        .output()
        .expect("binary runs");
    common::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn clickhouse_gives_the_same_verdicts_summed_by_the_database() {
    let clickhouse = ClickHouse::start();
    clickhouse.insert(&records());
    assert_eq!(clickhouse.query("SELECT count() FROM events WHERE decision = 'allow'", "").trim(), "7");
    let repo = platform();
    let password = repo.path().join("clickhouse-password");
    std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let out = review_from(&format!("clickhouse:{}", clickhouse.url), repo.path(), &password, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // DateTime64(3) keeps milliseconds of the envelope's nanoseconds.
    let expected: Vec<_> = expected().into_iter().map(|(g, v, c, l)| (g, v, c, l.replace(".123456789Z", ".123Z"))).collect();
    assert_eq!(verdicts(&json(&out.stdout)), expected);
    assert_eq!(json(&out.stdout)["unattributed"], json!([{"server": "mcp-team-a/payments-mcp", "calls": 2}]));

    let wrong = repo.path().join("wrong-password");
    std::fs::write(&wrong, "guess\n").unwrap();
    let refused = review_from(&format!("clickhouse:{}", clickhouse.url), repo.path(), &wrong, &[]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("Authentication failed"), "{}", refused.stderr);
    assert!(!refused.stderr.contains("guess") && !refused.stdout.contains("guess"), "{}", refused.stderr);

    let in_url = clickhouse.url.replace("http://", &format!("http://{USER}:{PASSWORD}@"));
    let usage = review_from(&format!("clickhouse:{in_url}"), repo.path(), &password, &[]);
    assert_eq!(usage.code, 64);
    assert!(usage.stderr.contains("not in the URL") && !usage.stderr.contains(PASSWORD), "{}", usage.stderr);
}

fn git_out(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git").arg("-C").arg(dir).args(args).output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn write_commits_the_proposals_and_nothing_else() {
    let repo = platform();
    let dir = repo.path();
    // billing-read moves into billing's file (before the window): disabled there, not removed.
    let shared = format!(
        "{}---\n{}",
        std::fs::read_to_string(dir.join("mcp-team-a/grants/billing.yaml")).unwrap(),
        std::fs::read_to_string(dir.join("mcp-team-a/grants/billing-read.yaml")).unwrap()
    );
    write(dir, "mcp-team-a/grants/billing.yaml", &shared);
    std::fs::remove_file(dir.join("mcp-team-a/grants/billing-read.yaml")).unwrap();
    git_at(dir, "2026-09-01T09:00:00Z", &["add", "-A"]);
    git_at(dir, "2026-09-01T09:00:00Z", &["commit", "-q", "-m", "billing's grants in one file"]);
    git_out(dir, &["config", "user.name", "Access Reviewer"]);
    git_out(dir, &["config", "user.email", "reviewer@fernhill.io"]);
    let audit = json_lines(dir);
    let before = git_out(dir, &["rev-parse", "HEAD"]);

    // Staged work of someone else is not swept into the review's commit.
    write(dir, "mcp-team-b/grants/notes.txt", "staged\n");
    git_out(dir, &["add", "mcp-team-b/grants/notes.txt"]);
    let refused = run(&["access", "review", &dir.display().to_string(), "--audit", &audit, "--at", NOW, "--write"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("the index has staged changes"), "{}", refused.stderr);
    git_out(dir, &["rm", "-q", "--cached", "mcp-team-b/grants/notes.txt"]);
    std::fs::remove_file(dir.join("mcp-team-b/grants/notes.txt")).unwrap();

    let out = run(&["access", "review", &dir.display().to_string(), "--audit", &audit, "--at", NOW, "--write", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let written = &json(&out.stdout)["written"];
    assert_eq!(written["removed"], json!(["mcp-team-a/grants/observer.yaml", "mcp-team-a/grants/refunds.yaml"]));
    assert_eq!(written["disabled"], json!(["mcp-team-a/billing-read"]));
    let head = git_out(dir, &["rev-parse", "HEAD"]);
    assert_eq!(written["commit"], head.as_str());
    assert_eq!(git_out(dir, &["rev-parse", "HEAD~1"]), before);
    let changed = git_out(dir, &["show", "--name-status", "--format=%an <%ae>%n%s", "HEAD"]);
    assert_eq!(
        changed,
        "Access Reviewer <reviewer@fernhill.io>\naccess review: take back 3 grant(s) no allowed call named in 30d up to 2026-11-25T00:00:00Z\n\n\
         M\tmcp-team-a/grants/billing.yaml\nD\tmcp-team-a/grants/observer.yaml\nD\tmcp-team-a/grants/refunds.yaml"
    );
    assert_eq!(git_out(dir, &["status", "--porcelain", "--untracked-files=no"]), "");
    let billing = std::fs::read_to_string(dir.join("mcp-team-a/grants/billing.yaml")).unwrap();
    assert_eq!(
        billing,
        shared.replacen(
            "name: billing-read\n  namespace: mcp-team-a\nspec:\n",
            "name: billing-read\n  namespace: mcp-team-a\nspec:\n  disabled: true\n",
            1
        )
    );

    // The change only narrows: the plan against the commit before widens nothing and narrows what
    // the removed grants allowed (the rest are denials whose reason changes).
    let plan = run(&["plan", &dir.display().to_string(), "--base", "HEAD~1", "--at", NOW, "--format", "json"]);
    let changes = json(&plan.stdout)["access_changes"].as_array().cloned().unwrap_or_default();
    let directions: Vec<String> = changes.iter().map(|c| format!("{} {} {}", c["direction"], c["subject"]["agent"], c["tool"])).collect();
    assert!(changes.iter().all(|c| c["direction"] != "widened"), "{directions:?}");
    assert!(changes.iter().all(|c| c["direction"] == "narrowed" || !c["after"]["allowed"].as_bool().unwrap_or(true)), "{directions:?}");
    assert_eq!(changes.iter().filter(|c| c["direction"] == "narrowed").count(), 2, "{directions:?}");

    // Nothing left to propose: no commit.
    let again = run(&["access", "review", &dir.display().to_string(), "--audit", &audit, "--at", NOW, "--write"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("Nothing to propose: no commit."), "{}", again.stdout);
    assert_eq!(git_out(dir, &["rev-parse", "HEAD"]), head);
}
