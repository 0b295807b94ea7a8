//! The cache: what the work on a file or an object made (a file's YAML documents and problems,
//! what the guardrail policies found on an object), kept between runs so that a run parses and
//! evaluates only what changed (`--cache-dir`; docs/cli.md "The cache").
//!
//! Each entry is keyed by a sha256 of everything that made it (`Key::of`). Entries live in packs,
//! one per kind of entry and repository, each stamped with the tool's version and sealed with a
//! sha256 of its bytes: another version's pack, a damaged one or an entry that does not decode is
//! ignored (the work is done again), never trusted. A run writes back the entries it used and
//! made, so a pack holds what the last run needed. Only `open`, `save` and `Pack::write_now` (a
//! pack a run is done with, written before the run ends) touch the disk; the stages read and add
//! entries through `&Pack`, from any thread, and `load` has the files pack written once it has
//! parsed every file.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

/// The first line of every pack: a pack of another format or version is not read. (Format 2:
/// a parsed document carries its `yaml_ambiguous` notes. Format 4: a built-in policy's finding
/// names no repository file, a YAML syntax problem points at the mistake, a recorded validation
/// holds `unknown_kind` errors for the mcpruntime.org group and `no_objects`. Format 5: a
/// recorded validation is keyed without the time and carries the window of clocks it holds for.)
const STAMP: &str = concat!("mcp-gitops cache 5 ", env!("CARGO_PKG_VERSION"), "\n");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 32]);

impl Key {
    /// The key of a file: its path and its bytes (its text).
    pub fn file(path: &str, bytes: &[u8]) -> Key {
        Key::of(&[b"file", path.as_bytes(), bytes])
    }

    pub fn bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The sha256 of `parts`, each length-prefixed so that no two lists of parts run together.
    pub fn of(parts: &[&[u8]]) -> Key {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        Key(hasher.finalize().into())
    }
}

/// The entries of one kind: those read from the pack on disk and those made by this run. The
/// pack on disk is read at the first lookup: a run that looks nothing up in it neither reads
/// nor writes it.
#[derive(Default)]
pub struct Pack {
    /// The file the entries are read from at the first lookup (`None`: there are none to read).
    file: Option<PathBuf>,
    read: OnceLock<Entries>,
    used: Mutex<HashSet<Key>>,
    made: Mutex<Vec<(Key, Vec<u8>)>>,
    /// Whether entries are looked up and kept at all (`Cache::off` has packs that never hit).
    on: bool,
    /// Written already by `write_now`: nothing more is looked up or kept.
    closed: AtomicBool,
    /// Why `write_now` could not write the pack, for `Cache::save` to report.
    failed: Mutex<Option<std::io::Error>>,
}

/// The entries of a pack as read.
#[derive(Default)]
struct Entries {
    bytes: Vec<u8>,
    index: HashMap<Key, Range<usize>>,
}

impl Entries {
    /// Anything but a sound pack of this version has no entries.
    fn of(bytes: Vec<u8>) -> Entries {
        let mut entries = Entries::default();
        let Some(body) = bytes.len().checked_sub(32).filter(|&end| end >= STAMP.len()) else { return entries };
        if !bytes.starts_with(STAMP.as_bytes()) || Sha256::digest(&bytes[..body])[..] != bytes[body..] {
            return entries;
        }
        let mut at = STAMP.len();
        while at < body {
            let Some(header) = bytes.get(at..at + 36) else { return entries };
            let key = Key(header[..32].try_into().unwrap_or_default());
            let len = u32::from_le_bytes(header[32..].try_into().unwrap_or_default()) as usize;
            let range = at + 36..at + 36 + len;
            if range.end > body {
                return Entries::default();
            }
            entries.index.insert(key, range.clone());
            at = range.end;
        }
        entries.bytes = bytes;
        entries
    }
}

impl Pack {
    /// The entry under `key`, if the pack has one that decodes.
    pub fn get<T: DeserializeOwned>(&self, key: &Key) -> Option<T> {
        if !self.is_on() {
            return None;
        }
        let entries = self.entries();
        let range = entries.index.get(key)?;
        let value = serde_json::from_slice(&entries.bytes[range.clone()]).ok()?;
        self.used.lock().unwrap_or_else(|p| p.into_inner()).insert(*key);
        Some(value)
    }

    pub fn put<T: Serialize>(&self, key: Key, value: &T) {
        if !self.is_on() {
            return;
        }
        if let Ok(bytes) = serde_json::to_vec(value) {
            self.made.lock().unwrap_or_else(|p| p.into_inner()).push((key, bytes));
        }
    }

    pub fn is_on(&self) -> bool {
        self.on && !self.closed.load(Ordering::Relaxed)
    }

    /// Whether the pack is on and kept in a file (`write_now` has nothing to do otherwise).
    pub fn is_on_disk(&self) -> bool {
        self.is_on() && self.file.is_some()
    }

    /// Writes the pack to its file now, for a run done with it (the files pack once every file
    /// is parsed: it is written while the run goes on instead of after it), and closes it:
    /// nothing more is looked up or kept, and `Cache::save` leaves it as written and reports
    /// what failed.
    pub fn write_now(&self) {
        if let Err(e) = self.write() {
            *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    }

    fn write(&self) -> std::io::Result<()> {
        let Some(file) = self.file.as_ref().filter(|_| self.is_on_disk()) else { return Ok(()) };
        self.closed.store(true, Ordering::Relaxed);
        if !self.changed() && file.exists() {
            return Ok(());
        }
        let mut temporary = file.clone().into_os_string();
        temporary.push(format!(".{}.tmp", std::process::id()));
        std::fs::create_dir_all(file.parent().unwrap_or(Path::new(".")))?;
        std::fs::write(&temporary, self.written())?;
        std::fs::rename(&temporary, file)
    }

    fn entries(&self) -> &Entries {
        self.read.get_or_init(|| Entries::of(self.file.as_ref().and_then(|file| std::fs::read(file).ok()).unwrap_or_default()))
    }

    /// The pack in `file`, read when first used.
    fn at(file: PathBuf) -> Pack {
        Pack { file: Some(file), on: true, ..Pack::default() }
    }

    /// The pack of `bytes`.
    fn read(bytes: Vec<u8>) -> Pack {
        Pack { read: OnceLock::from(Entries::of(bytes)), on: true, ..Pack::default() }
    }

    /// Whether the pack to write back differs from the one on disk: entries were made, or some
    /// that were read were not used. A pack never read is unchanged unless entries were made.
    fn changed(&self) -> bool {
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner()).len();
        !self.made.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
            || self.read.get().is_some_and(|entries| used != entries.index.len())
    }

    /// The pack to write back: the entries this run used and made, stamped and sealed.
    fn written(&self) -> Vec<u8> {
        let used = std::mem::take(&mut *self.used.lock().unwrap_or_else(|p| p.into_inner()));
        let made = std::mem::take(&mut *self.made.lock().unwrap_or_else(|p| p.into_inner()));
        let none = Entries::default();
        let entries = self.read.get().unwrap_or(&none);
        let kept: Vec<(Key, &[u8])> = used.iter().filter_map(|key| Some((*key, &entries.bytes[entries.index.get(key)?.clone()]))).collect();
        let made: Vec<(Key, &[u8])> = made.iter().map(|(key, bytes)| (*key, bytes.as_slice())).collect();
        // Sized at once: a files pack is megabytes, and growing it would copy it several times.
        let size: usize = kept.iter().chain(&made).map(|(_, bytes)| 36 + bytes.len()).sum();
        let mut out = Vec::with_capacity(STAMP.len() + size + 32);
        out.extend_from_slice(STAMP.as_bytes());
        let mut seen = HashSet::new();
        // What this run made again under a key replaces what it read there.
        for (key, bytes) in made.into_iter().chain(kept) {
            let Ok(len) = u32::try_from(bytes.len()) else { continue };
            if seen.insert(key) {
                out.extend_from_slice(&key.0);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(bytes);
            }
        }
        let seal = Sha256::digest(&out);
        out.extend_from_slice(&seal);
        out
    }
}

/// The packs of one repository.
#[derive(Default)]
pub struct Cache {
    dir: Option<PathBuf>,
    /// A file's YAML documents and problems, by path and text (`load`).
    pub files: Pack,
    /// What the guardrail policies that read neither `now` nor `servers` found on an object.
    pub findings: Pack,
    /// What a plan needs of a validated tree (`plan::partial::Record`), by the tree's content,
    /// with the clocks it holds for (`validate::clock::Window`).
    pub trees: Pack,
}

const FILES: &str = "files.pack";
const FINDINGS: &str = "findings.pack";
const TREES: &str = "trees.pack";

impl Cache {
    /// No cache: every lookup misses and nothing is kept.
    pub fn off() -> Cache {
        Cache::default()
    }

    /// A cache in memory alone (the daemon's, from one reconcile to the next): see `renewed`.
    pub fn in_memory() -> Cache {
        let on = || Pack { on: true, ..Pack::default() };
        Cache { files: on(), findings: on(), trees: on(), dir: None }
    }

    /// The cache for the next run in this process: what this one used and made, as `save`
    /// would write it and `open` read it back.
    pub fn renewed(self) -> Cache {
        let renew = |pack: Pack| Pack::read(pack.written());
        Cache { files: renew(self.files), findings: renew(self.findings), trees: renew(self.trees), dir: self.dir }
    }

    /// The cache of the repository at `repository` under `dir`: a folder per repository, so
    /// that runs over several repositories do not evict one another's entries.
    pub fn open(dir: &Path, repository: &Path) -> Cache {
        let place = std::fs::canonicalize(repository).unwrap_or_else(|_| repository.to_path_buf());
        let name = format!("{FOLDER}{}", hex::encode(&Key::of(&[place.as_os_str().as_encoded_bytes()]).0[..8]));
        let dir = dir.join(name);
        let at = |file: &str| Pack::at(dir.join(file));
        Cache { files: at(FILES), findings: at(FINDINGS), trees: at(TREES), dir: Some(dir) }
    }

    /// The cache a run asks for: under `dir` (else the default place) for the repository at
    /// `repository`, or none when `off`.
    pub fn chosen(dir: Option<&Path>, off: bool, repository: &Path) -> Cache {
        match dir.map(Path::to_path_buf).or_else(Cache::default_dir) {
            Some(dir) if !off => Cache::open(&dir, repository),
            _ => Cache::off(),
        }
    }

    /// The default place: `$XDG_CACHE_HOME/mcp-gitops`, else `~/.cache/mcp-gitops`.
    pub fn default_dir() -> Option<PathBuf> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|home| home.join(".cache"))).map(|dir| dir.join("mcp-gitops"))
    }

    /// `save` on another thread, while the caller goes on; `failed` is told why it could not. The
    /// caller waits for it when the value returned is dropped.
    pub fn save_beside(self, failed: impl FnOnce(std::io::Error) + Send + 'static) -> Saving {
        Saving(Some(std::thread::spawn(move || {
            if let Err(e) = self.save() {
                failed(e);
            }
        })))
    }

    /// Writes back the packs that changed (each to a temporary file renamed into place: a reader
    /// never sees half a pack, and of two runs at once the last one's packs stay).
    /// The folders of repositories no run has saved for `UNUSED` are removed (temporary
    /// checkouts would otherwise pile up); nothing else in the parent folder is touched.
    pub fn save(self) -> std::io::Result<()> {
        let Some(dir) = self.dir else { return Ok(()) };
        std::fs::create_dir_all(&dir)?;
        let packs = [self.files, self.findings, self.trees];
        // The files pack (megabytes) is written on another core beside the others.
        std::thread::scope(|scope| {
            let [files, others @ ..] = &packs;
            scope.spawn(|| files.write_now());
            others.iter().for_each(Pack::write_now);
        });
        if let Some(failed) = packs.into_iter().find_map(|pack| pack.failed.into_inner().unwrap_or_else(|p| p.into_inner())) {
            return Err(failed);
        }
        // The age of the files pack says when a run last used the folder.
        std::fs::File::options().append(true).open(dir.join(FILES))?.set_modified(std::time::SystemTime::now())?;
        for folder in dir.parent().and_then(|parent| std::fs::read_dir(parent).ok()).into_iter().flatten().flatten() {
            let saved = std::fs::metadata(folder.path().join(FILES)).and_then(|m| m.modified()).ok();
            let unused = saved.and_then(|saved| saved.elapsed().ok()).is_some_and(|age| age > UNUSED);
            if unused && folder.file_name().to_string_lossy().starts_with(FOLDER) {
                let _ = std::fs::remove_dir_all(folder.path());
            }
        }
        Ok(())
    }
}

/// The name of a repository's folder starts so (then 16 hex digits of its path's sha256).
const FOLDER: &str = "repository-";
/// How long a repository's folder is kept after the last run that saved it.
const UNUSED: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// A cache being written (`Cache::save_beside`): dropping it waits for the write to end.
pub struct Saving(Option<std::thread::JoinHandle<()>>);

impl Drop for Saving {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack_of(entries: &[(&[u8], &str)]) -> Vec<u8> {
        let pack = Pack { on: true, ..Pack::default() };
        for (key, value) in entries {
            pack.put(Key::of(&[key]), value);
        }
        pack.written()
    }

    #[test]
    fn what_was_put_is_read_back_and_only_what_a_run_used_is_kept() {
        let pack = Pack::read(pack_of(&[(b"a", "one"), (b"b", "two")]));
        assert_eq!(pack.get::<String>(&Key::of(&[b"a"])).as_deref(), Some("one"));
        assert_eq!(pack.get::<String>(&Key::of(&[b"c"])), None);
        pack.put(Key::of(&[b"c"]), &"three");
        let again = Pack::read(pack.written());
        assert_eq!(again.get::<String>(&Key::of(&[b"a"])).as_deref(), Some("one"));
        assert_eq!(again.get::<String>(&Key::of(&[b"b"])), None, "not used by the last run");
        assert_eq!(again.get::<String>(&Key::of(&[b"c"])).as_deref(), Some("three"));
    }

    #[test]
    fn a_damaged_or_foreign_pack_is_empty() {
        let sound = pack_of(&[(b"a", "one")]);
        let key = Key::of(&[b"a"]);
        for at in [0, STAMP.len() + 3, STAMP.len() + 40, sound.len() - 1] {
            let mut damaged = sound.clone();
            damaged[at] ^= 1;
            assert_eq!(Pack::read(damaged).get::<String>(&key), None, "byte {at} flipped");
        }
        for cut in [0, 10, sound.len() - 33, sound.len() - 1] {
            assert_eq!(Pack::read(sound[..cut].to_vec()).get::<String>(&key), None, "cut at {cut}");
        }
        let mut foreign = b"mcp-gitops cache 1 0.0.0-other\n".to_vec();
        foreign.extend_from_slice(&sound[STAMP.len()..sound.len() - 32]);
        let seal = Sha256::digest(&foreign);
        foreign.extend_from_slice(&seal);
        assert_eq!(Pack::read(foreign).get::<String>(&key), None, "another version's pack");
        assert_eq!(Pack::read(sound).get::<String>(&key).as_deref(), Some("one"));
    }

    #[test]
    fn a_pack_a_run_did_not_look_into_is_left_as_it_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repository = Path::new("repository");
        let cache = Cache::open(dir.path(), repository);
        cache.files.put(Key::of(&[b"a"]), &"one");
        cache.findings.put(Key::of(&[b"b"]), &"two");
        cache.save().expect("saved");
        // A run that looks into the findings alone and finds nothing there.
        let cache = Cache::open(dir.path(), repository);
        assert_eq!(cache.findings.get::<String>(&Key::of(&[b"c"])), None);
        cache.save().expect("saved");
        let cache = Cache::open(dir.path(), repository);
        assert_eq!(cache.files.get::<String>(&Key::of(&[b"a"])).as_deref(), Some("one"), "not read, so kept");
        assert_eq!(cache.findings.get::<String>(&Key::of(&[b"b"])), None, "read and not used, so dropped");
    }

    #[test]
    fn a_pack_written_early_is_closed_and_saved_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repository = Path::new("repository");
        let cache = Cache::open(dir.path(), repository);
        cache.files.put(Key::of(&[b"a"]), &"one");
        cache.files.write_now();
        assert!(!cache.files.is_on(), "closed");
        cache.files.put(Key::of(&[b"b"]), &"two");
        assert_eq!(cache.files.get::<String>(&Key::of(&[b"a"])), None, "nothing looked up once written");
        cache.save().expect("saved");
        let cache = Cache::open(dir.path(), repository);
        assert_eq!(cache.files.get::<String>(&Key::of(&[b"a"])).as_deref(), Some("one"));
        assert_eq!(cache.files.get::<String>(&Key::of(&[b"b"])), None, "put after the pack was written");
    }

    #[test]
    fn an_entry_made_again_replaces_the_one_read() {
        let pack = Pack::read(pack_of(&[(b"a", "old")]));
        assert_eq!(pack.get::<String>(&Key::of(&[b"a"])).as_deref(), Some("old"));
        pack.put(Key::of(&[b"a"]), &"new");
        assert_eq!(Pack::read(pack.written()).get::<String>(&Key::of(&[b"a"])).as_deref(), Some("new"));
    }

    #[test]
    fn keys_do_not_run_parts_together() {
        assert_ne!(Key::of(&[b"ab", b"c"]), Key::of(&[b"a", b"bc"]));
    }

    #[test]
    fn a_renewed_cache_keeps_what_the_run_used_and_made() {
        let cache = Cache::in_memory();
        cache.files.put(Key::of(&[b"a"]), &"one");
        let cache = cache.renewed();
        assert_eq!(cache.files.get::<String>(&Key::of(&[b"a"])).as_deref(), Some("one"));
        cache.findings.put(Key::of(&[b"b"]), &"two");
        let cache = cache.renewed().renewed();
        assert_eq!(cache.files.get::<String>(&Key::of(&[b"a"])), None, "not used by the run before");
        assert_eq!(cache.findings.get::<String>(&Key::of(&[b"b"])), None, "not used by the run before");
        assert!(Cache::in_memory().save().is_ok(), "nothing to write");
    }
}
