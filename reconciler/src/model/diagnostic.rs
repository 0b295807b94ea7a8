//! One `Diagnostic` type carries every problem from every stage, with file, line and column.
//! Diagnostics are data: stages collect and return them; only renderers print them.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// Diagnostic codes. They are part of the JSON contract and documented in `docs/diagnostics.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    YamlSyntax,
    YamlAmbiguous,
    SchemaViolation,
    UnknownKind,
    DuplicateObject,
    DuplicateNameForServer,
    UnknownServer,
    ToolSideEffectUnknown,
    SideEffectNotAllowed,
    SubjectNeverMatches,
    SessionExpired,
    GrantExpired,
    BreakGlassReviewLate,
    AnnotationIgnored,
    TrustCapped,
    SecretInRepo,
    PathOutsideRepo,
    SymlinkNotFollowed,
    NamespaceNotAllowed,
    PolicyViolation,
    PolicyError,
    ToolMissingOnServer,
    ToolUngoverned,
    ServerUnreachable,
    ServerWithoutOwner,
    TrustScopedByPath,
    NoObjects,
    FileInNoCluster,
}

impl Code {
    /// Every code, in the order of docs/diagnostics.md.
    pub const ALL: [Code; 28] = [
        Code::YamlSyntax,
        Code::YamlAmbiguous,
        Code::SchemaViolation,
        Code::UnknownKind,
        Code::DuplicateObject,
        Code::DuplicateNameForServer,
        Code::UnknownServer,
        Code::ToolSideEffectUnknown,
        Code::SideEffectNotAllowed,
        Code::SubjectNeverMatches,
        Code::SessionExpired,
        Code::GrantExpired,
        Code::BreakGlassReviewLate,
        Code::AnnotationIgnored,
        Code::TrustCapped,
        Code::SecretInRepo,
        Code::PathOutsideRepo,
        Code::SymlinkNotFollowed,
        Code::NamespaceNotAllowed,
        Code::PolicyViolation,
        Code::PolicyError,
        Code::ToolMissingOnServer,
        Code::ToolUngoverned,
        Code::ServerUnreachable,
        Code::ServerWithoutOwner,
        Code::TrustScopedByPath,
        Code::NoObjects,
        Code::FileInNoCluster,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::YamlSyntax => "yaml_syntax",
            Code::YamlAmbiguous => "yaml_ambiguous",
            Code::SchemaViolation => "schema_violation",
            Code::UnknownKind => "unknown_kind",
            Code::DuplicateObject => "duplicate_object",
            Code::DuplicateNameForServer => "duplicate_name_for_server",
            Code::UnknownServer => "unknown_server",
            Code::ToolSideEffectUnknown => "tool_side_effect_unknown",
            Code::SideEffectNotAllowed => "side_effect_not_allowed",
            Code::SubjectNeverMatches => "subject_never_matches",
            Code::SessionExpired => "session_expired",
            Code::GrantExpired => "grant_expired",
            Code::BreakGlassReviewLate => "break_glass_review_late",
            Code::AnnotationIgnored => "annotation_ignored",
            Code::TrustCapped => "trust_capped",
            Code::SecretInRepo => "secret_in_repo",
            Code::PathOutsideRepo => "path_outside_repo",
            Code::SymlinkNotFollowed => "symlink_not_followed",
            Code::NamespaceNotAllowed => "namespace_not_allowed",
            Code::PolicyViolation => "policy_violation",
            Code::PolicyError => "policy_error",
            Code::ToolMissingOnServer => "tool_missing_on_server",
            Code::ToolUngoverned => "tool_ungoverned",
            Code::ServerUnreachable => "server_unreachable",
            Code::ServerWithoutOwner => "server_without_owner",
            Code::TrustScopedByPath => "trust_scoped_by_path",
            Code::NoObjects => "no_objects",
            Code::FileInNoCluster => "file_in_no_cluster",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A position in a repository file. Lines and columns are 1-based, columns count characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, serde::Deserialize)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Read back from the JSON it is written as (the cache keeps diagnostics so); `redact_source`
/// is not written and reads as false.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub file: String,
    pub line: usize,
    pub column: usize,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub object: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hint: String,
    /// The clusters of `clusters:` whose desired state has the problem (docs/fleet.md); empty
    /// when the repository declares none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// The source text under the caret must not be shown (it holds credential material).
    #[serde(skip)]
    pub redact_source: bool,
}

impl Diagnostic {
    pub fn new(severity: Severity, code: Code, file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            code,
            file: file.to_string(),
            line: pos.line,
            column: pos.column,
            object: String::new(),
            path: String::new(),
            message: message.into(),
            hint: String::new(),
            clusters: Vec::new(),
            redact_source: false,
        }
    }

    pub fn error(code: Code, file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, file, pos, message)
    }

    pub fn warning(code: Code, file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, file, pos, message)
    }

    pub fn object(mut self, object: impl fmt::Display) -> Self {
        self.object = object.to_string();
        self
    }

    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    pub fn redacted(mut self) -> Self {
        self.redact_source = true;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Names the problem, not its place: a digest of the code, file, object, field and message,
    /// so it stays the same when lines move (code scanning and Code Quality track findings by it).
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for part in [self.code.as_str(), &self.file, &self.object, &self.path, &self.message] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hex::encode(&hasher.finalize()[..16])
    }
}

/// Sorts diagnostics by file, position and code so that output is stable.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.code, &a.path, &a.message).cmp(&(&b.file, b.line, b.column, b.code, &b.path, &b.message))
    });
}
