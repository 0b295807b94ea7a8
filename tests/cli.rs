//! The real binary on the example repository and the fixtures: diagnostics, plans in every
//! format, access explain/matrix, render and exit codes.

mod common;

use common::{NOW, json, run};
use std::fs;

fn fixtures() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(common::root().join("tests/fixtures"))
        .expect("fixtures exist")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_fixture_reports_what_its_readme_promises() {
    for name in fixtures() {
        let path = format!("tests/fixtures/{name}");
        let out = run(&["validate", &path, "--format", "json", "--now", NOW]);
        let report = json(&out.stdout);
        let has_errors = report["diagnostics"].as_array().is_some_and(|d| d.iter().any(|d| d["severity"] == "error"));
        assert_eq!(report["ok"], !has_errors, "{name}");
        assert_eq!(out.code, if has_errors { 1 } else { 0 }, "{name}: {}", out.stderr);
        let readme = fs::read_to_string(common::root().join(&path).join("README.md")).unwrap_or_default();
        for d in report["diagnostics"].as_array().into_iter().flatten() {
            let (code, file, line) =
                (d["code"].as_str().unwrap_or_default(), d["file"].as_str().unwrap_or_default(), d["line"].as_u64().unwrap_or(0));
            assert!(readme.contains(&format!("`{code}`")), "{name}: `{code}` is not promised by its README");
            assert!(readme.contains(file), "{name}: {code} in {file}, which its README does not name");
            assert!(
                promised_lines(&readme).iter().any(|lines| lines.contains(&line)),
                "{name}: {code} at {file} line {line}, which its README does not promise"
            );
        }
        insta::assert_json_snapshot!(format!("validate-{name}"), report);
    }
}

/// The lines a fixture README names: "line 12", "lines 8-20".
fn promised_lines(readme: &str) -> Vec<std::ops::RangeInclusive<u64>> {
    let number = |text: &str| text.chars().take_while(char::is_ascii_digit).collect::<String>().parse::<u64>().ok();
    let mut lines = Vec::new();
    for (at, word) in readme.match_indices("line") {
        let rest = &readme[at + word.len()..];
        let rest = rest.strip_prefix('s').unwrap_or(rest);
        let Some(rest) = rest.strip_prefix(' ') else { continue };
        let Some(first) = number(rest) else { continue };
        let after = &rest[first.to_string().len()..];
        let last = after.strip_prefix('-').and_then(number).unwrap_or(first);
        lines.push(first..=last);
    }
    lines
}

#[test]
fn the_example_platform_validates_clean() {
    for example in ["examples/platform", "examples/pr-change", "examples/fleet"] {
        let out = run(&["validate", example, "--now", NOW]);
        assert_eq!(out.code, 0, "{}", out.stdout);
        assert!(out.stdout.contains("0 errors, 0 warnings"), "{}", out.stdout);
    }
}

#[test]
fn text_diagnostics_show_the_line_and_a_caret() {
    let out = run(&["validate", "tests/fixtures/schema-violation", "--now", NOW]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!("validate-text-schema-violation", out.stdout);
}

#[test]
fn credentials_are_never_printed() {
    for format in ["text", "json"] {
        let out = run(&["validate", "tests/fixtures/secret-in-repo", "--format", format, "--now", NOW]);
        assert_eq!(out.code, 1);
        assert!(out.stdout.contains("secret_in_repo"));
        for needle in ["ghp_", "eyJ", "Bearer "] {
            assert!(!out.stdout.contains(needle), "{format} output leaks {needle}:\n{}", out.stdout);
        }
    }
}

#[test]
fn plan_renders_text_json_and_markdown() {
    let base = ["plan", "examples/pr-change", "--base", "examples/platform", "--now", NOW];
    let text = run(&[&base[..], &["--format", "text"]].concat());
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains("Plan: 0 to create, 4 to update, 1 to delete; access: 2 widened, 6 narrowed"), "{}", text.stdout);
    insta::assert_snapshot!("plan-text", text.stdout);

    let out = run(&[&base[..], &["--format", "json"]].concat());
    let plan = json(&out.stdout);
    assert_eq!(plan["format_version"], "1");
    assert_eq!(plan["base"]["kind"], "directory");
    insta::assert_json_snapshot!("plan-json", plan);

    let markdown = run(&[&base[..], &["--format", "markdown"]].concat());
    let access = markdown.stdout.find("#### Access changes").expect("access section");
    let objects = markdown.stdout.find("#### Object changes").expect("object section");
    assert!(access < objects, "access changes come first");
    assert!(markdown.stdout.contains("<details><summary>"));
    insta::assert_snapshot!("plan-markdown", markdown.stdout);
}

#[test]
fn plan_writes_the_json_plan_to_out_and_reports_changes_in_the_exit_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_file = dir.path().join("plan.json");
    let out_path = out_file.to_string_lossy().into_owned();
    let out = run(&["plan", "examples/pr-change", "--base", "examples/platform", "--now", NOW, "--detailed-exitcode", "--out", &out_path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let saved = json(&fs::read_to_string(&out_file).expect("plan file written"));
    assert_eq!(saved["summary"]["delete"], 1);
    assert_eq!(
        saved["changes"].as_array().map(Vec::len),
        Some(saved["summary"]["create"].as_u64().unwrap_or(0) as usize + 4 + 1 + saved["summary"]["no_op"].as_u64().unwrap_or(0) as usize)
    );

    let same = run(&["plan", "examples/platform", "--base", "examples/platform", "--now", NOW, "--detailed-exitcode"]);
    assert_eq!(same.code, 0, "{}", same.stdout);
    assert!(same.stdout.contains("No object changes."));
}

#[test]
fn plan_of_an_invalid_repository_fails_but_still_shows_the_plan() {
    let out = run(&["plan", "tests/fixtures/unknown-server", "--base", "tests/fixtures/valid-minimal", "--now", NOW]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("Plan: "));
    // Each diagnostic at its file:line:column (access/billing.yaml, both serverRef.name values),
    // in the text (the line under the error) and in the Markdown table (docs/plan-format.md).
    let lines: Vec<&str> = out.stdout.lines().collect();
    let located: Vec<&str> = lines.windows(2).filter(|w| w[0].starts_with("error[unknown_server]: ")).map(|w| w[1].trim_start()).collect();
    // Text names files from the current directory (the repository root here), the Markdown from
    // the repository it plans.
    let file = "tests/fixtures/unknown-server/access/billing.yaml";
    assert_eq!(located, [format!("--> {file}:9:11"), format!("--> {file}:25:11")], "{}", out.stdout);
    let markdown =
        run(&["plan", "tests/fixtures/unknown-server", "--base", "tests/fixtures/valid-minimal", "--format", "markdown", "--now", NOW]);
    assert_eq!(markdown.code, 1);
    let rows: Vec<&str> = markdown.stdout.lines().filter(|l| l.contains("`unknown_server`")).collect();
    assert_eq!(rows.len(), 2, "{}", markdown.stdout);
    for (row, location) in rows.iter().zip(["`access/billing.yaml:9:11`", "`access/billing.yaml:25:11`"]) {
        assert_eq!(row.split(" | ").nth(2), Some(location), "{row}");
    }
}

#[test]
fn markdown_stays_under_the_comment_cap() {
    let out = run(&["plan", "examples/platform", "--base", "tests/fixtures/valid-minimal", "--format", "json", "--now", NOW]);
    let plan: mcp_gitops::plan::Plan = {
        // Rebuild the plan through the library to render it with a small cap.
        let _ = out;
        let now = NOW.parse().expect("time");
        let load = |p: &str| {
            mcp_gitops::validate::validate(
                mcp_gitops::load::load(mcp_gitops::source::from_dir(&common::root().join(p)).expect("source")),
                now,
            )
        };
        mcp_gitops::plan::plan(
            &load("tests/fixtures/valid-minimal"),
            "directory",
            &load("examples/platform"),
            now,
            mcp_gitops::plan::Work::Changed,
        )
    };
    let capped = mcp_gitops::render::markdown::render_capped(&plan, 4_000);
    assert!(capped.len() <= 4_000, "{}", capped.len());
    assert!(capped.contains("too long for one comment"));
    assert!(mcp_gitops::render::markdown::render(&plan).len() <= mcp_gitops::render::markdown::MAX_COMMENT);
}

#[test]
fn usage_errors_exit_64() {
    assert_eq!(run(&["apply", "examples/platform", "--timeout", "soon"]).code, 64);
    let no_cluster = common::mcp_gitops()
        .args(["plan", "examples/platform"])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("runs");
    assert_eq!(no_cluster.status.code(), Some(1), "without --base, plan needs a cluster");
    let stderr = String::from_utf8_lossy(&no_cluster.stderr);
    assert!(
        stderr.contains("cannot load the cluster configuration: KUBECONFIG names /nonexistent/kubeconfig, which does not exist"),
        "{stderr}"
    );
    assert_eq!(run(&["validate", "--format", "yaml"]).code, 64);
    assert_eq!(run(&["access", "explain", "examples/platform", "--tool", "x"]).code, 64, "--server or --policy is required");
    assert_eq!(run(&["validate", "--now", "yesterday"]).code, 64);
    // Signature checks need a trust file: allowed_signers, OpenPGP keys, or both.
    assert_eq!(run(&["daemon", "--repo", ".", "--verify-signatures"]).code, 64);
    assert_eq!(run(&["daemon", "--repo", ".", "--pgp-keys", "keys/"]).code, 64, "--pgp-keys needs --verify-signatures");
    assert_eq!(run(&["access", "explain", "--policy", "p.json", "--tool", "x", "--revision", "HEAD"]).code, 64);
    assert_eq!(run(&["--help"]).code, 0);
    let missing = run(&["plan", "examples/platform", "--base", "no-such-rev"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("neither a directory nor a git revision"), "{}", missing.stderr);
}

/// An empty shared secret would let anyone sign a webhook (an HMAC with the empty key, or an
/// empty GitLab token): the daemon refuses to start with one, before it reads or serves anything.
#[test]
fn an_empty_webhook_secret_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, secret) in [("empty", ""), ("blank", " \n\t\n")] {
        let file = dir.path().join(name);
        fs::write(&file, secret).expect("write");
        let out = common::mcp_gitops()
            .args(["daemon", "--repo", "examples/platform", "--listen", "127.0.0.1:0", "--webhook-secret-file"])
            .arg(&file)
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("is empty: anyone could sign a webhook with an empty key"), "{name}: {stderr}");
    }
}

const PAYMENTS: &str = "mcp-team-payments/payments-mcp";

/// Marcus at the refund desk, with his copilot and its session.
const MARCUS: [&str; 8] = [
    "--human",
    "marcus.oyelaran@fernhill.io",
    "--agent",
    "refund-copilot",
    "--team",
    "7f3c2a10-5d4e-4b8a-9c21-3e6f0a7d4b52",
    "--session",
    "refund-copilot-marcus",
];

fn explain(extra: &[&str]) -> serde_json::Value {
    let args = [&["access", "explain", "examples/platform", "--server", PAYMENTS, "--format", "json", "--at", NOW][..], extra].concat();
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    json(&out.stdout)
}

#[test]
fn access_explain_speaks_the_gateway_fields() {
    // payments-mcp requires sessions: without one the gateway answers 401 missing_session.
    let d = explain(&["--tool", "list_invoices", "--human", "marcus.oyelaran@fernhill.io", "--agent", "refund-copilot"]);
    assert_eq!(d["reason"], "missing_session");
    assert_eq!(d["status"], 401);
    let d = explain(&[&["--tool", "update_billing_address"][..], &MARCUS].concat());
    assert_eq!(d["allowed"], true, "{d}");
    assert_eq!(d["matched_grant"], "refund-desk");
    assert_eq!(d["matched_session"], "refund-copilot-marcus");
    let keys: Vec<&str> = d.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
    for key in keys {
        assert!(
            [
                "allowed",
                "status",
                "reason",
                "policy_version",
                "required_trust",
                "required_side_effect",
                "risk_level",
                "admin_trust",
                "consented_trust",
                "effective_trust",
                "matched_grant",
                "matched_grant_namespace",
                "matched_session",
                "matched_session_namespace"
            ]
            .contains(&key),
            "unexpected field {key}"
        );
    }
}

#[test]
fn explain_checks_a_policy_document_as_the_gateway_does() {
    let rendered = run(&["render", "examples/platform", "--server", PAYMENTS]);
    assert_eq!(rendered.code, 0, "{}", rendered.stderr);
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("policy.json");
    fs::write(&good, &rendered.stdout).expect("write");
    let good = good.to_string_lossy().into_owned();
    let out = run(&[
        "access",
        "explain",
        "--policy",
        &good,
        "--tool",
        "list_invoices",
        "--agent",
        "billing-assistant",
        "--format",
        "json",
        "--at",
        NOW,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let d = json(&out.stdout);
    assert_eq!(d["reason"], "missing_session");
    assert_eq!(d["policy_version"], "v1", "the operator rendered the server's default version into the document");
    assert!(d.get("risk_level").is_none(), "a plain denial carries no risk level, as the gateway's: {d}");

    // A document with no `policy` section: the gateway's evaluator reports no version at all.
    let mut unversioned: mcp_gitops::gateway::PolicyDocument = serde_json::from_str(&rendered.stdout).expect("document");
    unversioned.policy = None;
    mcp_gitops::gateway::revision::stamp(&mut unversioned);
    let path = dir.path().join("unversioned.json");
    fs::write(&path, serde_json::to_string(&unversioned).expect("json")).expect("write");
    let out =
        run(&["access", "explain", "--policy", &path.to_string_lossy(), "--tool", "list_invoices", "--agent", "x", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let d = json(&out.stdout);
    assert_eq!(d["reason"], "missing_session", "{d}");
    assert!(d.get("policy_version").is_none(), "no version is invented: {d}");

    let tampered = dir.path().join("tampered.json");
    let mut document = json(&rendered.stdout);
    document["grants"][0]["disabled"] = serde_json::Value::Bool(true);
    fs::write(&tampered, document.to_string()).expect("write");
    let out = run(&["access", "explain", "--policy", &tampered.to_string_lossy(), "--tool", "list_invoices", "--agent", "x"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("revision mismatch"), "{}", out.stderr);
}

#[test]
fn render_prints_the_revision_the_plan_predicts() {
    let rendered = run(&["render", "examples/pr-change", "--server", PAYMENTS]);
    let document = json(&rendered.stdout);
    assert!(rendered.stderr.contains(document["revision"].as_str().unwrap_or("?")));
    let plan = json(&run(&["plan", "examples/pr-change", "--base", "examples/platform", "--format", "json", "--now", NOW]).stdout);
    let predicted =
        plan["policy_revisions"].as_array().and_then(|r| r.iter().find(|r| r["server"] == PAYMENTS)).map(|r| r["after"].clone());
    assert_eq!(predicted, Some(document["revision"].clone()));
    let configmap = run(&["render", "examples/platform", "--server", PAYMENTS, "--format", "configmap"]);
    assert!(configmap.stdout.contains("name: payments-mcp-gateway-policy"), "{}", configmap.stdout);
}

#[test]
fn access_matrix_covers_every_identity_and_tool() {
    let out =
        run(&["access", "matrix", "examples/platform", "--server", "mcp-team-support/ticketing-mcp", "--format", "json", "--at", NOW]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let cells = json(&out.stdout);
    let cells = cells.as_array().expect("array");
    assert!(!cells.is_empty());
    assert!(cells.iter().all(|c| c["server"] == "mcp-team-support/ticketing-mcp"));
    assert!(cells.iter().any(|c| c["decision"]["allowed"] == true));
    assert!(cells.iter().any(|c| c["decision"]["allowed"] == false));
    let text = run(&["access", "matrix", "examples/platform", "--at", NOW]);
    insta::assert_snapshot!("matrix-text", text.stdout);
}

#[test]
fn render_refuses_what_the_operator_refuses() {
    let out = run(&["render", "tests/fixtures/duplicate-name-for-server", "--server", "mcp-team-a/payments-mcp"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("duplicate grant name \"ops\""), "{}", out.stderr);
    let out = run(&["access", "matrix", "examples/platform", "--server", "mcp-team-payments/nope"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("mcp-team-payments/ledger-mcp"), "{}", out.stderr);
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-gitops"))
        .args(["access", "matrix", "examples/platform", "--format", "json", "--at", NOW])
        .current_dir(common::root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 16];
    child.stdout.take().expect("stdout").read_exact(&mut first).expect("some output");
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("stderr");
    child.wait().expect("exit");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn settings_that_are_right_still_apply_when_others_are_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("mcp-gitops.yaml"), "defaultNamespace: team-x\nignore: [\"drafts/**\"]\nclustername: typo\n").expect("write");
    fs::create_dir(dir.path().join("drafts")).expect("mkdir");
    fs::write(dir.path().join("drafts/broken.yaml"), "kind: [\n").expect("write");
    let out = run(&["validate", &dir.path().to_string_lossy(), "--format", "json", "--now", NOW]);
    let report = json(&out.stdout);
    let diagnostics = report["diagnostics"].as_array().cloned().unwrap_or_default();
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert_eq!(diagnostics[0]["code"], "schema_violation");
    assert_eq!((diagnostics[0]["line"].as_u64(), diagnostics[0]["column"].as_u64()), (Some(3), Some(1)));
}

/// The allowed cells of `access matrix --format json`, as (server, identity, tool).
fn allowed_cells(path: &str) -> Vec<(String, serde_json::Value, String)> {
    let cells = json(&run(&["access", "matrix", path, "--format", "json", "--at", NOW]).stdout);
    cells
        .as_array()
        .map(|cells| {
            cells
                .iter()
                .filter(|c| c["decision"]["allowed"] == true)
                .map(|c| {
                    (c["server"].as_str().unwrap_or("").to_string(), c["identity"].clone(), c["tool"].as_str().unwrap_or("").to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn who_can_lists_the_callers_the_matrix_allows() {
    let out =
        run(&["access", "who-can", "examples/platform", "--server", PAYMENTS, "--tool", "issue_refund", "--format", "json", "--at", NOW]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let answer = json(&out.stdout);
    let callers = answer["callers"].as_array().cloned().unwrap_or_default();
    assert_eq!(callers.len(), 1, "{answer}");
    assert_eq!(callers[0]["identity"]["session"], "dana-claude-oncall");
    assert_eq!(callers[0]["decision"]["effective_trust"], "high");
    assert!(answer["anyone"].is_null(), "payments-mcp denies by default and requires sessions");
    let from_matrix: Vec<serde_json::Value> = allowed_cells("examples/platform")
        .into_iter()
        .filter(|(s, _, t)| s == PAYMENTS && t == "issue_refund")
        .map(|(_, i, _)| i)
        .collect();
    let listed: Vec<serde_json::Value> = callers.iter().map(|c| c["identity"].clone()).collect();
    assert_eq!(listed, from_matrix);

    // The proposed change gives the refund desk's copilot the tool.
    let text = run(&["access", "who-can", "examples/pr-change", "--server", PAYMENTS, "--tool", "issue_refund", "--at", NOW]).stdout;
    assert!(text.contains("session=refund-copilot-marcus") && text.contains("grant mcp-team-payments/refund-desk"), "{text}");
    assert!(text.contains("2 caller(s)"), "{text}");
}

#[test]
fn what_can_lists_every_tool_the_matrix_allows_the_caller() {
    let dana = [
        "--human",
        "dana.whitfield@fernhill.io",
        "--agent",
        "claude-code",
        "--team",
        "7f3c2a10-5d4e-4b8a-9c21-3e6f0a7d4b52",
        "--session",
        "dana-claude-oncall",
    ];
    let out = run(&[&["access", "what-can", "examples/platform", "--format", "json", "--at", NOW][..], &dana].concat());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let listed: Vec<(String, String)> = json(&out.stdout)
        .as_array()
        .map(|cells| {
            cells.iter().map(|c| (c["server"].as_str().unwrap_or("").to_string(), c["tool"].as_str().unwrap_or("").to_string())).collect()
        })
        .unwrap_or_default();
    assert!(listed.contains(&(PAYMENTS.to_string(), "issue_refund".to_string())), "{listed:?}");
    // On payments-mcp, whose matrix has this very caller, both agree.
    let identity = serde_json::json!({"human": dana[1], "agent": dana[3], "team": dana[5], "session": dana[7]});
    let from_matrix: Vec<(String, String)> =
        allowed_cells("examples/platform").into_iter().filter(|(_, i, _)| *i == identity).map(|(s, _, t)| (s, t)).collect();
    assert_eq!(listed.iter().filter(|(s, _)| s == PAYMENTS).cloned().collect::<Vec<_>>(), from_matrix);
    // Other servers are asked too (the matrix only tries the callers each server names): every
    // tool listed there is one that explain allows.
    let elsewhere: Vec<&(String, String)> = listed.iter().filter(|(s, _)| s != PAYMENTS).collect();
    assert!(!elsewhere.is_empty(), "{listed:?}");
    for (server, tool) in elsewhere {
        let args =
            [&["access", "explain", "examples/platform", "--server", server, "--tool", tool, "--format", "json", "--at", NOW][..], &dana]
                .concat();
        assert_eq!(json(&run(&args).stdout)["allowed"], true, "{server} {tool}");
    }
    assert_eq!(run(&["access", "what-can", "examples/platform", "--session", "x"]).code, 64, "a session alone names no caller");
}

#[test]
fn an_expired_grant_is_desired_disabled_from_its_expiry_on() {
    let repo = common::cluster::repo_copy("examples/platform", &[]);
    let grant = repo.path().join("teams/payments/grants/refund-desk.yaml");
    let text = fs::read_to_string(&grant).expect("grant");
    let annotated = text.replacen(
        "  namespace: mcp-team-payments\n",
        "  namespace: mcp-team-payments\n  annotations:\n    mcp-gitops.io/expires-at: \"2026-11-20T00:00:00Z\"\n",
        1,
    );
    fs::write(&grant, &annotated).expect("write");
    let path = repo.path().to_string_lossy().into_owned();
    let explain = |at: &str| {
        let call = ["access", "explain", &path, "--server", PAYMENTS, "--tool", "update_billing_address", "--format", "json", "--at", at];
        json(&run(&[&call[..], &MARCUS].concat()).stdout)
    };

    // Planned ten days before: the change shows when the grant ends and what it takes away then.
    let early = json(&run(&["plan", &path, "--base", "examples/platform", "--format", "json", "--now", "2026-11-10T00:00:00Z"]).stdout);
    let expiring = early["expiring"].as_array().cloned().unwrap_or_default();
    assert_eq!(expiring.len(), 1, "{}", early["expiring"]);
    assert_eq!((expiring[0]["grant"].as_str(), expiring[0]["in_days"].as_i64()), (Some("mcp-team-payments/refund-desk"), Some(10)));
    let then = expiring[0]["access_changes"].as_array().cloned().unwrap_or_default();
    assert!(then.iter().all(|c| c["direction"] != "widened") && then.iter().any(|c| c["direction"] == "narrowed"), "{then:?}");
    assert!(then.iter().any(|c| c["subject"]["session"] == "refund-copilot-marcus" && c["tool"] == "update_billing_address"));
    let text = run(&["plan", &path, "--base", "examples/platform", "--now", "2026-11-10T00:00:00Z"]).stdout;
    assert!(text.contains("Expiring: mcp-team-payments/refund-desk expires in 10 day(s)"), "{text}");

    // Before the instant nothing changes; from it on the grant grants nothing.
    assert_eq!(explain("2026-11-19T23:59:59Z")["allowed"], true);
    assert_eq!(explain("2026-11-20T00:00:00Z")["allowed"], false);
    let out = run(&["validate", &path, "--now", NOW, "--format", "json"]);
    assert_eq!(out.code, 0, "a warning, not an error: {}", out.stdout);
    let diagnostics = json(&out.stdout)["diagnostics"].clone();
    assert_eq!(diagnostics[0]["code"], "grant_expired", "{diagnostics}");
    assert_eq!(diagnostics[0]["file"], "teams/payments/grants/refund-desk.yaml");
    assert_eq!(diagnostics[0]["line"], 9);

    // The plan against the deployed platform disables it and says what access goes.
    let plan = json(&run(&["plan", &path, "--base", "examples/platform", "--format", "json", "--now", NOW]).stdout);
    let update = plan["changes"].as_array().and_then(|c| c.iter().find(|c| c["action"] == "update")).cloned().unwrap_or_default();
    assert_eq!(update["name"], "refund-desk", "{}", plan["changes"]);
    assert!(update["diff"].as_str().is_some_and(|d| d.contains("+  disabled: true")), "{update}");
    assert!(plan["summary"]["access_narrowed"].as_u64() > Some(0), "{}", plan["summary"]);
    let who = run(&["access", "who-can", &path, "--server", PAYMENTS, "--tool", "update_billing_address", "--at", NOW]).stdout;
    assert!(!who.contains("refund-copilot-marcus"), "{who}");

    // A base with the same expired grant plans no change for it.
    let same = run(&["plan", &path, "--base", &path, "--format", "json", "--now", NOW]);
    assert_eq!(json(&same.stdout)["summary"]["update"], 0, "{}", same.stdout);

    fs::write(&grant, annotated.replace("2026-11-20T00:00:00Z", "next tuesday")).expect("write");
    let out = run(&["validate", &path, "--now", NOW]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("schema_violation") && out.stdout.contains("is not an RFC 3339 time"), "{}", out.stdout);
}

#[test]
fn approvals_follow_what_the_change_does_to_access() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan_file = dir.path().join("plan.json");
    let plan_path = plan_file.to_string_lossy().into_owned();
    let out = run(&["plan", "examples/pr-change", "--base", "examples/platform", "--out", &plan_path, "--now", NOW]);
    assert!(out.stdout.starts_with("Approvals needed (every line must hold):"), "near the top: {}", out.stdout);
    let required = json(&fs::read_to_string(&plan_file).expect("plan"))["approvals"]["required"].clone();
    assert_eq!(required.as_array().map(Vec::len), Some(3), "{required}");
    assert!(required.as_array().is_some_and(|r| r.iter().any(|r| r["approvers"] == serde_json::json!(["security-team"]))));

    let check = |by: &str, author: &str| run(&["approvals", "check", &plan_path, "--approved-by", by, "--author", author]);
    assert_eq!(check("", "marcus").code, 1);
    let partial = check("security-team", "marcus");
    assert_eq!(partial.code, 1, "two approvals including security need an owner too");
    assert!(
        partial.stdout.contains("1 more approval(s) needed") && partial.stdout.contains("1 of 3 requirement(s) met"),
        "{}",
        partial.stdout
    );
    assert_eq!(check("dana.whitfield,security-team", "marcus").code, 0);
    assert_eq!(check("dana.whitfield,security-team", "dana.whitfield").code, 1, "the author's approval does not count");
    assert_eq!(run(&["approvals", "check", &plan_path]).code, 64);

    // A change that only narrows access needs nobody.
    let reverse = dir.path().join("reverse.json").to_string_lossy().into_owned();
    run(&["plan", "examples/platform", "--base", "examples/pr-change", "--out", &reverse, "--now", NOW]);
    let narrowing = json(&fs::read_to_string(&reverse).expect("plan"));
    assert!(narrowing["summary"]["access_narrowed"].as_u64() > Some(0));
    let widened = narrowing["summary"]["access_widened"].as_u64().unwrap_or(0);
    assert_eq!(narrowing["approvals"]["required"].as_array().map(Vec::is_empty), Some(widened == 0), "{}", narrowing["approvals"]);
}

/// #25.6: the author approves their own change under another spelling of their handle, which
/// the forge takes for the same person.
#[test]
fn the_author_cannot_approve_their_own_change_by_spelling_their_handle_differently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan_path = dir.path().join("plan.json").to_string_lossy().into_owned();
    let out = run(&["plan", "examples/pr-change", "--base", "examples/platform", "--out", &plan_path, "--now", NOW]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let check = |by: &str, author: &str| run(&["approvals", "check", &plan_path, "--approved-by", by, "--author", author]);
    assert_eq!(check("dana.whitfield,security-team", "marcus").code, 0, "the owner and security approve");
    for author in ["Dana.Whitfield", " dana.whitfield", "@dana.whitfield", "DANA.WHITFIELD"] {
        let own = check("dana.whitfield,security-team", author);
        assert_eq!(own.code, 1, "author {author:?} approved their own change: {}", own.stdout);
        assert!(own.stdout.contains("1 more approval(s) needed"), "{}", own.stdout);
    }
    // And an approval given in the forge's other spelling counts, as the forge counts it.
    assert_eq!(check("Dana.Whitfield, Security-Team", "marcus").code, 0);
    // One person named twice is one approval.
    assert_eq!(check("dana.whitfield,Dana.Whitfield", "marcus").code, 1);
}

#[test]
fn a_change_on_a_server_without_owner_is_reported_by_the_base_rules() {
    let base = common::cluster::repo_copy("examples/platform", &[]);
    let config = base.path().join("mcp-gitops.yaml");
    let text = fs::read_to_string(&config).expect("config");
    fs::write(&config, text.replace("    \"mcp-team-support/*\": [support-leads]\n", "")).expect("write");
    let desired = common::cluster::repo_copy("examples/platform", &[]);
    let grant = desired.path().join("teams/support/grants/support-leads.yaml");
    let text = fs::read_to_string(&grant).expect("grant");
    fs::write(&grant, text.replacen("maxTrust: high", "maxTrust: medium", 1)).expect("write");
    let (desired_path, base_path) = (desired.path().to_string_lossy().into_owned(), base.path().to_string_lossy().into_owned());

    // The base's owners apply (the change restores the support owners; that does not waive their review).
    let plan = json(&run(&["plan", &desired_path, "--base", &base_path, "--format", "json", "--now", NOW]).stdout);
    let unowned: Vec<&serde_json::Value> =
        plan["diagnostics"].as_array().map(|d| d.iter().filter(|d| d["code"] == "server_without_owner").collect()).unwrap_or_default();
    assert_eq!(unowned.len(), 1, "{}", plan["diagnostics"]);
    assert_eq!(unowned[0]["severity"], "warning");
    assert_eq!(unowned[0]["file"], "teams/support/grants/support-leads.yaml");

    let text = fs::read_to_string(&config).expect("config");
    fs::write(&config, text.replace("owners:\n", "owners:\n  unowned: error\n")).expect("write");
    let strict = run(&["plan", &desired_path, "--base", &base_path, "--now", NOW]);
    assert_eq!(strict.code, 1, "{}", strict.stdout);
    assert!(strict.stdout.contains("error[server_without_owner]"), "{}", strict.stdout);
}

/// The cache (docs/cli.md "The cache") changes nothing but the time: on every fixture, a run that
/// fills it, one that reads it and one with packs damaged in place print what `--no-cache` prints;
/// a cache that cannot be written is a warning, not a failure.
#[test]
fn the_cache_changes_nothing_but_the_time_and_a_damaged_one_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let cache = cache.to_str().expect("utf-8 path");
    for fixture in fixtures() {
        let path = format!("tests/fixtures/{fixture}");
        let validate = |extra: &[&str]| {
            let mut args = vec!["validate", path.as_str(), "--format", "json", "--now", NOW];
            args.extend_from_slice(extra);
            let run = run(&args);
            assert!(run.stderr.is_empty(), "{fixture}: {}", run.stderr);
            (run.code, run.stdout)
        };
        let reference = validate(&["--no-cache"]);
        assert_eq!(validate(&["--cache-dir", cache]), reference, "{fixture}: filling the cache");
        assert_eq!(validate(&["--cache-dir", cache]), reference, "{fixture}: read from the cache");
        for pack in fs::read_dir(cache).expect("cache dir").flatten().flat_map(|d| fs::read_dir(d.path()).expect("folder").flatten()) {
            let mut bytes = fs::read(pack.path()).expect("pack");
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x20;
            fs::write(pack.path(), &bytes).expect("damage");
        }
        assert_eq!(validate(&["--cache-dir", cache]), reference, "{fixture}: damaged packs");
    }
    let not_a_dir = dir.path().join("file");
    fs::write(&not_a_dir, "").expect("write");
    let run = run(&["validate", "examples/platform", "--cache-dir", not_a_dir.to_str().expect("utf-8"), "--now", NOW]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.starts_with("warning: cannot write the cache"), "{}", run.stderr);
}
