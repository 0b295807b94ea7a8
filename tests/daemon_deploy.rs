//! `deploy/` on the real test cluster: the manifests are accepted by the API server (server-side
//! dry run), and the daemon running with the ServiceAccount token of `deploy/rbac.yaml` (not the
//! admin's) applies the example platform, elects itself leader, writes its inventory, status
//! annotations and Events — proving the permissions are enough — while Secrets, workloads,
//! namespaces and other ConfigMaps stay out of its reach — proving they are no wider.

mod common;

use common::cluster::{Kubectl, kubeconfig, repo_copy, unique};
use common::daemon::{Daemon, Upstream};
use std::time::Duration;

/// A deploy manifest moved into namespace `namespace` (cluster-wide names too), keeping the
/// fixed object names the daemon uses.
fn manifest(file: &str, namespace: &str) -> String {
    let text = std::fs::read_to_string(common::root().join("deploy").join(file)).expect("deploy manifest");
    text.replace("mcp-gitops-inventory", "\u{0}inventory")
        .replace("mcp-gitops-leader", "\u{0}leader")
        .replace("mcp-gitops", namespace)
        .replace("\u{0}inventory", "mcp-gitops-inventory")
        .replace("\u{0}leader", "mcp-gitops-leader")
}

#[test]
fn the_daemon_runs_with_exactly_the_permissions_of_deploy_rbac() {
    let admin = Kubectl { kubeconfig: kubeconfig() };
    let namespace = unique("gitops");
    let (payments, support) = (unique("deppay"), unique("depsup"));
    admin.create_namespace(&payments);
    admin.create_namespace(&support);
    for file in ["namespace.yaml", "rbac.yaml"] {
        let out = admin.apply_stdin(&["apply"], &manifest(file, &namespace));
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = admin.apply_stdin(&["apply", "--dry-run=server"], &manifest("daemon.yaml", &namespace));
    assert!(out.status.success(), "deploy/daemon.yaml is refused by the API server: {}", String::from_utf8_lossy(&out.stderr));

    // A kubeconfig with the ServiceAccount's own token.
    let token = admin.token(&namespace, &namespace);
    let admin_token = std::fs::read_to_string(admin.kubeconfig.with_file_name("admin.token")).expect("admin token");
    let config = std::fs::read_to_string(&admin.kubeconfig).expect("kubeconfig");
    assert!(config.contains(admin_token.trim()));
    let dir = tempfile::tempdir().expect("dir");
    let service_account = dir.path().join("sa.kubeconfig");
    std::fs::write(&service_account, config.replace(admin_token.trim(), token.trim())).expect("write");
    let sa = Kubectl { kubeconfig: service_account.clone() };

    let can = |args: &[&str]| sa.run(&[&["auth", "can-i"], args].concat()).status.success();
    assert!(can(&["list", "mcpaccessgrants.mcpruntime.org", "--all-namespaces"]));
    assert!(can(&["delete", "mcpagentsessions.mcpruntime.org", "-n", &payments]));
    for denied in [
        vec!["get", "secrets", "-n", &namespace],
        vec!["list", "secrets", "--all-namespaces"],
        vec!["create", "deployments.apps", "-n", &payments],
        vec!["get", "namespaces"],
        vec!["create", "namespaces"],
        vec!["get", "configmaps/kube-root-ca.crt", "-n", &namespace],
        vec!["patch", "configmaps", "-n", &payments],
        vec!["create", "leases.coordination.k8s.io", "-n", &payments],
        vec!["create", "pods", "-n", &namespace],
    ] {
        assert!(!can(&denied), "the daemon's ServiceAccount may {denied:?}: wider than it needs");
    }

    let upstream = Upstream::new();
    let renames = [("mcp-team-payments", payments.as_str()), ("mcp-team-support", support.as_str())];
    let first = upstream.commit(repo_copy("examples/platform", &renames).path(), "platform");
    let daemon = Daemon::spawn(&upstream.bare_path(), &service_account, &namespace, &["--leader-elect", "--lease-duration", "5s"]);
    daemon.wait_until(Duration::from_secs(60), |d| !d.status()["last_result"].as_str().unwrap_or_default().is_empty());
    let status = daemon.status();
    assert_eq!(
        (status["revision"].as_str(), status["role"].as_str(), status["last_result"].as_str()),
        (Some(first.as_str()), Some("leader"), Some("applied")),
        "{status}"
    );
    assert_eq!(status["counts"]["failed"], 0, "{status}");
    let grants = admin.json(&["get", "mcpaccessgrants", "-n", &payments]);
    let grants = grants["items"].as_array().cloned().unwrap_or_default();
    assert!(!grants.is_empty() && grants.iter().all(|g| g["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "mcp-gitops"));
    let inventory = admin.json(&["get", "configmap", "mcp-gitops-inventory", "-n", &namespace]);
    assert_eq!(inventory["metadata"]["annotations"]["mcp-gitops.mcpruntime.org/last-result"], "applied");
    daemon.wait_until(Duration::from_secs(10), |_| {
        admin.json(&["get", "events.events.k8s.io", "-n", &namespace])["items"].as_array().is_some_and(|e| !e.is_empty())
    });
    let logs = daemon.logs();
    assert!(!logs.contains("forbidden") && !logs.contains("permission denied"), "{logs}");
}
