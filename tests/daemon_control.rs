//! Operating the daemon on the real test cluster: `mcp-gitops daemon suspend` holds back what
//! could give access while revocations still apply, `--hard` holds everything, the suspension
//! outlives a restart, and `resume` lets the held changes through.

mod common;

use common::cluster::{Kubectl, Teams, repo_copy};
use common::daemon::{Daemon, Upstream};
use common::run;
use std::path::Path;
use std::time::Duration;

fn exists(kubectl: &Kubectl, namespace: &str, name: &str) -> bool {
    kubectl.run(&["get", "mcpaccessgrants", name, "-n", namespace]).status.success()
}

fn edit(repo: &Path, file: &str, from: &str, to: &str) {
    let path = repo.join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
}

fn metric(daemon: &Daemon, name: &str) -> String {
    daemon.get("/metrics").1.lines().find_map(|l| l.strip_prefix(&format!("{name} ")).map(String::from)).unwrap_or_default()
}

#[test]
fn a_suspended_daemon_holds_what_gives_access_and_still_revokes() {
    let Teams { kubeconfig, kubectl, payments, support, inventory } = Teams::new("");
    let kube = kubeconfig.to_str().unwrap();
    let repo = repo_copy("examples/platform", &[("mcp-team-payments", &payments), ("mcp-team-support", &support)]);
    let upstream = Upstream::new();
    upstream.commit(repo.path(), "the platform");
    let mut daemon = Daemon::start(&upstream.bare_path(), &kubeconfig, &inventory, &[]);
    assert!(exists(&kubectl, &payments, "billing-assistant-agent"));

    let control = |args: &[&str]| run(&[&["daemon"], args, &["--kubeconfig", kube, "--inventory-namespace", &inventory]].concat());
    let suspended = control(&["suspend", "--reason", "incident 4711"]);
    assert_eq!(suspended.code, 0, "{}", suspended.stderr);
    assert!(suspended.stdout.contains("Suspended (soft)"), "{}", suspended.stdout);

    // One push that gives (a new grant, an edited one) and takes away (a file of grants
    // removed, a grant disabled).
    let work = upstream.work.path();
    std::fs::write(
        work.join("teams/payments/grants/new-bot.yaml"),
        format!(
            "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: new-bot\n  namespace: {payments}\nspec:\n  serverRef:\n    name: payments-mcp\n  subject:\n    agentID: new-bot\n  maxTrust: low\n  allowedSideEffects: [read]\n"
        ),
    )
    .expect("write");
    edit(work, "teams/payments/grants/refund-desk.yaml", "  maxTrust: medium\n", "  maxTrust: medium\n  disabled: true\n");
    edit(
        work,
        "teams/payments/grants/finance-ops.yaml",
        "  name: finance-ops-oncall\n",
        "  name: finance-ops-oncall\n  labels: {reviewed: \"2026\"}\n",
    );
    std::fs::remove_file(work.join("teams/payments/grants/agents.yaml")).expect("remove");
    upstream.push("give and take");
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(60), "the push held back", |s| s["last_result"] == "suspended");
    assert_eq!(status["suspended"], "soft");
    assert!(status["suspension_note"].as_str().unwrap().ends_with(": incident 4711"), "{status}");
    let held: Vec<&str> = status["held"].as_array().unwrap().iter().filter_map(|h| h.as_str()).collect();
    assert_eq!(held, [format!("update MCPAccessGrant/{payments}/finance-ops-oncall"), format!("create MCPAccessGrant/{payments}/new-bot")]);
    assert!(!exists(&kubectl, &payments, "new-bot"), "a new grant was applied while suspended");
    let finance = kubectl.json(&["get", "mcpaccessgrants", "finance-ops-oncall", "-n", &payments]);
    assert!(finance["metadata"]["labels"].get("reviewed").is_none(), "an edit was applied while suspended");
    // What only takes access away went through.
    assert!(!exists(&kubectl, &payments, "billing-assistant-agent"), "a removed grant is still live");
    let refund = kubectl.json(&["get", "mcpaccessgrants", "refund-desk", "-n", &payments]);
    assert_eq!(refund["spec"]["disabled"], true);
    assert_eq!(metric(&daemon, "mcp_gitops_suspended"), "1");
    assert_eq!(metric(&daemon, "mcp_gitops_held_changes"), "2");
    let events = kubectl.json(&["get", "events.events.k8s.io", "-n", &inventory]);
    assert!(
        events["items"].as_array().unwrap().iter().any(|e| e["reason"] == "Suspended" && e["note"].as_str().unwrap().contains("new-bot")),
        "no Suspended Event: {events}"
    );

    // A restarted daemon reads the suspension from the cluster before it applies anything.
    drop(daemon);
    daemon = Daemon::start(&upstream.bare_path(), &kubeconfig, &inventory, &[]);
    let status = daemon.wait_for(Duration::from_secs(60), "the restarted daemon to hold", |s| s["last_result"] == "suspended");
    assert_eq!(status["held"].as_array().unwrap().len(), 2, "{status}");
    assert!(!exists(&kubectl, &payments, "new-bot"));

    // Hard: not even a removal goes through.
    assert_eq!(control(&["suspend", "--hard"]).code, 0);
    std::fs::remove_file(work.join("teams/payments/grants/refund-desk.yaml")).expect("remove");
    let tip = upstream.push("remove the refund desk");
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(60), "the removal held back", |s| {
        s["suspended"] == "hard" && s["held"].as_array().is_some_and(|h| h.iter().any(|h| h.as_str().unwrap().starts_with("delete ")))
    });
    assert!(exists(&kubectl, &payments, "refund-desk"), "deleted under a hard suspension: {status}");

    // Resume: everything held is applied, with no push and no webhook (the interval is an hour):
    // the daemon watches the inventory that `resume` writes.
    let resumed = control(&["resume"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    // The revision goes live only now: held, it never was.
    let status = daemon.wait_for(Duration::from_secs(60), "the held changes applied", |s| s["revision"] == tip.as_str());
    assert_eq!(status["suspended"], "");
    assert!(exists(&kubectl, &payments, "new-bot"));
    assert!(!exists(&kubectl, &payments, "refund-desk"));
    let finance = kubectl.json(&["get", "mcpaccessgrants", "finance-ops-oncall", "-n", &payments]);
    assert_eq!(finance["metadata"]["labels"]["reviewed"], "2026");
    assert_eq!(metric(&daemon, "mcp_gitops_suspended"), "0");
}

fn ssh_key(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    common::install(&["openssh-client"]);
    let key = dir.join(name);
    let made = std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"]).arg(&key).status();
    assert!(made.is_ok_and(|s| s.success()));
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    (key, public)
}

fn grant(namespace: &str, name: &str, annotations: &str) -> String {
    format!(
        "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: {name}\n  namespace: {namespace}\n{annotations}spec:\n  serverRef:\n    name: payments-mcp\n  subject:\n    agentID: {name}\n  maxTrust: low\n  allowedSideEffects: [read]\n"
    )
}

#[test]
fn a_pin_rolls_back_to_a_verified_revision_and_unpin_follows_the_branch_again() {
    let Teams { kubeconfig, kubectl, payments, support, inventory } = Teams::new("");
    let kube = kubeconfig.to_str().unwrap();
    let keys = tempfile::tempdir().expect("keys");
    let (dana, dana_public) = ssh_key(keys.path(), "dana");
    let (sam, sam_public) = ssh_key(keys.path(), "sam");
    let signers = keys.path().join("allowed_signers");
    std::fs::write(&signers, format!("dana@fernhill.io {dana_public}sam@fernhill.io {sam_public}")).expect("write");

    // A (signed by dana): the platform and a grant that expired long ago. B (signed by sam):
    // that grant removed, another added.
    let bare = tempfile::tempdir().expect("bare");
    git2::Repository::init_bare(bare.path()).expect("init bare");
    let bare_path = bare.path().to_string_lossy().into_owned();
    let work = repo_copy("examples/platform", &[("mcp-team-payments", &payments), ("mcp-team-support", &support)]);
    let grants = work.path().join("teams/payments/grants");
    let expired = "  annotations:\n    mcp-gitops.io/expires-at: \"2020-01-01T00:00:00Z\"\n";
    std::fs::write(grants.join("old-timer.yaml"), grant(&payments, "old-timer", expired)).expect("write");
    let git = |key: &Path, args: &[&str]| common::git(work.path(), &[format!("user.signingkey={}", key.display())], args);
    git(&dana, &["init", "-q", "-b", "main"]);
    git(&dana, &["add", "-A"]);
    git(&dana, &["commit", "-q", "-S", "-m", "A"]);
    let a = git(&dana, &["rev-parse", "HEAD"]).trim().to_string();
    std::fs::remove_file(grants.join("old-timer.yaml")).expect("remove");
    std::fs::write(grants.join("b-grant.yaml"), grant(&payments, "b-grant", "")).expect("write");
    git(&sam, &["add", "-A"]);
    git(&sam, &["commit", "-q", "-S", "-m", "B"]);
    let b = git(&sam, &["rev-parse", "HEAD"]).trim().to_string();
    git(&sam, &["push", "-q", &bare_path, "main"]);

    let signers_arg = signers.to_string_lossy().into_owned();
    let daemon = Daemon::start(&bare_path, &kubeconfig, &inventory, &["--verify-signatures", "--allowed-signers", &signers_arg]);
    assert!(exists(&kubectl, &payments, "b-grant"));
    assert!(!exists(&kubectl, &payments, "old-timer"));

    let control = |args: &[&str]| run(&[&["daemon"], args, &["--kubeconfig", kube, "--inventory-namespace", &inventory]].concat());
    let work_arg = work.path().to_string_lossy().into_owned();
    let pinned = control(&["pin", "HEAD~1", "--repo-dir", &work_arg]);
    assert_eq!(pinned.code, 0, "{}", pinned.stderr);
    assert!(pinned.stdout.contains(&a), "HEAD~1 resolved to A: {}", pinned.stdout);
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(60), "the rollback to A", |s| s["revision"] == a.as_str());
    assert_eq!(status["pinned"], a.as_str());
    assert!(status["last_message"].as_str().unwrap().starts_with("pinned: "), "{status}");
    // The rollback brings the expired grant back disabled: it grants nothing.
    let old = kubectl.json(&["get", "mcpaccessgrants", "old-timer", "-n", &payments]);
    assert_eq!(old["spec"]["disabled"], true, "an expired grant came back enabled");
    assert!(!exists(&kubectl, &payments, "b-grant"));

    // dana's key is withdrawn: her revision is no longer one to pin, and nothing moves.
    std::fs::write(&signers, format!("sam@fernhill.io {sam_public}")).expect("write");
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(60), "the pin refused", |s| s["last_result"] == "unverified");
    assert!(status["last_message"].as_str().unwrap().contains("unknown_key"), "{status}");
    assert_eq!(status["revision"], a.as_str(), "the live revision moved");
    assert!(exists(&kubectl, &payments, "old-timer"));

    // A revision that is not on the branch is refused as well.
    assert_eq!(control(&["pin", &"e".repeat(40)]).code, 0);
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(60), "the foreign pin refused", |s| {
        s["last_result"] == "invalid" && s["last_message"].as_str().is_some_and(|m| m.contains("is not on branch main"))
    });
    assert_eq!(status["revision"], a.as_str());
    let unresolvable = control(&["pin", "no-such-rev", "--repo-dir", &work_arg]);
    assert_eq!(unresolvable.code, 64, "{}", unresolvable.stderr);

    // Unpinned: the branch tip, signed by sam, is applied again.
    assert_eq!(control(&["unpin"]).code, 0);
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(60), "the branch tip again", |s| s["revision"] == b.as_str());
    assert_eq!(status["pinned"], "");
    assert!(exists(&kubectl, &payments, "b-grant"));
    assert!(!exists(&kubectl, &payments, "old-timer"));
}
