//! Notifications (`mcp-gitops daemon --notifications FILE`) on the real test cluster, sent to real
//! HTTP receivers on localhost: a push reaches a CloudEvents receiver signed and typed, a Slack and
//! a Teams receiver in their shapes; a receiver that answers 500 gets the notice again; one that
//! never answers, or refuses connections, delays no reconcile and is counted in /metrics; a
//! daemon told to stop still sends, retry included, the notice of its last pass; the webhook URLs
//! and the key appear nowhere; mistakes in the file stop the daemon at start.

mod common;

use axum::http::{HeaderMap, StatusCode};
use common::cluster::Teams;
use common::daemon::{Daemon, Upstream};
use common::run;
use mcp_gitops::daemon::webhook::{Verdict, verify};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Part of every receiver's URL: a webhook URL is a secret, and must never be shown.
const URL_SECRET: &str = "url-secret-5e6f7a8b-never-print";
const KEY: &str = "hmac-key-9c0d1e2f-never-print";

/// A webhook receiver on a real TCP port: records each request (and when it came), answers with
/// the statuses it was given in turn (a 429 asks to retry after 3 seconds), then 200.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    at: Arc<Mutex<Vec<Instant>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(answers: &[u16]) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let got: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
        let at: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let answers = Arc::new(Mutex::new(answers.iter().copied().collect::<VecDeque<u16>>()));
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (record, times) = (got.clone(), at.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let (record, times, answers) = (record.clone(), times.clone(), answers.clone());
            async move {
                times.lock().unwrap().push(Instant::now());
                record.lock().unwrap().push((headers, body));
                let status = StatusCode::from_u16(answers.lock().unwrap().pop_front().unwrap_or(200)).unwrap();
                let retry_after = if status == StatusCode::TOO_MANY_REQUESTS { "3" } else { "0" };
                (status, [("retry-after", retry_after)])
            }
        });
        runtime.spawn(async move { axum::serve(listener, app).await });
        Receiver { url: format!("http://127.0.0.1:{port}/services/T0/B0/{URL_SECRET}"), got, at, _runtime: runtime }
    }

    fn requests(&self) -> Vec<(HeaderMap, String)> {
        self.got.lock().unwrap().clone()
    }

    /// The bodies received, as JSON, once there are at least `count` (within 30s).
    fn wait_for(&self, count: usize, what: &str) -> Vec<(HeaderMap, serde_json::Value)> {
        let started = Instant::now();
        while self.got.lock().unwrap().len() < count {
            assert!(started.elapsed() < Duration::from_secs(30), "{what}: got {:?}", self.requests());
            std::thread::sleep(Duration::from_millis(50));
        }
        self.requests().into_iter().map(|(headers, body)| (headers, common::json(&body))).collect()
    }
}

/// A notifications file in `dir` for `receivers` (YAML entries whose `urlFile` is given by its URL).
fn notifications(dir: &Path, receivers: &[(&str, &str, &str)]) -> PathBuf {
    std::fs::write(dir.join("key"), format!("{KEY}\n")).expect("key");
    let mut yaml = String::from("receivers:\n");
    for (name, url, more) in receivers {
        let url_file = dir.join(format!("{name}-url"));
        std::fs::write(&url_file, format!("{url}\n")).expect("url file");
        yaml.push_str(&format!("  - name: {name}\n    urlFile: {}\n{more}", url_file.display()));
    }
    let file = dir.join("notifications.yaml");
    std::fs::write(&file, yaml).expect("notifications file");
    file
}

fn metric(daemon: &Daemon, series: &str) -> u64 {
    daemon.get("/metrics").1.lines().find_map(|l| l.strip_prefix(&format!("{series} "))?.trim().parse().ok()).unwrap_or(0)
}

fn sent(receiver: &str, outcome: &str) -> String {
    format!("mcp_gitops_notifications_total{{receiver=\"{receiver}\",outcome=\"{outcome}\"}}")
}

#[test]
fn a_push_reaches_cloudevents_slack_and_teams_receivers() {
    let teams = Teams::new("nt");
    let repo = teams.repo("examples/platform");
    let upstream = Upstream::new();
    let revision = upstream.commit(repo.path(), "the platform");
    let (events, slack, ms_teams, warnings) =
        (Receiver::start(&[500]), Receiver::start(&[429]), Receiver::start(&[]), Receiver::start(&[]));
    let dir = tempfile::tempdir().expect("dir");
    let key_file = dir.path().join("key");
    let file = notifications(
        dir.path(),
        &[
            ("events", &events.url, &format!("    type: cloudevents\n    hmacKeyFile: {}\n", key_file.display())),
            ("slack", &slack.url, "    type: slack\n"),
            ("teams", &ms_teams.url, "    type: teams\n"),
            ("warnings", &warnings.url, "    type: slack\n    warningsOnly: true\n"),
        ],
    );
    let daemon = Daemon::start(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &["--notifications", file.to_str().unwrap()]);
    let metrics = daemon.get("/metrics").1;
    assert!(metrics.contains(&format!("{} 0\n", sent("warnings", "dropped"))), "every series from the start:\n{metrics}");

    // The CloudEvent: refused once with a 500, sent again (the same event) and accepted.
    let got = events.wait_for(2, "the Applied CloudEvent and its retry");
    assert_eq!(got[0].1, got[1].1, "a retry sends the same event");
    let raw = events.requests();
    for (headers, body) in &raw {
        assert_eq!(headers["content-type"], "application/cloudevents+json; charset=utf-8");
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
        assert_eq!(verify(KEY.as_bytes(), header, body.as_bytes()), Verdict::Accepted, "X-Hub-Signature-256 does not match the body");
        assert_eq!(verify(b"another key", header, body.as_bytes()), Verdict::Rejected("signature does not match"));
    }
    let event = &got[1].1;
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["type"], "org.mcpruntime.gitops.Applied");
    assert_eq!(event["subject"], revision.as_str());
    assert_eq!(event["source"], format!("/namespaces/{}/configmaps/mcp-gitops-inventory", teams.inventory));
    assert_eq!(event["data"]["reason"], "Applied");
    assert_eq!(event["data"]["warning"], false);
    assert_eq!(event["data"]["revision"], revision.as_str());
    assert!(event["data"]["message"].as_str().unwrap().contains("billing-assistant-agent"), "{event}");
    assert!(event["data"]["cluster"].as_str().unwrap().starts_with("https://"), "{event}");
    assert!(event["time"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok(), "{event}");
    daemon.wait_until(Duration::from_secs(10), |d| metric(d, &sent("events", "sent")) == 1);
    assert_eq!(metric(&daemon, "mcp_gitops_notification_retries_total{receiver=\"events\"}"), 1);

    // Rate-limited with Retry-After: 3, Slack gets the message again 3 seconds later, not 1.
    let text = slack.wait_for(2, "the Slack message and its retry")[1].1.clone();
    let at = slack.at.lock().unwrap().clone();
    assert!(at[1] - at[0] >= Duration::from_secs(3), "retried after {:?}", at[1] - at[0]);
    assert_eq!(metric(&daemon, "mcp_gitops_notification_retries_total{receiver=\"slack\"}"), 1);
    assert_eq!(text.as_object().unwrap().len(), 1, "Slack gets {{\"text\": ...}} only: {text}");
    let text = text["text"].as_str().unwrap();
    assert!(text.contains("*Applied*") && text.contains(&revision[..7]), "{text}");
    let card = &ms_teams.wait_for(1, "the Teams card")[0].1;
    assert_eq!(card["type"], "message");
    assert_eq!(card["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
    let card = &card["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["body"][0]["text"], "Applied (Normal)");
    assert_eq!(card["body"][2]["facts"][0]["value"], revision.as_str());
    assert!(warnings.requests().is_empty(), "warningsOnly got a Normal Event: {:?}", warnings.requests());

    // An invalid revision: a warning, for every receiver, the one of warnings only included.
    std::fs::write(upstream.work.path().join("teams/payments/grants/broken.yaml"), "kind: MCPAccessGrant\nspec: [\n").expect("write");
    let broken = upstream.push("a broken grant");
    assert_eq!(daemon.signed_hook(), 202);
    let warning = &warnings.wait_for(1, "the InvalidRevision warning")[0].1;
    assert!(warning["text"].as_str().unwrap().contains("*InvalidRevision* (Warning)"), "{warning}");
    let event = &events.wait_for(3, "the InvalidRevision CloudEvent")[2].1;
    assert_eq!(event["type"], "org.mcpruntime.gitops.InvalidRevision");
    assert_eq!(event["subject"], broken.as_str());
    assert_eq!(event["data"]["warning"], true);
    assert!(event["data"]["message"].as_str().unwrap().contains("broken.yaml"), "{event}");
    assert_ne!(got[1].1["id"], event["id"], "two events, one id");

    let everything = format!("{}{}{}", daemon.logs(), daemon.get("/status").1, daemon.get("/metrics").1);
    for secret in [URL_SECRET, KEY] {
        assert!(!everything.contains(secret), "{secret} shown:\n{everything}");
    }
}

#[test]
fn a_dead_receiver_delays_no_reconcile_and_is_counted() {
    let teams = Teams::new("nd");
    let repo = teams.repo("examples/platform");
    let upstream = Upstream::new();
    upstream.commit(repo.path(), "the platform");
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    // Bound and never listening: connections are refused, and the port stays ours meanwhile.
    let closed = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    closed.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind");
    let closed_port = closed.local_addr().expect("address").as_socket().expect("an IP address").port();
    let dir = tempfile::tempdir().expect("dir");
    let silent_url = format!("http://127.0.0.1:{}/{URL_SECRET}", silent.local_addr().expect("address").port());
    let refused_url = format!("http://127.0.0.1:{closed_port}/{URL_SECRET}");
    let file = notifications(
        dir.path(),
        &[("silent", &silent_url, "    type: teams\n    timeout: 1s\n"), ("refused", &refused_url, "    type: slack\n")],
    );
    let started = Instant::now();
    let daemon = Daemon::start(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &["--notifications", file.to_str().unwrap()]);
    let first = started.elapsed();

    // While both receivers still hold the first notice, a push is applied at once.
    std::fs::write(
        upstream.work.path().join("teams/payments/grants/new-bot.yaml"),
        format!(
            "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: new-bot\n  namespace: {}\nspec:\n  serverRef:\n    name: payments-mcp\n  subject:\n    agentID: new-bot\n  maxTrust: low\n  allowedSideEffects: [read]\n",
            teams.payments
        ),
    )
    .expect("write");
    let pushed = upstream.push("a new grant");
    let hooked = Instant::now();
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_for(Duration::from_secs(20), "the push applied", |s| s["revision"] == pushed.as_str());
    let applied = hooked.elapsed();
    assert!(teams.kubectl.run(&["get", "mcpaccessgrants", "new-bot", "-n", &teams.payments]).status.success());
    assert_eq!(metric(&daemon, &sent("silent", "sent")) + metric(&daemon, &sent("silent", "failed")), 0, "the first notice is done");
    assert!(applied < Duration::from_secs(5), "the push took {applied:?} to apply (the first reconcile {first:?})");

    // Each notice is tried 4 times (1s, 2s, 4s apart), then counted as failed.
    let waited = daemon
        .wait_until(Duration::from_secs(60), |d| metric(d, &sent("refused", "failed")) == 2 && metric(d, &sent("silent", "failed")) == 2);
    assert_eq!(metric(&daemon, "mcp_gitops_notification_retries_total{receiver=\"refused\"}"), 6);
    assert_eq!(metric(&daemon, "mcp_gitops_notification_retries_total{receiver=\"silent\"}"), 6);
    eprintln!("first reconcile {first:?}, push applied in {applied:?}, both notices failed {waited:?} later");
    let logs = daemon.logs();
    assert!(logs.contains("notification not sent") && logs.contains("cannot reach the receiver"), "{logs}");
    assert!(logs.contains("no answer in time"), "{logs}");
    assert!(!logs.contains(URL_SECRET) && !daemon.get("/metrics").1.contains(URL_SECRET), "{logs}");
    drop((silent, closed));
}

#[test]
fn mistakes_in_the_notifications_file_stop_the_daemon_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("notifications.yaml");
    let url_file = dir.path().join("url");
    std::fs::write(&url_file, format!("hooks.slack.com/services/{URL_SECRET}\n")).expect("url");
    let start = |yaml: String| {
        std::fs::write(&file, yaml).expect("write");
        let repo = dir.path().join("no-repo");
        run(&["daemon", "--repo", repo.to_str().unwrap(), "--listen", "127.0.0.1:0", "--notifications", file.to_str().unwrap()])
    };
    let typo = start(format!("receivers:\n  - name: ops\n    type: slack\n    urlfile: {}\n", url_file.display()));
    assert_eq!(typo.code, 1, "{}", typo.stderr);
    assert!(
        typo.stderr.contains("notifications.yaml") && typo.stderr.contains("urlfile") && typo.stderr.contains(":4:"),
        "{}",
        typo.stderr
    );
    let bad_url = start(format!("receivers:\n  - name: ops\n    type: slack\n    urlFile: {}\n", url_file.display()));
    assert_eq!(bad_url.code, 1, "{}", bad_url.stderr);
    assert!(bad_url.stderr.contains("receiver \"ops\": urlFile") && bad_url.stderr.contains("does not hold an http:// or https:// URL"));
    assert!(!bad_url.stderr.contains(URL_SECRET), "{}", bad_url.stderr);
}

#[test]
fn a_stopping_daemon_still_sends_what_its_last_pass_said() {
    let teams = Teams::new("ns");
    let repo = teams.repo("examples/platform");
    let upstream = Upstream::new();
    upstream.commit(repo.path(), "the platform");
    // The first notice is taken; the push's is refused once, so it waits a second for its retry.
    let receiver = Receiver::start(&[200, 500]);
    let dir = tempfile::tempdir().expect("dir");
    let file = notifications(dir.path(), &[("ops", &receiver.url, "    type: slack\n")]);
    let mut daemon =
        Daemon::start(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &["--notifications", file.to_str().unwrap()]);
    receiver.wait_for(1, "the first pass's notice");

    std::fs::remove_file(upstream.work.path().join("teams/payments/grants/refund-desk.yaml")).expect("remove");
    let pushed = upstream.push("take the refund desk grant away");
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_for(Duration::from_secs(20), "the push applied", |s| s["revision"] == pushed.as_str());
    receiver.wait_for(2, "the push's notice, refused once");
    let stopping = Instant::now();
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code(Duration::from_secs(20)), Some(0), "{}", daemon.logs());
    let stopped = stopping.elapsed();
    let got = receiver.wait_for(3, "the push's notice, sent again while stopping");
    assert!(got[2].1["text"].as_str().unwrap_or_default().contains(&pushed[..7]), "{:?}", got[2].1);
    assert!(stopped >= Duration::from_millis(500), "the retry waits its second: stopped in {stopped:?}");
    eprintln!("stopped in {stopped:?}, the refused notice sent again before the exit");
}
