//! Freeze windows (`windows:` in `mcp-gitops.yaml`) on the real test cluster: while one is open
//! the daemon holds a new grant and still deletes one, a commit that deletes the window is held
//! as well (the live revision's window binds), a restarted daemon holds too, and when the window
//! closes the held grant is applied with no new push. And a window written wrong is a config error
//! at its line.

mod common;

use common::cluster::{Kubectl, Teams};
use common::daemon::{Daemon, Upstream};
use common::run;
use jiff::{SignedDuration, Timestamp};
use std::path::Path;
use std::time::Duration;

fn exists(kubectl: &Kubectl, namespace: &str, name: &str) -> bool {
    kubectl.run(&["get", "mcpaccessgrants", name, "-n", namespace]).status.success()
}

fn metric(daemon: &Daemon, name: &str) -> String {
    daemon.get("/metrics").1.lines().find_map(|l| l.strip_prefix(&format!("{name} ")).map(String::from)).unwrap_or_default()
}

const CONFIG: &str = "mcp-gitops.yaml";

/// `mcp-gitops.yaml` of the example with `windows` appended.
fn with_windows(work: &Path, example: &str, windows: &str) {
    std::fs::write(work.join(CONFIG), format!("{example}{windows}")).expect("write");
}

/// A window that opened at the start of this minute on Berlin's wall clock (a time zone with
/// daylight saving) and closes `open_for` from now.
fn window_closing_in(open_for: SignedDuration) -> (String, Timestamp) {
    let now = Timestamp::now().to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").expect("Berlin"));
    let opened = now.with().second(0).subsec_nanosecond(0).build().expect("minute start");
    let closes = now.timestamp() + open_for;
    let duration = closes.duration_since(opened.timestamp()).as_secs();
    let text = format!(
        "windows:\n  - name: release-freeze\n    schedule: \"{} {} * * *\"\n    duration: {duration}s\n    timeZone: Europe/Berlin\n",
        opened.minute(),
        opened.hour()
    );
    (text, opened.timestamp() + SignedDuration::from_secs(duration))
}

fn grant(namespace: &str, name: &str) -> String {
    format!(
        "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  serverRef:\n    name: payments-mcp\n  subject:\n    agentID: {name}\n  maxTrust: low\n  allowedSideEffects: [read]\n"
    )
}

#[test]
fn an_open_window_holds_a_new_grant_lets_a_deletion_through_and_applies_the_grant_when_it_closes() {
    let teams = Teams::new("w");
    let Teams { kubeconfig, kubectl, payments, inventory, .. } = &teams;
    let repo = teams.repo("examples/platform");
    let upstream = Upstream::new();
    upstream.commit(repo.path(), "the platform");
    let daemon = Daemon::start(&upstream.bare_path(), kubeconfig, inventory, &[]);
    assert!(exists(kubectl, payments, "billing-assistant-agent"));
    assert_eq!(daemon.status()["window"], serde_json::Value::Null);

    // The window goes live with a commit that changes nothing else: nothing to hold.
    let work = upstream.work.path();
    let example = std::fs::read_to_string(work.join(CONFIG)).expect("read");
    let (windows, closes) = window_closing_in(SignedDuration::from_secs(75));
    with_windows(work, &example, &windows);
    let with_window = upstream.push("freeze the release");
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(30), "the window live", |s| s["revision"] == with_window.as_str());
    assert_eq!(status["window"]["name"], "release-freeze", "{status}");
    assert_eq!(status["window"]["ends_at"], closes.to_string().as_str());

    // One push that gives (a new grant), takes away (a file of grants removed) and puts an expiry
    // on a grant: an edit, held, until the grant expires inside the window.
    std::fs::write(work.join("teams/payments/grants/new-bot.yaml"), grant(payments, "new-bot")).expect("write");
    std::fs::remove_file(work.join("teams/payments/grants/agents.yaml")).expect("remove");
    let expires = Timestamp::now() + SignedDuration::from_secs(15);
    let refund = work.join("teams/payments/grants/refund-desk.yaml");
    let text = std::fs::read_to_string(&refund).expect("read");
    let namespace_line = format!("  namespace: {payments}\n");
    let annotated = format!("{namespace_line}  annotations:\n    mcp-gitops.io/expires-at: \"{expires}\"\n");
    std::fs::write(&refund, text.replacen(&namespace_line, &annotated, 1)).expect("write");
    let give_and_take = upstream.push("give and take");
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(30), "the new grant held", |s| s["last_result"] == "held");
    let mut held: Vec<&str> = status["held"].as_array().unwrap().iter().filter_map(|h| h.as_str()).collect();
    held.sort();
    assert_eq!(held, [format!("create MCPAccessGrant/{payments}/new-bot"), format!("update MCPAccessGrant/{payments}/refund-desk")]);
    assert_eq!(status["revision"], with_window.as_str(), "a held revision went live");
    let message = status["last_message"].as_str().unwrap();
    assert!(message.starts_with(&format!("held by window release-freeze until {closes}: revision {give_and_take}")), "{message}");
    assert!(!exists(kubectl, payments, "new-bot"), "a new grant was applied in a freeze window");
    assert!(!exists(kubectl, payments, "billing-assistant-agent"), "a removed grant is still live in a freeze window");
    assert_eq!(daemon.get("/readyz").0, 200, "a held daemon is ready");
    assert_eq!(metric(&daemon, "mcp_gitops_held_by_window"), "1");
    assert_eq!(metric(&daemon, "mcp_gitops_held_changes"), "2");
    let events = kubectl.json(&["get", "events.events.k8s.io", "-n", inventory]);
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "HeldByWindow" && e["note"].as_str().unwrap().contains("new-bot")),
        "no HeldByWindow Event: {events}"
    );

    // Deleting the window does not open the gate: the live revision's window still binds.
    std::fs::write(work.join(CONFIG), &example).expect("write");
    let unfrozen = upstream.push("no more freeze");
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(30), "the window deletion held", |s| {
        s["attempted_revision"] == unfrozen.as_str() && s["last_result"] == "held"
    });
    assert_eq!(status["window"]["name"], "release-freeze", "{status}");
    assert!(!exists(kubectl, payments, "new-bot"), "deleting the window let a new grant through");

    // The expiry is a revocation: the daemon wakes for it inside the window and disables the grant.
    daemon.wait_until(Duration::from_secs(30), |_| {
        kubectl.json(&["get", "mcpaccessgrants", "refund-desk", "-n", payments])["spec"]["disabled"] == true
    });
    assert!(Timestamp::now() < closes, "the expiry waited for the window to close");

    // A restarted daemon reads the live revision's window from git before it applies anything.
    drop(daemon);
    let daemon = Daemon::start(&upstream.bare_path(), kubeconfig, inventory, &[]);
    let status = daemon.wait_for(Duration::from_secs(30), "the restarted daemon to hold", |s| s["last_result"] == "held");
    assert!(!exists(kubectl, payments, "new-bot"), "a restart let a new grant through: {status}");
    assert!(Timestamp::now() < closes, "the test ran past the window before checking it; give it more time");

    // The window closes: the held grant is applied with no new push or webhook.
    let status = daemon.wait_for(Duration::from_secs(120), "the held grant applied", |s| s["revision"] == unfrozen.as_str());
    assert!(Timestamp::now() >= closes, "applied before the window closed: {status}");
    assert_eq!(status["last_result"], "applied", "{status}");
    // Woken at the window's end, not by the interval (an hour in tests).
    let lag = status["last_success"].as_str().unwrap().parse::<Timestamp>().expect("last_success").duration_since(closes);
    eprintln!("held grant applied {lag:#} after the window closed");
    assert!(lag < SignedDuration::from_secs(15), "applied {lag:#} after the window closed");
    assert_eq!(status["window"], serde_json::Value::Null);
    assert_eq!(status["held"], serde_json::json!([]));
    assert!(exists(kubectl, payments, "new-bot"));
    assert_eq!(metric(&daemon, "mcp_gitops_held_by_window"), "0");
}

#[test]
fn a_window_written_wrong_is_a_config_error_at_its_line() {
    let repo = common::cluster::repo_copy("examples/platform", &[]);
    let example = std::fs::read_to_string(repo.path().join(CONFIG)).expect("read");
    let line = example.lines().count() + 5;
    with_windows(
        repo.path(),
        &example,
        "windows:\n  - name: weekend\n    schedule: \"0 18 * * FRI\"\n    duration: 62h\n    timeZone: Europe/Berlim\n",
    );
    let path = repo.path().to_string_lossy().into_owned();
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains(&format!("mcp-gitops.yaml:{line}:15")), "{all}");
    assert!(all.contains("time zone \"Europe/Berlim\" is unknown"), "{all}");
    assert!(all.contains("IANA time zone name"), "{all}");

    with_windows(repo.path(), &example, "windows:\n  - name: nightly\n    schedule: \"0 25 * * *\"\n    duration: 1h\n");
    let out = run(&["validate", &path, "--format", "json"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let text = report.to_string();
    assert!(text.contains("is not a valid 5-field cron expression"), "{text}");
    assert!(text.contains(&format!("\"line\":{}", example.lines().count() + 3)), "{text}");
}
