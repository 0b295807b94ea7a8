//! Credentials never reach an output. A repository holds a `kind: Secret` with distinctive
//! `data` and `stringData` (one key duplicated, so that a YAML diagnostic lands on a secret
//! line), a grant with a token-shaped annotation and a session with `upstreamTokenSecretRef`;
//! the cluster holds the referenced Secret; the kubeconfig carries the cluster's bearer token;
//! the daemon has a webhook secret file, debug logs, and in a second run a git URL with
//! credentials. validate, plan (text, JSON, Markdown, `--out`), apply and the daemon (logs,
//! /status, /metrics) run on it, and none of their output holds any of those values.

mod common;

use common::cluster::{Kubectl, kubeconfig, repo_copy, unique};
use common::daemon::{Daemon, Upstream};
use common::{Run, run};
use std::path::Path;

use std::time::Duration;

const STRING_DATA: &str = "stringdata-value-7f3a91c2";
const DUPLICATED: &str = "duplicated-value-5b8e0d44";
const DATA_PLAIN: &str = "data-value-c0ffee-41d9";
const IN_CLUSTER: &str = "in-cluster-secret-e19a77";
/// A GitHub-token shape, put together at run time so that the source holds no token literal.
fn annotation_token() -> String {
    ["ghp", "Zq8WfT3kLm9XvB2nR7cY4pD6sH1jK0aEuGi5"].join("_")
}
const URL_TOKEN: &str = "urltoken-9a8b7c6d5e4f";

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Every value that must never be printed, with a name for the failure message.
fn needles(cluster_token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Secret stringData", STRING_DATA.to_string()),
        ("duplicated Secret key", DUPLICATED.to_string()),
        ("Secret data (decoded)", DATA_PLAIN.to_string()),
        ("Secret data (base64)", base64(DATA_PLAIN)),
        ("Secret in the cluster", IN_CLUSTER.to_string()),
        ("token-shaped annotation", annotation_token()),
        ("webhook secret", common::daemon::SECRET.to_string()),
        ("token in the git URL", URL_TOKEN.to_string()),
        ("the cluster's bearer token", cluster_token.to_string()),
    ]
}

fn assert_clean(what: &str, text: &str, needles: &[(&str, String)]) {
    for (name, value) in needles {
        assert!(!text.contains(value.as_str()), "{what} prints the {name}:\n{text}");
    }
}

fn add_secrets(repo: &Path, namespace: &str) {
    std::fs::create_dir_all(repo.join("secrets")).expect("mkdir");
    std::fs::write(
        repo.join("secrets/refund-copilot-upstream.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: refund-copilot-upstream\n  namespace: {namespace}\ntype: Opaque\ndata:\n  token: {}\nstringData:\n  token: {STRING_DATA}\n  password: {DUPLICATED}\n  password: {DUPLICATED}\n",
            base64(DATA_PLAIN)
        ),
    )
    .expect("write secret");
    let grant = repo.join("teams/payments/grants/refund-desk.yaml");
    let text = std::fs::read_to_string(&grant).expect("grant");
    let text = text.replacen("metadata:\n", &format!("metadata:\n  annotations:\n    ops-note: \"{}\"\n", annotation_token()), 1);
    std::fs::write(&grant, text).expect("write grant");
}

fn output(run: &Run) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

#[test]
fn no_command_prints_a_secret_a_token_or_a_credential() {
    let kubeconfig = kubeconfig();
    let kubectl = Kubectl { kubeconfig: kubeconfig.clone() };
    let cluster_token = std::fs::read_to_string(kubeconfig.with_file_name("admin.token")).expect("admin token").trim().to_string();
    assert!(std::fs::read_to_string(&kubeconfig).expect("kubeconfig").contains(&cluster_token), "the kubeconfig carries the token");
    let needles = needles(&cluster_token);
    let (payments, support, inventory) = (unique("spay"), unique("ssup"), unique("sinv"));
    kubectl.create_namespace(&payments);
    kubectl.create_namespace(&support);
    kubectl.ok(&["create", "secret", "generic", "refund-copilot-upstream", "-n", &payments, &format!("--from-literal=token={IN_CLUSTER}")]);
    let renames = [("mcp-team-payments", payments.as_str()), ("mcp-team-support", support.as_str())];
    let clean = repo_copy("examples/platform", &renames);
    let dirty = repo_copy("examples/platform", &renames);
    add_secrets(dirty.path(), &payments);
    let (clean_arg, dirty_arg) = (clean.path().to_string_lossy().into_owned(), dirty.path().to_string_lossy().into_owned());
    let kube_arg = kubeconfig.to_string_lossy().into_owned();
    let cluster = |command: &str, repo: &str, extra: &[&str]| {
        run(&[&[command, repo, "--kubeconfig", kube_arg.as_str(), "--inventory-namespace", inventory.as_str()][..], extra].concat())
    };

    // Offline: validate and plan of the repository with the Secret, in every format.
    let validate = run(&["validate", &dirty_arg, "--now", common::NOW]);
    assert_eq!(validate.code, 1);
    assert!(validate.stdout.contains("secret_in_repo"), "{}", validate.stdout);
    assert_clean("validate", &output(&validate), &needles);
    let validate_json = run(&["validate", &dirty_arg, "--format", "json", "--now", common::NOW]);
    assert_eq!(validate_json.code, 1, "{}", validate_json.stderr);
    assert_clean("validate --format json", &output(&validate_json), &needles);
    let plan_file = dirty.path().join("plan.json").to_string_lossy().into_owned();
    for format in ["text", "json", "markdown"] {
        let plan = run(&["plan", &dirty_arg, "--base", &clean_arg, "--format", format, "--out", &plan_file, "--now", common::NOW]);
        assert_eq!(plan.code, 1, "{}", plan.stderr);
        assert!(plan.stdout.contains("refund-desk"), "the plan shows the changed grant:\n{}", plan.stdout);
        assert_clean(&format!("plan --format {format}"), &output(&plan), &needles);
        assert_clean("plan --out", &std::fs::read_to_string(&plan_file).expect("plan file"), &needles);
    }

    // Against the cluster: plan, apply (refused: the repository has errors), then the clean one.
    for format in ["text", "json"] {
        let plan = cluster("plan", &dirty_arg, &["--format", format]);
        assert_eq!(plan.code, 1, "the repository has errors:\n{}", plan.stderr);
        assert_clean(&format!("plan against the cluster ({format})"), &output(&plan), &needles);
    }
    let refused = cluster("apply", &dirty_arg, &[]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("nothing was applied"), "{}", refused.stderr);
    assert_clean("apply (refused)", &output(&refused), &needles);
    let dry = cluster("apply", &clean_arg, &["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_clean("apply --dry-run", &output(&dry), &needles);
    // No operator runs here: the objects are created, then the wait times out (exit 1).
    let applied = cluster("apply", &clean_arg, &["--wait", "--timeout", "1s"]);
    assert_eq!(applied.code, 1, "{}\n{}", applied.stdout, applied.stderr);
    assert!(applied.stdout.contains("created"), "{}", applied.stdout);
    assert!(applied.stderr.contains("timed out after 1s"), "{}", applied.stderr);
    assert_clean("apply --wait", &output(&applied), &needles);
    let live = cluster("plan", &clean_arg, &["--format", "json"]);
    assert_eq!(live.code, 0, "{}", live.stderr);
    assert_clean("plan of the applied repository", &output(&live), &needles);

    // The daemon on a bare repository: the commit with the Secret, then the clean one.
    let upstream = Upstream::new();
    upstream.commit(dirty.path(), "with a secret");
    let daemon = Daemon::spawn_with_env(&upstream.bare_path(), &kubeconfig, &inventory, &[], &[("RUST_LOG", "debug")]);
    let invalid = daemon.wait_for(Duration::from_secs(60), "the commit with a secret", |s| s["last_result"] == "invalid");
    assert!(invalid.to_string().contains("secret_in_repo"), "{invalid}");
    upstream.commit(clean.path(), "without");
    daemon.signed_hook();
    daemon.hook_signed_with("a-wrong-secret");
    daemon.wait_for(Duration::from_secs(60), "the clean commit", |s| s["last_result"] == "unchanged" || s["last_result"] == "applied");
    let (status, metrics) = (daemon.get("/status").1, daemon.get("/metrics").1);
    let logs = daemon.logs();
    assert!(logs.contains("webhook refused"), "{logs}");
    assert_clean("daemon /status", &status, &needles);
    assert_clean("daemon /metrics", &metrics, &needles);
    assert_clean("daemon logs (debug, JSON)", &logs, &needles);

    // A git URL with credentials: the fetch fails, and neither logs nor /status show the token.
    let url = format!("https://mcp-bot:{URL_TOKEN}@127.0.0.1:1/platform.git");
    let daemon = Daemon::spawn(&url, &kubeconfig, &inventory, &[]);
    let failed = daemon.wait_for(Duration::from_secs(60), "the failed fetch", |s| s["last_result"] == "fetch_failed");
    let logs = daemon.logs();
    assert!(failed["last_message"].as_str().is_some_and(|m| m.contains("127.0.0.1:1")), "{failed}");
    assert_clean("daemon /status after a failed fetch", &failed.to_string(), &needles);
    assert_clean("daemon logs after a failed fetch", &logs, &needles);
}
