//! Operating the daemon on the real test cluster: `mcp-gitops daemon suspend` holds back what
//! could give access while revocations still apply, `--hard` holds everything, the suspension
//! outlives a restart, and `resume` lets the held changes through.

mod common;

use common::cluster::{Kubectl, kubeconfig, repo_copy, unique};
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
    let kubeconfig = kubeconfig();
    let kube = kubeconfig.to_str().unwrap();
    let kubectl = Kubectl { kubeconfig: kubeconfig.clone() };
    let (payments, support, inventory) = (unique("pay"), unique("sup"), unique("inv"));
    kubectl.create_namespace(&payments);
    kubectl.create_namespace(&support);
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
    upstream.push("remove the refund desk");
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(60), "the removal held back", |s| {
        s["suspended"] == "hard" && s["held"].as_array().is_some_and(|h| h.iter().any(|h| h.as_str().unwrap().starts_with("delete ")))
    });
    assert!(exists(&kubectl, &payments, "refund-desk"), "deleted under a hard suspension: {status}");

    // Resume: everything held is applied.
    let resumed = control(&["resume"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(daemon.signed_hook(), 202);
    let status = daemon.wait_for(Duration::from_secs(60), "the held changes applied", |s| s["last_result"] == "applied");
    assert_eq!(status["suspended"], "");
    assert!(exists(&kubectl, &payments, "new-bot"));
    assert!(!exists(&kubectl, &payments, "refund-desk"));
    let finance = kubectl.json(&["get", "mcpaccessgrants", "finance-ops-oncall", "-n", &payments]);
    assert_eq!(finance["metadata"]["labels"]["reviewed"], "2026");
    assert_eq!(metric(&daemon, "mcp_gitops_suspended"), "0");
}
