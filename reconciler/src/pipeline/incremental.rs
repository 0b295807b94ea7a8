//! The plan of a work tree against a git revision that does only the work the change needs
//! (`plan::partial`): the work tree's files are compared with the base's by git blob id, and
//! only the changed ones are read from git; the work tree's validation is taken from the cache
//! when the same files were validated before at a clock that validates them alike
//! (`Cache::trees`, `validate::clock`: until the next expiry instant); only the objects the
//! change can reach are loaded; what a changed grant's expiry takes away, which reaches every
//! grant expiring by then, is judged once per tree (`expiring`).

use super::Error;
use super::Planned;
use super::desired::{self, Allowed, PolicyDirectory, WorkTree};
use super::expiring;
use crate::cache::{Cache, Key};
use crate::load::{self, CONFIG_FILE};
use crate::model::{DesiredState, Object, RepoConfig};
use crate::plan::partial::{self, Record};
use crate::plan::{self, Work};
use crate::source::{self, Snapshot};
use crate::validate::{self, clock};
use jiff::Timestamp;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// The work tree, validated now or as the cache recorded it.
enum Desired {
    /// Validated by this run: every object.
    Validated(DesiredState),
    /// Recorded by an earlier run: the files, to load the objects of some.
    Recorded { snapshot: Snapshot, policies: Vec<PolicyDirectory>, config: RepoConfig },
}

/// The plan of the work tree at `path` against `rev` (an error when `rev` is not a commit of its
/// repository), or `None` when it needs a full plan (`plan::partial`): `mcp-gitops.yaml`
/// differs, an object is declared twice, or a file both have could not be loaded.
pub(super) fn against_git(path: &Path, rev: &str, allowed: &Allowed, now: Timestamp, cache: &Cache) -> Result<Option<Planned>, Error> {
    // The base is found and listed (and libgit2 started) on another core while the work tree is validated.
    let (desired, listing) = std::thread::scope(|scope| {
        let listing = scope.spawn(|| source::resolve_revision_in(path, rev).then(|| source::list_git(path, rev)));
        (desired_tree(path, allowed, now, cache), listing.join())
    });
    let listing = listing.unwrap_or_else(|panic| std::panic::resume_unwind(panic)).ok_or_else(|| Error::not_a_base(path, rev))?;
    let (Tree { key: tree, window, record }, desired) = desired?;
    let listing = listing?;
    let base_ids: HashMap<String, Option<String>> =
        listing.blob_ids().map(|(path, id)| (path.to_string(), id.map(|id| id.to_string()))).collect();
    let touched = partial::touched(&record, &base_ids);
    let unchanged = base_ids.keys().map(String::as_str).filter(|p| !touched.contains(*p));
    if touched.contains(CONFIG_FILE) || record.load_errors_in(unchanged) {
        return Ok(None);
    }
    // With a recorded validation the few files to load are parsed: the files pack is not even read.
    let off = Cache::off();
    let parsing = if matches!(desired, Desired::Validated(_)) { cache } else { &off };
    let mut base = load::load_cached(listing.read(|p| p == CONFIG_FILE || touched.contains(p))?, parsing).state;
    // Compared at the same time as the desired state (as a full plan does).
    validate::expiry::expire(&mut base, now);
    if partial::declared_twice(&record, &touched, &base) {
        return Ok(None);
    }
    // The same configuration as the base's: the file is the same.
    let changed = DesiredState { objects: desired.objects(&touched, now, parsing), config: base.config.clone(), ..DesiredState::default() };
    let tree = expiring::Tree { key: &tree, window };
    let validated = if let Desired::Validated(state) = &desired { Some(state) } else { None };
    let taken = expiring::taken_away(&tree, validated, &base, &changed, now, cache);
    let reached = partial::reached(&record, &touched, &base, &changed, now, taken.is_some());
    let shared = desired.objects(&reached, now, parsing);
    let mut desired = desired.state(&record, changed.objects.into_iter().chain(shared.iter().cloned()));
    base.objects.extend(shared);
    for state in [&mut base, &mut desired] {
        state.objects.sort_by(|a, b| a.origin.file.cmp(&b.origin.file));
    }
    super::ratchet::against_base(&mut desired, path, rev, allowed, now, cache)?;
    let mut plan = plan::plan(&base, "git", &desired, now, Work::Changed);
    partial::complete(&mut plan, &record, &desired);
    match taken {
        Some(taken) => expiring::fill(&mut plan, taken, &tree, cache),
        None => expiring::record(&plan, &tree, cache),
    }
    Ok(Some(Planned { plan, desired, base_sources: base.sources }))
}

/// The work tree's validation: recorded by an earlier run (the same files and policy
/// directories, at a clock of the same `clock::Window`), or made now and recorded.
fn desired_tree(path: &Path, allowed: &Allowed, now: Timestamp, cache: &Cache) -> Result<(Tree, Desired), Error> {
    let snapshot = source::from_dir(path)?;
    let config = super::fleet::config_of(&snapshot);
    let policies = desired::policy_directories(&config.policies.directories, &WorkTree { path, rev: None }, allowed)?;
    let mut parts: Vec<&[u8]> = vec![b"tree", snapshot.revision.as_bytes()];
    parts.extend(policies.iter().flat_map(|p| [p.dir.as_bytes(), p.snapshot.revision.as_bytes()]));
    let tree = Key::of(&parts);
    if let Some(Timed { record, window }) = cache.trees.get::<Timed>(&tree).filter(|timed| timed.window.contains(now)) {
        return Ok((Tree { key: tree, window, record }, Desired::Recorded { snapshot, policies, config }));
    }
    let blobs = crate::parallel::ordered_map(&snapshot.files, 64, |f| (f.path.clone(), source::blob_id(&f.bytes).map(|id| id.to_string())));
    let repository = load::load_cached(snapshot, cache);
    let load_errors =
        repository.state.diagnostics.iter().filter(|d| d.is_error() && d.file != CONFIG_FILE).map(|d| d.file.clone()).collect();
    let repository = desired::with_policies(repository, policies);
    let window = clock::window(&repository, now);
    let state = validate::validate_cached(repository, now, cache);
    let record = Record::of(&state, blobs, load_errors);
    let timed = Timed { window, record };
    cache.trees.put(tree, &timed);
    Ok((Tree { key: tree, window, record: timed.record }, Desired::Validated(state)))
}

/// The work tree's validation, the key of its files and the clocks it holds for.
struct Tree {
    key: Key,
    window: clock::Window,
    record: Record,
}

/// A recorded validation and the clocks it holds for: the tree validates alike at each.
#[derive(serde::Serialize, serde::Deserialize)]
struct Timed {
    window: clock::Window,
    record: Record,
}

impl Desired {
    /// The objects of the files `paths`, as validation leaves them (expired at `now`).
    fn objects(&self, paths: &BTreeSet<String>, now: Timestamp, cache: &Cache) -> Vec<Object> {
        match self {
            Desired::Validated(state) => state.objects.iter().filter(|o| paths.contains(&o.origin.file)).cloned().collect(),
            Desired::Recorded { snapshot, .. } => {
                let files = snapshot.files.iter().filter(|f| f.path == CONFIG_FILE || paths.contains(&f.path)).cloned().collect();
                let mut state = load::load_cached(Snapshot { files, ..Snapshot::default() }, cache).state;
                validate::expiry::expire(&mut state, now);
                state.objects
            }
        }
    }

    /// The desired state of `objects`, with every diagnostic. Its file texts are those of the
    /// files with a diagnostic or an object of `objects`: a plan's renderers read no other (the
    /// other files loaded are listed, without their text).
    fn state(self, record: &Record, objects: impl Iterator<Item = Object>) -> DesiredState {
        let objects: Vec<Object> = objects.collect();
        match self {
            Desired::Validated(mut state) => {
                // The other objects are left to the OS with the rest of the process.
                std::mem::forget(std::mem::replace(&mut state.objects, objects));
                state
            }
            Desired::Recorded { snapshot, policies, config } => {
                let diagnostics = record.diagnostics();
                let shown: HashSet<&str> =
                    diagnostics.iter().map(|d| d.file.as_str()).chain(objects.iter().map(|o| o.origin.file.as_str())).collect();
                // The lines of a policy directory outside the repository are never shown.
                let policy_files = policies
                    .iter()
                    .filter(|p| !p.outside)
                    .flat_map(|p| p.snapshot.files.iter().map(move |f| (format!("{}/{}", p.dir.trim_end_matches('/'), f.path), &f.bytes)));
                let mut texts: HashMap<String, &Vec<u8>> = snapshot
                    .files
                    .iter()
                    .map(|f| (f.path.clone(), &f.bytes))
                    .chain(policy_files)
                    .filter(|(path, _)| shown.contains(path.as_str()))
                    .collect();
                let none: Arc<str> = Arc::from("");
                let mut text = |path: &String| texts.remove(path).and_then(|bytes| Some(Arc::from(std::str::from_utf8(bytes).ok()?)));
                let sources = record.sources.iter().map(|path| (path.clone(), text(path).unwrap_or_else(|| none.clone()))).collect();
                DesiredState { source: snapshot.label, revision: snapshot.revision, config, objects, sources, diagnostics }
            }
        }
    }
}
