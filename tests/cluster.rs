//! `plan` and `apply` against the real kube-apiserver v1.20.2 + etcd of `tests/cluster.sh`:
//! create, no-op (zero write requests, counted by the API server), update, prune, drift and
//! conflicts, ownership, permissions, server-side rejections, reviewed plans, guards, dry run,
//! `--wait` through the operator double, and the API server dying mid-apply.
//!
//! Tests run one at a time: the write-request counter is cluster-wide.

mod common;

use common::cluster::{Kubectl, PrivateCluster, kubeconfig, repo_copy, unique};
use common::{Run, json, run};
use mcp_gitops::gateway::PolicyDocument;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

/// One test's corner of the cluster: its own team namespaces, inventory namespace and repository.
struct Env {
    kubeconfig: PathBuf,
    kubectl: Kubectl,
    payments: String,
    support: String,
    inventory: String,
}

impl Env {
    fn new() -> Env {
        let kubeconfig = kubeconfig();
        let kubectl = Kubectl { kubeconfig: kubeconfig.clone() };
        let env = Env { kubectl, kubeconfig, payments: unique("pay"), support: unique("sup"), inventory: unique("inv") };
        env.kubectl.create_namespace(&env.payments);
        env.kubectl.create_namespace(&env.support);
        env
    }

    /// An example repository moved into this test's namespaces.
    fn repo(&self, example: &str) -> tempfile::TempDir {
        repo_copy(example, &[("mcp-team-payments", &self.payments), ("mcp-team-support", &self.support)])
    }

    fn mcp(&self, command: &str, repo: &Path, extra: &[&str]) -> Run {
        let repo = repo.to_string_lossy().into_owned();
        let kubeconfig = self.kubeconfig.to_string_lossy().into_owned();
        let args =
            [&[command, repo.as_str(), "--kubeconfig", kubeconfig.as_str(), "--inventory-namespace", self.inventory.as_str()][..], extra]
                .concat();
        run(&args)
    }

    fn grant(&self, name: &str) -> serde_json::Value {
        self.kubectl.json(&["get", "mcpaccessgrants", name, "-n", &self.payments])
    }

    fn count(&self, resource: &str, namespace: &str) -> usize {
        self.kubectl.json(&["get", resource, "-n", namespace])["items"].as_array().map_or(0, Vec::len)
    }
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn apply_creates_then_writes_nothing_then_updates_and_prunes() {
    let _serial = serial();
    let env = Env::new();
    let platform = env.repo("examples/platform");

    let plan = env.mcp("plan", platform.path(), &["--format", "json", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.stderr);
    let plan = json(&plan.stdout);
    assert_eq!(plan["base"]["kind"], "cluster");
    assert_eq!(plan["summary"]["create"], 22);

    let first = env.mcp("apply", platform.path(), &[]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert!(first.stdout.contains("Apply complete: 22 created"), "{}", first.stdout);
    let grant = env.grant("refund-desk");
    let labels = &grant["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "mcp-gitops");
    assert!(labels["applyset.kubernetes.io/part-of"].as_str().is_some_and(|id| id.starts_with("applyset-")));
    let inventory = env.kubectl.json(&["get", "configmap", "mcp-gitops-inventory", "-n", &env.inventory]);
    assert_eq!(inventory["data"]["objects"].as_str().map(|o| o.lines().count()), Some(22));
    assert_eq!(inventory["metadata"]["labels"]["applyset.kubernetes.io/id"], labels["applyset.kubernetes.io/part-of"]);
    assert_eq!(inventory["metadata"]["annotations"]["mcp-gitops.mcpruntime.org/last-applied-revision"], plan["desired_revision"]);

    let writes = env.kubectl.write_requests();
    let again = env.mcp("apply", platform.path(), &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("22 unchanged (no request)"), "{}", again.stdout);
    assert_eq!(env.kubectl.write_requests(), writes, "a repeated apply makes no write request");
    let noop = env.mcp("plan", platform.path(), &["--detailed-exitcode"]);
    assert_eq!(noop.code, 0, "{}", noop.stdout);

    let change = env.repo("examples/pr-change");
    // Against the cluster (which holds other tests' servers too), the access diff is the one
    // the offline plan of the same change shows, both at one pinned time (the examples' sessions
    // expire in 2030: a plan at the clock would differ from then on).
    let live = json(&env.mcp("plan", change.path(), &["--format", "json", "--now", common::NOW]).stdout);
    let offline =
        json(&run(&["plan", "examples/pr-change", "--base", "examples/platform", "--format", "json", "--now", common::NOW]).stdout);
    for key in ["update", "delete", "access_widened", "access_narrowed", "access_changed"] {
        assert_eq!(live["summary"][key], offline["summary"][key], "{key}");
    }
    let update = env.mcp("apply", change.path(), &[]);
    assert_eq!(update.code, 0, "{}\n{}", update.stdout, update.stderr);
    assert!(update.stdout.contains("4 updated"), "{}", update.stdout);
    assert!(update.stdout.contains("no longer declared; pass --prune"), "{}", update.stdout);
    assert_eq!(env.grant("refund-desk")["spec"]["maxTrust"], "high");
    assert_eq!(env.grant("legacy-ledger-sync")["metadata"]["name"], "legacy-ledger-sync", "not pruned without --prune");

    let prune = env.mcp("apply", change.path(), &["--prune"]);
    assert_eq!(prune.code, 0, "{}\n{}", prune.stdout, prune.stderr);
    assert!(prune.stdout.contains("1 deleted"), "{}", prune.stdout);
    let gone = env.kubectl.run(&["get", "mcpaccessgrants", "legacy-ledger-sync", "-n", &env.payments]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("NotFound"));
    let inventory = env.kubectl.json(&["get", "configmap", "mcp-gitops-inventory", "-n", &env.inventory]);
    assert_eq!(inventory["data"]["objects"].as_str().map(|o| o.lines().count()), Some(21));
}

#[test]
fn drift_shows_its_manager_and_conflicts_need_force() {
    let _serial = serial();
    let env = Env::new();
    let repo = env.repo("examples/platform");
    assert_eq!(env.mcp("apply", repo.path(), &[]).code, 0);
    env.kubectl.edit_grant_as("kubectl-edit", &env.payments, "refund-desk", r#"{"spec":{"maxTrust":"low"}}"#);

    let plan = env.mcp("plan", repo.path(), &["--format", "json"]);
    let plan = json(&plan.stdout);
    let change = plan["changes"].as_array().and_then(|c| c.iter().find(|c| c["name"] == "refund-desk")).cloned().unwrap_or_default();
    assert_eq!(change["action"], "update");
    assert_eq!(change["drift"], serde_json::json!([{"path": "spec.maxTrust", "managers": ["kubectl-edit"]}]));
    let text = env.mcp("plan", repo.path(), &["--color", "never"]);
    assert!(text.stdout.contains("spec.maxTrust changed by kubectl-edit"), "{}", text.stdout);

    let conflict = env.mcp("apply", repo.path(), &[]);
    assert_eq!(conflict.code, 1);
    assert!(conflict.stdout.contains("conflict with \"kubectl-edit\""), "{}", conflict.stdout);
    assert!(conflict.stdout.contains(".spec.maxTrust"), "{}", conflict.stdout);
    assert_eq!(env.grant("refund-desk")["spec"]["maxTrust"], "low", "a conflict leaves the object as it was");

    let forced = env.mcp("apply", repo.path(), &["--force-conflicts"]);
    assert_eq!(forced.code, 0, "{}", forced.stdout);
    assert_eq!(env.grant("refund-desk")["spec"]["maxTrust"], "medium");
    assert_eq!(env.mcp("plan", repo.path(), &["--detailed-exitcode"]).code, 0);
}

#[test]
fn objects_we_do_not_own_are_neither_adopted_nor_deleted() {
    let _serial = serial();
    let env = Env::new();
    let repo = env.repo("examples/platform");
    let theirs = format!(
        "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: refund-desk\n  namespace: {}\nspec:\n  serverRef: {{name: payments-mcp}}\n  subject: {{agentID: someone-else}}\n",
        env.payments
    );
    let out = env.kubectl.apply_stdin(&["apply"], &theirs);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let refused = env.mcp("apply", repo.path(), &[]);
    assert_eq!(refused.code, 1);
    assert!(refused.stdout.contains("not managed by mcp-gitops") && refused.stdout.contains("--adopt"), "{}", refused.stdout);
    assert_eq!(env.grant("refund-desk")["spec"]["subject"]["agentID"], "someone-else");

    // A copied membership label does not make an object ours: it is not in the inventory.
    let id =
        env.grant("payments-team-read")["metadata"]["labels"]["applyset.kubernetes.io/part-of"].as_str().unwrap_or_default().to_string();
    let copied = format!(
        "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: copied-label\n  namespace: {}\n  labels: {{applyset.kubernetes.io/part-of: {id}}}\nspec:\n  serverRef: {{name: payments-mcp}}\n  subject: {{agentID: copycat}}\n",
        env.payments
    );
    assert!(env.kubectl.apply_stdin(&["apply"], &copied).status.success());

    let adopted = env.mcp("apply", repo.path(), &["--adopt", "--prune"]);
    assert_eq!(adopted.code, 0, "{}\n{}", adopted.stdout, adopted.stderr);
    assert_eq!(env.grant("refund-desk")["spec"]["subject"]["agentID"], "refund-copilot");
    assert_eq!(env.grant("copied-label")["metadata"]["name"], "copied-label", "never deleted");
}

/// The attack: a grant the repository declares belongs to another team; apply rightly refuses
/// it. Then the other team copies our ownership labels onto it, and the name leaves the
/// repository: a prune must not delete it. Only what mcp-gitops applied is recorded in the
/// inventory, and even an inventory that lists it (an interrupted run records names before it
/// creates them) does not make it ours: prune needs our field manager's apply in managedFields.
#[test]
fn a_refused_object_is_never_recorded_nor_pruned_even_with_our_labels() {
    let _serial = serial();
    let env = Env::new();
    let repo = env.repo("examples/platform");
    let theirs = |labels: &str| {
        format!(
            "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: refund-desk\n  namespace: {}\n  labels: {{{labels}}}\nspec:\n  serverRef: {{name: payments-mcp}}\n  subject: {{agentID: someone-else}}\n",
            env.payments
        )
    };
    let other_team = ["apply", "--server-side", "--field-manager", "other-team"];
    assert!(env.kubectl.apply_stdin(&other_team, &theirs("")).status.success());
    let refused = env.mcp("apply", repo.path(), &[]);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    let inventory = || env.kubectl.json(&["get", "configmap", "mcp-gitops-inventory", "-n", &env.inventory]);
    let recorded = inventory()["data"]["objects"].as_str().unwrap_or_default().to_string();
    let line = format!("MCPAccessGrant/{}/refund-desk", env.payments);
    assert!(recorded.contains(&format!("MCPAccessGrant/{}/payments-team-read", env.payments)), "{recorded}");
    assert!(!recorded.lines().any(|l| l == line), "a refused object is not recorded as ours:\n{recorded}");

    let ours = env.grant("payments-team-read")["metadata"]["labels"].clone();
    let copied = format!(
        "app.kubernetes.io/managed-by: mcp-gitops, applyset.kubernetes.io/part-of: {}",
        ours["applyset.kubernetes.io/part-of"].as_str().unwrap_or_default()
    );
    assert!(env.kubectl.apply_stdin(&other_team, &theirs(&copied)).status.success());
    std::fs::remove_file(repo.path().join("teams/payments/grants/refund-desk.yaml")).expect("remove");
    let pruned = env.mcp("apply", repo.path(), &["--prune"]);
    assert_eq!(pruned.code, 0, "{}\n{}", pruned.stdout, pruned.stderr);
    assert_eq!(env.grant("refund-desk")["spec"]["subject"]["agentID"], "someone-else", "not deleted:\n{}", pruned.stdout);

    // Listed by the inventory (as an interrupted run leaves it), still not ours to delete.
    let listed = format!("{}{line}\n", inventory()["data"]["objects"].as_str().unwrap_or_default());
    let patch = serde_json::json!({"data": {"objects": listed}}).to_string();
    env.kubectl.ok(&["patch", "configmap", "mcp-gitops-inventory", "-n", &env.inventory, "--type", "merge", "-p", &patch]);
    let plan = env.mcp("plan", repo.path(), &["--format", "json"]);
    let planned = json(&plan.stdout);
    let deletes: Vec<&serde_json::Value> =
        planned["changes"].as_array().into_iter().flatten().filter(|c| c["action"] == "delete").collect();
    assert!(deletes.is_empty(), "{deletes:?}");
    assert_eq!(env.mcp("apply", repo.path(), &["--prune"]).code, 0);
    assert_eq!(env.grant("refund-desk")["spec"]["subject"]["agentID"], "someone-else");
}

#[test]
fn restricted_credentials_get_a_clear_permission_error() {
    let _serial = serial();
    let env = Env::new();
    let role = unique("mcp-gitops-partial");
    let rbac = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {role}}}\nrules:\n- apiGroups: [mcpruntime.org]\n  resources: [mcpservers, mcpaccessgrants]\n  verbs: [get, list]\n- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [get]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {role}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\nsubjects:\n- {{apiGroup: rbac.authorization.k8s.io, kind: User, name: restricted}}\n"
    );
    assert!(env.kubectl.apply_stdin(&["apply"], &rbac).status.success());
    let restricted = env.kubeconfig.with_file_name("restricted.kubeconfig");
    let repo = env.repo("examples/platform");
    let out = run(&["plan", &repo.path().to_string_lossy(), "--kubeconfig", &restricted.to_string_lossy()]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
    assert!(out.stderr.contains("cannot list resource \"mcpagentsessions\""), "{}", out.stderr);
}

#[test]
fn server_rejections_point_at_the_file_and_line() {
    let _serial = serial();
    let env = Env::new();
    let repo = repo_copy("tests/fixtures/valid-minimal", &[("mcp-team-a", &env.payments)]);
    let dir = repo.path();
    let grant_file = std::fs::read_dir(dir.join("access"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("kind: MCPAccessGrant")));
    let grant_file = grant_file.expect("the fixture has a grant file");
    let text = std::fs::read_to_string(&grant_file).expect("read").replacen(
        "metadata:\n",
        "metadata:\n  labels:\n    team: \"not a valid label!\"\n",
        1,
    );
    std::fs::write(&grant_file, text).expect("write");
    let out = env.mcp("apply", dir, &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let rel = grant_file.strip_prefix(dir).expect("inside").to_string_lossy().into_owned();
    assert!(out.stdout.contains(&format!("{rel}:")), "the failure names the file:\n{}", out.stdout);
    assert!(out.stdout.contains("metadata.labels: Invalid value"), "{}", out.stdout);
}

#[test]
fn a_reviewed_plan_applies_exactly_or_is_refused_as_stale() {
    let _serial = serial();
    let env = Env::new();
    let repo = env.repo("examples/platform");
    assert_eq!(env.mcp("apply", repo.path(), &[]).code, 0);
    let change = env.repo("examples/pr-change");
    let plan_file = change.path().join("plan.json").to_string_lossy().into_owned();
    assert_eq!(env.mcp("plan", change.path(), &["--out", &plan_file]).code, 0);

    env.kubectl.ok(&["annotate", "mcpaccessgrants", "refund-desk", "-n", &env.payments, "reviewed-by=someone"]);
    let stale = env.mcp("apply", change.path(), &["--plan", &plan_file]);
    assert_eq!(stale.code, 1);
    assert!(stale.stderr.contains("plan is stale") && stale.stderr.contains("refund-desk"), "{}", stale.stderr);
    assert_eq!(env.grant("refund-desk")["spec"]["maxTrust"], "medium", "nothing applied");

    assert_eq!(env.mcp("plan", change.path(), &["--out", &plan_file]).code, 0);
    let grant_file = change.path().join("teams/support/grants/support-leads.yaml");
    let original = std::fs::read_to_string(&grant_file).expect("read");
    std::fs::write(&grant_file, format!("{original}# reviewed again\n")).expect("write");
    let moved = env.mcp("apply", change.path(), &["--plan", &plan_file]);
    assert_eq!(moved.code, 1);
    assert!(moved.stderr.contains("the repository changed"), "{}", moved.stderr);
    std::fs::write(&grant_file, original).expect("restore");

    let applied = env.mcp("apply", change.path(), &["--plan", &plan_file]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert_eq!(env.grant("refund-desk")["spec"]["maxTrust"], "high");
}

/// The attack: the plan a reviewer reads is edited to show `maxTrust: low` (the document, its
/// diff) while the repository says `high`. Applying it must not make the grant `high`.
#[test]
fn a_reviewed_plan_that_says_something_else_than_the_repository_is_refused() {
    let _serial = serial();
    let env = Env::new();
    assert_eq!(env.mcp("apply", env.repo("examples/platform").path(), &[]).code, 0);
    let change = env.repo("examples/pr-change");
    let plan_file = change.path().join("plan.json");
    let plan_path = plan_file.to_string_lossy().into_owned();
    assert_eq!(env.mcp("plan", change.path(), &["--out", &plan_path]).code, 0);
    let saved = std::fs::read_to_string(&plan_file).expect("read");
    let edited = saved.replace("maxTrust: high", "maxTrust: low").replace("\"maxTrust\": \"high\"", "\"maxTrust\": \"low\"");
    assert_ne!(edited, saved, "the plan shows the grant's maxTrust");
    std::fs::write(&plan_file, edited).expect("write");

    let refused = env.mcp("apply", change.path(), &["--plan", &plan_path]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("the plan does not say what applying does") && refused.stderr.contains("its changes"),
        "{}",
        refused.stderr
    );
    assert_eq!(env.grant("refund-desk")["spec"]["maxTrust"], "medium", "nothing applied");

    std::fs::write(&plan_file, saved).expect("restore");
    assert_eq!(env.mcp("apply", change.path(), &["--plan", &plan_path]).code, 0);
    assert_eq!(env.grant("refund-desk")["spec"]["maxTrust"], "high");
}

#[test]
fn guards_refuse_before_anything_is_written() {
    let _serial = serial();
    let env = Env::new();
    let repo = env.repo("examples/platform");
    assert_eq!(env.mcp("apply", repo.path(), &[]).code, 0);
    let grants = env.count("mcpaccessgrants", &env.payments);

    let empty = tempfile::tempdir().expect("tempdir");
    let out = env.mcp("apply", empty.path(), &["--prune"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("yields no objects"), "{}", out.stderr);

    for dir in ["teams/payments/grants", "teams/support/grants"] {
        std::fs::remove_dir_all(repo.path().join(dir)).expect("remove grants");
    }
    let writes = env.kubectl.write_requests();
    let out = env.mcp("apply", repo.path(), &["--prune"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("refusing to prune 12 objects: more than --max-deletes 10"), "{}", out.stderr);
    assert_eq!(env.kubectl.write_requests(), writes, "a refusal writes nothing");
    assert_eq!(env.count("mcpaccessgrants", &env.payments), grants);
}

#[test]
fn dry_run_persists_nothing() {
    let _serial = serial();
    let env = Env::new();
    let repo = env.repo("examples/platform");
    let out = env.mcp("apply", repo.path(), &["--dry-run"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("(dry run)"), "{}", out.stdout);
    assert_eq!(env.count("mcpaccessgrants", &env.payments), 0);
    assert!(!env.kubectl.run(&["get", "configmap", "mcp-gitops-inventory", "-n", &env.inventory]).status.success());
}

#[test]
fn wait_follows_the_operator_and_says_what_it_waited_for() {
    let _serial = serial();
    let env = Env::new();
    let repo = env.repo("examples/platform");
    let timeout = env.mcp("apply", repo.path(), &["--wait", "--timeout", "2s"]);
    assert_eq!(timeout.code, 1);
    assert!(timeout.stderr.contains("timed out after 2s"), "{}", timeout.stderr);
    assert!(
        timeout.stderr.contains(&format!(
            "{}/payments-mcp: phase no status yet (want Ready), policy revision none: no policy written yet (predicted sha256:",
            env.payments
        )),
        "{}",
        timeout.stderr
    );

    let _operator = common::operator::start(env.kubeconfig.clone(), vec![env.payments.clone(), env.support.clone()], 7);
    let change = env.repo("examples/pr-change");
    let out = env.mcp("apply", change.path(), &["--wait", "--timeout", "60s"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("The operator has taken the change: 2 server(s) Ready"), "{}", out.stdout);
    let (predicted, written) = policies(&env, change.path(), "payments-mcp");
    assert_eq!(mcp_gitops::gateway::revision::written_as_predicted(&predicted, &written), Ok(()));
}

/// The policy `render` predicts for a server of the repository, and the one the operator wrote.
fn policies(env: &Env, repo: &Path, server: &str) -> (PolicyDocument, PolicyDocument) {
    let rendered = run(&["render", &repo.to_string_lossy(), "--server", &format!("{}/{server}", env.payments)]);
    let configmap = env.kubectl.json(&["get", "configmap", &format!("{server}-gateway-policy"), "-n", &env.payments]);
    let written = configmap["data"]["policy.json"].as_str().unwrap_or("{}");
    (serde_json::from_str(&rendered.stdout).expect("rendered policy"), serde_json::from_str(written).expect("written policy"))
}

#[test]
fn wait_judges_the_operator_by_content_whatever_order_it_lists_grants_in() {
    let _serial = serial();
    let env = Env::new();
    let repo = tempfile::tempdir().expect("repo");
    std::fs::create_dir_all(repo.path().join(".mcp")).expect("mkdir");
    let server = format!(
        "servers:\n  - name: five\n    namespace: {}\n    gateway: {{enabled: true}}\n    tools: [{{name: read_t, sideEffect: read}}]\n",
        env.payments
    );
    std::fs::write(repo.path().join(".mcp/servers.yaml"), server).expect("write");
    let mut reordered = 0;
    for seed in 0..20 {
        // Every round changes all five grants, so there is a new policy to wait for.
        let grants: String = (0..5)
            .map(|i| format!("---\napiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata: {{name: g{i}, namespace: {}}}\nspec:\n  serverRef: {{name: five}}\n  subject: {{agentID: a{i}}}\n  maxTrust: low\n  allowedSideEffects: [read]\n  policyVersion: round-{seed}\n", env.payments))
            .collect();
        std::fs::write(repo.path().join("grants.yaml"), grants).expect("write");
        let _operator = common::operator::start(env.kubeconfig.clone(), vec![env.payments.clone()], seed);
        let out = env.mcp("apply", repo.path(), &["--wait", "--timeout", "30s"]);
        assert_eq!(out.code, 0, "order seed {seed}:\n{}\n{}", out.stdout, out.stderr);
        let (predicted, written) = policies(&env, repo.path(), "five");
        assert!(written.grants.iter().all(|g| g.policy_version == format!("round-{seed}")), "waited for the change of round {seed}");
        assert_eq!(mcp_gitops::gateway::revision::written_as_predicted(&predicted, &written), Ok(()));
        reordered += usize::from(written.revision != predicted.revision);
    }
    assert!(reordered > 0, "the operator double never listed the grants out of order");
}

#[test]
fn the_api_server_dying_mid_apply_loses_nothing() {
    let _serial = serial();
    let cluster = PrivateCluster::up("");
    let (kubeconfig, kubectl) = (&cluster.kubeconfig, &cluster.kubectl);
    kubectl.create_namespace("fault");
    let repo = tempfile::tempdir().expect("repo");
    std::fs::create_dir_all(repo.path().join(".mcp")).expect("mkdir");
    std::fs::write(
        repo.path().join(".mcp/servers.yaml"),
        "servers:\n  - name: bulk\n    namespace: fault\n    gateway: {enabled: true}\n    tools: [{name: read_t, sideEffect: read}]\n",
    )
    .expect("write");
    let grants: String = (0..1500)
        .map(|i| format!("---\napiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata: {{name: g{i}, namespace: fault}}\nspec:\n  serverRef: {{name: bulk}}\n  subject: {{agentID: a{i}}}\n  maxTrust: low\n  allowedSideEffects: [read]\n"))
        .collect();
    std::fs::write(repo.path().join("grants.yaml"), grants).expect("write");
    let repo_arg = repo.path().to_string_lossy().into_owned();
    let kubeconfig_arg = kubeconfig.to_string_lossy().into_owned();

    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-gitops"))
        .args(["apply", &repo_arg, "--kubeconfig", &kubeconfig_arg, "--concurrency", "1", "--color", "never"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn apply");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while kubectl.json(&["get", "mcpaccessgrants", "-n", "fault"])["items"].as_array().map_or(0, Vec::len) < 50 {
        assert!(std::time::Instant::now() < deadline, "apply made no progress");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = std::fs::read_to_string(cluster.dir.join("kube-apiserver.pid")).expect("pid");
    assert!(std::process::Command::new("kill").args(["-9", pid.trim()]).status().expect("kill").success());
    let out = child.wait_with_output().expect("apply exits");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("created MCPAccessGrant/fault/"), "what was applied is listed:\n{stdout}");
    assert!(stdout.contains("not attempted"), "what was not applied is listed:\n{stdout}");
    assert!(stderr.contains("Run apply again"), "{stderr}");

    cluster.script("restart-apiserver");
    let again = run(&["apply", &repo_arg, "--kubeconfig", &kubeconfig_arg]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(kubectl.json(&["get", "mcpaccessgrants", "-n", "fault"])["items"].as_array().map(Vec::len), Some(1500));
    let inventory = kubectl.json(&["get", "configmap", "mcp-gitops-inventory", "-n", "mcp-gitops"]);
    assert_eq!(inventory["data"]["objects"].as_str().map(|o| o.lines().count()), Some(1501));
    assert_eq!(run(&["apply", &repo_arg, "--kubeconfig", &kubeconfig_arg, "--prune"]).code, 0);
}

/// The pid in `<dir>/<name>.pid` while that process runs.
fn running(dir: &Path, name: &str) -> Option<String> {
    let pid = std::fs::read_to_string(dir.join(format!("{name}.pid"))).ok()?.trim().to_string();
    alive(&pid, dir).then_some(pid)
}

/// Process `pid` runs with `dir` on its command line (and is not another process that took its pid).
fn alive(pid: &str, dir: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy()))
}

const CLUSTER_PROCESSES: [&str; 3] = ["etcd", "kube-apiserver", "reaper"];

/// A cluster started as the tests start theirs, with a 2 s idle time: its state (a temporary
/// dir), its users' lock held by this test, and the pids of its processes.
fn reaped_cluster() -> (tempfile::TempDir, PathBuf, std::fs::File, Vec<String>) {
    let state = tempfile::tempdir().expect("state dir");
    let dir = state.path().join("cluster");
    let user = common::cluster::hold(&dir);
    common::cluster::up(&dir, &[("MCP_GITOPS_CLUSTER_IDLE", "2")]);
    let pids: Vec<Option<String>> = CLUSTER_PROCESSES.iter().map(|name| running(&dir, name)).collect();
    assert!(pids.iter().all(Option::is_some), "{CLUSTER_PROCESSES:?}: {pids:?}");
    (state, dir, user, pids.into_iter().flatten().collect())
}

/// Waits up to 30 s for every one of `pids` to end.
fn assert_all_end(pids: &[String], dir: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while pids.iter().any(|pid| alive(pid, dir)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for (name, pid) in CLUSTER_PROCESSES.iter().zip(pids) {
        assert!(!alive(pid, dir), "{name} (pid {pid}) still runs 30 s later");
    }
}

#[test]
fn a_cluster_the_tests_start_stops_once_its_last_user_is_gone() {
    let _serial = serial();
    let (_state, dir, user, pids) = reaped_cluster();

    // Past the idle time, a cluster somebody holds keeps running.
    std::thread::sleep(std::time::Duration::from_secs(5));
    let now: Vec<Option<String>> = CLUSTER_PROCESSES.iter().map(|name| running(&dir, name)).collect();
    assert_eq!(now, pids.iter().cloned().map(Some).collect::<Vec<_>>(), "stopped under its user");
    assert!(Kubectl { kubeconfig: dir.join("admin.kubeconfig") }.ok(&["get", "namespaces"]).contains("mcp-team-payments"));

    // Its user gone (as when a test process ends or is killed), it stops: no process, no state.
    drop(user);
    assert_all_end(&pids, &dir);
    assert!(!dir.exists(), "the state dir is left");
}

#[test]
fn a_cluster_whose_state_dir_is_deleted_under_it_stops() {
    let _serial = serial();
    let (state, dir, _user, pids) = reaped_cluster();
    // What a panicking test's temporary dir does while it still holds the cluster. etcd may write
    // a file between the listing and the removal of its directory: delete again, as a retrying
    // cleanup would.
    let mut deleted = std::fs::remove_dir_all(state.path());
    for _ in 0..20 {
        match &deleted {
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                std::thread::sleep(std::time::Duration::from_millis(100));
                deleted = std::fs::remove_dir_all(state.path());
            }
            _ => break,
        }
    }
    deleted.expect("delete the state");
    assert_all_end(&pids, &dir);
}

#[test]
fn provenance_follows_content_not_commits() {
    let _serial = serial();
    let env = Env::new();
    let platform = env.repo("examples/platform");
    let git = |args: &[&str]| common::git(platform.path(), &[], args);
    let annotation = |grant: &str, key: &str| env.grant(grant)["metadata"]["annotations"][key].as_str().map(String::from);
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "platform"]);
    let first = git(&["rev-parse", "HEAD"]);

    let applied = env.mcp("apply", platform.path(), &[]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert_eq!(annotation("refund-desk", "mcp-gitops.io/revision"), Some(first.clone()));
    assert_eq!(annotation("refund-desk", "mcp-gitops.io/source").as_deref(), Some("teams/payments/grants/refund-desk.yaml:3"));
    assert_eq!(annotation("refund-desk", "mcp-gitops.io/signed-by"), None, "no signer without signature checks");

    // A commit that touches other files writes nothing: content, not commits, moves provenance.
    std::fs::write(platform.path().join("NOTES.md"), "notes\n").expect("write");
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "notes only"]);
    let writes = env.kubectl.write_requests();
    let again = env.mcp("apply", platform.path(), &[]);
    assert!(again.stdout.contains("22 unchanged (no request)"), "{}", again.stdout);
    assert_eq!(env.kubectl.write_requests(), writes, "no object rewritten for a commit elsewhere");
    assert_eq!(annotation("refund-desk", "mcp-gitops.io/revision"), Some(first.clone()));

    // The grant whose content changes takes the new revision; the others keep theirs.
    let file = platform.path().join("teams/payments/grants/refund-desk.yaml");
    let text = std::fs::read_to_string(&file).expect("read").replace("maxTrust: medium", "maxTrust: high");
    std::fs::write(&file, text).expect("write");
    git(&["commit", "-q", "-am", "refund desk to high"]);
    let third = git(&["rev-parse", "HEAD"]);
    // The plan says where the live content came from, and what the new content will say.
    let plan = env.mcp("plan", platform.path(), &["--format", "json"]);
    let update = json(&plan.stdout)["changes"].as_array().and_then(|c| c.iter().find(|c| c["name"] == "refund-desk").cloned());
    let update = update.expect("refund-desk is planned");
    assert_eq!(update["last_changed"]["mcp-gitops.io/revision"], first.as_str());
    assert_eq!(update["object"]["metadata"]["annotations"]["mcp-gitops.io/revision"], third.as_str());
    let text = env.mcp("plan", platform.path(), &[]).stdout;
    assert!(text.contains(&format!("last changed: at {} in teams/payments/grants/refund-desk.yaml:3", &first[..7])), "{text}");
    let changed = env.mcp("apply", platform.path(), &[]);
    assert!(changed.stdout.contains("1 updated"), "{}", changed.stdout);
    assert_eq!(annotation("refund-desk", "mcp-gitops.io/revision"), Some(third.clone()));
    assert_eq!(annotation("finance-ops-oncall", "mcp-gitops.io/revision"), Some(first));

    // Uncommitted content says so.
    let text = std::fs::read_to_string(&file).expect("read").replace("maxTrust: high", "maxTrust: low");
    std::fs::write(&file, text).expect("write");
    assert_eq!(env.mcp("apply", platform.path(), &[]).code, 0);
    assert_eq!(annotation("refund-desk", "mcp-gitops.io/revision"), Some(format!("{third}-dirty")));
}
