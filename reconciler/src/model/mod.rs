//! Plain data shared by every stage: objects, specs, diagnostics and the repository config.
//! Nothing here performs I/O.

pub mod break_glass;
pub mod diagnostic;
pub mod live;
pub mod object;
pub mod spec;
pub mod spelling;

pub use diagnostic::{Code, Diagnostic, Pos, Severity};
pub use object::{Kind, Object, ObjectId, Origin, Spec};

use globset::{Glob, GlobMatcher};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The namespace of documents that set none, unless `mcp-gitops.yaml` says otherwise (DOMAIN.md §0).
pub const DEFAULT_NAMESPACE: &str = "mcp-servers";
/// The operator's default cluster name, rendered into every policy document (DOMAIN.md §4.1).
pub const DEFAULT_CLUSTER: &str = "local";

/// The repository's configuration file, at its root (`RepoConfig`).
pub const CONFIG_FILE: &str = "mcp-gitops.yaml";

/// `mcp-gitops.yaml` at the repository root (schema: `schema/mcp-gitops.schema.json`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct RepoConfig {
    pub default_namespace: Option<String>,
    pub allowed_namespaces: Vec<String>,
    pub ignore: Vec<String>,
    pub cluster_name: Option<String>,
    pub policies: PolicySettings,
    pub owners: Owners,
    pub trust: TrustSettings,
    /// Freeze windows: while one is open the daemon holds changes that widen access (`windows`).
    pub windows: Vec<Window>,
    /// The clusters the repository declares state for (docs/fleet.md); empty: one cluster, every file.
    pub clusters: Vec<ClusterSpec>,
}

/// One cluster of `clusters:`: which repository files apply to it, and its own defaults.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterSpec {
    /// Unique, a DNS-1123 label: what `--cluster` names.
    pub name: String,
    /// Globs of the repository files that apply to this cluster (the syntax of `ignore:`); empty: every file.
    pub paths: Vec<String>,
    /// The gateway's MCP_CLUSTER_NAME there (default: `name`).
    pub cluster_name: Option<String>,
    /// The namespace of its documents that set none (default: the top-level one).
    pub default_namespace: Option<String>,
    /// The git ref this cluster's daemon follows when not the others' branch; read by `fleet status` only.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
}

/// One freeze window of `windows:`, as written; `crate::windows` reads and evaluates it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Window {
    pub name: String,
    /// When the window opens: a 5-field cron expression, in `time_zone`.
    pub schedule: String,
    /// How long it stays open, e.g. `2h`, `1h 30m`, `PT2H`.
    pub duration: String,
    /// An IANA time zone (default UTC).
    pub time_zone: Option<String>,
}

/// `trust:` in `mcp-gitops.yaml`: what a commit's signer must be beyond an allowed key
/// (docs/trust.md). Read at the trusted base of a range, never at the commits it judges.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct TrustSettings {
    /// Whose email the signer's principal must match.
    pub identity: IdentityBinding,
    /// Paths that only some signers may change.
    pub signers: Vec<SignerRule>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IdentityBinding {
    /// Any principal of the allowed_signers line that holds the key.
    #[default]
    None,
    Committer,
    Author,
}

/// A change to a file matching one of `paths` (globs from the directory of `mcp-gitops.yaml`), or
/// to an object matching `namespaces`, `servers` or `kinds` wherever its file is, needs a signer
/// whose principal matches one of `principals` (`*` and `?`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SignerRule {
    pub paths: Vec<String>,
    /// Globs over the namespaces of the objects a commit adds, changes or removes.
    pub namespaces: Vec<String>,
    /// Globs over `NAMESPACE/NAME` of the server an object is or targets.
    pub servers: Vec<String>,
    /// The kinds of object the rule guards (alone: every object of these kinds).
    pub kinds: Vec<Kind>,
    pub principals: Vec<String>,
}

/// `owners:` in `mcp-gitops.yaml`: who owns which servers, and which approvals each kind of
/// access change needs (the plan's `approvals`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Owners {
    /// Globs over `NAMESPACE/NAME` of servers, each to its approvers (forge handles or teams).
    pub servers: BTreeMap<String, Vec<String>>,
    /// What each kind of access change needs. Empty: a widening needs one of the server's owners.
    pub approvals: Vec<ApprovalRule>,
    /// The severity of `server_without_owner` (a changed object whose server has no owner).
    pub unowned: Option<Severity>,
    /// Emergency access without approvals (`break_glass::BreakGlassRules`).
    pub break_glass: Option<break_glass::BreakGlassRules>,
}

/// `owners.servers`: who owns each server.
pub struct OwnerMap(Vec<(GlobMatcher, Vec<String>)>);

impl OwnerMap {
    pub fn new(owners: &Owners) -> OwnerMap {
        OwnerMap(owners.servers.iter().filter_map(|(glob, who)| Some((Glob::new(glob).ok()?.compile_matcher(), who.clone()))).collect())
    }

    /// Everyone who owns the server `NAMESPACE/NAME` (every matching glob), sorted.
    pub fn of(&self, server: &str) -> BTreeSet<String> {
        self.0.iter().filter(|(glob, _)| glob.is_match(server)).flat_map(|(_, who)| who.iter().cloned()).collect()
    }
}

/// One approval rule: a change of kind `on` needs `count` approvals from `approvers`, where the
/// word `owners` stands for the owners of the server the access is on.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ApprovalRule {
    /// `widened`, `widened-read`, `widened-write`, `widened-destructive`, `changed` or `narrowed`.
    pub on: String,
    pub approvers: Vec<String>,
    pub count: usize,
    /// Globs over the names of `clusters:`: the rule applies to the changes of those clusters'
    /// slices alone (docs/fleet.md). Empty: to every change.
    pub clusters: Vec<String>,
}

/// `policies:` in `mcp-gitops.yaml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicySettings {
    /// More directories of GuardrailPolicy files, relative to the repository root.
    pub directories: Vec<String>,
    /// Names of policies not to evaluate.
    pub disabled: Vec<String>,
    pub overrides: BTreeMap<String, PolicyOverride>,
    /// `false`: a built-in policy's violation the base already has is an error too (`ratchet`).
    pub ratchet: Option<bool>,
}

impl PolicySettings {
    /// Whether a violation of a built-in policy that the base already has is only a warning
    /// (docs/policies.md, Upgrades and the ratchet); on unless the repository says `false`.
    pub fn ratchet(&self) -> bool {
        self.ratchet.unwrap_or(true)
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct PolicyOverride {
    pub severity: Option<Severity>,
    pub params: Option<serde_json::Map<String, serde_json::Value>>,
}

impl RepoConfig {
    pub fn default_namespace(&self) -> &str {
        self.default_namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }

    pub fn cluster_name(&self) -> &str {
        self.cluster_name.as_deref().unwrap_or(DEFAULT_CLUSTER)
    }

    /// The cluster of `clusters:` named `name`.
    pub fn cluster(&self, name: &str) -> Option<&ClusterSpec> {
        self.clusters.iter().find(|c| c.name == name)
    }
}

/// Everything one repository snapshot declares, after loading.
#[derive(Debug, Default, Clone)]
pub struct DesiredState {
    /// A label for where the snapshot came from: a directory or `git:<rev>`.
    pub source: String,
    /// The commit id for a git snapshot, else a digest of the loaded files.
    pub revision: String,
    pub config: RepoConfig,
    pub objects: Vec<Object>,
    /// File texts by repository path, for rendering diagnostics with the offending line.
    pub sources: BTreeMap<String, Arc<str>>,
    pub diagnostics: Vec<Diagnostic>,
}

impl DesiredState {
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Object> {
        self.objects.iter().filter(move |o| o.id.kind == kind)
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}
