//! `apply` on the real API server where docs/apply.md promises what only size and timing show:
//! an inventory over 256 KiB is stored gzip-compressed in `binaryData` and read back by the next
//! prune; a delete is sent with the `resourceVersion` seen when planning, so that an object
//! someone changed between the plan and the apply is not deleted, and the API server's refusal
//! is reported.

mod common;

use common::cluster::{Kubectl, kubeconfig, unique};
use common::run;
use mcp_gitops::apply::{Options, Status};
use mcp_gitops::model::Kind;
use mcp_gitops::plan::Action;
use std::path::Path;

/// A repository of one server and a grant named `name` for each of `names` in `namespace`.
fn repository(dir: &Path, namespace: &str, names: &[String]) {
    std::fs::create_dir_all(dir.join(".mcp")).expect("mkdir");
    let server = format!(
        "servers:\n  - name: bulk\n    namespace: {namespace}\n    gateway: {{enabled: true}}\n    tools: [{{name: read_t, sideEffect: read}}]\n"
    );
    std::fs::write(dir.join(".mcp/servers.yaml"), server).expect("write");
    let grants: String = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            format!("---\napiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  serverRef: {{name: bulk}}\n  subject: {{agentID: a{i}}}\n  maxTrust: low\n  allowedSideEffects: [read]\n")
        })
        .collect();
    std::fs::write(dir.join("grants.yaml"), grants).expect("write");
}

fn apply(dir: &Path, inventory: &str, extra: &[&str]) -> common::Run {
    let (kubeconfig, dir) = (kubeconfig().to_string_lossy().into_owned(), dir.to_string_lossy().into_owned());
    let args = [&["apply", &dir, "--kubeconfig", &kubeconfig, "--inventory-namespace", inventory][..], extra].concat();
    run(&args)
}

fn grant_names(kubectl: &Kubectl, namespace: &str) -> Vec<String> {
    let listed = kubectl.json(&["get", "mcpaccessgrants", "-n", namespace]);
    let mut names: Vec<String> =
        listed["items"].as_array().into_iter().flatten().filter_map(|g| g["metadata"]["name"].as_str().map(String::from)).collect();
    names.sort();
    names
}

/// The inventory's object list as an operator reads it with the documented command
/// (`kubectl … -o jsonpath='{.binaryData.objects\.gz}' | base64 -d | gunzip`).
fn stored_objects(kubectl: &Kubectl, inventory: &str) -> Vec<String> {
    let configmap = kubectl.json(&["get", "configmap", "mcp-gitops-inventory", "-n", inventory]);
    assert!(configmap["data"]["objects"].is_null(), "stored plain as well: {}", configmap["data"]);
    let script = format!(
        "kubectl --kubeconfig '{}' get cm mcp-gitops-inventory -n '{inventory}' -o jsonpath='{{.binaryData.objects\\.gz}}' | base64 -d | gunzip",
        kubectl.kubeconfig.display()
    );
    let out = std::process::Command::new("bash").args(["-o", "pipefail", "-c", &script]).output().expect("bash runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

#[test]
fn an_inventory_over_256_kib_is_stored_compressed_and_read_back_by_the_next_prune() {
    let kubectl = Kubectl { kubeconfig: kubeconfig() };
    let (namespace, inventory) = (unique("big"), unique("biginv"));
    kubectl.create_namespace(&namespace);
    // Names of 240 characters: 1,100 lines of `MCPAccessGrant/ns/name` are about 290 KB.
    let names: Vec<String> = (0..1100).map(|i| format!("g{i:05}-{}", "long-grant-name-".repeat(16))[..240].to_string()).collect();
    let repo = tempfile::tempdir().expect("repo");
    repository(repo.path(), &namespace, &names);

    let started = std::time::Instant::now();
    let first = apply(repo.path(), &inventory, &["--concurrency", "16"]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    eprintln!("first apply of 1,101 objects: {:?}", started.elapsed());
    let listed = stored_objects(&kubectl, &inventory);
    assert_eq!(listed.len(), 1101, "1,100 grants and their server");
    let bytes: usize = listed.iter().map(|l| l.len() + 1).sum();
    assert!(bytes > mcp_gitops::model::live::INVENTORY_PLAIN_MAX, "{bytes} bytes: not over the limit, the test means nothing");
    assert!(listed.contains(&format!("MCPAccessGrant/{namespace}/{}", names[1099])), "{:?}", &listed[..3]);

    // Five grants leave the repository: the prune reads the compressed list and deletes them.
    let kept: Vec<String> = names[5..].to_vec();
    repository(repo.path(), &namespace, &kept);
    let second = apply(repo.path(), &inventory, &["--prune", "--concurrency", "16"]);
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    let mut expected = kept.clone();
    expected.sort();
    assert_eq!(grant_names(&kubectl, &namespace), expected);
    assert_eq!(stored_objects(&kubectl, &inventory).len(), 1096);
}

#[test]
fn a_delete_is_sent_with_the_planned_resource_version_and_a_changed_object_is_not_deleted() {
    let kubectl = Kubectl { kubeconfig: kubeconfig() };
    let (namespace, inventory) = (unique("rv"), unique("rvinv"));
    kubectl.create_namespace(&namespace);
    let repo = tempfile::tempdir().expect("repo");
    let (kept, gone) = ("kept".to_string(), "edited-then-pruned".to_string());
    repository(repo.path(), &namespace, &[kept.clone(), gone.clone()]);
    let first = apply(repo.path(), &inventory, &[]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    repository(repo.path(), &namespace, std::slice::from_ref(&kept));

    // The plan, then an edit by someone else, then the apply of that plan: what `apply --plan`
    // does when the edit lands after its own check, which only a precondition can catch.
    let target =
        mcp_gitops::pipeline::plan::Target { kubeconfig: Some(kubeconfig()), context: None, inventory_namespace: inventory.clone() };
    let now = jiff::Timestamp::now();
    let allowed = mcp_gitops::pipeline::desired::Allowed::new(&[]);
    let cache = mcp_gitops::cache::Cache::off();
    let desired = mcp_gitops::pipeline::desired::of_path(repo.path(), None, &allowed, now, None, &cache).expect("loads");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let report = runtime.block_on(async {
        let (cluster, applyset, live) = mcp_gitops::pipeline::plan::live(&target).await.expect("reads the cluster");
        let plan = mcp_gitops::plan::live::plan(&live, &desired, &applyset, None, now);
        let delete = plan.changes.iter().find(|c| c.action == Action::Delete).expect("a delete");
        assert_eq!((delete.id().kind, delete.id().name.as_str()), (Kind::Grant, gone.as_str()));
        let planned = kubectl.json(&["get", "mcpaccessgrants", &gone, "-n", &namespace])["metadata"]["resourceVersion"].clone();
        assert_eq!(delete.expected_resource_version.as_deref(), planned.as_str());
        kubectl.ok(&["label", "mcpaccessgrants", &gone, "-n", &namespace, "reviewed-by=someone-else"]);
        let options = Options {
            dry_run: false,
            force_conflicts: false,
            prune: true,
            max_deletes: 10,
            adopt: false,
            concurrency: 4,
            held_back: false,
        };
        mcp_gitops::pipeline::apply::apply(&cluster, &plan, &applyset, live.inventory.as_ref(), &options, || {}, |_| {})
            .await
            .expect("the guards pass")
    });
    let outcome = report.outcomes.iter().find(|o| o.action == Action::Delete).expect("the delete's outcome");
    assert_eq!(outcome.status, Status::Failed("it changed since the plan was made; not deleted".into()));
    assert!(!report.succeeded());
    let still = kubectl.json(&["get", "mcpaccessgrants", &gone, "-n", &namespace]);
    assert_eq!(still["metadata"]["labels"]["reviewed-by"], "someone-else", "the edited object is not deleted");

    // Planned again, it goes.
    let again = apply(repo.path(), &inventory, &["--prune"]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(grant_names(&kubectl, &namespace), [kept]);
}
