//! Desired objects as loaded from a repository: identity, the document as the API server would
//! store it (`body`), where it came from (`Origin`) and its typed spec.

use super::diagnostic::Pos;
use super::spec::{GrantSpec, ServerSpec, SessionSpec};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

pub const API_VERSION: &str = "mcpruntime.org/v1alpha1";
pub const GROUP: &str = "mcpruntime.org";

/// The three mcp-runtime kinds, in apply order (servers, then grants, then sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub enum Kind {
    #[serde(rename = "MCPServer")]
    Server,
    #[serde(rename = "MCPAccessGrant")]
    Grant,
    #[serde(rename = "MCPAgentSession")]
    Session,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Server, Kind::Grant, Kind::Session];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Server => "MCPServer",
            Kind::Grant => "MCPAccessGrant",
            Kind::Session => "MCPAgentSession",
        }
    }

    pub fn from_name(kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    pub fn plural(self) -> &'static str {
        match self {
            Kind::Server => "mcpservers",
            Kind::Grant => "mcpaccessgrants",
            Kind::Session => "mcpagentsessions",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub struct ObjectId {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// JSON pointer -> position of the value (and of its key, for mapping members) in one file.
#[derive(Debug, Default)]
pub struct SpanMap {
    pub values: HashMap<String, Pos>,
    pub keys: HashMap<String, Pos>,
}

/// The span map of one document: made with the document by the parser, or made from the file's
/// text again the first time a position is asked for (a document read from the cache: most of
/// them never are, and building every map is most of a parse). Reads as a `SpanMap`.
#[derive(Debug)]
pub enum Spans {
    Made(SpanMap),
    /// Document `.1` of a file whose maps `.0` makes when first asked.
    Later(Arc<LaterSpans>, usize),
}

impl Default for Spans {
    fn default() -> Self {
        Spans::Made(SpanMap::default())
    }
}

impl std::ops::Deref for Spans {
    type Target = SpanMap;

    fn deref(&self) -> &SpanMap {
        static NONE: std::sync::OnceLock<SpanMap> = std::sync::OnceLock::new();
        match self {
            Spans::Made(map) => map,
            Spans::Later(file, document) => file.documents().get(*document).unwrap_or_else(|| NONE.get_or_init(SpanMap::default)),
        }
    }
}

/// The span maps of every document of one file, made once, on first use, by `make`.
pub struct LaterSpans {
    made: std::sync::OnceLock<Vec<SpanMap>>,
    make: Box<dyn Fn() -> Vec<SpanMap> + Send + Sync>,
}

impl LaterSpans {
    pub fn new(make: impl Fn() -> Vec<SpanMap> + Send + Sync + 'static) -> Self {
        LaterSpans { made: std::sync::OnceLock::new(), make: Box::new(make) }
    }

    fn documents(&self) -> &[SpanMap] {
        self.made.get_or_init(|| (self.make)())
    }
}

impl fmt::Debug for LaterSpans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaterSpans").field("made", &self.made.get()).finish_non_exhaustive()
    }
}

/// Where an object came from. `prefix` is the pointer of the object inside the file's document
/// (empty for a plain manifest, `/servers/N` for a server converted from `.mcp` metadata).
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: String,
    pub spans: Arc<Spans>,
    pub prefix: String,
    pub from_metadata: bool,
    /// The line the object starts on, kept when the spans are dropped (provenance).
    pub line: usize,
}

impl Origin {
    /// The position of the value at `pointer` (a pointer into the object's body), or of its
    /// nearest ancestor that exists in the file.
    pub fn pos(&self, pointer: &str) -> Pos {
        self.lookup(pointer, &self.spans.values)
    }

    /// The position of the key of the member at `pointer`, falling back to the value position.
    pub fn key_pos(&self, pointer: &str) -> Pos {
        let file_pointer = self.file_pointer(pointer);
        match self.spans.keys.get(&file_pointer) {
            Some(pos) => *pos,
            None => self.pos(pointer),
        }
    }

    fn lookup(&self, pointer: &str, map: &HashMap<String, Pos>) -> Pos {
        let mut current = self.file_pointer(pointer);
        loop {
            if let Some(pos) = map.get(&current) {
                return *pos;
            }
            match current.rfind('/') {
                Some(i) => current.truncate(i),
                None => return Pos { line: 1, column: 1 },
            }
        }
    }

    /// Translates a pointer into the object body to a pointer into the file.
    fn file_pointer(&self, pointer: &str) -> String {
        if !self.from_metadata {
            return format!("{}{}", self.prefix, pointer);
        }
        // Metadata keys sit directly under the server entry: spec.X <- X, metadata.name <- name.
        let rest = if let Some(rest) = pointer.strip_prefix("/spec") {
            rest.to_string()
        } else if let Some(rest) = pointer.strip_prefix("/metadata") {
            if rest.starts_with("/labels") { "/scope".to_string() } else { rest.to_string() }
        } else {
            String::new()
        };
        format!("{}{}", self.prefix, rest)
    }
}

/// The typed view of an object's spec; `Invalid` when the body does not deserialize (the schema
/// stage reports why).
#[derive(Debug, Clone)]
pub enum Spec {
    Server(Box<ServerSpec>),
    Grant(GrantSpec),
    Session(SessionSpec),
    Invalid,
}

/// Body and spec are shared, not copied, when an object is cloned (a plan's base takes most of
/// its objects from the desired state); a change to one copy (`Arc::make_mut`) leaves the others.
#[derive(Debug, Clone)]
pub struct Object {
    pub id: ObjectId,
    pub body: Arc<serde_json::Value>,
    pub origin: Origin,
    pub spec: Arc<Spec>,
}

impl Object {
    /// An object from its full document; `None` when it has no `metadata`. The typed spec is
    /// `Spec::Invalid` when the body does not deserialize.
    pub fn new(kind: Kind, body: serde_json::Value, origin: Origin) -> Option<Object> {
        let metadata = body.get("metadata")?;
        let text = |key: &str| metadata.get(key).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
        let id = ObjectId { kind, namespace: text("namespace"), name: text("name") };
        let spec_value = body.get("spec").cloned().unwrap_or(serde_json::Value::Object(Default::default()));
        let spec = match kind {
            Kind::Server => serde_json::from_value(spec_value).map(|s| Spec::Server(Box::new(s))),
            Kind::Grant => serde_json::from_value(spec_value).map(Spec::Grant),
            Kind::Session => serde_json::from_value(spec_value).map(Spec::Session),
        }
        .unwrap_or(Spec::Invalid);
        Some(Object { id, body: Arc::new(body), origin, spec: Arc::new(spec) })
    }

    pub fn server(&self) -> Option<&ServerSpec> {
        match &*self.spec {
            Spec::Server(s) => Some(s),
            _ => None,
        }
    }

    pub fn grant(&self) -> Option<&GrantSpec> {
        match &*self.spec {
            Spec::Grant(g) => Some(g),
            _ => None,
        }
    }

    pub fn session(&self) -> Option<&SessionSpec> {
        match &*self.spec {
            Spec::Session(s) => Some(s),
            _ => None,
        }
    }

    pub fn pos(&self, pointer: &str) -> Pos {
        self.origin.pos(pointer)
    }
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn pointer_segment(segment: &str) -> std::borrow::Cow<'_, str> {
    if segment.contains(['~', '/']) { segment.replace('~', "~0").replace('/', "~1").into() } else { segment.into() }
}

/// `/spec/toolRules/1/name` -> `spec.toolRules[1].name`, the path form users read.
pub fn pointer_to_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{segment}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&segment);
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_paths_read_like_fields() {
        assert_eq!(pointer_to_path("/spec/toolRules/1/name"), "spec.toolRules[1].name");
        assert_eq!(pointer_to_path("/metadata/labels/a~1b"), "metadata.labels.a/b");
        assert_eq!(pointer_to_path(""), "");
    }
}
