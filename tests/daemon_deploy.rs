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

/// `path` as seen from the directory `from`: kustomize takes no absolute paths.
fn relative(from: &std::path::Path, path: &std::path::Path) -> String {
    let (from, path) = (from.canonicalize().expect("from"), path.canonicalize().expect("path"));
    let common = from.components().zip(path.components()).take_while(|(a, b)| a == b).count();
    let up = from.components().skip(common).map(|_| "..".to_string());
    let down = path.components().skip(common).map(|c| c.as_os_str().to_string_lossy().into_owned());
    up.chain(down).collect::<Vec<_>>().join("/")
}

/// An overlay of deploy/ as a test builds it: `path` with `components`, the `flags` it adds to the
/// daemon, the Secrets and ConfigMaps it mounts (name, keys), and how many objects it makes.
struct Overlay {
    path: &'static str,
    components: &'static [&'static str],
    flags: &'static [&'static str],
    sources: &'static [(&'static str, &'static [&'static str])],
    objects: usize,
}

/// What a user applies: `kubectl apply -k` of an overlay of deploy/ (the base alone, one
/// component, or examples/deploy with all of them), moved into a namespace of its own. The API
/// server accepts every object (server-side dry run), every flag the overlay adds is one the
/// daemon has, and every file it names is the key of a mounted Secret or ConfigMap.
#[test]
fn every_overlay_of_deploy_is_accepted_by_the_api_server_and_mounts_the_files_its_flags_name() {
    let admin = Kubectl { kubeconfig: kubeconfig() };
    let help = common::run(&["daemon", "--help"]).stdout;
    let cases = [
        Overlay { path: "deploy", components: &[], flags: &[], sources: &[], objects: 8 },
        Overlay {
            path: "deploy",
            components: &["git-https"],
            flags: &["--git-token-file"],
            sources: &[("mcp-gitops-git", &["token"])],
            objects: 8,
        },
        Overlay {
            path: "deploy",
            components: &["git-ssh"],
            flags: &["--git-ssh-key-file", "--git-known-hosts-file"],
            sources: &[("mcp-gitops-git", &["identity", "known_hosts"])],
            objects: 8,
        },
        Overlay {
            path: "deploy",
            components: &["webhook"],
            flags: &["--webhook-secret-file"],
            sources: &[("mcp-gitops-webhook", &["secret"])],
            objects: 8,
        },
        Overlay {
            path: "deploy",
            components: &["verify-signatures"],
            flags: &["--verify-signatures", "--allowed-signers"],
            sources: &[("mcp-gitops-trust", &["allowed_signers"])],
            objects: 8,
        },
        Overlay {
            path: "examples/deploy",
            components: &[],
            flags: &["--git-token-file", "--webhook-secret-file", "--verify-signatures", "--allowed-signers"],
            sources: &[("mcp-gitops-git", &["token"]), ("mcp-gitops-webhook", &["secret"]), ("mcp-gitops-trust", &["allowed_signers"])],
            objects: 9,
        },
    ];
    for Overlay { path: overlay, components, flags, sources, objects } in cases {
        let what = format!("{overlay} with {components:?}");
        let namespace = unique("kustomize");
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("dir");
        let components: Vec<String> =
            components.iter().map(|c| relative(dir.path(), &common::root().join("deploy/components").join(c))).collect();
        let kustomization = format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {namespace}\nresources: [{}]\ncomponents: [{}]\n",
            relative(dir.path(), &common::root().join(overlay)),
            components.join(", ")
        );
        std::fs::write(dir.path().join("kustomization.yaml"), kustomization).expect("write");
        let built = admin.run(&["kustomize", &dir.path().to_string_lossy()]);
        assert!(built.status.success(), "kubectl kustomize of {what}: {}", String::from_utf8_lossy(&built.stderr));
        admin.create_namespace(&namespace);
        let out = admin.apply_stdin(&["apply", "--dry-run=server", "-o", "json"], &String::from_utf8_lossy(&built.stdout));
        assert!(out.status.success(), "the API server refuses {what}: {}", String::from_utf8_lossy(&out.stderr));
        let applied = common::json(&String::from_utf8_lossy(&out.stdout));
        let items = applied["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), objects, "{what}: {applied}");
        assert!(items.iter().all(|i| i["metadata"]["namespace"].as_str().is_none_or(|n| n == namespace)), "{what}: {applied}");

        let deployment = items.iter().find(|i| i["kind"] == "Deployment").expect("a Deployment");
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let args: Vec<&str> = container["args"].as_array().expect("args").iter().filter_map(|a| a.as_str()).collect();
        for flag in flags {
            assert!(args.iter().any(|a| a.split('=').next() == Some(flag)), "{what}: no {flag} in {args:?}");
        }
        for arg in args.iter().filter(|a| a.starts_with("--")) {
            let flag = arg.split('=').next().unwrap_or_default();
            assert!(help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")), "{what}: `mcp-gitops daemon` has no {flag}");
        }
        // Every file under /etc/mcp-gitops a flag names is a key of the volume mounted above it.
        let mut mounted = Vec::new();
        for path in args.iter().filter_map(|a| a.split_once('=')).map(|(_, v)| v).filter(|v| v.starts_with("/etc/mcp-gitops/")) {
            let (dir, key) = path.rsplit_once('/').expect("a file in a directory");
            let mount = container["volumeMounts"].as_array().into_iter().flatten().find(|m| m["mountPath"] == dir);
            let mount = mount.unwrap_or_else(|| panic!("{what}: nothing is mounted at {dir} for {path}"));
            assert_eq!(mount["readOnly"], true, "{what}: {mount}");
            let volume = pod["volumes"].as_array().into_iter().flatten().find(|v| v["name"] == mount["name"]).expect("the mount's volume");
            let source = volume["secret"]["secretName"].as_str().or(volume["configMap"]["name"].as_str()).expect("a Secret or ConfigMap");
            mounted.push((source.to_string(), key.to_string()));
        }
        let mut expected = Vec::new();
        for (source, keys) in sources {
            for key in *keys {
                let name = mounted.iter().map(|(s, _)| s).find(|s| s.starts_with(source)).cloned().unwrap_or_default();
                assert!(mounted.contains(&(name.clone(), key.to_string())), "{what}: {key} of {source} is not mounted: {mounted:?}");
                expected.push((name, key.to_string()));
            }
        }
        mounted.sort();
        expected.sort();
        assert_eq!(mounted, expected, "{what}: the files its flags name");
        // A ConfigMap the overlay makes holds the keys mounted from it.
        for item in items.iter().filter(|i| i["kind"] == "ConfigMap") {
            let name = item["metadata"]["name"].as_str().unwrap_or_default();
            for (_, key) in mounted.iter().filter(|(s, _)| s == name) {
                assert!(item["data"][key.as_str()].as_str().is_some_and(|d| !d.is_empty()), "{what}: ConfigMap {name} has no {key}");
            }
        }
    }
}
