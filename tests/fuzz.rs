//! Fuzzing of the three parsers that read untrusted text: the repository loader (YAML with
//! positions, `.mcp` metadata), the gateway policy-document check (`access explain --policy`)
//! and guardrail policy files (CEL). Inputs are the corpus in `tests/fuzz/corpus/` (alias bombs,
//! deep nesting, invalid UTF-8, BOMs, tabs, duplicate keys, document separators, JSON in YAML,
//! hostile CEL...) and random mutations and compositions of it (proptest). Nothing panics, every
//! case finishes within a time bound, known hostile inputs get their diagnostic with a position,
//! and the real binary reads the whole corpus under a memory cap (`ulimit -v`).
//!
//! `MCP_GITOPS_FUZZ_CASES` sets the number of cases per property (default 256); `.ci/run` runs
//! a larger, bounded pass.

mod common;

use common::NOW;
use mcp_gitops::gateway::{self, Identity, PolicyDocument};
use mcp_gitops::source::{Snapshot, SourceFile};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One case may take this long before it counts as a hang (debug build, 2 shared cores).
const CASE_LIMIT: Duration = Duration::from_secs(10);
/// Address space the binary may use for the whole corpus.
const MEMORY_LIMIT_MIB: u64 = 2048;

fn cases() -> u32 {
    std::env::var("MCP_GITOPS_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn corpus_dir() -> PathBuf {
    common::root().join("tests/fuzz/corpus")
}

/// Every corpus file under `sub`, as (path relative to the corpus, bytes).
fn corpus(sub: &str) -> &'static [(String, Vec<u8>)] {
    static ALL: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        let mut files = Vec::new();
        walk(&corpus_dir(), &corpus_dir(), &mut files);
        files.sort();
        files
    });
    let start = all.iter().position(|(p, _)| p.starts_with(&format!("{sub}/"))).unwrap_or(all.len());
    let end = all[start..].iter().position(|(p, _)| !p.starts_with(&format!("{sub}/"))).map_or(all.len(), |n| start + n);
    &all[start..end]
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("corpus dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, files);
        } else {
            let rel = path.strip_prefix(root).expect("inside").to_string_lossy().into_owned();
            files.push((rel, std::fs::read(&path).expect("corpus file")));
        }
    }
}

/// A small valid repository the hostile file is added to, so that validation runs every stage.
fn valid_files() -> Vec<SourceFile> {
    let root = common::root().join("tests/fixtures/valid-minimal");
    let mut found = Vec::new();
    walk(&root, &root, &mut found);
    found
        .into_iter()
        .filter(|(path, _)| path.ends_with(".yaml") || path.ends_with(".yml"))
        .map(|(path, bytes)| SourceFile { path, bytes })
        .collect()
}

/// Loads and validates `extra` next to the valid repository; returns the diagnostics and the time taken.
fn validate_with(extra: Vec<SourceFile>) -> (Vec<mcp_gitops::model::Diagnostic>, Duration) {
    let mut files = valid_files();
    files.extend(extra);
    let snapshot = Snapshot { files, ..Snapshot::default() };
    let started = Instant::now();
    let state = mcp_gitops::validate::validate(mcp_gitops::load::load(snapshot), NOW.parse().expect("time"));
    (state.diagnostics, started.elapsed())
}

/// The repository path a corpus file is placed at: `.mcp` files stay metadata, the others go
/// under `hostile/`.
fn placed(rel: &str) -> String {
    let name = rel.split_once('/').map_or(rel, |(_, rest)| rest);
    if name.starts_with(".mcp/") { format!("hostile/{name}") } else { format!("hostile/{}", name.replace('/', "-")) }
}

/// What the loader must say about a known hostile input: (corpus file, code, part of the
/// message; `|` separates alternatives).
const EXPECTED: &[(&str, &str, &str)] = &[
    ("yaml/alias-bomb-billion-laughs.yaml", "yaml_syntax", "alias expansion exceeds"),
    ("yaml/alias-bomb-wide.yaml", "yaml_syntax", "alias expansion exceeds"),
    ("yaml/alias-bomb-merge-keys.yaml", "yaml_syntax", "alias expansion exceeds"),
    ("yaml/alias-unknown-anchor.yaml", "yaml_syntax", "unknown anchor"),
    ("yaml/deep-flow-sequences.yaml", "yaml_syntax", "nesting is deeper|recursion limit exceeded"),
    ("yaml/deep-flow-mappings.yaml", "yaml_syntax", "nesting is deeper|recursion limit exceeded"),
    ("yaml/deep-block-mappings.yaml", "yaml_syntax", "nesting is deeper|recursion limit exceeded"),
    ("yaml/deep-block-sequences.yaml", "yaml_syntax", "nesting is deeper|recursion limit exceeded"),
    ("yaml/deep-json-in-yaml.yaml", "yaml_syntax", "nesting is deeper|recursion limit exceeded"),
    ("yaml/invalid-utf8.yaml", "yaml_syntax", "not valid UTF-8"),
    ("yaml/invalid-utf8-only.yaml", "yaml_syntax", "not valid UTF-8"),
    ("yaml/overlong-utf8.yaml", "yaml_syntax", "not valid UTF-8"),
    ("yaml/bom-utf16le.yaml", "yaml_syntax", "not valid UTF-8"),
    ("yaml/duplicate-keys.yaml", "yaml_syntax", "duplicate key \"spec\""),
    ("yaml/duplicate-keys-nested.yaml", "yaml_syntax", "duplicate key \"name\""),
    ("yaml/duplicate-keys-many.yaml", "yaml_syntax", "duplicate key \"name\""),
    ("yaml/unterminated-quote.yaml", "yaml_syntax", "invalid YAML"),
    ("yaml/tabs-indentation.yaml", "yaml_syntax", "invalid YAML"),
    ("yaml/secret-manifest.yaml", "secret_in_repo", "Secret"),
    ("guardrail/syntax-error.yaml", "policy_error", "not valid CEL"),
    ("guardrail/wrong-shape.yaml", "schema_violation", ""),
    ("guardrail/nested-comprehensions.yaml", "policy_error", "did not finish within"),
];

/// Inputs that run until the guardrail budget stops them: checked through the binary, which
/// gets a short budget, rather than in this process, which has the default one.
const OVER_BUDGET: &[&str] = &["guardrail/nested-comprehensions.yaml"];

#[test]
fn every_corpus_file_is_loaded_or_reported_with_a_position_in_bounded_time() {
    let mut slow = Vec::new();
    let mut missing = Vec::new();
    for sub in ["yaml", "guardrail"] {
        for (rel, bytes) in corpus(sub).iter().filter(|(rel, _)| !OVER_BUDGET.contains(&rel.as_str())) {
            let path = placed(rel);
            let (diagnostics, took) = validate_with(vec![SourceFile { path: path.clone(), bytes: bytes.clone() }]);
            if took > CASE_LIMIT {
                slow.push(format!("{rel}: {took:?}"));
            }
            for d in diagnostics.iter().filter(|d| d.file == path) {
                assert!(d.line >= 1 && d.column >= 1, "{rel}: a diagnostic without a position: {d:?}");
            }
            if let Some((_, code, fragment)) = EXPECTED.iter().find(|(file, ..)| file == rel) {
                let said = diagnostics
                    .iter()
                    .any(|d| d.file == path && d.code.to_string() == *code && fragment.split('|').any(|f| d.message.contains(f)));
                if !said {
                    let got: Vec<String> =
                        diagnostics.iter().filter(|d| d.file == path).map(|d| format!("[{}] {}", d.code, d.message)).collect();
                    missing.push(format!("{rel}: want [{code}] ...{fragment}..., got {got:?}"));
                }
            }
        }
    }
    assert!(slow.is_empty(), "cases over {CASE_LIMIT:?}: {slow:?}");
    assert!(missing.is_empty(), "expected diagnostics missing:\n{}", missing.join("\n"));
    // The valid repository beside each hostile file still loads: one file never stops the others.
    let (clean, _) = validate_with(Vec::new());
    assert!(clean.iter().all(|d| !d.is_error()), "{clean:?}");
}

#[test]
fn every_corpus_policy_document_is_refused_or_checked_in_bounded_time() {
    for (rel, bytes) in corpus("policy") {
        let started = Instant::now();
        let verdict = serde_json::from_slice::<PolicyDocument>(bytes).map_err(|e| e.to_string()).and_then(|d| {
            gateway::check::check(&d).map_err(|e| e.to_string())?;
            Ok(d)
        });
        assert!(started.elapsed() < CASE_LIMIT, "{rel} took {:?}", started.elapsed());
        // None of the corpus documents carries a revision that matches its contents.
        assert!(verdict.is_err(), "{rel} passed the gateway's check");
    }
}

/// The real binary over the whole corpus as one repository, and over each policy document,
/// under an address-space cap and a wall-clock bound.
#[test]
fn the_binary_reads_the_whole_corpus_under_a_memory_cap() {
    let repo = tempfile::tempdir().expect("repo");
    let fixture = common::root().join("tests/fixtures/valid-minimal");
    let mut fixture_files = Vec::new();
    walk(&fixture, &fixture, &mut fixture_files);
    for (rel, bytes) in fixture_files.iter().chain(corpus("yaml")).chain(corpus("guardrail")) {
        let path = if fixture_files.iter().any(|(p, _)| p == rel) { rel.clone() } else { placed(rel) };
        let target = repo.path().join(&path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, bytes).expect("write");
    }
    let root = repo.path().to_string_lossy().into_owned();
    let out = bounded(&["validate", &root, "--format", "json", "--now", NOW], Duration::from_secs(60));
    assert_eq!(out.code, 1, "errors found, exit 1:\n{}", out.stderr);
    let report = common::json(&out.stdout);
    let files: std::collections::BTreeSet<&str> =
        report["diagnostics"].as_array().into_iter().flatten().filter_map(|d| d["file"].as_str()).collect();
    for (rel, ..) in EXPECTED {
        assert!(files.contains(placed(rel).as_str()), "no diagnostic for {rel} from the binary");
    }
    let text = bounded(&["validate", &root, "--now", NOW], Duration::from_secs(60));
    // The fixture declares one of each; the corpus adds the well-formed documents among its
    // hostile ones (2 servers, 16 grants, 1 session).
    let summary = format!("{root}: 3 servers, 17 grants, 2 sessions in ");
    assert!(text.stdout.lines().any(|l| l.starts_with(&summary)), "want {summary:?}:\n{}", text.stdout);

    for (rel, _) in corpus("policy") {
        let file = corpus_dir().join(rel).to_string_lossy().into_owned();
        let out = bounded(&["access", "explain", "--policy", &file, "--tool", "t", "--agent", "a"], Duration::from_secs(20));
        assert_eq!(out.code, 1, "{rel}: {}", out.stderr);
        let said = ["refused, as the gateway would", "is not a policy document", "stream did not contain valid UTF-8"];
        assert!(said.iter().any(|s| out.stderr.contains(s)), "{rel}: {}", out.stderr);
    }
}

/// The binary stops guardrail evaluation after this many seconds (`MCP_GITOPS_POLICY_TIMEOUT`).
const POLICY_TIMEOUT: &str = "3";

fn bounded(args: &[&str], limit: Duration) -> common::Run {
    common::run_bounded(args, &[("MCP_GITOPS_POLICY_TIMEOUT", POLICY_TIMEOUT)], MEMORY_LIMIT_MIB, limit)
}

/// A byte-level edit of a corpus input.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Flip(usize, u8),
    /// Repeats a slice in place (grows nesting and aliases).
    Repeat(usize, usize, usize),
    /// Splices in a piece of another corpus file.
    Splice(usize, usize, usize, usize),
}

/// Pieces of YAML syntax that parsers trip over.
const FRAGMENTS: &[&str] = &[
    "&a ",
    "*a",
    "<<: *a\n",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "%TAG ! tag:x,2020:\n",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "- ",
    "? ",
    "\t",
    "\u{feff}",
    "\r\n",
    "\r",
    "'",
    "\"",
    "\\",
    "|",
    ">-",
    "|+9",
    "!!str ",
    "!!binary ",
    "!x ",
    "#",
    "\n  ",
    "\n",
    "\0",
    "\u{202e}",
    "kind: MCPAccessGrant\n",
    "kind: MCPServer\n",
    "kind: MCPAgentSession\n",
    "kind: Secret\n",
    "kind: GuardrailPolicy\n",
    "metadata: {name: x}\n",
    "spec:\n  ",
    "servers:\n  - name: s\n",
    "tools: [{name: t, sideEffect: read}]\n",
    "0x",
    "1e999",
    "~",
];

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), prop::sample::select(FRAGMENTS).prop_map(|f| f.as_bytes().to_vec())).prop_map(|(at, b)| Edit::Insert(at, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, b)| Edit::Insert(at, b)),
        (any::<usize>(), 1usize..64).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Flip(at, b)),
        (any::<usize>(), 1usize..32, 1usize..50).prop_map(|(at, n, times)| Edit::Repeat(at, n, times)),
        (any::<usize>(), any::<usize>(), any::<usize>(), 1usize..200).prop_map(|(at, file, from, n)| Edit::Splice(at, file, from, n)),
    ]
}

fn apply_edits(mut bytes: Vec<u8>, edits: &[Edit], donors: &[(String, Vec<u8>)]) -> Vec<u8> {
    for edit in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match edit {
            Edit::Insert(i, piece) => {
                let i = at(*i, bytes.len());
                bytes.splice(i..i, piece.iter().copied());
            }
            Edit::Delete(i, n) => {
                let i = at(*i, bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            Edit::Flip(i, b) if !bytes.is_empty() => {
                let i = *i % bytes.len();
                bytes[i] ^= b;
            }
            Edit::Flip(..) => {}
            Edit::Repeat(i, n, times) => {
                let i = at(*i, bytes.len());
                let end = (i + n).min(bytes.len());
                let piece = bytes[i..end].to_vec();
                for _ in 0..*times {
                    bytes.splice(i..i, piece.iter().copied());
                }
            }
            Edit::Splice(i, file, from, n) if !donors.is_empty() => {
                let donor = &donors[*file % donors.len()].1;
                let from = at(*from, donor.len());
                let piece = &donor[from..(from + n).min(donor.len())];
                let i = at(*i, bytes.len());
                bytes.splice(i..i, piece.iter().copied());
            }
            Edit::Splice(..) => {}
        }
        // Keep cases small enough that the time bound measures the parser, not the input size.
        bytes.truncate(256 * 1024);
    }
    bytes
}

/// A CEL expression from tokens that exercise the parser and the evaluator.
fn cel_strategy() -> impl Strategy<Value = String> {
    const TOKENS: &[&str] = &[
        "object",
        "server",
        "servers",
        "params",
        "now",
        ".spec",
        ".metadata",
        ".name",
        ".maxTrust",
        ".tools",
        "has(",
        "size(",
        ")",
        "(",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "'x'",
        "\"y\"",
        "1",
        "0",
        "-1",
        "2.5",
        "true",
        "false",
        "null",
        "&&",
        "||",
        "!",
        "==",
        "!=",
        "<",
        "+",
        "-",
        "*",
        "/",
        "%",
        "?",
        " in ",
        ".all(x, ",
        ".exists(x, ",
        ".map(x, ",
        ".filter(x, ",
        "x",
        ".matches('a+')",
        "int(",
        "string(",
        "timestamp('2030-01-01T00:00:00Z')",
        "duration('1h')",
        "'\\u0000'",
        "b'x'",
        "\u{202e}",
        " ",
    ];
    prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|tokens| tokens.concat())
}

fn guardrail_file(expression: &str, message: &str) -> SourceFile {
    let text = format!(
        "apiVersion: mcp-gitops.mcpruntime.org/v1alpha1\nkind: GuardrailPolicy\nmetadata:\n  name: fuzzed\nspec:\n  matchKinds: [MCPAccessGrant, MCPAgentSession, MCPServer]\n  severity: warning\n  expression: {}\n  message: {}\n",
        serde_json::to_string(expression).expect("json string"),
        serde_json::to_string(message).expect("json string"),
    );
    SourceFile { path: "policies/fuzzed.yaml".into(), bytes: text.into_bytes() }
}

fn rendered_example() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let snapshot = mcp_gitops::source::from_dir(&common::root().join("examples/platform")).expect("example");
        let state = mcp_gitops::validate::validate(mcp_gitops::load::load(snapshot), NOW.parse().expect("time"));
        let (_, document) = gateway::render_all(&state).into_iter().next().expect("a rendered policy");
        gateway::revision::indented_json(&document)
    })
}

fn trust() -> impl Strategy<Value = String> {
    prop::sample::select(&["", "low", "medium", "high", " HIGH ", "ultra"][..]).prop_map(String::from)
}

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(&["", " ", "a", "b", "t", "refund", "\u{202e}x", "a/b"][..]).prop_map(String::from)
}

proptest! {
    #![proptest_config(ProptestConfig { max_shrink_iters: 200, ..common::properties::config("fuzz", cases()) })]

    #[test]
    fn mutated_corpus_files_never_panic_the_loader(
        file in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit_strategy(), 1..12),
    ) {
        let donors = corpus("yaml");
        let (rel, original) = &donors[file.index(donors.len())];
        let bytes = apply_edits(original.clone(), &edits, donors);
        let (diagnostics, took) = validate_with(vec![SourceFile { path: placed(rel), bytes }]);
        prop_assert!(took < CASE_LIMIT, "{rel} with {edits:?} took {took:?}");
        prop_assert!(diagnostics.iter().all(|d| d.line >= 1 && d.column >= 1));
    }

    #[test]
    fn yaml_built_from_hostile_fragments_never_panics_the_loader(
        pieces in prop::collection::vec(prop::sample::select(FRAGMENTS), 0..80),
        metadata in any::<bool>(),
    ) {
        let path = if metadata { "team/.mcp/servers.yaml" } else { "fragments.yaml" };
        let (diagnostics, took) = validate_with(vec![SourceFile { path: path.into(), bytes: pieces.concat().into_bytes() }]);
        prop_assert!(took < CASE_LIMIT, "{pieces:?} took {took:?}");
        prop_assert!(diagnostics.iter().all(|d| d.line >= 1 && d.column >= 1));
    }

    #[test]
    fn mutated_policy_documents_never_panic_the_gateway(
        file in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit_strategy(), 0..8),
        tool in name(),
        agent in name(),
    ) {
        let mut inputs: Vec<(String, Vec<u8>)> = corpus("policy").to_vec();
        inputs.push(("rendered".into(), rendered_example().as_bytes().to_vec()));
        let (rel, original) = &inputs[file.index(inputs.len())];
        let bytes = apply_edits(original.clone(), &edits, &inputs);
        let started = Instant::now();
        if let Ok(document) = serde_json::from_slice::<PolicyDocument>(&bytes) {
            let checked = gateway::check::check(&document);
            if rel == "rendered" && edits.is_empty() {
                prop_assert_eq!(&checked, &Ok(()));
            }
            let document = gateway::check::with_gateway_defaults(document);
            let identity = Identity { agent, ..Identity::default() };
            let decision = gateway::authorize(&document, &identity, "tools/call", &tool, NOW.parse().expect("time"));
            prop_assert!(!decision.reason.is_empty());
            let _ = gateway::matrix(&mcp_gitops::model::ObjectId {
                kind: mcp_gitops::model::Kind::Server, namespace: "n".into(), name: "s".into() }, &document, NOW.parse().expect("time"));
        }
        prop_assert!(started.elapsed() < CASE_LIMIT);
    }

    #[test]
    fn generated_policy_documents_are_checked_and_decided_without_panic(
        tools in prop::collection::vec((name(), trust(), prop::sample::select(&["", "read", "write", "destructive", "delete"][..])), 0..5),
        grants in prop::collection::vec((name(), name(), trust(), prop::collection::vec(prop::sample::select(&["read", "write", "", "x"][..]), 0..3),
            prop::collection::vec((name(), prop::sample::select(&["", "allow", "deny", "maybe"][..]), trust()), 0..3), any::<bool>()), 0..5),
        sessions in prop::collection::vec((name(), name(), trust(), any::<bool>(), prop::sample::select(&["", "2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z", "soon"][..])), 0..4),
        mode in prop::sample::select(&["", "allow-list", "observe", "other"][..]),
        default_decision in prop::sample::select(&["", "allow", "deny", "other"][..]),
        identity in (name(), name(), name(), name()),
        tool in name(),
    ) {
        use mcp_gitops::gateway::document::*;
        let mut document = PolicyDocument {
            server: ServerInfo { name: "s".into(), namespace: "n".into(), ..ServerInfo::default() },
            policy: Some(PolicyConfig { mode: mode.into(), default_decision: default_decision.into(), ..PolicyConfig::default() }),
            tools: tools.into_iter().map(|(name, required_trust, side_effect)| ToolPolicy { name, required_trust, side_effect: side_effect.into(), ..ToolPolicy::default() }).collect(),
            grants: grants.into_iter().map(|(name, agent_id, max_trust, effects, rules, disabled)| GrantPolicy {
                name, agent_id, max_trust, disabled,
                allowed_side_effects: effects.into_iter().map(String::from).collect(),
                tool_rules: rules.into_iter().map(|(name, decision, required_trust)| ToolRulePolicy { name, decision: decision.into(), required_trust }).collect(),
                ..GrantPolicy::default()
            }).collect(),
            sessions: sessions.into_iter().map(|(name, agent_id, consented_trust, revoked, expires_at)| SessionPolicy {
                name, agent_id, consented_trust, revoked, expires_at: expires_at.into(), ..SessionPolicy::default()
            }).collect(),
            ..PolicyDocument::default()
        };
        gateway::revision::stamp(&mut document);
        let checked = gateway::check::check(&document);
        // The revision is right by construction: a refusal names a rule, never the revision.
        if let Err(reason) = &checked {
            use gateway::check::Refusal;
            prop_assert!(!matches!(reason, Refusal::RevisionRequired | Refusal::RevisionMismatch { .. }), "{reason}");
        }
        // What the check accepts survives the JSON round trip unchanged (the ConfigMap payload).
        let text = gateway::revision::indented_json(&document);
        let parsed: PolicyDocument = serde_json::from_str(&text).expect("own output parses");
        prop_assert_eq!(gateway::check::check(&parsed), checked);
        let identity = Identity { human: identity.0, agent: identity.1, team: identity.2, session: identity.3 };
        let document = gateway::check::with_gateway_defaults(parsed);
        let first = gateway::authorize(&document, &identity, "tools/call", &tool, NOW.parse().expect("time"));
        prop_assert_eq!(&first, &gateway::authorize(&document, &identity, "tools/call", &tool, NOW.parse().expect("time")));
        prop_assert_eq!(first.allowed, first.status == 200, "{:?}", first);
    }

    #[test]
    fn random_guardrail_expressions_never_panic_validation(expression in cel_strategy(), message in cel_strategy()) {
        let message = format!("m {{{{ {message} }}}} e");
        let (diagnostics, took) = validate_with(vec![guardrail_file(&expression, &message)]);
        prop_assert!(took < CASE_LIMIT, "{expression:?} took {took:?}");
        prop_assert!(diagnostics.iter().all(|d| d.line >= 1 && d.column >= 1));
    }
}
