//! The incremental path against the full one, on real git history. Random sequences of commits
//! on a copy of `examples/platform` (files added, edited, deleted, renamed; a file broken and then
//! fixed; the configuration changed) are planned at each commit against earlier ones, once as
//! usual and once with `--no-incremental` (every base file parsed, every server rendered, no
//! cache): both must print the same bytes and exit with the same code, in JSON and in text. The
//! usual runs share one cache directory over the whole sequence (`common::cache_dir`), so each
//! commit is planned with what the runs at the earlier commits kept, and planned again with the
//! validation the first plan of the commit recorded (`plan::partial`); `validate` with that
//! cache and with `--no-cache` must print the same bytes too.
//!
//! `MCP_GITOPS_DIFFERENTIAL_CASES` sets the number of commit sequences (default 8).

mod common;

use common::NOW;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn cases() -> u32 {
    std::env::var("MCP_GITOPS_DIFFERENTIAL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(8)
}

/// One commit's change to the repository. Indexes pick among the files there are at the time.
#[derive(Debug, Clone)]
enum Step {
    /// Replace the first occurrence of one of `EDITS` in a file.
    Edit {
        file: usize,
        edit: usize,
    },
    /// A new grant of a team's server, in its namespace or in the default one, maybe time-bound
    /// (`EXPIRIES`).
    Add {
        server: usize,
        trust: usize,
        namespaced: bool,
        expires: usize,
    },
    Delete {
        file: usize,
    },
    Rename {
        file: usize,
    },
    /// Cut a file in the middle of a line: its objects are lost and it reports a syntax error.
    Break {
        file: usize,
    },
    /// Put back the oldest broken file as it was.
    Fix,
    /// Another default namespace, cluster name or ignore rule.
    Configure {
        setting: usize,
    },
}

/// Text edits that change what an object means: trust, side effects, the gateway, a subject, a
/// target, a tool's effect, a namespace.
const EDITS: &[(&str, &str)] = &[
    ("maxTrust: high", "maxTrust: low"),
    ("maxTrust: low", "maxTrust: medium"),
    ("[read]", "[read, write]"),
    ("destructive]", "write]"),
    ("enabled: true", "enabled: false"),
    ("humanID: ", "humanID: x"),
    ("name: payments-mcp", "name: ticketing-mcp"),
    ("sideEffect: read", "sideEffect: destructive"),
    ("namespace: mcp-team-support", "namespace: mcp-team-payments"),
    ("consentedTrust: high", "consentedTrust: low"),
];

const SERVERS: &[(&str, &str)] = &[("mcp-team-payments", "payments-mcp"), ("mcp-team-support", "ticketing-mcp")];
const TRUSTS: &[&str] = &["low", "medium", "high"];
/// No expiry, one before `NOW`, and two after it: a plan shows what each later one takes away,
/// counting every grant expired by then.
const EXPIRIES: &[Option<&str>] = &[None, Some("2026-11-01T00:00:00Z"), Some("2026-12-01T00:00:00Z"), Some("2027-01-15T00:00:00Z")];
const SETTINGS: &[(&str, &str)] = &[
    ("defaultNamespace: mcp-servers", "defaultNamespace: mcp-team-support"),
    ("ignore: [\"drafts/**\"]", "ignore: [\"drafts/**\", \"teams/support/sessions/**\"]"),
    ("defaultNamespace: mcp-team-support", "defaultNamespace: mcp-servers"),
    ("allowedNamespaces:", "clusterName: east\nallowedNamespaces:"),
];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (any::<usize>(), 0..EDITS.len()).prop_map(|(file, edit)| Step::Edit { file, edit }),
        2 => (0..SERVERS.len(), 0..TRUSTS.len(), any::<bool>(), 0..EXPIRIES.len())
            .prop_map(|(server, trust, namespaced, expires)| Step::Add { server, trust, namespaced, expires }),
        1 => any::<usize>().prop_map(|file| Step::Delete { file }),
        1 => any::<usize>().prop_map(|file| Step::Rename { file }),
        1 => any::<usize>().prop_map(|file| Step::Break { file }),
        1 => Just(Step::Fix),
        2 => (0..SETTINGS.len()).prop_map(|setting| Step::Configure { setting }),
    ]
}

/// The YAML files of the repository other than its configuration, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "yaml") && !path.ends_with("mcp-gitops.yaml") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, &mut found);
    found.sort();
    found
}

/// `text` with the first of `replacements`, from `start` on (round), that it has a place for.
fn replace_first(text: &str, replacements: &[(&str, &str)], start: usize) -> String {
    let found = (0..replacements.len()).map(|i| replacements[(start + i) % replacements.len()]).find(|(from, _)| text.contains(from));
    found.map_or_else(|| text.to_string(), |(from, to)| text.replacen(from, to, 1))
}

/// Applies `step` to the work tree in `dir`; the broken files and their texts are in `broken`.
fn apply(dir: &Path, step: &Step, n: usize, broken: &mut Vec<(PathBuf, String)>) {
    let all = files(dir);
    let pick = |i: usize| all[i % all.len()].clone();
    let read = |path: &Path| std::fs::read_to_string(path).expect("read");
    let write = |path: &Path, text: &str| std::fs::write(path, text).expect("write");
    match *step {
        _ if all.is_empty() => {}
        Step::Edit { file, edit } => {
            let path = pick(file);
            let text = read(&path);
            write(&path, &replace_first(&text, EDITS, edit));
        }
        Step::Add { server, trust, namespaced, expires } => {
            let (namespace, name) = SERVERS[server];
            let namespace = if namespaced { format!("\n  namespace: {namespace}") } else { String::new() };
            let expires = EXPIRIES[expires].map_or(String::new(), |at| format!("\n  annotations:\n    mcp-gitops.io/expires-at: \"{at}\""));
            let grant = format!(
                "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: added-{n}{namespace}{expires}\nspec:\n  serverRef:\n    name: {name}\n  subject:\n    humanID: added-{n}@fernhill.io\n  maxTrust: {}\n  allowedSideEffects: [read, write]\n  policyVersion: v1\n",
                TRUSTS[trust]
            );
            write(&dir.join(format!("teams/added-{n}.yaml")), &grant);
        }
        Step::Delete { file } => std::fs::remove_file(pick(file)).expect("delete"),
        Step::Rename { file } => {
            let path = pick(file);
            std::fs::rename(&path, path.with_file_name(format!("renamed-{n}.yaml"))).expect("rename");
        }
        Step::Break { file } => {
            let path = pick(file);
            let text = read(&path);
            let cut = text.char_indices().map(|(i, _)| i).find(|&i| i >= text.len() / 2).unwrap_or(text.len());
            write(&path, &format!("{}: [\n", &text[..cut]));
            broken.push((path, text));
        }
        Step::Fix => {
            if !broken.is_empty() {
                let (path, text) = broken.remove(0);
                write(&path, &text);
            }
        }
        Step::Configure { setting } => {
            let path = dir.join("mcp-gitops.yaml");
            write(&path, &replace_first(&read(&path), SETTINGS, setting));
        }
    }
}

fn validate(dir: &Path, cache: bool) -> (i32, String) {
    let dir = dir.to_string_lossy();
    let mut args = vec!["validate", &dir, "--format", "json", "--now", NOW];
    if !cache {
        args.push("--no-cache");
    }
    let run = common::run(&args);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    (run.code, run.stdout)
}

fn plan(dir: &Path, base: &str, format: &str, incremental: bool) -> (i32, String) {
    let dir = dir.to_string_lossy();
    let mut args = vec!["plan", &dir, "--base", base, "--format", format, "--now", NOW];
    if !incremental {
        args.push("--no-incremental");
    }
    let run = common::run(&args);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    (run.code, run.stdout)
}

/// A git repository of `examples/platform` in `dir`, with a grant in the default namespace (a
/// change of the default moves it).
fn platform(dir: &Path) {
    common::copy_dir(&common::root().join("examples/platform"), dir);
    let grant = std::fs::read_to_string(dir.join("teams/support/grants/support-leads.yaml")).expect("grant");
    std::fs::write(
        dir.join("teams/default.yaml"),
        grant.replace("name: support-leads", "name: default").replace("  namespace: mcp-team-support\n", ""),
    )
    .expect("write");
    common::git(dir, &[], &["init", "-q", "-b", "main"]);
    commit(dir, "platform");
}

fn commit(dir: &Path, message: &str) {
    common::git(dir, &[], &["add", "-A"]);
    common::git(dir, &[], &["commit", "-q", "--no-gpg-sign", "--allow-empty", "-m", message]);
}

/// A change that adds a time-bound grant shows what its expiry takes away, counting every grant
/// expired by then: here one on a server the change does not touch, which a plan of the objects
/// the change reaches must load too. Random sequences seldom make this case.
#[test]
fn the_expiry_of_a_new_grant_counts_the_grants_expiring_before_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    platform(dir);
    apply(dir, &Step::Add { server: 1, trust: 1, namespaced: true, expires: 2 }, 0, &mut Vec::new());
    commit(dir, "a ticketing grant until December");
    apply(dir, &Step::Add { server: 0, trust: 1, namespaced: true, expires: 3 }, 1, &mut Vec::new());
    commit(dir, "a payments grant until January");
    for format in ["json", "text", "json"] {
        assert_eq!(plan(dir, "HEAD~1", format, true), plan(dir, "HEAD~1", format, false), "plan --format {format}");
    }
    let (_, json) = plan(dir, "HEAD~1", "json", true);
    let plan: serde_json::Value = serde_json::from_str(&json).expect("a JSON plan");
    let changes = plan["expiring"][0]["access_changes"].as_array().cloned().unwrap_or_default();
    assert!(changes.iter().any(|c| c["server"] == "mcp-team-support/ticketing-mcp"), "{:#}", plan["expiring"]);
}

proptest! {
    #![proptest_config(common::properties::config("incremental", cases()))]

    #[test]
    fn incremental_plans_are_byte_identical_to_full_ones(
        steps in proptest::collection::vec(step(), 1..7),
        bases in proptest::collection::vec(any::<usize>(), 7),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        platform(dir);
        let mut broken = Vec::new();
        for (n, step) in steps.iter().enumerate() {
            apply(dir, step, n, &mut broken);
            commit(dir, &format!("{step:?}"));
            // Against the commit before or one further back.
            let base = format!("HEAD~{}", bases[n] % (n + 1) + 1);
            // JSON first: a plan of a new tree validates it; text, then JSON again, take that from the cache.
            for format in ["json", "text", "json"] {
                let incremental = plan(dir, &base, format, true);
                let full = plan(dir, &base, format, false);
                prop_assert_eq!(&incremental, &full, "plan --base {} --format {} after {:?}", base, format, &steps[..=n]);
            }
            prop_assert_eq!(validate(dir, true), validate(dir, false), "validate after {:?}", &steps[..=n]);
        }
    }
}
