//! Load: a source snapshot -> the desired state. Decodes files, parses YAML with positions,
//! recognises `.mcp` metadata (converted to MCPServer), the three kinds anywhere (multi-document
//! files included) and `mcp-gitops.yaml`. Reports what it cannot load and goes on with the rest.
//! Reads nothing: the snapshot already holds the bytes; its only I/O is writing what it parsed to
//! the cache (`Pack::write_now`), beside the work.

pub mod metadata;
mod mistake;
pub mod slice;
pub mod yaml;

use crate::cache::{Cache, Key, Pack};
use crate::model::object::{GROUP, LaterSpans, Spans, pointer_to_path};
use crate::model::{Code, DesiredState, Diagnostic, Kind, Object, Origin, Pos, RepoConfig, spelling};
use crate::schema::schemas;
use crate::source::Snapshot;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use crate::model::CONFIG_FILE;

/// A parsed document that is not one of the managed objects but is still checked: `.mcp`
/// metadata (schema, secrets) and documents of other kinds (secrets).
#[derive(Debug, Clone)]
pub struct RawDocument {
    pub file: String,
    pub value: Value,
    pub spans: Arc<Spans>,
}

#[derive(Debug, Default, Clone)]
pub struct Loaded {
    pub state: DesiredState,
    pub metadata: Vec<RawDocument>,
    pub others: Vec<RawDocument>,
    /// GuardrailPolicy documents found in the repository (or added from policy directories).
    pub policies: Vec<RawDocument>,
    /// The cache key of each file parsed with the cache on (`Key::file`): what the cache keys
    /// the checks of its documents by.
    pub keys: HashMap<String, Key>,
}

pub const POLICY_KIND: &str = "GuardrailPolicy";

/// Files per unit of parallel parsing (a platform repository has one file per server or team).
const FILES_PER_CHUNK: usize = 8;

pub fn load(snapshot: Snapshot) -> Loaded {
    load_sharing(snapshot, None, &Cache::off())
}

/// `load`, taking each file's documents from `cache` when it has them (and keeping there those
/// it parses).
pub fn load_cached(snapshot: Snapshot, cache: &Cache) -> Loaded {
    load_sharing(snapshot, None, cache)
}

/// The state `load(snapshot).state` is, taking from `previous` (another snapshot's state as
/// loaded, not yet validated) what it made of each file both have byte for byte instead of
/// parsing it again: a plan's base shares all but the changed files with the desired state.
/// Exact, because loading a file depends on its path, its text and the default namespace alone
/// (a file either side ignores is not loaded there; with another default namespace nothing is
/// taken). Only the state is made: the documents that are not objects (policies, metadata) of the
/// files taken are not.
pub fn state_sharing(snapshot: Snapshot, previous: &DesiredState, cache: &Cache) -> DesiredState {
    load_sharing(snapshot, Some(previous), cache).state
}

fn load_sharing(snapshot: Snapshot, previous: Option<&DesiredState>, cache: &Cache) -> Loaded {
    let mut loaded = Loaded::default();
    loaded.state.source = snapshot.label;
    loaded.state.revision = snapshot.revision;
    loaded.state.diagnostics = snapshot.diagnostics;

    let mut files = Vec::with_capacity(snapshot.files.len());
    for file in snapshot.files {
        match String::from_utf8(file.bytes) {
            Ok(text) => files.push((file.path, text)),
            Err(e) => loaded.state.diagnostics.push(not_utf8(&file.path, e.as_bytes(), e.utf8_error().valid_up_to())),
        }
    }

    if let Some((_, text)) = files.iter().find(|(path, _)| path == CONFIG_FILE) {
        loaded.state.config = load_config(text, &mut loaded.state.diagnostics);
    }
    let slice = match &snapshot.cluster {
        Some(name) => slice::select(&mut loaded.state.config, name, &mut loaded.state.diagnostics),
        None => slice::Slice::Every,
    };
    // A document without a namespace takes the default one: another default changes every such object.
    let previous = previous.filter(|p| p.config.default_namespace() == loaded.state.config.default_namespace());
    let ignore = ignore_set(&loaded.state.config.ignore, &mut loaded.state.diagnostics);
    loaded.state.diagnostics.retain(|d| d.file == CONFIG_FILE || (!ignore.is_match(&d.file) && slice.holds(&d.file)));
    let files: Vec<(String, Arc<str>)> = files
        .into_iter()
        .filter(|(path, _)| path != CONFIG_FILE && !ignore.is_match(path) && slice.holds(path))
        .map(|(p, t)| (p, Arc::from(t)))
        .collect();
    // Where each file comes in a full load: what is taken and what is parsed are put back in that order.
    let rank: HashMap<String, usize> = files.iter().enumerate().map(|(i, (path, _))| (path.clone(), i)).collect();
    let taken = |path: &str, text: &str| previous.and_then(|p| p.sources.get(path)).is_some_and(|t| **t == *text);
    let (same, new): (Vec<_>, Vec<_>) = files.into_iter().partition(|(path, text)| taken(path, text));
    if let Some(previous) = previous {
        take(&mut loaded.state, previous, &same.iter().map(|(path, _)| path.as_str()).collect());
    }
    // Parsing is most of the loading and needs nothing but the file: spread it over the cores.
    let parsed = crate::parallel::ordered_map(&new, FILES_PER_CHUNK, |(path, text)| parse(path, text, &cache.files));
    // Every file is parsed: the files pack is complete, and is written on another core while the
    // documents become objects here (`Cache::save` reports a failure). No thread without a file.
    std::thread::scope(|scope| {
        if cache.files.is_on_disk() {
            scope.spawn(|| cache.files.write_now());
        }
        for ((path, text), (key, Parsed { documents, mut diagnostics })) in new.into_iter().zip(parsed) {
            if let Some(key) = key {
                loaded.keys.insert(path.clone(), key);
            }
            // Read only when there is something to redact: every file's every line, at each load.
            if !diagnostics.is_empty() && holds_secret(&text) {
                // A syntax problem in a Secret would otherwise show its data line by line.
                diagnostics.iter_mut().for_each(|d| d.redact_source = true);
            }
            loaded.state.diagnostics.extend(diagnostics);
            for Document { value, pos, items, spans, mut ambiguous, tagged_key } in documents {
                // What YAML readers read differently is refused where it becomes cluster state:
                // objects (and anything that names a kind) and `.mcp` metadata. A CI workflow's
                // merge keys or GitLab's `!reference` tags are not ours to refuse.
                if is_metadata(&path) || tagged_key || value.get("kind").is_some() || value.get("apiVersion").is_some() {
                    if !ambiguous.is_empty() && holds_secret(&text) {
                        ambiguous.iter_mut().for_each(|d| d.redact_source = true);
                    }
                    loaded.state.diagnostics.extend(ambiguous);
                }
                let spans = Arc::new(spans);
                if is_metadata(&path) {
                    load_metadata(&mut loaded, &path, value, spans, &items);
                } else {
                    load_manifest(&mut loaded, &path, value, spans, pos);
                }
            }
            loaded.state.sources.insert(path, text);
        }
    });
    if previous.is_some() {
        // By file, then as each file has them.
        let of = |file: &str| rank.get(file).copied().unwrap_or(usize::MAX);
        loaded.state.objects.sort_by_key(|o| of(&o.origin.file));
        let first = loaded.state.diagnostics.iter().position(|d| rank.contains_key(&d.file)).unwrap_or(0);
        loaded.state.diagnostics[first..].sort_by_key(|d| of(&d.file));
    }
    loaded
}

/// A document of a file as loading uses it (the cache keeps all but the span map, which is made
/// again from the text if a position is asked for).
#[derive(serde::Serialize, serde::Deserialize)]
struct Document {
    value: Value,
    pos: Pos,
    /// The line of each item of the document's `servers` list (`.mcp` metadata): all that
    /// loading asks of the span map.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    items: Vec<usize>,
    #[serde(skip)]
    spans: Spans,
    /// `yaml_ambiguous`: what in this document YAML readers read differently.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ambiguous: Vec<Diagnostic>,
    /// A key of it is tagged: it may be an object to kubectl whatever its keys are here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    tagged_key: bool,
}

/// What parsing a file made: its documents and its syntax problems.
#[derive(serde::Serialize, serde::Deserialize)]
struct Parsed {
    documents: Vec<Document>,
    diagnostics: Vec<Diagnostic>,
}

/// A file parsed, or taken from `cache` when it has it (and kept there when it had not), with
/// its key when the cache is on. A parse depends on the path and the text alone. The span maps
/// of its documents are made when a position is first asked for (a diagnostic), except for
/// `.mcp` metadata, whose loading asks for the line of every server: building every map was most
/// of a parse, and most files never need one.
fn parse(path: &str, text: &Arc<str>, cache: &Pack) -> (Option<Key>, Parsed) {
    let key = cache.is_on().then(|| Key::file(path, text.as_bytes()));
    let lazily = |documents: &mut [Document]| {
        let (path, text) = (path.to_string(), text.clone());
        let later = Arc::new(LaterSpans::new(move || yaml::parse(&path, &text).0.into_iter().map(|d| d.spans).collect()));
        for (i, document) in documents.iter_mut().enumerate() {
            document.spans = Spans::Later(later.clone(), i);
        }
    };
    if let Some(mut parsed) = key.and_then(|key| cache.get::<Parsed>(&key)) {
        lazily(&mut parsed.documents);
        return (key, parsed);
    }
    let metadata = is_metadata(path);
    let (documents, diagnostics) = if metadata { yaml::parse(path, text) } else { yaml::parse_values(path, text) };
    let documents = documents
        .into_iter()
        .map(|d| {
            let items = if metadata { d.value.get("servers").and_then(Value::as_array).map_or(0, Vec::len) } else { 0 };
            let items = (0..items).map(|i| d.spans.values.get(&format!("/servers/{i}")).map_or(1, |pos| pos.line)).collect();
            Document { value: d.value, pos: d.pos, items, spans: Spans::Made(d.spans), ambiguous: d.ambiguous, tagged_key: d.tagged_key }
        })
        .collect();
    let mut parsed = Parsed { documents, diagnostics };
    if let Some(key) = key.filter(|_| !parsed.diagnostics.iter().any(|d| d.redact_source)) {
        cache.put(key, &parsed);
    }
    if !metadata {
        lazily(&mut parsed.documents);
    }
    (key, parsed)
}

/// `.mcp/<file>`: server metadata, at any depth.
fn is_metadata(path: &str) -> bool {
    path.split('/').rev().nth(1) == Some(".mcp")
}

/// Copies `previous`'s objects, diagnostics and texts of the files `paths` into `state`.
fn take(state: &mut DesiredState, previous: &DesiredState, paths: &HashSet<&str>) {
    state.objects.extend(previous.objects.iter().filter(|o| paths.contains(o.origin.file.as_str())).cloned());
    state.diagnostics.extend(previous.diagnostics.iter().filter(|d| paths.contains(d.file.as_str())).cloned());
    state.sources.extend(previous.sources.iter().filter(|(path, _)| paths.contains(path.as_str())).map(|(p, t)| (p.clone(), t.clone())));
}

/// Whether a file declares a `kind: Secret` document, read from the text so that a document
/// too broken to parse still counts.
fn holds_secret(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_end();
        line.strip_prefix("kind:").is_some_and(|kind| matches!(kind.trim(), "Secret" | "\"Secret\"" | "'Secret'"))
    })
}

fn not_utf8(path: &str, bytes: &[u8], valid_up_to: usize) -> Diagnostic {
    let before = String::from_utf8_lossy(&bytes[..valid_up_to]);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Diagnostic::error(Code::YamlSyntax, path, Pos { line, column }, format!("file is not valid UTF-8 (byte {valid_up_to})"))
        .hint("save the file as UTF-8; Kubernetes manifests must be UTF-8")
}

/// `mcp-gitops.yaml` read on its own (the trust rules at a base revision), with its problems.
pub fn config(text: &str) -> (RepoConfig, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let config = load_config(text, &mut diagnostics);
    (config, diagnostics)
}

fn load_config(text: &str, diagnostics: &mut Vec<Diagnostic>) -> RepoConfig {
    let (documents, problems) = yaml::parse(CONFIG_FILE, text);
    diagnostics.extend(problems);
    let Some(document) = documents.into_iter().next() else { return RepoConfig::default() };
    let mut broken = Vec::new();
    for error in schemas().config.iter_errors(&document.value) {
        broken.push(error.instance_path().as_str().split('/').nth(1).unwrap_or_default().to_string());
        let mut pointer = error.instance_path().as_str().to_string();
        let mut spans = &document.spans.values;
        if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } = error.kind()
            && let Some(key) = unexpected.first()
        {
            pointer = format!("{pointer}/{}", crate::model::object::pointer_segment(key));
            spans = &document.spans.keys;
        }
        let pos = spans.get(&pointer).or_else(|| document.spans.values.get(error.instance_path().as_str())).copied().unwrap_or_default();
        diagnostics.push(
            Diagnostic::error(Code::SchemaViolation, CONFIG_FILE, pos, error.to_string())
                .path(pointer_to_path(&pointer))
                .hint("see schema/mcp-gitops.schema.json; the other settings still apply"),
        );
    }
    // The settings that are right still apply when others are wrong.
    let Value::Object(mut settings) = document.value else { return RepoConfig::default() };
    settings.retain(|key, _| !broken.contains(key));
    let config: RepoConfig = serde_json::from_value(Value::Object(settings)).unwrap_or_default();
    diagnostics.extend(crate::windows::check(&config.windows, |pointer| document.spans.values.get(pointer).copied()));
    diagnostics.extend(slice::check(&config, |pointer| document.spans.values.get(pointer).copied()));
    config
}

fn ignore_set(globs: &[String], diagnostics: &mut Vec<Diagnostic>) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        match Glob::new(glob) {
            Ok(glob) => {
                builder.add(glob);
            }
            Err(e) => diagnostics.push(
                Diagnostic::error(
                    Code::SchemaViolation,
                    CONFIG_FILE,
                    Pos { line: 1, column: 1 },
                    format!("ignore pattern {glob:?} is not a valid glob: {e}"),
                )
                .path("ignore")
                .hint("use globs such as \"drafts/**\" or \"**/*.draft.yaml\""),
            ),
        }
    }
    builder.build().unwrap_or_else(|_| GlobSet::empty())
}

/// `lines`: where each item of `servers` starts.
fn load_metadata(loaded: &mut Loaded, path: &str, value: Value, spans: Arc<Spans>, lines: &[usize]) {
    if let Some(Value::Array(servers)) = value.get("servers") {
        for (i, entry) in servers.iter().enumerate() {
            let Value::Object(entry) = entry else { continue };
            let body = metadata::server_to_manifest(entry);
            let prefix = format!("/servers/{i}");
            let line = lines.get(i).copied().unwrap_or(1);
            let origin = Origin { file: path.to_string(), spans: spans.clone(), prefix, from_metadata: true, line };
            if let Some(object) = Object::new(Kind::Server, body, origin) {
                loaded.state.objects.push(object);
            }
        }
    }
    loaded.metadata.push(RawDocument { file: path.to_string(), value, spans });
}

fn load_manifest(loaded: &mut Loaded, path: &str, mut value: Value, spans: Arc<Spans>, pos: Pos) {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    let ours = value.get("apiVersion").and_then(Value::as_str).is_some_and(|v| v.split_once('/').is_some_and(|(group, _)| group == GROUP));
    if ours && Kind::from_name(&kind).is_none() {
        // A misspelled kind of our own group: ignoring it would delete the live object.
        loaded.state.diagnostics.push(not_a_kind_of_ours(path, &kind, &spans, pos));
        loaded.others.push(RawDocument { file: path.to_string(), value, spans });
        return;
    }
    if kind.is_empty() {
        // Not a Kubernetes object (CI config, data...): not ours to judge, but scanned for credentials.
        loaded.others.push(RawDocument { file: path.to_string(), value, spans });
        return;
    }
    if kind == POLICY_KIND {
        loaded.policies.push(RawDocument { file: path.to_string(), value, spans });
        return;
    }
    let Some(managed) = Kind::from_name(&kind) else {
        let key_pos = spans.values.get("/kind").copied().unwrap_or(pos);
        if kind == "Secret" {
            loaded.state.diagnostics.push(
                Diagnostic::error(Code::SecretInRepo, path, key_pos, "a Secret manifest is stored in the repository")
                    .path("kind")
                    .hint("keep credentials out of git: create the Secret in the cluster (or use sealed/external secrets) and reference it with upstreamTokenSecretRef")
                    .redacted(),
            );
        } else {
            loaded.state.diagnostics.push(
                Diagnostic::warning(
                    Code::UnknownKind,
                    path,
                    key_pos,
                    format!("kind {kind} is not managed by mcp-gitops; the document is ignored"),
                )
                .path("kind")
                .hint("mcp-gitops manages MCPServer, MCPAccessGrant and MCPAgentSession; apply other objects with their own tooling"),
            );
            loaded.others.push(RawDocument { file: path.to_string(), value, spans });
        }
        return;
    };
    if let Some(Value::Object(metadata)) = value.get_mut("metadata")
        && metadata.get("namespace").and_then(Value::as_str).is_none_or(str::is_empty)
    {
        metadata.insert("namespace".into(), Value::String(loaded.state.config.default_namespace().to_string()));
    }
    let origin = Origin { file: path.to_string(), spans, prefix: String::new(), from_metadata: false, line: pos.line };
    if let Some(object) = Object::new(managed, value, origin) {
        loaded.state.objects.push(object);
    }
}

/// `unknown_kind`, as an error: a document of the `mcpruntime.org` group whose kind is missing or
/// none of the group's, with the closest kind when one is near.
fn not_a_kind_of_ours(path: &str, kind: &str, spans: &Spans, pos: Pos) -> Diagnostic {
    let kinds = Kind::ALL.map(Kind::as_str);
    let (at, message) = match kind {
        "" => (spans.keys.get("/apiVersion").copied().unwrap_or(pos), "a document of the mcpruntime.org API group has no kind".to_string()),
        kind => (spans.values.get("/kind").copied().unwrap_or(pos), format!("kind {kind} is not a kind of the mcpruntime.org API group")),
    };
    let hint = match spelling::closest(kind, kinds) {
        Some(close) => format!("did you mean {close}?"),
        None => format!("the group's kinds are {}", kinds.join(", ")),
    };
    let message =
        format!("{message}: ignored, it would leave the object out of every plan, and prune it from the cluster if applied before");
    Diagnostic::error(Code::UnknownKind, path, at, message).path("kind").hint(hint)
}

/// Adds the GuardrailPolicy documents of `snapshot` (a policy directory) to `loaded`; other
/// documents there are ignored. File paths are reported as `<dir>/<file>`; their texts are kept
/// (for diagnostics to show lines of) only with `show_lines`.
pub fn add_policies(loaded: &mut Loaded, dir: &str, snapshot: Snapshot, show_lines: bool) {
    loaded.state.diagnostics.extend(snapshot.diagnostics);
    for file in snapshot.files {
        let path = format!("{}/{}", dir.trim_end_matches('/'), file.path);
        let Ok(text) = String::from_utf8(file.bytes) else { continue };
        let (documents, diagnostics) = yaml::parse(&path, &text);
        loaded.state.diagnostics.extend(diagnostics);
        for document in documents.into_iter().filter(|d| d.value.get("kind").and_then(Value::as_str) == Some(POLICY_KIND)) {
            loaded.policies.push(RawDocument { file: path.clone(), value: document.value, spans: Arc::new(Spans::Made(document.spans)) });
        }
        loaded.state.sources.insert(path, Arc::from(if show_lines { text.as_str() } else { "" }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;
    use std::path::Path;

    fn snapshot(files: &[(&str, &[u8])]) -> Snapshot {
        Snapshot {
            files: files.iter().map(|(p, b)| SourceFile { path: p.to_string(), bytes: b.to_vec() }).collect(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn documents_are_found_by_content_and_metadata_by_folder() {
        let loaded = load(snapshot(&[
            (".mcp/servers.yaml", b"servers:\n  - name: s1\n    namespace: team\n"),
            ("any/where.yaml", b"apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata: {name: g}\nspec: {}\n---\nkind: ConfigMap\n---\nfoo: bar\n"),
        ]));
        let ids: Vec<String> = loaded.state.objects.iter().map(|o| o.id.to_string()).collect();
        assert_eq!(ids, ["MCPServer/team/s1", "MCPAccessGrant/mcp-servers/g"]);
        let codes: Vec<Code> = loaded.state.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, [Code::UnknownKind]);
    }

    #[test]
    fn a_broken_file_does_not_stop_the_others() {
        let loaded = load(snapshot(&[
            ("a.yaml", b"\xff\xfe not utf8"),
            ("b.yaml", b"kind: MCPAccessGrant\nmetadata: {name: b}\n"),
            ("c.yaml", b"kind: [unclosed\n"),
        ]));
        assert_eq!(loaded.state.objects.len(), 1);
        let codes: Vec<(&str, Code)> = loaded.state.diagnostics.iter().map(|d| (d.file.as_str(), d.code)).collect();
        assert_eq!(codes, [("a.yaml", Code::YamlSyntax), ("c.yaml", Code::YamlSyntax)]);
    }

    #[test]
    fn problems_in_a_secret_never_show_its_lines() {
        let loaded = load(snapshot(&[(
            "s.yaml",
            b"apiVersion: v1\nkind: Secret\nstringData:\n  password: hunter2\n  password: hunter2\n---\nkind: 'Secret'\ndata: {a: [\n",
        )]));
        let diagnostics = &loaded.state.diagnostics;
        assert!(diagnostics.iter().any(|d| d.code == Code::YamlSyntax && d.message.contains("duplicate key")), "{diagnostics:?}");
        assert!(diagnostics.iter().all(|d| d.redact_source), "{diagnostics:?}");
    }

    #[test]
    fn config_sets_the_default_namespace_and_ignores() {
        let loaded = load(snapshot(&[
            ("mcp-gitops.yaml", b"defaultNamespace: team-a\nignore: [\"drafts/**\"]\n"),
            ("drafts/x.yaml", b"kind: MCPAccessGrant\nmetadata: {name: x}\n"),
            ("g.yaml", b"kind: MCPAccessGrant\nmetadata: {name: g}\n"),
        ]));
        let ids: Vec<String> = loaded.state.objects.iter().map(|o| o.id.to_string()).collect();
        assert_eq!(ids, ["MCPAccessGrant/team-a/g"]);
    }

    /// What a load makes, as comparable text: objects with their origins and positions (the
    /// span maps sorted), diagnostics, file texts and the configuration.
    fn made(state: &DesiredState) -> String {
        let objects: Vec<String> = state
            .objects
            .iter()
            .map(|o| {
                let spans: std::collections::BTreeMap<&String, &Pos> = o.origin.spans.values.iter().collect();
                let keys: std::collections::BTreeMap<&String, &Pos> = o.origin.spans.keys.iter().collect();
                format!(
                    "{} {} {}:{} {} {} {spans:?} {keys:?}",
                    o.id, o.body, o.origin.file, o.origin.line, o.origin.prefix, o.origin.from_metadata
                )
            })
            .collect();
        format!("{objects:#?}\n{:#?}\n{:?}\n{:?}", state.diagnostics, state.sources, state.config)
    }

    const GRANT: &str =
        "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: g\n  namespace: ns\nspec:\n  maxTrust: low\n";
    const FILES: &[&[u8]] = &[
        GRANT.as_bytes(),
        b"apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: default-ns\nspec: {}\n",
        b"apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAgentSession\nmetadata:\n  name: s\n  namespace: ns\n---\nkind: Other\n",
        b"kind: MCPAccessGrant\nmetadata: {name: [unclosed\n",
        b"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {token: c2VjcmV0}\n",
        b"servers:\n  - name: payments-mcp\n    namespace: ns\n    tools: [{name: t, sideEffect: read}]\n",
        b"\xff\xfe not utf-8\n",
        b"# nothing\n",
    ];
    const PATHS: &[&str] = &["a.yaml", "b/c.yaml", "b/.mcp/servers.yaml", "d.yml", "skip/e.yaml"];
    const CONFIGS: &[&[u8]] = &[b"ignore: ['skip/**']\n", b"{}\n", b"ignore: [3\n", b"defaultNamespace: team-b\n"];

    fn repository(files: &[(usize, usize)], config: Option<usize>) -> Snapshot {
        let mut entries: std::collections::BTreeMap<&str, &[u8]> = files.iter().map(|&(p, f)| (PATHS[p], FILES[f])).collect();
        if let Some(c) = config {
            entries.insert(CONFIG_FILE, CONFIGS[c]);
        }
        let entries: Vec<(&str, &[u8])> = entries.into_iter().collect();
        snapshot(&entries)
    }

    proptest::proptest! {
        /// The base of a plan loaded by taking the desired state's unchanged files is what a
        /// full load of the base makes, whatever changed between them (files added, changed,
        /// removed, moved; broken and fixed; the ignore rules and the default namespace).
        #[test]
        fn sharing_files_with_another_state_loads_what_a_full_load_does(
            before in proptest::collection::vec((0..PATHS.len(), 0..FILES.len()), 0..6),
            after in proptest::collection::vec((0..PATHS.len(), 0..FILES.len()), 0..6),
            kept in proptest::collection::vec(proptest::bool::ANY, 6),
            configs in (proptest::option::of(0..CONFIGS.len()), proptest::option::of(0..CONFIGS.len())),
        ) {
            // The base keeps some of the desired files as they are, and has others of its own.
            let base_files: Vec<(usize, usize)> =
                after.iter().zip(&kept).filter(|(_, k)| **k).map(|(f, _)| *f).chain(before.iter().copied()).collect();
            let desired = load(repository(&after, configs.0)).state;
            let full = load(repository(&base_files, configs.1)).state;
            let shared = state_sharing(repository(&base_files, configs.1), &desired, &Cache::off());
            proptest::prop_assert_eq!(made(&shared), made(&full));
        }

        /// A load that takes files from the cache (kept by the load of another repository that
        /// shares some of them) makes what a load without one does, positions included.
        #[test]
        fn a_load_from_the_cache_is_a_load(
            before in proptest::collection::vec((0..PATHS.len(), 0..FILES.len()), 0..6),
            after in proptest::collection::vec((0..PATHS.len(), 0..FILES.len()), 0..6),
            configs in (proptest::option::of(0..CONFIGS.len()), proptest::option::of(0..CONFIGS.len())),
        ) {
            let dir = tempfile::tempdir().map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let cache = Cache::open(dir.path(), Path::new("repository"));
            load_cached(repository(&before, configs.0), &cache);
            cache.save().map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let cache = Cache::open(dir.path(), Path::new("repository"));
            let cached = load_cached(repository(&after, configs.1), &cache).state;
            proptest::prop_assert_eq!(made(&cached), made(&load(repository(&after, configs.1)).state));
        }
    }
}
