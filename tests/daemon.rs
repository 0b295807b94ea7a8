//! `mcp-gitops daemon` on the real test cluster, following a real bare git repository that the
//! test pushes commits to: first apply, forged and valid webhooks, an invalid commit refused
//! while the last good revision stays, drift corrected or only reported as soon as the watch
//! sees it, Events and status annotations on the inventory, filesystem events for a directory,
//! leader election with a standby taking over, SIGTERM in the middle of a reconcile, metrics,
//! a time-bound grant revoked at its expiry.

mod common;

use common::cluster::{Kubectl, Teams};
use common::daemon::{Daemon, Upstream};
use std::path::Path;
use std::time::{Duration, Instant};

fn grant_field(kubectl: &Kubectl, namespace: &str, name: &str, field: &str) -> String {
    let out = kubectl.run(&["get", "mcpaccessgrants", name, "-n", namespace, "-o", &format!("jsonpath={{{field}}}")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The reasons of the Events on the inventory, oldest first.
fn event_reasons(kubectl: &Kubectl, inventory: &str) -> Vec<String> {
    let events = kubectl.json(&["get", "events.events.k8s.io", "-n", inventory, "--sort-by", ".metadata.creationTimestamp"]);
    events["items"].as_array().into_iter().flatten().filter_map(|e| e["reason"].as_str().map(String::from)).collect()
}

fn inventory_annotation(kubectl: &Kubectl, inventory: &str, key: &str) -> String {
    let configmap = kubectl.json(&["get", "configmap", "mcp-gitops-inventory", "-n", inventory]);
    configmap["metadata"]["annotations"][key].as_str().unwrap_or_default().to_string()
}

impl Teams {
    fn daemon(&self, upstream: &Upstream, extra: &[&str]) -> Daemon {
        Daemon::start(&upstream.bare_path(), &self.kubeconfig, &self.inventory, extra)
    }

    /// A full plan of `repo` against the cluster (every object listed) finds nothing to change.
    fn assert_converged(&self, repo: &Path) {
        let kubeconfig = self.kubeconfig.to_string_lossy();
        let args =
            ["plan", &repo.to_string_lossy(), "--kubeconfig", &kubeconfig, "--inventory-namespace", &self.inventory, "--detailed-exitcode"];
        let plan = common::run(&args);
        assert_eq!(plan.code, 0, "the cluster differs from the repository:\n{}{}", plan.stdout, plan.stderr);
    }

    fn max_trust(&self, grant: &str) -> String {
        grant_field(&self.kubectl, &self.payments, grant, ".spec.maxTrust")
    }
}

#[test]
fn the_daemon_follows_the_branch_refuses_bad_commits_and_corrects_drift() {
    let teams = Teams::new("d");
    let (kubectl, inventory) = (&teams.kubectl, teams.inventory.as_str());
    let change = teams.repo("examples/pr-change");
    let upstream = Upstream::new();
    let first = upstream.commit(teams.repo("examples/platform").path(), "platform as deployed");

    let daemon = teams.daemon(&upstream, &[]);
    assert_eq!(daemon.status()["revision"], first.as_str());
    assert_eq!(teams.max_trust("refund-desk"), "medium");
    assert_eq!(inventory_annotation(kubectl, inventory, "mcp-gitops.mcpruntime.org/last-result"), "applied");
    assert_eq!(inventory_annotation(kubectl, inventory, "mcp-gitops.mcpruntime.org/last-applied-revision"), first);
    eprintln!("daemon resident memory after the first apply: {} KiB", daemon.resident_kib());

    // A forged webhook is refused and counted; nothing is reconciled.
    assert_eq!(daemon.hook(r#"{"ref":"refs/heads/main"}"#, Some("sha256=0000")), 401);
    assert_eq!(daemon.hook("{}", None), 401);
    assert!(daemon.get("/metrics").1.contains("mcp_gitops_webhook_rejections_total 2"), "{}", daemon.get("/metrics").1);

    // A new commit and a valid webhook: applied promptly.
    let second = upstream.commit(change.path(), "widen refund-desk, revoke the nightly session, drop legacy-ledger-sync");
    let sent = Instant::now();
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |_| teams.max_trust("refund-desk") == "high");
    eprintln!("webhook to applied (one changed grant among 22 objects): {:?}", sent.elapsed());
    daemon.wait_until(Duration::from_secs(30), |d| d.status()["revision"] == second.as_str());
    let gone = kubectl.run(&["get", "mcpaccessgrants", "legacy-ledger-sync", "-n", &teams.payments]);
    assert!(!gone.status.success(), "the removed grant is pruned");
    // The first reconcile listed every object; this one read only what its watches said may
    // differ. A full plan from the command line agrees that nothing is left to do.
    assert_eq!(live_reads(&daemon, "list"), 1, "{}", daemon.get("/metrics").1);
    assert!(live_reads(&daemon, "watch") >= 1, "{}", daemon.get("/metrics").1);
    teams.assert_converged(change.path());

    // An invalid commit is refused; the last good revision stays live, and people are told.
    let broken = teams.repo("examples/pr-change");
    std::fs::write(broken.path().join("teams/payments/grants/refund-desk.yaml"), "kind: [unclosed\n").expect("write");
    let third = upstream.commit(broken.path(), "a broken grant file");
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |d| {
        d.status()["attempted_revision"] == third.as_str() && d.status()["last_result"] == "invalid"
    });
    let status = daemon.status();
    assert_eq!(status["revision"], second.as_str());
    assert!(status["diagnostics"]["first"][0].as_str().is_some_and(|d| d.contains("yaml_syntax")), "{status}");
    assert_eq!(teams.max_trust("refund-desk"), "high");
    daemon.wait_until(Duration::from_secs(10), |_| {
        inventory_annotation(kubectl, inventory, "mcp-gitops.mcpruntime.org/last-result") == "invalid"
    });
    assert_eq!(inventory_annotation(kubectl, inventory, "mcp-gitops.mcpruntime.org/last-attempted-revision"), third);
    assert_eq!(inventory_annotation(kubectl, inventory, "mcp-gitops.mcpruntime.org/last-applied-revision"), second);
    let reasons = event_reasons(kubectl, inventory);
    assert!(reasons.iter().filter(|r| *r == "Applied").count() >= 2 && reasons.contains(&"InvalidRevision".into()), "{reasons:?}");

    // Fixed again; then an out-of-band edit is reverted as soon as the watch sees it (the
    // interval is an hour and no webhook is sent).
    let fixed = upstream.commit(change.path(), "fix the grant file");
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |d| d.status()["revision"] == fixed.as_str());
    kubectl.edit_grant_as("kubectl-edit", &teams.payments, "refund-desk", r#"{"spec":{"maxTrust":"low"}}"#);
    let edited = Instant::now();
    daemon.wait_until(Duration::from_secs(30), |_| teams.max_trust("refund-desk") == "high");
    eprintln!("out-of-band edit to reverted (watch-triggered): {:?}", edited.elapsed());
    daemon.wait_until(Duration::from_secs(10), |_| event_reasons(kubectl, inventory).contains(&"DriftCorrected".into()));
    // A managed object deleted by hand comes back too.
    kubectl.ok(&["delete", "mcpaccessgrants", "refund-desk", "-n", &teams.payments]);
    daemon.wait_until(Duration::from_secs(30), |_| teams.max_trust("refund-desk") == "high");
    daemon
        .wait_until(Duration::from_secs(30), |d| d.status()["last_result"] == "applied" && d.status()["drifted"] == serde_json::json!([]));
    assert_eq!(live_reads(&daemon, "list"), 1, "drift is read from the watches too");
    teams.assert_converged(change.path());

    let metrics = daemon.get("/metrics").1;
    for name in [
        "mcp_gitops_reconcile_duration_seconds_bucket",
        "mcp_gitops_last_success_timestamp_seconds",
        "mcp_gitops_objects_applied_total{action=\"update\"}",
        "mcp_gitops_drifted_objects",
        "mcp_gitops_git_fetch_failures_total",
        "mcp_gitops_revision_info{revision=",
        // One or two: the push itself (a filesystem event on the local repository) and the webhook.
        "mcp_gitops_reconciles_total{result=\"invalid\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics:\n{metrics}");
    }
    eprintln!("daemon resident memory idle: {} KiB\n/metrics after the run:\n{metrics}", daemon.resident_kib());

    let mut daemon = daemon;
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code(Duration::from_secs(20)), Some(0));
}

#[test]
fn in_report_mode_drift_is_reported_not_reverted() {
    let teams = Teams::new("r");
    let upstream = Upstream::new();
    upstream.commit(teams.repo("examples/platform").path(), "platform");
    let daemon = teams.daemon(&upstream, &["--drift", "report"]);
    teams.kubectl.edit_grant_as("kubectl-edit", &teams.payments, "refund-desk", r#"{"spec":{"maxTrust":"low"}}"#);
    let id = format!("MCPAccessGrant/{}/refund-desk", teams.payments);
    // No webhook: the watch notices the edit.
    daemon.wait_until(Duration::from_secs(30), |d| d.status()["drifted"].as_array().is_some_and(|a| a.iter().any(|x| x == id.as_str())));
    assert_eq!(teams.max_trust("refund-desk"), "low", "report mode leaves the edit");
    assert!(daemon.get("/metrics").1.contains("mcp_gitops_drifted_objects 1"));
    daemon.wait_until(Duration::from_secs(10), |_| event_reasons(&teams.kubectl, &teams.inventory).contains(&"DriftDetected".into()));
}

/// How many reconciles read the live state so (`list` or `watch`).
fn live_reads(daemon: &Daemon, how: &str) -> u64 {
    let line = format!("mcp_gitops_live_reads_total{{how=\"{how}\"}} ");
    daemon.get("/metrics").1.lines().find_map(|l| l.strip_prefix(line.as_str())?.trim().parse().ok()).unwrap_or(0)
}

fn metric_lines(daemon: &Daemon, name: &str) -> Vec<String> {
    daemon.get("/metrics").1.lines().filter(|l| l.starts_with(name)).map(String::from).collect()
}

fn resource_version(kubectl: &Kubectl, args: &[&str]) -> String {
    kubectl.json(args)["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_directory_source_is_applied_when_its_files_change_and_nothing_else_is_written() {
    let teams = Teams::new("f");
    let repo = teams.repo("examples/platform");
    let daemon = Daemon::start(&repo.path().to_string_lossy(), &teams.kubeconfig, &teams.inventory, &[]);
    assert_eq!(teams.max_trust("refund-desk"), "medium");

    // With nothing to do, a reconcile writes nothing: no object, no inventory, no annotation.
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |d| d.reconciles("unchanged") >= 1);
    let inventory = ["get", "configmap", "mcp-gitops-inventory", "-n", teams.inventory.as_str()];
    let grant = ["get", "mcpaccessgrants", "refund-desk", "-n", teams.payments.as_str()];
    let before = (resource_version(&teams.kubectl, &inventory), resource_version(&teams.kubectl, &grant));
    let applied = metric_lines(&daemon, "mcp_gitops_objects_applied_total");
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |d| d.reconciles("unchanged") >= 2);
    assert_eq!(before, (resource_version(&teams.kubectl, &inventory), resource_version(&teams.kubectl, &grant)));
    let after = metric_lines(&daemon, "mcp_gitops_objects_applied_total");
    assert_eq!(applied, after);

    let file = repo.path().join("teams/payments/grants/refund-desk.yaml");
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains("maxTrust: medium"), "{text}");
    std::fs::write(&file, text.replace("maxTrust: medium", "maxTrust: high")).expect("write");
    let saved = Instant::now();
    // The interval is an hour and no webhook is sent: the filesystem event triggers.
    daemon.wait_until(Duration::from_secs(30), |_| teams.max_trust("refund-desk") == "high");
    eprintln!("file saved to applied: {:?}", saved.elapsed());
}

#[test]
fn a_standby_replica_takes_over_when_the_leader_dies() {
    let teams = Teams::new("l");
    let upstream = Upstream::new();
    upstream.commit(teams.repo("examples/platform").path(), "platform");
    let lease = ["--leader-elect", "--lease-duration", "4s"];
    let mut leader = Daemon::spawn(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &lease);
    leader.wait_until(Duration::from_secs(30), |d| d.status()["role"] == "leader" && d.status()["last_result"] == "applied");
    let standby = Daemon::spawn(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &lease);
    standby.wait_until(Duration::from_secs(10), |d| d.status()["role"] == "standby");
    assert_eq!(standby.get("/readyz").0, 200, "a standby is ready to take over (a rolling update needs that)");
    // The standby decides before it answers: it leaves the push to the leader and requests no
    // reconcile (the leader would answer "reconcile requested").
    let answer = standby.signed_hook_answer();
    assert_eq!(answer, (202, "standby: the leader replica reconciles; this one will when it takes the lead\n".to_string()));
    assert_eq!(standby.status()["last_result"], "", "a standby does not reconcile");
    let metrics = standby.get("/metrics").1;
    let reconciles: Vec<&str> = metrics.lines().filter(|l| l.starts_with("mcp_gitops_reconciles_total{") && !l.ends_with(" 0")).collect();
    assert_eq!(reconciles, Vec::<&str>::new(), "a standby counts no reconcile");
    let holder = teams.kubectl.json(&["get", "leases.coordination.k8s.io", "mcp-gitops-leader", "-n", &teams.inventory]);
    assert!(holder["spec"]["holderIdentity"].as_str().is_some_and(|h| h.ends_with(&format!("-{}", leader.child.id()))), "{holder}");

    // The leader dies without releasing the lease; the standby takes over once it expires.
    leader.signal("KILL");
    let _ = leader.exit_code(Duration::from_secs(10));
    let killed = Instant::now();
    standby.wait_until(Duration::from_secs(30), |d| d.status()["role"] == "leader" && d.status()["last_result"] == "unchanged");
    eprintln!("leader killed to standby ready as leader: {:?}", killed.elapsed());
    let change = upstream.commit(teams.repo("examples/pr-change").path(), "widen refund-desk");
    assert_eq!(standby.signed_hook(), 202);
    standby.wait_until(Duration::from_secs(30), |d| d.status()["revision"] == change.as_str());
    assert_eq!(teams.max_trust("refund-desk"), "high");
}

#[test]
fn sigterm_in_the_middle_of_a_reconcile_finishes_it_and_loses_nothing() {
    let teams = Teams::new("t");
    let kubectl = &teams.kubectl;
    let repo = bulk_repo(&teams.payments, 600);
    let upstream = Upstream::new();
    upstream.commit(repo.path(), "600 grants");
    let mut daemon = Daemon::spawn(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &[]);
    let count = || kubectl.json(&["get", "mcpaccessgrants", "-n", &teams.payments])["items"].as_array().map_or(0, Vec::len);
    daemon.wait_until(Duration::from_secs(60), |_| count() >= 20);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code(Duration::from_secs(120)), Some(0), "{}", daemon.logs());
    // The reconcile in progress was finished, not abandoned: everything is applied and listed.
    assert_eq!(count(), 600);
    let listed = kubectl.json(&["get", "configmap", "mcp-gitops-inventory", "-n", &teams.inventory]);
    assert_eq!(listed["data"]["objects"].as_str().map(|o| o.lines().count()), Some(601), "600 grants and their server");
    assert!(daemon.logs().contains("stop requested"), "{}", daemon.logs());
}

/// A repository of one server and `grants` grants in `namespace`.
fn bulk_repo(namespace: &str, grants: usize) -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("repo");
    let write = |path: &Path, text: String| {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write(
        &repo.path().join(".mcp/servers.yaml"),
        format!(
            "servers:\n  - name: bulk\n    namespace: {namespace}\n    gateway: {{enabled: true}}\n    tools: [{{name: read_t, sideEffect: read}}]\n"
        ),
    );
    let documents: String = (0..grants)
        .map(|i| format!("---\napiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata: {{name: g{i}, namespace: {namespace}}}\nspec:\n  serverRef: {{name: bulk}}\n  subject: {{agentID: a{i}}}\n  maxTrust: low\n  allowedSideEffects: [read]\n"))
        .collect();
    write(&repo.path().join("grants.yaml"), documents);
    repo
}

#[test]
fn policy_directories_beside_the_platform_directory_are_enforced() {
    let teams = Teams::new("p");
    let layout = |example: &str| {
        let dir = tempfile::tempdir().expect("layout");
        common::copy_dir(teams.repo(example).path(), &dir.path().join("platform"));
        let config = dir.path().join("platform/mcp-gitops.yaml");
        let text = std::fs::read_to_string(&config).expect("config");
        assert!(text.contains("policies:\n  disabled:"), "{text}");
        std::fs::write(&config, text.replace("policies:\n", "policies:\n  directories: [../org-policies]\n")).expect("config");
        std::fs::create_dir_all(dir.path().join("org-policies")).expect("mkdir");
        std::fs::write(
            dir.path().join("org-policies/refund-desk-stays-medium.yaml"),
            "apiVersion: mcp-gitops.mcpruntime.org/v1alpha1\nkind: GuardrailPolicy\nmetadata:\n  name: refund-desk-stays-medium\nspec:\n  matchKinds: [MCPAccessGrant]\n  severity: error\n  field: spec.maxTrust\n  expression: \"object.metadata.name != 'refund-desk' || object.spec.maxTrust != 'high'\"\n  message: \"grant {{object.metadata.name}} asks for high trust, which refunds never get\"\n",
        )
        .expect("policy");
        dir
    };
    let upstream = Upstream::new();
    let first = upstream.commit(layout("examples/platform").path(), "platform with the organisation's policies");
    let daemon = teams.daemon(&upstream, &["--path", "platform"]);
    assert_eq!(daemon.status()["revision"], first.as_str());
    upstream.commit(layout("examples/pr-change").path(), "widen refund-desk to high");
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |d| d.status()["last_result"] == "invalid");
    let status = daemon.status();
    assert!(
        status["diagnostics"]["first"]
            .to_string()
            .contains("[policy_violation] [refund-desk-stays-medium] grant refund-desk asks for high trust"),
        "{status}"
    );
    assert_eq!(teams.max_trust("refund-desk"), "medium");
    assert_eq!(status["revision"], first.as_str());
}

#[test]
fn a_time_bound_grant_is_revoked_in_the_cluster_within_seconds_of_its_expiry() {
    let teams = Teams::new("x");
    let repo = teams.repo("examples/platform");
    // The interval is an hour, and nothing is pushed: once the file below is applied, only the
    // expiry can trigger.
    let daemon = Daemon::start(&repo.path().to_string_lossy(), &teams.kubeconfig, &teams.inventory, &[]);
    let file = repo.path().join("teams/payments/grants/refund-desk.yaml");
    let text = std::fs::read_to_string(&file).expect("read");
    let namespace_line = format!("  namespace: {}\n", teams.payments);
    // The daemon's clock is the real one, so the expiry must come after the apply of the file that
    // sets it, however slow the machine: a lead the apply did not make is tried again, longer.
    let mut lead = 10;
    let expires = loop {
        let expires = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(lead)).strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let annotated =
            text.replacen(&namespace_line, &format!("{namespace_line}  annotations:\n    mcp-gitops.io/expires-at: \"{expires}\"\n"), 1);
        assert_ne!(annotated, text);
        std::fs::write(&file, annotated).expect("write");
        let applied = |_: &Daemon| refund_desk(&teams).0 == expires;
        daemon.wait_until(Duration::from_secs(lead as u64 + 60), applied);
        if refund_desk(&teams).1 != "true" {
            break expires.parse::<jiff::Timestamp>().expect("a time");
        }
        assert!(lead < 100, "the daemon took over {lead} s to apply a saved file");
        eprintln!("the apply came after the expiry {lead} s ahead; again with {} s", lead * 4);
        lead *= 4;
    };

    daemon.wait_until(Duration::from_secs(120), |_| refund_desk(&teams).1 == "true");
    let lag = jiff::Timestamp::now().duration_since(expires);
    eprintln!("expiry to revoked in the cluster (as kubectl sees it): {:.2} s", lag.as_secs_f64());
    // The next trigger other than the expiry is the interval, an hour away: a minute tells them
    // apart on any machine (docs/daemon.md gives the lag measured on an idle one).
    assert!(lag < jiff::SignedDuration::from_secs(60), "revoked {lag:?} after its expiry");
    // The lag is recorded when the reconcile ends, a moment after the cluster shows the change.
    let once = vec!["mcp_gitops_expiry_lag_seconds_count 1".to_string()];
    daemon.wait_until(Duration::from_secs(30), |d| metric_lines(d, "mcp_gitops_expiry_lag_seconds_count") == once);
    let sum = metric_lines(&daemon, "mcp_gitops_expiry_lag_seconds_sum");
    let seconds: f64 = sum.first().and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).expect("the lag's sum");
    assert!((0.0..60.0).contains(&seconds), "the daemon measured {seconds} s from the expiry to the revocation");
}

/// The refund-desk grant's `mcp-gitops.io/expires-at` and `spec.disabled`, as the cluster has them.
fn refund_desk(teams: &Teams) -> (String, String) {
    let grant = teams.kubectl.json(&["get", "mcpaccessgrants", "refund-desk", "-n", &teams.payments]);
    let field = |value: &serde_json::Value| value.as_str().map(String::from).unwrap_or_else(|| value.to_string());
    (field(&grant["metadata"]["annotations"]["mcp-gitops.io/expires-at"]), field(&grant["spec"]["disabled"]))
}

#[test]
fn with_verify_signatures_an_unsigned_push_is_not_applied_and_a_signed_fix_is() {
    let teams = Teams::new("v");
    let keys = tempfile::tempdir().expect("keys");
    let key = keys.path().join("dana");
    common::install(&["openssh-client"]);
    let made = std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "dana", "-f"]).arg(&key).status();
    assert!(made.is_ok_and(|s| s.success()));
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let signers = keys.path().join("allowed_signers");
    std::fs::write(&signers, format!("dana.whitfield@fernhill.io {public}")).expect("write");

    let bare = tempfile::tempdir().expect("bare");
    git2::Repository::init_bare(bare.path()).expect("init bare");
    let bare_path = bare.path().to_string_lossy().into_owned();
    let work = teams.repo("examples/platform");
    let signing = [format!("user.signingkey={}", key.display())];
    let git = |args: &[&str]| common::git(work.path(), &signing, args);
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-S", "-m", "platform"]);
    git(&["push", "-q", &bare_path, "main"]);

    let signers_arg = signers.to_string_lossy().into_owned();
    let pgp_keys = keys.path().join("pgp");
    std::fs::create_dir(&pgp_keys).expect("mkdir");
    let pgp_arg = pgp_keys.to_string_lossy().into_owned();
    let daemon = Daemon::start(
        &bare_path,
        &teams.kubeconfig,
        &teams.inventory,
        &["--verify-signatures", "--allowed-signers", &signers_arg, "--pgp-keys", &pgp_arg],
    );
    assert_eq!(teams.max_trust("refund-desk"), "medium");

    // An unsigned commit that widens a grant: never applied, and said so.
    let grant = work.path().join("teams/payments/grants/refund-desk.yaml");
    let text = std::fs::read_to_string(&grant).expect("read");
    std::fs::write(&grant, text.replace("maxTrust: medium", "maxTrust: high")).expect("write");
    git(&["commit", "-q", "-a", "--no-gpg-sign", "-m", "widen the refund desk"]);
    git(&["push", "-q", &bare_path, "main"]);
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_for(Duration::from_secs(30), "the unsigned commit refused", |s| {
        s["last_result"] == "unverified" && s["last_message"].as_str().is_some_and(|m| m.contains("unsigned"))
    });
    assert_eq!(teams.max_trust("refund-desk"), "medium", "nothing of the unsigned commit was applied");
    daemon.wait_until(Duration::from_secs(10), |_| event_reasons(&teams.kubectl, &teams.inventory).contains(&"UnverifiedCommit".into()));
    assert_eq!(metric_lines(&daemon, "mcp_gitops_unverified_commits_total"), ["mcp_gitops_unverified_commits_total 1"]);
    assert_eq!(daemon.get("/readyz").0, 200, "it keeps serving");

    // The same change, signed (the unsigned commit replaced): applied.
    git(&["commit", "-q", "--amend", "-S", "--no-edit"]);
    git(&["push", "-q", "--force", &bare_path, "main"]);
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |_| teams.max_trust("refund-desk") == "high");
    // Its provenance names the revision and the verified signer; an unchanged grant keeps the first revision.
    let annotations =
        |name: &str| teams.kubectl.json(&["get", "mcpaccessgrants", name, "-n", &teams.payments])["metadata"]["annotations"].clone();
    let widened = annotations("refund-desk");
    assert_eq!(widened["mcp-gitops.io/revision"], git(&["rev-parse", "HEAD"]).as_str());
    assert_eq!(widened["mcp-gitops.io/signed-by"], "dana.whitfield@fernhill.io");
    assert_eq!(widened["mcp-gitops.io/source"], "teams/payments/grants/refund-desk.yaml:3");
    assert_eq!(annotations("finance-ops-oncall")["mcp-gitops.io/revision"], git(&["rev-parse", "HEAD~1"]).as_str());

    // A removed key stops its revision from being applied again.
    std::fs::write(&signers, "").expect("empty the trust file");
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_for(Duration::from_secs(30), "the live revision refused once its key is gone", |s| {
        s["last_result"] == "unverified" && s["last_message"].as_str().is_some_and(|m| m.contains("unknown_key"))
    });

    // An OpenPGP signer whose key is put in --pgp-keys (read on every pass): its change is applied.
    let gpg = common::gpg::Gpg::new(keys.path());
    let sam = gpg.key("Sam Okafor <sam.okafor@fernhill.io>", "ed25519", "sign", None);
    gpg.export(&sam, &pgp_keys, "sam.asc");
    std::fs::write(&grant, &text).expect("write");
    common::git(work.path(), &gpg.signing(&sam, "sam.okafor@fernhill.io"), &["commit", "-q", "-a", "-S", "-m", "narrow the refund desk"]);
    git(&["push", "-q", &bare_path, "main"]);
    assert_eq!(daemon.signed_hook(), 202);
    daemon.wait_until(Duration::from_secs(30), |_| teams.max_trust("refund-desk") == "medium");
    assert_eq!(annotations("refund-desk")["mcp-gitops.io/signed-by"], "sam.okafor@fernhill.io");
}

/// The attack: the repository itself removes the namespace limits it sets (its
/// `allowedNamespaces`, the guardrail) and puts objects where the daemon was never meant to
/// write. The daemon's `--allowed-namespaces` is a fence the repository cannot widen: a revision
/// that reaches outside it is refused whole, as an invalid one is.
#[test]
fn the_daemon_applies_nothing_outside_its_namespace_fence() {
    let teams = Teams::new("f");
    let repo = teams.repo("examples/platform");
    let config = repo.path().join("mcp-gitops.yaml");
    let text = std::fs::read_to_string(&config).expect("config");
    let unfenced: String = text.lines().filter(|l| !l.starts_with("allowedNamespaces:")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&config, unfenced).expect("config");
    let upstream = Upstream::new();
    upstream.commit(repo.path(), "platform, with no namespace limit of its own");

    let fenced = Daemon::spawn(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &["--allowed-namespaces", &teams.payments]);
    let status = fenced.wait_for(Duration::from_secs(60), "the revision to be refused", |s| s["last_result"] == "invalid");
    let first = status["diagnostics"]["first"].to_string();
    assert!(
        first.contains("[namespace_not_allowed]") && first.contains(&teams.support) && first.contains("--allowed-namespaces"),
        "{status}"
    );
    assert_eq!(status["revision"], "", "nothing is live: {status}");
    for namespace in [&teams.payments, &teams.support] {
        let grants = teams.kubectl.json(&["get", "mcpaccessgrants", "-n", namespace]);
        assert_eq!(grants["items"].as_array().map(Vec::len), Some(0), "nothing applied in {namespace}");
    }
    drop(fenced);

    let both = format!("{},{}", teams.payments, teams.support);
    let allowed = teams.daemon(&upstream, &["--allowed-namespaces", &both]);
    assert_eq!(allowed.status()["last_result"], "applied");
}

/// The attack, against the daemon: the repository's own `mcp-gitops.yaml` names a directory
/// anywhere on the daemon's machine as a policy directory. The daemon reads it only when its
/// operator allows it (`--allow-policy-dir`), and what it reports never shows its files' lines.
#[test]
fn the_repository_cannot_make_the_daemon_read_outside_it() {
    let teams = Teams::new("o");
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("notes.yaml"), "password: hunter2-OUTSIDE-LINE\n  bad: [indent\n").expect("write");
    let dir = outside.path().to_string_lossy().into_owned();
    let repo = teams.repo("examples/platform");
    let config = repo.path().join("mcp-gitops.yaml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace("policies:\n", &format!("policies:\n  directories: [{dir:?}]\n"))).expect("config");
    let upstream = Upstream::new();
    upstream.commit(repo.path(), "a policy directory outside the repository");

    let daemon = Daemon::spawn(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &[]);
    let status = daemon.wait_for(Duration::from_secs(60), "the revision to be refused", |s| s["last_result"] == "invalid");
    let message = status["last_message"].as_str().unwrap_or_default();
    assert!(message.contains("outside the repository") && message.contains("--allow-policy-dir"), "{status}");
    assert_eq!(teams.kubectl.json(&["get", "mcpaccessgrants", "-n", &teams.payments])["items"].as_array().map(Vec::len), Some(0));
    drop(daemon);

    // Allowed by the operator: read; its broken file makes the revision invalid, and no line of it is shown.
    let allowed = Daemon::spawn(&upstream.bare_path(), &teams.kubeconfig, &teams.inventory, &["--allow-policy-dir", &dir]);
    let status = allowed.wait_for(Duration::from_secs(60), "the revision to be judged", |s| s["last_result"] == "invalid");
    assert!(status.to_string().contains("notes.yaml"), "{status}");
    for shown in [status.to_string(), allowed.get("/metrics").1, allowed.logs()] {
        assert!(!shown.contains("OUTSIDE-LINE"), "{shown}");
    }
}
