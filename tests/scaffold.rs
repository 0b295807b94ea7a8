//! A repository from nothing: `init` writes a layout that validates and never overwrites a file;
//! `import` turns what a real cluster holds (made by someone else, with kubectl) into files that
//! validate, whose plan against that cluster changes no access and only adopts, and after one
//! `apply --adopt` plans nothing.

mod common;

use common::cluster::{Teams, repo_copy};
use common::{json, run};

#[test]
fn init_starts_a_repository_that_validates_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("platform");
    let repo_arg = repo.to_str().unwrap();
    let first = run(&["init", repo_arg, "--namespace", "mcp-team-a", "--ci", "gitlab"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    for file in ["mcp-gitops.yaml", ".mcp-gitops/allowed_signers", "README.md", ".gitlab-ci.yml"] {
        assert!(first.stdout.contains(file), "{file} not listed:\n{}", first.stdout);
        assert!(repo.join(file).is_file(), "{file} not written");
    }
    assert!(std::fs::read_to_string(repo.join("mcp-gitops.yaml")).unwrap().contains("\nallowedNamespaces: [mcp-team-a]\n"));
    let validate = run(&["validate", repo_arg]);
    assert_eq!(validate.code, 0, "{}{}", validate.stdout, validate.stderr);
    assert!(validate.stdout.contains("0 errors"), "{}", validate.stdout);

    // A second init touches nothing, says which files are in the way, and fails.
    std::fs::write(repo.join("README.md"), "our own README\n").unwrap();
    let again = run(&["init", repo_arg]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("README.md") && again.stderr.contains("nothing was written"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(repo.join("README.md")).unwrap(), "our own README\n");
    assert!(!repo.join(".github").exists(), "the GitHub recipe was written although files were in the way");
}

#[test]
fn import_writes_what_the_cluster_holds_and_the_plan_only_adopts_it() {
    let Teams { kubeconfig, kubectl, payments, support, inventory } = Teams::new("");
    let kube = kubeconfig.to_str().unwrap();
    let example = repo_copy("examples/platform", &[("mcp-team-payments", &payments), ("mcp-team-support", &support)]);

    // The cluster as another tool left it: the example's objects created with kubectl, one
    // server with a label and a field that .mcp/servers.yaml cannot say.
    let empty = tempfile::tempdir().unwrap();
    let plan = run(&["plan", example.path().to_str().unwrap(), "--base", empty.path().to_str().unwrap(), "--format", "json"]);
    let mut objects: Vec<serde_json::Value> =
        json(&plan.stdout)["changes"].as_array().unwrap().iter().map(|c| c["object"].clone()).collect();
    let ledger = objects.iter_mut().find(|o| o["metadata"]["name"] == "ledger-mcp").expect("the example has ledger-mcp");
    ledger["metadata"]["labels"]["cost-center"] = "finance".into();
    ledger["spec"]["ingressClass"] = "traefik".into();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let created = kubectl.apply_stdin(&["create"], &list.to_string());
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));

    let out = tempfile::tempdir().unwrap();
    // The repository's own configuration (as `init` would leave it, filled in): written first,
    // so import adds to it and writes nothing over it.
    std::fs::copy(example.path().join("mcp-gitops.yaml"), out.path().join("mcp-gitops.yaml")).unwrap();
    let out_arg = out.path().to_str().unwrap();
    let imported = run(&["import", "--kubeconfig", kube, "--namespace", &payments, "--namespace", &support, "--out", out_arg]);
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    assert_eq!(
        imported.stderr.lines().filter(|l| l.starts_with("note: ")).collect::<Vec<_>>(),
        [
            format!("note: {payments}/ledger-mcp: label cost-center left out: .mcp/servers.yaml has no place for it"),
            format!("note: {payments}/ledger-mcp: spec.ingressClass left out: .mcp/servers.yaml has no key for it"),
        ]
    );
    let total = objects.len();
    let servers = objects.iter().filter(|o| o["kind"] == "MCPServer").count();
    assert!(imported.stdout.contains(&format!("Imported {servers} server(s)")), "{}", imported.stdout);
    assert!(out.path().join(&payments).join(".mcp/servers.yaml").is_file());
    assert!(out.path().join(&support).join("grants/support-leads.yaml").is_file());

    let validate = run(&["validate", out_arg]);
    assert_eq!(validate.code, 0, "{}{}", validate.stdout, validate.stderr);

    let plan_args = ["plan", out_arg, "--kubeconfig", kube, "--inventory-namespace", &inventory, "--format", "json"];
    let before = json(&run(&plan_args).stdout);
    let changes = before["changes"].as_array().unwrap();
    assert_eq!(changes.len(), total);
    assert!(changes.iter().all(|c| c["action"] == "update" && c["adopt"] == true), "not only adoptions: {before:#}");
    assert_eq!(before["access_changes"].as_array().map_or(0, Vec::len), 0, "{:#}", before["access_changes"]);

    let apply = run(&["apply", out_arg, "--kubeconfig", kube, "--inventory-namespace", &inventory, "--adopt"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    let after = run(&["plan", out_arg, "--kubeconfig", kube, "--inventory-namespace", &inventory, "--detailed-exitcode"]);
    assert_eq!(after.code, 0, "the imported repository still plans changes after adopting:\n{}", after.stdout);
    // What the files could not say was left as it was.
    let ledger = kubectl.json(&["get", "mcpservers", "ledger-mcp", "-n", &payments]);
    assert_eq!(ledger["spec"]["ingressClass"], "traefik");
    assert_eq!(ledger["metadata"]["labels"]["cost-center"], "finance");

    // A second import writes nothing over the files of the first.
    let again = run(&["import", "--kubeconfig", kube, "--namespace", &payments, "--out", out_arg]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already exist"), "{}", again.stderr);
}
