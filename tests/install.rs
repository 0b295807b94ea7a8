//! `mcp-gitops install` as a new user runs it: `--export` prints manifests the real test API
//! server accepts, holding the credentials only base64-encoded in Secrets, never on a terminal
//! or stderr, and the same objects as `kubectl kustomize` of deploy/ with its components; without `--export` it applies
//! them (server-side apply), a second run changes nothing, and a run without a flag prunes the
//! Secret an earlier run wrote for it, never a user's; mistakes stop it before anything is written.

mod common;

use base64::Engine;
use common::cluster::{Kubectl, kubeconfig, unique};
use common::run;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Credential and trust files with values no other test uses, so that finding one in an output
/// is a leak.
struct Files {
    _dir: tempfile::TempDir,
    token: (PathBuf, String),
    webhook: (PathBuf, String),
    ssh_key: (PathBuf, String),
    known_hosts: (PathBuf, String),
    signers: (PathBuf, String),
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        (path, text)
    };
    let marker = unique("leak");
    Files {
        token: write("token", format!("glpat-{marker}-token\n")),
        webhook: write("webhook", format!("{marker}-webhook")),
        ssh_key: write(
            "id_ed25519",
            format!("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA{marker}\n-----END OPENSSH PRIVATE KEY-----\n"),
        ),
        known_hosts: write("known_hosts", "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKnownHostKey\n".into()),
        signers: write("allowed_signers", "admin@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAllowedSigner\n".into()),
        _dir: dir,
    }
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .unwrap_or_else(|e| panic!("not YAML ({e}):\n{yaml}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name).unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn decoded(secret: &Value, key: &str) -> String {
    let data = secret["data"][key].as_str().unwrap_or_else(|| panic!("no {key} in {secret}"));
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(data).unwrap()).unwrap()
}

fn container_args(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().into()).collect()
}

#[test]
fn export_prints_what_the_api_server_accepts_with_secrets_only_base64() {
    let kubectl = Kubectl { kubeconfig: kubeconfig() };
    let namespace = unique("inst-export");
    let f = files();
    let args = [
        "install",
        "--repo",
        "ssh://git@git.example.com/platform/access.git",
        "--branch",
        "release",
        "--path",
        "platform",
        "--namespace",
        &namespace,
        "--image",
        "registry.example.com/mcp-gitops:9.9.9",
        "--git-ssh-key-file",
        arg(&f.ssh_key.0),
        "--git-known-hosts-file",
        arg(&f.known_hosts.0),
        "--webhook-secret-file",
        arg(&f.webhook.0),
        "--verify-signatures",
        "--allowed-signers",
        arg(&f.signers.0),
        "--export",
    ];
    let export = run(&args);
    assert_eq!(export.code, 0, "{}", export.stderr);
    for secret in [&f.ssh_key.1, &f.webhook.1] {
        let marker = secret.lines().find(|l| l.contains("leak")).unwrap_or(secret);
        assert!(!export.stdout.contains(marker) && !export.stderr.contains(marker), "a secret value is printed in clear");
    }

    let objects = documents(&export.stdout);
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Secret",
            "Secret",
            "ConfigMap",
            "Deployment",
            "Service"
        ]
    );
    let git = find(&objects, "Secret", "mcp-gitops-git");
    assert_eq!(
        (decoded(git, "identity"), decoded(git, "known_hosts")),
        (f.ssh_key.1.clone(), f.known_hosts.1.clone()),
        "the Secret does not hold the files"
    );
    assert_eq!(decoded(find(&objects, "Secret", "mcp-gitops-webhook"), "secret"), f.webhook.1);
    assert_eq!(find(&objects, "ConfigMap", "mcp-gitops-trust")["data"]["allowed_signers"], f.signers.1.as_str());
    let deployment = find(&objects, "Deployment", "mcp-gitops");
    assert_eq!(deployment["metadata"]["namespace"], namespace.as_str());
    assert_eq!(deployment["spec"]["template"]["spec"]["containers"][0]["image"], "registry.example.com/mcp-gitops:9.9.9");
    let daemon_args = container_args(deployment);
    for expected in [
        "--repo=ssh://git@git.example.com/platform/access.git".to_string(),
        "--branch=release".into(),
        "--path=platform".into(),
        format!("--inventory-namespace={namespace}"),
        "--git-ssh-key-file=/etc/mcp-gitops/git/identity".into(),
        "--git-known-hosts-file=/etc/mcp-gitops/git/known_hosts".into(),
        "--webhook-secret-file=/etc/mcp-gitops/webhook/secret".into(),
        "--verify-signatures".into(),
        "--allowed-signers=/etc/mcp-gitops/trust/allowed_signers".into(),
    ] {
        assert!(daemon_args.contains(&expected), "{expected} missing from {daemon_args:?}");
    }
    assert!(!daemon_args.iter().any(|a| a.starts_with("--git-token-file")), "a token file that is not there: {daemon_args:?}");

    // The real API server takes every object (server-side dry run; the namespace is created for
    // real first, as a dry run of it is not one that namespaced objects can be put in).
    kubectl.create_namespace(&namespace);
    let dry_run = kubectl.apply_stdin(&["apply", "--dry-run=server"], &export.stdout);
    let said = String::from_utf8_lossy(&dry_run.stdout);
    assert!(dry_run.status.success(), "the API server refuses the export: {}", String::from_utf8_lossy(&dry_run.stderr));
    assert_eq!(said.lines().filter(|l| l.ends_with("(server dry run)")).count(), objects.len(), "{said}");

    // On a terminal (a pseudo-terminal from script(1)), the same command refuses and prints no
    // secret: the values would stay on the screen.
    let binary = assert_cmd::cargo::cargo_bin("mcp-gitops");
    let line =
        std::iter::once(binary.to_str().unwrap()).chain(args.iter().copied()).map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ");
    let terminal = std::process::Command::new("script").args(["-qefc", &line, "/dev/null"]).output().expect("script runs");
    let screen = String::from_utf8_lossy(&terminal.stdout);
    assert_eq!(terminal.status.code(), Some(64), "{screen}");
    assert!(screen.contains("mcp-gitops-git") && screen.contains("--export > mcp-gitops.yaml"), "{screen}");
    assert!(!screen.contains("data:") && !screen.contains(git["data"]["identity"].as_str().unwrap()), "secrets on a terminal: {screen}");
}

#[test]
fn export_has_the_objects_of_kubectl_kustomize_of_deploy_and_its_components() {
    let kubectl = Kubectl { kubeconfig: kubeconfig() };
    let f = files();
    // deploy/daemon.yaml's own source, with the credentials, the webhook and the trust files of
    // the components users add by hand.
    let export = run(&[
        "install",
        "--repo",
        "https://git.example.com/platform/access.git",
        "--git-token-file",
        arg(&f.token.0),
        "--webhook-secret-file",
        arg(&f.webhook.0),
        "--verify-signatures",
        "--allowed-signers",
        arg(&f.signers.0),
        "--export",
    ]);
    assert_eq!(export.code, 0, "{}", export.stderr);
    // The overlay a user writes (examples/deploy), without the Secrets and ConfigMap they create.
    // Beside deploy/: kustomize takes no absolute path to a base.
    let overlay = tempfile::Builder::new().prefix(".install-overlay-").tempdir_in(common::root()).unwrap();
    let deploy = "../deploy";
    std::fs::write(
        overlay.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [{deploy}]\ncomponents: [{deploy}/components/git-https, {deploy}/components/webhook, {deploy}/components/verify-signatures]\n"
        ),
    )
    .unwrap();
    let kustomize = kubectl.ok(&["kustomize", overlay.path().to_str().unwrap()]);
    let key = |o: &Value| format!("{}/{}", o["kind"], o["metadata"]["name"]);
    let mounted = |o: &Value| o["kind"] == "Secret" || o["kind"] == "ConfigMap";
    let mut installed: Vec<Value> = documents(&export.stdout).into_iter().filter(|o| !mounted(o)).collect();
    let mut base = documents(&kustomize);
    installed.sort_by_key(key);
    base.sort_by_key(key);
    assert_eq!(installed, base, "install --export and deploy/ with its components have drifted apart");
}

#[test]
fn install_applies_and_a_second_run_changes_nothing() {
    let kubeconfig = kubeconfig();
    let kubectl = Kubectl { kubeconfig: kubeconfig.clone() };
    let namespace = unique("inst-apply");
    let f = files();
    let install = |branch: &str| {
        run(&[
            "install",
            "--kubeconfig",
            arg(&kubeconfig),
            "--namespace",
            &namespace,
            "--repo",
            "https://git.example.com/platform/access.git",
            "--branch",
            branch,
            "--path",
            "platform",
            "--git-token-file",
            arg(&f.token.0),
            "--webhook-secret-file",
            arg(&f.webhook.0),
        ])
    };
    let started = std::time::Instant::now();
    let first = install("main");
    let first_took = started.elapsed();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let cluster_name = format!("mcp-gitops-{namespace}");
    let expected = [
        format!("namespace/{namespace}"),
        "serviceaccount/mcp-gitops".into(),
        format!("clusterrole.rbac.authorization.k8s.io/{cluster_name}"),
        format!("clusterrolebinding.rbac.authorization.k8s.io/{cluster_name}"),
        "role.rbac.authorization.k8s.io/mcp-gitops".into(),
        "rolebinding.rbac.authorization.k8s.io/mcp-gitops".into(),
        "secret/mcp-gitops-webhook".into(),
        "secret/mcp-gitops-git".into(),
        "deployment.apps/mcp-gitops".into(),
        "service/mcp-gitops".into(),
    ];
    let said: Vec<&str> = first.stdout.lines().collect();
    assert_eq!(said[..expected.len()], expected.iter().map(|o| format!("{o} created")).collect::<Vec<_>>(), "{}", first.stdout);
    assert!(!first.stdout.contains(f.token.1.trim()) && !first.stderr.contains(f.token.1.trim()), "the token is printed");

    // --raw: kubectl 1.21 and later leave managedFields out of `get`.
    let deployment = common::json(&kubectl.ok(&["get", "--raw", &format!("/apis/apps/v1/namespaces/{namespace}/deployments/mcp-gitops")]));
    let args = container_args(&deployment);
    for expected in [
        "--repo=https://git.example.com/platform/access.git",
        "--branch=main",
        "--path=platform",
        "--git-token-file=/etc/mcp-gitops/git/token",
    ] {
        assert!(args.contains(&expected.to_string()), "{expected} missing from {args:?}");
    }
    let managers: Vec<&str> =
        deployment["metadata"]["managedFields"].as_array().unwrap().iter().filter_map(|m| m["manager"].as_str()).collect();
    assert_eq!(managers, ["mcp-gitops-install"]);
    let secret = kubectl.json(&["get", "secret", "mcp-gitops-git", "-n", &namespace]);
    assert_eq!(decoded(&secret, "token"), f.token.1);
    let binding = kubectl.json(&["get", "clusterrolebinding", &cluster_name]);
    assert_eq!(
        (binding["roleRef"]["name"].as_str(), binding["subjects"][0]["namespace"].as_str()),
        (Some(cluster_name.as_str()), Some(namespace.as_str()))
    );

    // The renamed ClusterRoleBinding gives the installed ServiceAccount the daemon's rights, no more.
    let service_account = format!("system:serviceaccount:{namespace}:mcp-gitops");
    let can = |args: &[&str]| kubectl.run(&[&["auth", "can-i", "--as", &service_account], args].concat()).status.success();
    assert!(can(&["list", "mcpaccessgrants.mcpruntime.org", "--all-namespaces"]), "the installed daemon may not list grants");
    assert!(can(&["patch", "leases.coordination.k8s.io/mcp-gitops-leader", "-n", &namespace]));
    assert!(!can(&["get", "secrets", "-n", &namespace]), "the installed daemon may read Secrets");

    let started = std::time::Instant::now();
    let again = install("main");
    eprintln!("install took {first_took:?} (10 objects created), a second run {:?} (all unchanged)", started.elapsed());
    assert_eq!(again.code, 0, "{}", again.stderr);
    let said: Vec<&str> = again.stdout.lines().collect();
    assert_eq!(said[..expected.len()], expected.iter().map(|o| format!("{o} unchanged")).collect::<Vec<_>>(), "{}", again.stdout);

    // Another branch changes the Deployment's arguments, and nothing else.
    let moved = install("release");
    assert_eq!(moved.code, 0, "{}", moved.stderr);
    let changed: Vec<&str> = moved.stdout.lines().filter(|l| l.ends_with(" configured")).collect();
    assert_eq!(changed, ["deployment.apps/mcp-gitops configured"], "{}", moved.stdout);
    assert!(container_args(&kubectl.json(&["get", "deployment", "mcp-gitops", "-n", &namespace])).contains(&"--branch=release".into()));
}

#[test]
fn an_install_without_a_flag_prunes_the_secret_an_earlier_one_wrote_and_keeps_a_user_s() {
    let kubeconfig = kubeconfig();
    let kubectl = Kubectl { kubeconfig: kubeconfig.clone() };
    let namespace = unique("inst-prune");
    let f = files();
    let install = |extra: &[&str]| {
        let args = [
            &[
                "install",
                "--kubeconfig",
                arg(&kubeconfig),
                "--namespace",
                &namespace,
                "--repo",
                "https://git.example.com/platform/access.git",
            ][..],
            extra,
        ]
        .concat();
        run(&args)
    };
    let exists = |kind: &str, name: &str| kubectl.run(&["get", kind, name, "-n", &namespace]).status.success();

    let first = install(&["--git-token-file", arg(&f.token.0), "--webhook-secret-file", arg(&f.webhook.0)]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(exists("secret", "mcp-gitops-webhook") && exists("secret", "mcp-gitops-git"), "{}", first.stdout);

    // The webhook is turned off: its Secret goes, the git credentials stay.
    let second = install(&["--git-token-file", arg(&f.token.0)]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let pruned: Vec<&str> = second.stdout.lines().filter(|l| l.ends_with(" pruned")).collect();
    assert_eq!(pruned, ["secret/mcp-gitops-webhook pruned"], "{}", second.stdout);
    assert!(!exists("secret", "mcp-gitops-webhook"), "the webhook Secret is still there");
    assert!(exists("secret", "mcp-gitops-git"), "the git Secret, still wanted, is gone");
    let daemon_args = container_args(&kubectl.json(&["get", "deployment", "mcp-gitops", "-n", &namespace]));
    assert!(!daemon_args.iter().any(|a| a.starts_with("--webhook-secret-file")), "{daemon_args:?}");

    // A Secret of the same name that a user made by hand (as deploy/components/webhook says to),
    // even with install's label copied onto it, is not install's: kept, with a warning.
    kubectl.ok(&["create", "secret", "generic", "mcp-gitops-webhook", "-n", &namespace, "--from-literal=secret=by-hand"]);
    kubectl.ok(&["label", "secret", "mcp-gitops-webhook", "-n", &namespace, "app.kubernetes.io/managed-by=mcp-gitops-install"]);
    let third = install(&["--git-token-file", arg(&f.token.0)]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(!third.stdout.contains("pruned"), "{}", third.stdout);
    assert!(
        third.stderr.contains("warning: secret/mcp-gitops-webhook kept: this install does not write it, and no install did"),
        "{}",
        third.stderr
    );
    let kept = kubectl.json(&["get", "secret", "mcp-gitops-webhook", "-n", &namespace]);
    assert_eq!(decoded(&kept, "secret"), "by-hand");

    // Without credentials: the git Secret install wrote goes; the user's webhook Secret stays.
    let public = install(&[]);
    assert_eq!(public.code, 0, "{}", public.stderr);
    let pruned: Vec<&str> = public.stdout.lines().filter(|l| l.ends_with(" pruned")).collect();
    assert_eq!(pruned, ["secret/mcp-gitops-git pruned"], "{}", public.stdout);
    assert!(!exists("secret", "mcp-gitops-git") && exists("secret", "mcp-gitops-webhook"));
}

#[test]
fn mistakes_stop_install_before_anything_is_written() {
    let kubeconfig = kubeconfig();
    let kubectl = Kubectl { kubeconfig: kubeconfig.clone() };
    let namespace = unique("inst-mistake");
    let f = files();
    let install = |extra: &[&str]| {
        let args = [&["install", "--kubeconfig", arg(&kubeconfig), "--namespace", &namespace][..], extra].concat();
        run(&args)
    };

    let missing = install(&["--repo", "https://git.example.com/p.git", "--git-token-file", "/nonexistent/token"]);
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(missing.stderr.contains("cannot read --git-token-file /nonexistent/token"), "{}", missing.stderr);

    let unsigned = install(&["--repo", "https://git.example.com/p.git", "--verify-signatures"]);
    assert_eq!(unsigned.code, 64, "{}", unsigned.stderr);
    assert!(unsigned.stderr.contains("--allowed-signers"), "{}", unsigned.stderr);

    let unchecked = install(&["--repo", "ssh://git@git.example.com/p.git", "--git-ssh-key-file", arg(&f.ssh_key.0)]);
    assert_eq!(unchecked.code, 64, "{}", unchecked.stderr);
    assert!(unchecked.stderr.contains("needs --git-known-hosts-file"), "{}", unchecked.stderr);

    let password = install(&["--repo", "https://admin:hunter2-secret@git.example.com/p.git"]);
    assert_eq!(password.code, 64, "{}", password.stderr);
    assert!(password.stderr.contains("--git-token-file") && !password.stderr.contains("hunter2"), "{}", password.stderr);

    let clear = install(&["--repo", "http://git.example.com/p.git", "--git-token-file", arg(&f.token.0)]);
    assert_eq!(clear.code, 64, "{}", clear.stderr);
    assert!(clear.stderr.contains("--allow-insecure-http"), "{}", clear.stderr);

    let empty = f.token.0.with_file_name("empty");
    std::fs::write(&empty, "\n").unwrap();
    let blank = install(&["--repo", "https://git.example.com/p.git", "--webhook-secret-file", arg(&empty)]);
    assert_eq!(blank.code, 1, "{}", blank.stderr);
    assert!(blank.stderr.contains("is empty"), "{}", blank.stderr);

    assert!(!kubectl.run(&["get", "namespace", &namespace]).status.success(), "a failed install created its namespace");
}
