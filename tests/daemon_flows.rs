//! The daemon's documented flows that only a real cluster and real git show, each end to end
//! (docs/daemon.md, docs/trust.md): a force-push over the live revision refused as
//! `not_a_descendant` with `--verify-signatures`, and followed with `--allow-non-fast-forward`;
//! the leader handing over on SIGTERM, and a leader that loses its Lease stopping with exit
//! code 1; `/readyz` 503 until a first success, with `FetchFailed` and `ApplyFailed` as Event
//! objects; a prune over `--max-deletes` refused with nothing deleted.

mod common;

use common::cluster::{Teams, unique};
use common::daemon::{Daemon, Upstream, one_server_platform};
use std::path::Path;
use std::time::{Duration, Instant};

/// The example's two teams in namespaces of their own, and the inventory's namespace made
/// beforehand (the Events are read from it).
fn teams(prefix: &str) -> Teams {
    let teams = Teams::new(prefix);
    teams.kubectl.create_namespace(&teams.inventory);
    teams
}

impl Teams {
    fn platform(&self) -> tempfile::TempDir {
        self.repo("examples/platform")
    }

    fn max_trust(&self, grant: &str) -> String {
        let field = ["get", "mcpaccessgrants", grant, "-n", &self.payments, "-o", "jsonpath={.spec.maxTrust}"];
        String::from_utf8_lossy(&self.kubectl.run(&field).stdout).into_owned()
    }

    fn grants(&self, namespace: &str) -> Vec<String> {
        let listed = self.kubectl.json(&["get", "mcpaccessgrants", "-n", namespace]);
        listed["items"].as_array().into_iter().flatten().filter_map(|g| g["metadata"]["name"].as_str().map(String::from)).collect()
    }

    /// The Events on the inventory ConfigMap as docs/daemon.md reads them (`kubectl get events
    /// --field-selector involvedObject.name=mcp-gitops-inventory`): (type, reason, message).
    fn events(&self) -> Vec<(String, String, String)> {
        let selector = "involvedObject.name=mcp-gitops-inventory";
        let events = self.kubectl.json(&["get", "events", "-n", &self.inventory, "--field-selector", selector]);
        let text = |e: &serde_json::Value, field: &str| e[field].as_str().unwrap_or_default().to_string();
        events["items"].as_array().into_iter().flatten().map(|e| (text(e, "type"), text(e, "reason"), text(e, "message"))).collect()
    }

    /// Waits until the inventory has a Warning Event `reason`; returns its message.
    fn warning(&self, daemon: &Daemon, reason: &str) -> String {
        let found = || self.events().into_iter().find(|(kind, r, _)| kind == "Warning" && r == reason).map(|(_, _, message)| message);
        daemon.wait_until(Duration::from_secs(20), |_| found().is_some());
        found().unwrap_or_default()
    }

    fn lease_holder(&self) -> String {
        let lease = self.kubectl.json(&["get", "leases.coordination.k8s.io", "mcp-gitops-leader", "-n", &self.inventory]);
        lease["spec"]["holderIdentity"].as_str().unwrap_or_default().to_string()
    }
}

/// A work repository pushed to a bare one, every commit signed with an SSH key that the
/// allowed_signers file trusts.
struct SignedUpstream {
    work: tempfile::TempDir,
    bare: tempfile::TempDir,
    keys: tempfile::TempDir,
}

impl SignedUpstream {
    fn new(files: &Path) -> SignedUpstream {
        common::install(&["openssh-client"]);
        let keys = tempfile::tempdir().expect("keys");
        let key = keys.path().join("dana");
        let made = std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "dana", "-f"]).arg(&key).status();
        assert!(made.is_ok_and(|s| s.success()));
        let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
        std::fs::write(keys.path().join("allowed_signers"), format!("dana.whitfield@fernhill.io {public}")).expect("write");
        let bare = tempfile::tempdir().expect("bare");
        git2::Repository::init_bare(bare.path()).expect("init bare");
        let work = tempfile::tempdir().expect("work");
        common::copy_dir(files, work.path());
        let upstream = SignedUpstream { work, bare, keys };
        upstream.git(&["init", "-q", "-b", "main"]);
        upstream
    }

    fn git(&self, args: &[&str]) -> String {
        common::git(self.work.path(), &[format!("user.signingkey={}", self.keys.path().join("dana").display())], args)
    }

    fn bare_path(&self) -> String {
        self.bare.path().to_string_lossy().into_owned()
    }

    fn signers(&self) -> String {
        self.keys.path().join("allowed_signers").to_string_lossy().into_owned()
    }

    /// Commits the work tree, signed, and pushes it over `main` (forced); returns the commit.
    fn push(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-S", "-m", message]);
        self.git(&["push", "-q", "--force", &self.bare_path(), "HEAD:main"]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// A signed commit with no parent, on a branch of its own, force-pushed over `main`: history
    /// rewritten under the live revision, each commit still signed by a trusted key.
    fn rewrite(&self, message: &str) -> String {
        self.git(&["checkout", "-q", "--orphan", &unique("rewritten")]);
        self.push(message)
    }

    fn widen_refund_desk(&self) {
        let grant = self.work.path().join("teams/payments/grants/refund-desk.yaml");
        let text = std::fs::read_to_string(&grant).expect("read");
        assert!(text.contains("maxTrust: medium"), "{text}");
        std::fs::write(&grant, text.replace("maxTrust: medium", "maxTrust: high")).expect("write");
    }
}

#[test]
fn a_force_push_is_refused_as_not_a_descendant_unless_non_fast_forward_is_allowed() {
    let teams = teams("fp");
    let upstream = SignedUpstream::new(teams.platform().path());
    let first = upstream.push("platform");
    let signers = upstream.signers();
    let verify = ["--verify-signatures", "--allowed-signers", signers.as_str()];
    let daemon = Daemon::start(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &verify);
    assert_eq!(daemon.status()["revision"], first.as_str());

    // Every commit is signed by a trusted key; only the ancestry is rewritten.
    upstream.widen_refund_desk();
    let rewritten = upstream.rewrite("rewritten history, refund-desk widened");
    assert_eq!(daemon.signed_hook(), 202);
    let judged = |s: &serde_json::Value| {
        s["attempted_revision"] == rewritten.as_str() && (s["last_result"] == "unverified" || s["revision"] == rewritten.as_str())
    };
    let status = daemon.wait_for(Duration::from_secs(30), "the force-push judged", judged);
    assert_eq!(status["last_result"], "unverified", "{status}");
    let message = status["last_message"].as_str().unwrap_or_default();
    assert!(message.contains("not_a_descendant") && message.contains("the last good revision stays live"), "{message}");
    assert_eq!(status["revision"], first.as_str(), "{status}");
    assert_eq!(teams.max_trust("refund-desk"), "medium", "nothing of the rewritten history is applied");
    let event = teams.warning(&daemon, "UnverifiedCommit");
    assert!(event.contains("not_a_descendant") && event.contains(&rewritten[..7]), "{event}");
    assert_eq!(daemon.get("/readyz").0, 200, "it keeps serving the last good revision");
    drop(daemon);

    // Restarted (a rollout, a lost Lease), with a fresh cache that never saw the live revision:
    // the revision live in the cluster is the inventory's, and the rewrite is still refused.
    let restarted = Daemon::spawn(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &verify);
    let status = restarted.wait_for(Duration::from_secs(30), "the force-push judged after a restart", judged);
    assert_eq!(status["last_result"], "unverified", "{status}");
    let message = status["last_message"].as_str().unwrap_or_default();
    assert!(message.contains("not_a_descendant") && message.contains(&first), "{message}");
    assert_eq!(teams.max_trust("refund-desk"), "medium", "nothing of the rewritten history is applied");
    assert_eq!(restarted.get("/readyz").0, 503, "nothing succeeded since the start");
    drop(restarted);

    // Allowed: the same force-push, over the same live revision, is verified from the merge base
    // (none: the whole new history) and applied.
    upstream.git(&["checkout", "-q", "main"]);
    upstream.git(&["push", "-q", "--force", &upstream.bare_path(), &format!("{first}:main")]);
    let allowed = [&verify[..], &["--allow-non-fast-forward"]].concat();
    let daemon = Daemon::start(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &allowed);
    daemon.wait_for(Duration::from_secs(30), "the first revision live", |s| s["revision"] == first.as_str());
    upstream.widen_refund_desk();
    let rewritten = upstream.rewrite("rewritten again, refund-desk widened");
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(30), "the force-push followed", |s| s["revision"] == rewritten.as_str());
    assert_eq!(status["last_result"], "applied", "{status}");
    assert_eq!(teams.max_trust("refund-desk"), "high");
    assert!(daemon.logs().contains("the branch was force-pushed"), "{}", daemon.logs());
}

#[test]
fn on_sigterm_the_leader_releases_the_lease_and_the_standby_takes_over_at_once() {
    let teams = teams("ho");
    let upstream = Upstream::new();
    upstream.commit(teams.platform().path(), "platform");
    // A Lease of five minutes, renewed when 100 s are left: without its release the standby
    // could not lead within 100 s of the leader's exit.
    let lease = ["--leader-elect", "--lease-duration", "300s"];
    let mut leader = Daemon::spawn(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &lease);
    leader.wait_until(Duration::from_secs(60), |d| d.status()["role"] == "leader" && d.status()["last_result"] == "applied");
    let standby = Daemon::spawn(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &lease);
    standby.wait_until(Duration::from_secs(20), |d| d.status()["role"] == "standby");
    assert!(teams.lease_holder().ends_with(&format!("-{}", leader.child.id())), "{}", teams.lease_holder());

    leader.signal("TERM");
    assert_eq!(leader.exit_code(Duration::from_secs(30)), Some(0), "{}", leader.logs());
    assert!(leader.logs().contains("released the leader lease"), "{}", leader.logs());
    let exited = Instant::now();
    standby.wait_until(Duration::from_secs(60), |d| d.status()["role"] == "leader");
    let took = exited.elapsed();
    eprintln!("leader exited on SIGTERM to the standby leading: {took:?}");
    assert!(teams.lease_holder().ends_with(&format!("-{}", standby.child.id())), "{}", teams.lease_holder());
    // Every new leader reconciles at once.
    standby.wait_until(Duration::from_secs(30), |d| d.status()["last_result"] == "unchanged");
}

#[test]
fn a_leader_whose_lease_is_taken_stops_with_exit_code_1() {
    let teams = teams("lo");
    let upstream = Upstream::new();
    upstream.commit(teams.platform().path(), "platform");
    let mut leader =
        Daemon::spawn(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &["--leader-elect", "--lease-duration", "6s"]);
    leader.wait_until(Duration::from_secs(60), |d| d.status()["role"] == "leader" && d.status()["last_result"] == "applied");

    // Someone else holds the Lease now, for an hour (as after a partition, a replica that
    // took it over).
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string();
    let patch =
        format!(r#"{{"spec":{{"holderIdentity":"intruder-1","acquireTime":"{now}","renewTime":"{now}","leaseDurationSeconds":3600}}}}"#);
    teams.kubectl.ok(&[
        "patch",
        "leases.coordination.k8s.io",
        "mcp-gitops-leader",
        "-n",
        &teams.inventory,
        "--type",
        "merge",
        "-p",
        &patch,
    ]);
    let taken = Instant::now();
    assert_eq!(leader.exit_code(Duration::from_secs(30)), Some(1), "{}", leader.logs());
    eprintln!("Lease taken to the old leader stopped: {:?}", taken.elapsed());
    assert!(leader.logs().contains("lost the leader lease"), "{}", leader.logs());
    assert_eq!(teams.lease_holder(), "intruder-1", "the old leader did not take the Lease back");
}

#[test]
fn ready_only_after_a_first_success_with_fetch_and_apply_failures_as_events() {
    let teams = teams("rd");
    let absent = unique("absent");
    let upstream = Upstream::new();
    upstream.commit(one_server_platform(&absent).path(), "a server in a namespace that does not exist yet");
    let later = tempfile::tempdir().expect("dir");
    let repo = later.path().join("platform.git");

    // The repository is not there yet: no reconcile can succeed.
    let daemon = Daemon::spawn(&repo.to_string_lossy(), &teams.kubeconfig, &teams.inventory, &[]);
    daemon.wait_for(Duration::from_secs(30), "the fetch to fail", |s| s["last_result"] == "fetch_failed");
    assert_eq!(daemon.get("/readyz").0, 503);
    let event = teams.warning(&daemon, "FetchFailed");
    assert!(event.contains("platform.git"), "{event}");

    // There, but its namespace is not: the API server refuses the apply.
    let cloned = std::process::Command::new("git").args(["clone", "-q", "--bare", &upstream.bare_path()]).arg(&repo).status();
    assert!(cloned.is_ok_and(|s| s.success()));
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(30), "the apply to fail", |s| s["last_result"] == "failed");
    assert_eq!(daemon.get("/readyz").0, 503, "{status}");
    // Which object failed, and the API server's reason, in /status and the Event.
    let reason = format!("namespaces \"{absent}\" not found");
    assert!(status["last_message"].as_str().is_some_and(|m| m.contains(&reason)), "{status}");
    let event = teams.warning(&daemon, "ApplyFailed");
    assert!(event.contains(&format!("failed: create MCPServer/{absent}/docs")) && event.contains(&reason), "{event}");

    teams.kubectl.create_namespace(&absent);
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_for(Duration::from_secs(30), "the apply to succeed", |s| s["last_result"] == "applied");
    assert_eq!(daemon.get("/readyz").0, 200);
}

#[test]
fn a_prune_over_max_deletes_is_refused_and_nothing_is_deleted() {
    let teams = teams("md");
    let upstream = Upstream::new();
    let platform = teams.platform();
    upstream.commit(platform.path(), "platform");
    let daemon = Daemon::start(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &["--max-deletes", "1"]);
    let support = teams.grants(&teams.support);
    assert!(support.len() >= 2, "{support:?}");

    // Every support grant file removed: more deletions than the budget.
    std::fs::remove_dir_all(platform.path().join("teams/support/grants")).expect("remove");
    let removed = upstream.commit(platform.path(), "drop the support grants");
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(30), "the prune judged", |s| {
        s["attempted_revision"] == removed.as_str() && (s["last_result"] == "refused" || s["revision"] == removed.as_str())
    });
    assert_eq!(status["last_result"], "refused", "{status}");
    let message = status["last_message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("refusing to prune {} objects: more than --max-deletes 1", support.len())), "{message}");
    assert_eq!(teams.grants(&teams.support), support, "nothing deleted");
    let event = teams.warning(&daemon, "PruneRefused");
    assert!(event.contains("--max-deletes 1"), "{event}");
    assert_eq!(status["counts"]["deleted"], 0, "{status}");
}
