//! What the cluster holds, as plain data: the live objects of the three kinds and the inventory
//! (the ApplySet parent), plus the ownership labels mcp-gitops puts on what it applies
//! (KEP-3659 ApplySet names). Reading and writing them is `cluster`'s job.

use super::{Kind, ObjectId};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{Read, Write};

pub const FIELD_MANAGER: &str = "mcp-gitops";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const PART_OF: &str = "applyset.kubernetes.io/part-of";
pub const APPLYSET_ID: &str = "applyset.kubernetes.io/id";
pub const TOOLING: &str = "applyset.kubernetes.io/tooling";
pub const CONTAINS_GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";
pub const ADDITIONAL_NAMESPACES: &str = "applyset.kubernetes.io/additional-namespaces";
pub const LAST_APPLIED_REVISION: &str = "mcp-gitops.mcpruntime.org/last-applied-revision";
pub const LAST_ATTEMPTED_REVISION: &str = "mcp-gitops.mcpruntime.org/last-attempted-revision";
/// The daemon's status annotations on the inventory: result, counts, message and time of the
/// last reconcile whose outcome differed from the one before.
pub const LAST_RESULT: &str = "mcp-gitops.mcpruntime.org/last-result";
pub const LAST_COUNTS: &str = "mcp-gitops.mcpruntime.org/last-counts";
pub const LAST_MESSAGE: &str = "mcp-gitops.mcpruntime.org/last-message";
pub const LAST_RESULT_TIME: &str = "mcp-gitops.mcpruntime.org/last-result-time";
/// How many managed objects the last recorded reconcile found changed outside git (drift).
pub const LAST_DRIFTED: &str = "mcp-gitops.mcpruntime.org/last-drifted";
/// The directory inside the repository the daemon follows (`--path`), for `fleet status`.
pub const SOURCE_PATH: &str = "mcp-gitops.mcpruntime.org/path";
/// The field manager of the daemon's status annotations (kept apart from the applied fields).
pub const STATUS_MANAGER: &str = "mcp-gitops-status";
/// `mcp-gitops daemon suspend|resume|pin|unpin`: annotations on the inventory that every
/// replica reads and a restart keeps — the suspension (`soft` or `hard`) with who set it, when
/// and why, and the pinned revision — each written under a field manager of its own, so that
/// setting one never drops the other.
pub const SUSPEND: &str = "mcp-gitops.mcpruntime.org/suspend";
pub const SUSPEND_NOTE: &str = "mcp-gitops.mcpruntime.org/suspend-note";
pub const SUSPEND_MANAGER: &str = "mcp-gitops-suspend";
pub const PIN: &str = "mcp-gitops.mcpruntime.org/pin";
pub const PIN_MANAGER: &str = "mcp-gitops-pin";
/// Which cluster of the repository's `clusters:` the daemon applies (`daemon --cluster`;
/// docs/fleet.md), written with its status annotations.
pub const CLUSTER: &str = "mcp-gitops.mcpruntime.org/cluster";
/// The Lease the daemon's replicas elect a leader with.
pub const LEADER_LEASE: &str = "mcp-gitops-leader";
/// The inventory's data key: one `Kind/namespace/name` per line.
pub const INVENTORY_KEY: &str = "objects";
/// The inventory's binaryData key when the list is stored gzip-compressed.
pub const INVENTORY_GZ_KEY: &str = "objects.gz";
/// Lists longer than this are stored compressed: a ConfigMap holds at most 1 MiB, and at about
/// 70 bytes a line a plain list stops fitting near 15,000 objects.
pub const INVENTORY_PLAIN_MAX: usize = 256 * 1024;
/// Provenance annotations on each object applied from a git revision (docs/trust.md).
pub const REVISION: &str = "mcp-gitops.io/revision";
pub const SOURCE: &str = "mcp-gitops.io/source";
pub const SIGNED_BY: &str = "mcp-gitops.io/signed-by";
const PROVENANCE: [&str; 3] = [REVISION, SOURCE, SIGNED_BY];
pub const DEFAULT_INVENTORY_NAMESPACE: &str = "mcp-gitops";
pub const INVENTORY_NAME: &str = "mcp-gitops-inventory";

/// One object as the API server returned it.
#[derive(Debug, Clone)]
pub struct LiveObject {
    pub id: ObjectId,
    pub body: Value,
    pub resource_version: String,
}

impl LiveObject {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.body.pointer(&format!("/metadata/labels/{}", key.replace('~', "~0").replace('/', "~1"))).and_then(Value::as_str)
    }
}

/// The ApplySet parent: a ConfigMap listing every object mcp-gitops applied.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub objects: BTreeSet<ObjectId>,
    pub last_applied_revision: String,
    pub resource_version: String,
    /// Every annotation of the ConfigMap: the daemon's status and control (`LAST_RESULT`, `PIN`...).
    pub annotations: BTreeMap<String, String>,
}

/// What `mcp-gitops daemon suspend|pin` told the daemons of an inventory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Control {
    pub suspension: Option<Suspension>,
    /// Who suspended, when and why (`SUSPEND_NOTE`).
    pub suspension_note: String,
    /// The revision to apply instead of the branch tip (`PIN`).
    pub pin: Option<String>,
}

impl Control {
    pub fn of(annotations: &BTreeMap<String, String>) -> Control {
        Control {
            suspension: annotations.get(SUSPEND).map(|value| Suspension::parse(value)),
            suspension_note: annotations.get(SUSPEND_NOTE).cloned().unwrap_or_default(),
            pin: annotations.get(PIN).filter(|pin| !pin.is_empty()).cloned(),
        }
    }
}

/// A daemon told to apply nothing new: `Soft` still applies what only takes access away
/// (deleted or disabled grants and sessions, expiries); `Hard` applies nothing at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Suspension {
    Soft,
    Hard,
}

impl Suspension {
    pub fn as_str(self) -> &'static str {
        match self {
            Suspension::Soft => "soft",
            Suspension::Hard => "hard",
        }
    }

    /// The suspension an annotation value names; an unknown value suspends hard (whoever wrote
    /// it meant to stop the daemon).
    pub fn parse(value: &str) -> Suspension {
        if value == "soft" { Suspension::Soft } else { Suspension::Hard }
    }
}

impl Inventory {
    pub fn parse_objects(text: &str) -> BTreeSet<ObjectId> {
        text.lines()
            .filter_map(|line| {
                let mut parts = line.trim().splitn(3, '/');
                let kind = Kind::from_name(parts.next()?)?;
                Some(ObjectId { kind, namespace: parts.next()?.to_string(), name: parts.next()?.to_string() })
            })
            .collect()
    }

    pub fn render_objects(objects: &BTreeSet<ObjectId>) -> String {
        objects.iter().map(|id| format!("{id}\n")).collect()
    }

    /// The list as stored: plain text while it is small (people read it with kubectl), else
    /// gzip-compressed bytes.
    pub fn encode_objects(objects: &BTreeSet<ObjectId>) -> StoredObjects {
        let text = Self::render_objects(objects);
        if text.len() <= INVENTORY_PLAIN_MAX {
            return StoredObjects::Plain(text);
        }
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing to memory does not fail.
        let _ = encoder.write_all(text.as_bytes());
        StoredObjects::Gzip(encoder.finish().unwrap_or_default())
    }

    /// Reads either stored form; compressed bytes that do not decompress are an error (an
    /// empty list would make the next write forget every object).
    pub fn decode_objects(plain: Option<&str>, gzip: Option<&[u8]>) -> Result<BTreeSet<ObjectId>, CorruptInventory> {
        let Some(bytes) = gzip else { return Ok(Self::parse_objects(plain.unwrap_or_default())) };
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes).read_to_string(&mut text).map_err(CorruptInventory)?;
        Ok(Self::parse_objects(&text))
    }
}

/// The inventory's compressed object list (`objects.gz`) does not decompress to text.
#[derive(Debug, thiserror::Error)]
#[error("{key} does not decompress: {0}", key = INVENTORY_GZ_KEY)]
pub struct CorruptInventory(#[source] pub std::io::Error);

/// The object list of the inventory in the form it is stored in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredObjects {
    Plain(String),
    Gzip(Vec<u8>),
}

#[derive(Debug, Clone, Default)]
pub struct LiveState {
    /// Where the state was read from, for people (server URL and context).
    pub source: String,
    pub objects: Vec<LiveObject>,
    pub inventory: Option<Inventory>,
}

/// What a watch on the members of an ApplySet reports, kind by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A full list of the kind begins (the first one, or again after the watch fell behind):
    /// the objects `Listed` until `Listed(kind)` ends it are all there are.
    Relisting(Kind),
    Found {
        id: ObjectId,
        resource_version: String,
    },
    Listed(Kind),
    /// An object was created or changed after the list.
    Changed {
        id: ObjectId,
        resource_version: String,
    },
    Deleted(ObjectId),
}

/// The members of an ApplySet as the watches last saw them: each object's resourceVersion, not
/// its body. With a ledger of what was last applied at which version, it tells which objects
/// may differ from the desired state without reading them all again.
#[derive(Debug, Default)]
pub struct Members {
    versions: HashMap<ObjectId, String>,
    /// A list under way, by kind: it replaces that kind's objects when it ends.
    relisting: HashMap<Kind, HashMap<ObjectId, String>>,
    listed: HashSet<Kind>,
}

impl Members {
    /// Takes in one event; returns whether it ended a list that was not the kind's first (what
    /// changed while the watch was behind is not known object by object).
    pub fn record(&mut self, event: MemberEvent) -> bool {
        match event {
            MemberEvent::Relisting(kind) => {
                self.relisting.insert(kind, HashMap::new());
            }
            MemberEvent::Found { id, resource_version } => match self.relisting.get_mut(&id.kind) {
                Some(list) => {
                    list.insert(id, resource_version);
                }
                None => {
                    self.versions.insert(id, resource_version);
                }
            },
            MemberEvent::Listed(kind) => {
                let list = self.relisting.remove(&kind).unwrap_or_default();
                self.versions.retain(|id, _| id.kind != kind);
                self.versions.extend(list);
                return !self.listed.insert(kind);
            }
            MemberEvent::Changed { id, resource_version } => {
                self.versions.insert(id, resource_version);
            }
            MemberEvent::Deleted(id) => {
                self.versions.remove(&id);
            }
        }
        false
    }

    /// Whether every kind has been listed once: before that, what is missing is unknown.
    pub fn synced(&self) -> bool {
        Kind::ALL.iter().all(|kind| self.listed.contains(kind))
    }

    pub fn version(&self, id: &ObjectId) -> Option<&str> {
        self.versions.get(id).map(String::as_str)
    }

    pub fn ids(&self) -> impl Iterator<Item = &ObjectId> {
        self.versions.keys()
    }
}

/// The identity of one ApplySet: its parent ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplySet {
    pub namespace: String,
    pub name: String,
}

/// Where the content applied comes from: the git revision, where the source directory sits in
/// the repository (`""` or `"platform/"`), and the signer who verified it (empty without
/// signature checks). Written only on what is created or changed, so an object keeps the
/// revision at which its content last changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provenance {
    pub revision: String,
    pub root: String,
    pub signer: String,
}

impl Provenance {
    /// `body` with the provenance annotations of an object declared at `file:line`.
    pub fn stamp(&self, body: &mut Value, file: &str, line: usize) {
        let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) else { return };
        let Some(annotations) = metadata.entry("annotations").or_insert_with(|| json!({})).as_object_mut() else { return };
        annotations.insert(REVISION.into(), json!(self.revision));
        annotations.insert(SOURCE.into(), json!(format!("{}{file}:{line}", self.root)));
        match self.signer.as_str() {
            "" => annotations.remove(SIGNED_BY),
            signer => annotations.insert(SIGNED_BY.into(), json!(signer)),
        };
    }

    /// `body` without provenance annotations: content is compared without them.
    pub fn strip(body: &mut Value) {
        if let Some(annotations) = body.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
            PROVENANCE.iter().for_each(|key| {
                annotations.remove(*key);
            });
        }
    }

    /// The provenance annotations an object carries, by name, for plans and explanations.
    pub fn of(body: &Value) -> BTreeMap<String, String> {
        let annotations = body.pointer("/metadata/annotations");
        PROVENANCE
            .iter()
            .filter_map(|key| annotations.and_then(|a| a.get(*key)).and_then(Value::as_str).map(|v| (key.to_string(), v.to_string())))
            .collect()
    }
}

impl ApplySet {
    pub fn new(namespace: &str) -> ApplySet {
        ApplySet { namespace: namespace.to_string(), name: INVENTORY_NAME.to_string() }
    }

    /// `applyset-<base64url(sha256(<name>.<namespace>.<kind>.<group>))>-v1` (KEP-3659).
    pub fn id(&self) -> String {
        let digest = Sha256::digest(format!("{}.{}.ConfigMap.", self.name, self.namespace));
        format!("applyset-{}-v1", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
    }

    /// The labels every applied object carries.
    pub fn member_labels(&self) -> Value {
        json!({MANAGED_BY: FIELD_MANAGER, PART_OF: self.id()})
    }

    /// Whether a live object is a member of this ApplySet (carries our part-of label).
    pub fn owns(&self, object: &LiveObject) -> bool {
        object.label(PART_OF) == Some(self.id().as_str())
    }

    /// Adds the membership labels to a desired document.
    pub fn stamp(&self, body: &mut Value) {
        if let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            let labels = metadata.entry("labels").or_insert_with(|| json!({}));
            if let (Some(labels), Value::Object(ours)) = (labels.as_object_mut(), self.member_labels()) {
                labels.extend(ours);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applyset_ids_follow_the_kep() {
        let id = ApplySet::new("mcp-gitops").id();
        assert!(id.starts_with("applyset-") && id.ends_with("-v1"), "{id}");
        assert_eq!(id.len(), "applyset-".len() + 43 + "-v1".len());
        assert_ne!(id, ApplySet::new("other").id());
    }

    #[test]
    fn inventories_round_trip() {
        let ids: BTreeSet<ObjectId> = [
            ObjectId { kind: Kind::Grant, namespace: "a".into(), name: "g".into() },
            ObjectId { kind: Kind::Server, namespace: "a".into(), name: "s".into() },
        ]
        .into();
        assert_eq!(Inventory::parse_objects(&Inventory::render_objects(&ids)), ids);
    }

    #[test]
    fn large_inventories_are_compressed_and_read_back() {
        let ids: BTreeSet<ObjectId> = (0..21_000)
            .map(|i| ObjectId { kind: Kind::Grant, namespace: format!("mcp-team-{}", i % 20), name: format!("ledger-mcp-{i:05}-oncall") })
            .collect();
        let StoredObjects::Gzip(bytes) = Inventory::encode_objects(&ids) else { panic!("21,000 objects are stored compressed") };
        assert!(bytes.len() < 512 * 1024, "{} bytes do not fit a ConfigMap with room to spare", bytes.len());
        assert_eq!(Inventory::decode_objects(None, Some(&bytes)).ok(), Some(ids));
        let broken = Inventory::decode_objects(None, Some(b"not gzip")).expect_err("not gzip");
        assert!(broken.to_string().starts_with("objects.gz does not decompress: "), "{broken}");
        let small: BTreeSet<ObjectId> = [ObjectId { kind: Kind::Server, namespace: "a".into(), name: "s".into() }].into();
        assert_eq!(Inventory::encode_objects(&small), StoredObjects::Plain("MCPServer/a/s\n".into()));
    }

    #[test]
    fn members_follow_the_watch_and_a_relist_replaces_a_kind() {
        let id = |kind, name: &str| ObjectId { kind, namespace: "a".into(), name: name.into() };
        let found = |kind, name: &str, rv: &str| MemberEvent::Found { id: id(kind, name), resource_version: rv.into() };
        let mut members = Members::default();
        for kind in Kind::ALL {
            assert!(!members.synced());
            members.record(MemberEvent::Relisting(kind));
            members.record(found(kind, "one", "1"));
            assert_eq!(members.version(&id(kind, "one")), None, "not before the list ends");
            assert!(!members.record(MemberEvent::Listed(kind)), "a first list");
        }
        assert!(members.synced());
        members.record(MemberEvent::Changed { id: id(Kind::Grant, "two"), resource_version: "5".into() });
        members.record(MemberEvent::Deleted(id(Kind::Server, "one")));
        assert_eq!(members.version(&id(Kind::Grant, "two")), Some("5"));
        assert_eq!(members.version(&id(Kind::Server, "one")), None);
        // The watch fell behind: the grants are listed again, and what the list lacks is gone.
        members.record(MemberEvent::Relisting(Kind::Grant));
        members.record(found(Kind::Grant, "two", "7"));
        assert_eq!(members.version(&id(Kind::Grant, "two")), Some("5"), "the old state stands during the list");
        assert!(members.record(MemberEvent::Listed(Kind::Grant)), "a relist");
        assert_eq!(members.version(&id(Kind::Grant, "two")), Some("7"));
        assert_eq!(members.version(&id(Kind::Grant, "one")), None);
        assert_eq!(members.version(&id(Kind::Session, "one")), Some("1"), "other kinds stay");
        assert_eq!(members.ids().count(), 2);
    }
}
