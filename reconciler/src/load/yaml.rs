//! YAML text -> JSON values with a position for every node.
//!
//! saphyr-parser does the parsing; this file only builds a tree from its events and resolves
//! plain scalars the way kubectl does (sigs.k8s.io/yaml, YAML 1.1: `yes` is true, `0644` is
//! octal), so that a document means here what it means to the API server. Duplicate keys, alias
//! expansion past a budget and nesting past a depth limit are reported, never fatal to the run.
//!
//! Constructs that YAML readers read differently (merge keys `<<`, tags such as `!!binary`) are
//! noted on their document as `yaml_ambiguous`: the loader refuses them in the documents it
//! applies, where kubectl would read another object than the one reviewed.

use crate::model::object::{SpanMap, pointer_segment};
use crate::model::{Code, Diagnostic, Pos};
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span, SpannedEventReceiver, Tag};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Nodes that alias expansion may add to one file ("billion laughs" guard).
pub const ALIAS_BUDGET: usize = 10_000;
/// Deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 64;

/// One YAML document of a file, converted to JSON.
#[derive(Debug)]
pub struct YamlDocument {
    pub value: Value,
    pub spans: SpanMap,
    pub pos: Pos,
    /// `yaml_ambiguous`: what in this document YAML readers read differently (the value holds
    /// mcp-gitops' reading).
    pub ambiguous: Vec<Diagnostic>,
    /// Whether a key is tagged: `!!binary a2luZA==` is the key `kind` to kubectl, so such a
    /// document may be an object to kubectl whatever its keys are here.
    pub tagged_key: bool,
}

#[derive(Debug, Clone)]
enum NodeKind {
    Scalar { text: String, style: ScalarStyle, tag: Option<Tag> },
    Sequence(Vec<Node>),
    Mapping(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
struct Node {
    kind: NodeKind,
    pos: Pos,
    /// Nodes in this subtree, to charge alias expansion against the budget.
    size: usize,
}

/// The position just after the last character, with line breaks counted as YAML counts them
/// (LF, CRLF, CR).
fn end_of(text: &str) -> Pos {
    let mut end = Pos { line: 1, column: 1 };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' || (c == '\r' && chars.peek() != Some(&'\n')) {
            end = Pos { line: end.line + 1, column: 1 };
        } else {
            end.column += 1;
        }
    }
    end
}

/// Parses every document of `text`. Problems become diagnostics against `file`; documents
/// parsed before a syntax error are kept.
pub fn parse(file: &str, text: &str) -> (Vec<YamlDocument>, Vec<Diagnostic>) {
    parse_with(file, text, true)
}

/// `parse` without the span maps (they are empty): the same values, positions of documents and
/// problems, in a good part of the time and memory. The maps can be made later with `parse`.
pub fn parse_values(file: &str, text: &str) -> (Vec<YamlDocument>, Vec<Diagnostic>) {
    parse_with(file, text, false)
}

fn parse_with(file: &str, text: &str, spans: bool) -> (Vec<YamlDocument>, Vec<Diagnostic>) {
    let mut builder = Builder { file, text, end: end_of(text), ..Builder::default() };
    // Events one by one, not `Parser::load`: that one recurses once per nesting level and a few
    // thousand nested block mappings (a 7 MiB file) overflow the stack; here parsing stops at
    // the first problem the builder reports.
    for event in Parser::new_from_str(text) {
        match event {
            Ok((event, span)) => builder.on_event(event, span),
            Err(e) => builder.fail_scan(&e),
        }
        if builder.failed {
            break;
        }
    }
    let mut diagnostics = builder.diagnostics;
    let mut ambiguous = builder.ambiguous;
    let tagged_keys = builder.tagged_keys;
    let documents = builder
        .documents
        .into_iter()
        .enumerate()
        .filter(|(_, node)| !matches!(&node.kind, NodeKind::Scalar { text, style: ScalarStyle::Plain, .. } if is_null(text)))
        .map(|(i, node)| {
            let mut map = SpanMap::default();
            let value = to_json(&node, spans.then(String::new), &mut map, file, &mut diagnostics);
            let ambiguous = ambiguous.remove(&i).unwrap_or_default();
            YamlDocument { value, spans: map, pos: node.pos, ambiguous, tagged_key: tagged_keys.contains(&i) }
        })
        .collect();
    (documents, diagnostics)
}

/// The scalar keys of an open mapping with the index of their entry, and the entries a later
/// duplicate replaced: looked up and removed in one pass, not one per key (a mapping with 20,000
/// keys took seconds).
#[derive(Default)]
struct Keys {
    index: HashMap<String, usize>,
    replaced: HashSet<usize>,
}

#[derive(Default)]
struct Builder<'f> {
    file: &'f str,
    /// The text parsed: a syntax error is told from its lines (`mistake`).
    text: &'f str,
    /// Where the text ends: no position points past it.
    end: Pos,
    documents: Vec<Node>,
    /// Open collections with their anchor id; a mapping holds its pending key, if any, and its keys.
    stack: Vec<(Node, usize, Option<Node>, Keys)>,
    anchors: HashMap<usize, Node>,
    alias_nodes: usize,
    failed: bool,
    diagnostics: Vec<Diagnostic>,
    /// `yaml_ambiguous` notes, by document (its index in `documents`).
    ambiguous: HashMap<usize, Vec<Diagnostic>>,
    /// The documents with a tagged key.
    tagged_keys: HashSet<usize>,
}

impl Builder<'_> {
    /// Where a span or an error starts. saphyr places what it meets at the end of a file with no
    /// final line break on the line after the last; that is the file's end.
    fn pos(&self, at: &Marker) -> Pos {
        if at.line() > self.end.line { self.end } else { Pos { line: at.line(), column: at.col() + 1 } }
    }

    fn fail(&mut self, pos: Pos, message: String, hint: &str) {
        self.failed = true;
        self.stack.clear();
        self.diagnostics.push(Diagnostic::error(Code::YamlSyntax, self.file, pos, message).hint(hint));
    }

    fn fail_scan(&mut self, e: &ScanError) {
        if self.failed {
            return;
        }
        let told = super::mistake::tell(self.text, self.pos(e.marker()), e.info());
        self.fail(told.pos, told.message, &told.hint);
    }

    fn open(&mut self, kind: NodeKind, anchor: usize, span: &Span) {
        let pos = self.pos(&span.start);
        if self.stack.len() >= MAX_DEPTH {
            self.fail(
                pos,
                format!("YAML nesting is deeper than {MAX_DEPTH} levels"),
                "manifests never nest this deep; flatten the document",
            );
            return;
        }
        self.stack.push((Node { kind, pos, size: 1 }, anchor, None, Keys::default()));
    }

    fn close(&mut self) {
        if let Some((mut node, anchor, _, keys)) = self.stack.pop() {
            if let NodeKind::Mapping(entries) = &mut node.kind
                && !keys.replaced.is_empty()
            {
                let mut i = 0;
                entries.retain(|_| {
                    let keep = !keys.replaced.contains(&i);
                    i += 1;
                    keep
                });
            }
            node.size = 1 + match &node.kind {
                NodeKind::Sequence(items) => items.iter().map(|n| n.size).sum(),
                NodeKind::Mapping(entries) => entries.iter().map(|(k, v)| k.size + v.size).sum(),
                NodeKind::Scalar { .. } => 0,
            };
            self.complete(node, anchor);
        }
    }

    /// Notes a construct YAML readers disagree on, on the document being read.
    fn ambiguous(&mut self, pos: Pos, message: String, hint: &str) {
        let document = self.documents.len();
        self.ambiguous.entry(document).or_default().push(Diagnostic::error(Code::YamlAmbiguous, self.file, pos, message).hint(hint));
    }

    /// A tag on a node: kubectl's reader (sigs.k8s.io/yaml) decodes `!!binary` from base64,
    /// resolves `!!int "5"` to a number and reads custom tags as strings; mcp-gitops resolves
    /// the text as if untagged. No tag is needed in a manifest.
    fn tagged(&mut self, tag: Option<&Tag>, span: &Span) {
        if let Some(tag) = tag {
            let shown = if tag.is_yaml_core_schema() { format!("!!{}", tag.suffix) } else { tag.to_string() };
            let message = format!(
                "the tag {shown} is read differently by YAML readers (kubectl decodes !!binary from base64 and resolves other tags by their own rules; mcp-gitops would read the text as if untagged)"
            );
            self.ambiguous(self.pos(&span.start), message, "remove the tag: write the value itself, quoted if it must stay a string");
        }
    }

    /// Whether the next node is a mapping's key.
    fn at_key(&self) -> bool {
        matches!(self.stack.last(), Some((Node { kind: NodeKind::Mapping(_), .. }, _, None, _)))
    }

    /// A plain key that readers read differently. A merge key `<<`: kubectl's reader
    /// (sigs.k8s.io/yaml, goyaml.v2) lets it override the keys written before it, mcp-gitops and
    /// yaml.v3 keep explicit keys, and YAML 1.2 has no merge keys at all. A key that YAML 1.1
    /// resolves to another value (`yes`, `0644`, `~`): kubectl makes the key `true`, `420`,
    /// `null`, mcp-gitops keeps the text.
    fn plain_key(&mut self, text: &str, style: ScalarStyle, span: &Span) {
        if style != ScalarStyle::Plain || !self.at_key() {
            return;
        }
        if text == "<<" {
            return self.ambiguous(
                self.pos(&span.start),
                "merge key <<: YAML readers disagree on what it means (kubectl lets a later << override the keys before it, mcp-gitops keeps the keys written out, YAML 1.2 has no merge keys)".into(),
                "write the keys out instead of merging them; anchors and aliases (&name, *name) alone are fine",
            );
        }
        let read = resolve_scalar(text, style, None);
        let same = match &read {
            Value::String(s) => s == text,
            Value::Number(n) => n.is_i64() && n.to_string() == text,
            _ => false,
        };
        if !same {
            self.ambiguous(
                self.pos(&span.start),
                format!("the key {text} is {read} to kubectl (YAML 1.1) and the text {text:?} to mcp-gitops"),
                "quote the key",
            );
        }
    }

    fn complete(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some((parent, _, pending_key, keys)) = self.stack.last_mut() else {
            self.documents.push(node);
            return;
        };
        match &mut parent.kind {
            NodeKind::Sequence(items) => items.push(node),
            NodeKind::Mapping(entries) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    if let NodeKind::Scalar { text, .. } = &key.kind
                        && let Some(first) = keys.index.insert(text.clone(), entries.len())
                    {
                        let message = format!("duplicate key {text:?} (first defined at line {})", entries[first].0.pos.line);
                        self.diagnostics.push(
                            Diagnostic::error(Code::YamlSyntax, self.file, key.pos, message)
                                .hint("remove one of the two entries; kubectl would silently keep only the last one"),
                        );
                        keys.replaced.insert(first);
                    }
                    entries.push((key, node));
                }
            },
            NodeKind::Scalar { .. } => {}
        }
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder<'_> {
    fn on_event(&mut self, event: Event<'input>, span: Span) {
        if self.failed {
            return;
        }
        match event {
            Event::DocumentStart(_) => self.anchors.clear(),
            Event::Scalar(text, style, anchor, tag) => {
                if tag.is_some() && self.at_key() {
                    self.tagged_keys.insert(self.documents.len());
                }
                self.tagged(tag.as_deref(), &span);
                self.plain_key(&text, style, &span);
                let node = Node {
                    kind: NodeKind::Scalar { text: text.into_owned(), style, tag: tag.map(Cow::into_owned) },
                    pos: self.pos(&span.start),
                    size: 1,
                };
                self.complete(node, anchor);
            }
            Event::SequenceStart(anchor, tag) => {
                self.tagged(tag.as_deref(), &span);
                self.open(NodeKind::Sequence(Vec::new()), anchor, &span)
            }
            Event::MappingStart(anchor, tag) => {
                self.tagged(tag.as_deref(), &span);
                self.open(NodeKind::Mapping(Vec::new()), anchor, &span)
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::Alias(id) => {
                let Some(mut node) = self.anchors.get(&id).cloned() else {
                    return self.fail(
                        self.pos(&span.start),
                        "alias to an unknown anchor".into(),
                        "define the anchor (&name) before using it (*name)",
                    );
                };
                self.alias_nodes += node.size;
                if self.alias_nodes > ALIAS_BUDGET {
                    return self.fail(
                        self.pos(&span.start),
                        format!("alias expansion exceeds {ALIAS_BUDGET} nodes (a YAML alias bomb?)"),
                        "write the repeated content out, or use fewer nested aliases",
                    );
                }
                node.pos = self.pos(&span.start);
                self.complete(node, 0);
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
}

/// The value of `node`; with a `pointer` (the node's), the position of every value and key below
/// it goes into `spans`.
fn to_json(node: &Node, pointer: Option<String>, spans: &mut SpanMap, file: &str, diagnostics: &mut Vec<Diagnostic>) -> Value {
    if let Some(pointer) = &pointer {
        spans.values.insert(pointer.clone(), node.pos);
    }
    let below = |segment: &dyn std::fmt::Display| pointer.as_ref().map(|pointer| format!("{pointer}/{segment}"));
    match &node.kind {
        NodeKind::Scalar { text, style, tag } => resolve_scalar(text, *style, tag.as_ref()),
        NodeKind::Sequence(items) => {
            Value::Array(items.iter().enumerate().map(|(i, item)| to_json(item, below(&i), spans, file, diagnostics)).collect())
        }
        NodeKind::Mapping(entries) => {
            let mut map = Map::new();
            let mut merges = Vec::new();
            for (key, value) in entries {
                let NodeKind::Scalar { text, style, .. } = &key.kind else {
                    diagnostics.push(
                        Diagnostic::error(Code::YamlSyntax, file, key.pos, "a mapping key must be a plain value")
                            .hint("Kubernetes manifests only use string keys"),
                    );
                    continue;
                };
                if text == "<<" && *style == ScalarStyle::Plain {
                    merges.push(value);
                    continue;
                }
                let child = pointer.as_ref().map(|pointer| format!("{pointer}/{}", pointer_segment(text)));
                if let Some(child) = &child {
                    spans.keys.insert(child.clone(), key.pos);
                }
                let value = to_json(value, child, spans, file, diagnostics);
                map.insert(text.clone(), value);
            }
            // YAML merge keys: explicit entries win over merged ones.
            for merge in merges {
                let sources: Vec<&Node> = match &merge.kind {
                    NodeKind::Sequence(items) => items.iter().collect(),
                    _ => vec![merge],
                };
                for source in sources {
                    if let Value::Object(merged) = to_json(source, below(&"<<"), spans, file, diagnostics) {
                        for (k, v) in merged {
                            map.entry(k).or_insert(v);
                        }
                    }
                }
            }
            Value::Object(map)
        }
    }
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Resolves a scalar as sigs.k8s.io/yaml (goyaml.v2, YAML 1.1) would. As there, only a plain
/// scalar that starts with a digit, a sign or a dot can be a number or a date.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    if style != ScalarStyle::Plain || tag.is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str") {
        return Value::String(text.to_string());
    }
    if is_null(text) {
        return Value::Null;
    }
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => return Value::Bool(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if !text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.')) {
        return Value::String(text.to_string());
    }
    if let Some(n) = parse_int(text) {
        return Value::Number(n);
    }
    if let Some(n) = parse_float(text) {
        return n;
    }
    if let Some(ts) = date_only(text) {
        return Value::String(ts);
    }
    Value::String(text.to_string())
}

/// Go's `strconv.ParseInt(s, 0, 64)` after removing `_`: sign, then 0x / 0o / 0b / leading-0 octal.
fn parse_int(text: &str) -> Option<Number> {
    let cleaned = text.replace('_', "");
    let (negative, digits) = match cleaned.as_bytes().first()? {
        b'-' => (true, &cleaned[1..]),
        b'+' => (false, &cleaned[1..]),
        _ => (false, cleaned.as_str()),
    };
    let (radix, digits) = if let Some(d) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = digits.strip_prefix("0o").or_else(|| digits.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = digits.strip_prefix("0b").or_else(|| digits.strip_prefix("0B")) {
        (2, d)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        let value = i64::try_from(magnitude).ok()?.checked_neg()?;
        Some(Number::from(value))
    } else {
        Some(Number::from(magnitude))
    }
}

fn parse_float(text: &str) -> Option<Value> {
    let cleaned = text.replace('_', "");
    let body = cleaned.strip_prefix(['-', '+']).unwrap_or(&cleaned);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (!int.is_empty() || !frac.is_empty())
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
                && !(int.is_empty() && frac.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    if !mantissa_ok || !exponent_ok {
        return None;
    }
    let value: f64 = cleaned.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        return Some(Value::Number(Number::from(value as i64)));
    }
    Number::from_f64(value).map(Value::Number)
}

/// goyaml.v2 reads an unquoted `2030-01-01` as a timestamp, which JSON renders as midnight UTC.
fn date_only(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let shape = b.len() == 10 && b[4] == b'-' && b[7] == b'-' && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    shape.then(|| format!("{text}T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Value {
        let (docs, diagnostics) = parse("t.yaml", text);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        docs.into_iter().next().map(|d| d.value).unwrap_or(Value::Null)
    }

    #[test]
    fn scalars_resolve_like_kubectl() {
        let v = one(
            "a: yes\nb: off\nc: 0644\nd: 08080\ne: 1_000\nf: 0o755\ng: '0644'\nh: 1.5\ni: ~\nj: 2030-01-01\nk: -12\nl: 0x1F\nm: .5\nn: text\no: _1\np: 1.2.3\n",
        );
        assert_eq!(
            v,
            json!({"a": true, "b": false, "c": 420, "d": 8080, "e": 1000, "f": 493, "g": "0644", "h": 1.5, "i": null,
                   "j": "2030-01-01T00:00:00Z", "k": -12, "l": 31, "m": 0.5, "n": "text", "o": "_1", "p": "1.2.3"})
        );
    }

    #[test]
    fn values_alone_are_the_values_of_a_full_parse() {
        let text = "a: &x {b: 1}\nc: *x\n<<: {d: [2, 3]}\n---\nkind: [unclosed\n";
        let (full, full_problems) = parse("f.yaml", text);
        let (values, problems) = parse_values("f.yaml", text);
        assert_eq!(problems, full_problems);
        assert_eq!(values.len(), full.len());
        for (v, f) in values.iter().zip(&full) {
            assert_eq!((&v.value, v.pos), (&f.value, f.pos));
            assert!(v.spans.values.is_empty() && v.spans.keys.is_empty());
            assert!(!f.spans.values.is_empty());
        }
    }

    #[test]
    fn every_value_and_key_has_a_position() {
        let (docs, _) = parse("t.yaml", "---\nkind: A\n---\nkind: B\nspec:\n  rules:\n    - name: x\n");
        assert_eq!(docs.len(), 2);
        let spans = &docs[1].spans;
        assert_eq!(spans.values["/spec/rules/0/name"], Pos { line: 7, column: 13 });
        assert_eq!(spans.keys["/spec/rules/0/name"], Pos { line: 7, column: 7 });
        assert_eq!(spans.keys["/kind"], Pos { line: 4, column: 1 });
    }

    #[test]
    fn duplicate_keys_are_reported_with_both_lines() {
        let (docs, diagnostics) = parse("t.yaml", "a: 1\nb: 2\na: 3\n");
        assert_eq!(docs[0].value, json!({"b": 2, "a": 3}));
        assert_eq!(diagnostics.len(), 1);
        assert_eq!((diagnostics[0].line, diagnostics[0].column), (3, 1));
        assert!(diagnostics[0].message.contains("first defined at line 1"));
    }

    #[test]
    fn alias_bombs_stop_at_the_budget() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let (_, diagnostics) = parse("bomb.yaml", &text);
        assert_eq!(diagnostics.len(), 1);
        assert!(diagnostics[0].message.contains("alias expansion"), "{}", diagnostics[0].message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let (_, diagnostics) = parse("deep.yaml", &text);
        assert_eq!(diagnostics.len(), 1);
        assert!(diagnostics[0].message.contains("nesting") || diagnostics[0].message.contains("recursion"), "{}", diagnostics[0].message);
    }

    #[test]
    fn thousands_of_nested_block_mappings_do_not_overflow_the_stack() {
        let text: String = (0..3_000).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        // The stack of a tokio worker or a test thread, smaller than a main thread's.
        let diagnostics = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || parse("deep.yaml", &text).1)
            .expect("thread")
            .join()
            .expect("no overflow");
        assert_eq!(diagnostics.len(), 1);
        assert!(diagnostics[0].message.contains("nesting is deeper"), "{}", diagnostics[0].message);
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let (_, diagnostics) = parse("bad.yaml", "a:\n  b: 1\n c: 2\n");
        assert_eq!(diagnostics[0].code, Code::YamlSyntax);
        assert_eq!(diagnostics[0].line, 3);
    }

    #[test]
    fn an_error_at_the_end_of_a_file_without_a_final_line_break_points_into_the_file() {
        for (text, end) in [("a: [", (1, 5)), ("%YAML 1.2\n%YAM-", (2, 6)), ("a: [\r", (2, 1))] {
            let (_, diagnostics) = parse("end.yaml", text);
            assert_eq!((diagnostics[0].line, diagnostics[0].column), end, "{text:?}: {diagnostics:?}");
        }
        // Nor does an empty scalar there: the key of "?  ", the value of "a:".
        for text in ["?  ", "a:"] {
            let (docs, _) = parse("end.yaml", text);
            let spans = &docs[0].spans;
            assert!(spans.keys.values().chain(spans.values.values()).all(|p| p.line == 1), "{text:?}: {spans:?}");
        }
    }

    #[test]
    fn many_keys_and_many_duplicates_load_in_linear_time() {
        // Ten times the keys take about ten times as long, not a hundred: a ratio within one run,
        // the best of three each, holds on a busy machine where a fixed limit does not.
        let timed = |count: usize| {
            let keys: String = (0..count).map(|i| format!("k{i}: {i}\n")).collect();
            let text = format!("{keys}{keys}");
            let best = (0..3).map(|_| {
                let started = std::time::Instant::now();
                let parsed = parse("many.yaml", &text);
                (started.elapsed(), parsed)
            });
            best.min_by_key(|(took, _)| *took).expect("three runs")
        };
        let (small, _) = timed(5_000);
        let (large, (docs, diagnostics)) = timed(50_000);
        assert!(large < small * 40, "5,000 keys {small:?}, 50,000 keys {large:?}");
        assert_eq!(diagnostics.len(), 50_000);
        assert!(diagnostics[0].message.contains("first defined at line 1"), "{}", diagnostics[0].message);
        assert_eq!(docs[0].value.as_object().map(|m| m.len()), Some(50_000));
        assert_eq!(docs[0].value["k7"], json!(7));
    }

    #[test]
    fn what_yaml_readers_read_differently_is_noted_on_its_document() {
        let text = "kind: A\n---\nkind: B\nspec:\n  disabled: true\n  <<: {disabled: false}\n  blob: !!binary aGVsbG8=\n  num: !custom 5\n  s: !!str yes\n  m: !!map {a: 1}\n";
        let (docs, diagnostics) = parse("t.yaml", text);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert!(docs[0].ambiguous.is_empty());
        let found: Vec<(usize, usize, bool)> =
            docs[1].ambiguous.iter().map(|d| (d.line, d.column, d.code == Code::YamlAmbiguous && !d.hint.is_empty())).collect();
        assert_eq!(found, [(6, 3, true), (7, 9, true), (8, 8, true), (9, 6, true), (10, 6, true)]);
        assert!(docs[1].ambiguous[1].message.contains("!!binary"), "{}", docs[1].ambiguous[1].message);
        assert_eq!(docs[1].value["spec"]["s"], json!("yes"), "!!str keeps the text");
        // Keys that YAML 1.1 reads as other values; an integer key is its own text.
        let keys = parse("t.yaml", "yes: 1\n0644: 2\n~: 3\n8080: 4\nname: 5\n").0;
        assert_eq!(keys[0].ambiguous.iter().map(|d| d.line).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(!keys[0].tagged_key && parse("t.yaml", "? !!binary a2luZA==\n: X\n").0[0].tagged_key);
        // A quoted "<<" is a key like any other, to every reader.
        assert!(parse("t.yaml", "'<<': quoted\n").0[0].ambiguous.is_empty());
        // An anchor and an alias alone mean one thing to every reader.
        assert!(parse("t.yaml", "a: &x {b: 1}\nc: *x\n").0[0].ambiguous.is_empty());
    }

    #[test]
    fn merge_keys_merge() {
        assert_eq!(one("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n")["c"], json!({"y": 3, "x": 1}));
    }
}
