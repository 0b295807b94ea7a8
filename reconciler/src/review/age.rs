//! How old a grant is: the commit that added it, from the repository's git history. A grant
//! younger than the review's window has not had the chance to be used (DOMAIN.md §11, 5).
//!
//! One walk of the history answers for every grant (21,000 objects cost one pass, not one walk
//! each): commits are visited children first, each grant travels from HEAD to the first parent
//! whose version of its file still holds it, and a file is loaded once per blob.

use crate::load;
use crate::model::{Object, ObjectId};
use crate::source::{self, Change, SourceError};
use git2::{Oid, Repository};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The commit that added each of `grants` (as HEAD has them), in their order: walking back from
/// HEAD, each grant goes to the first parent (in parent order) whose version of its file still
/// holds it, and its answer is the commit where none does (added there, or moved there from
/// another file). `None` when HEAD does not hold it in its file (not committed yet).
pub fn added(path: &Path, grants: &[&Object]) -> Result<Vec<Option<Change>>, SourceError> {
    let repo = Repository::discover(path)?;
    let prefix = source::path_in_repository(path);
    let files: Vec<PathBuf> = grants.iter().map(|g| PathBuf::from(format!("{prefix}{}", g.origin.file))).collect();
    let mut added = vec![None; grants.len()];
    let Ok(head) = repo.head().and_then(|h| h.peel_to_commit()) else { return Ok(added) };
    let mut blobs = Blobs { repo: &repo, held: HashMap::new() };
    let head_tree = head.tree()?;
    let in_head =
        (0..grants.len()).filter(|&i| head_tree.get_path(&files[i]).is_ok_and(|entry| blobs.holds(grants[i], entry.id()))).collect();
    // The grants whose walk has reached a commit, waiting for it.
    let mut arrived: HashMap<Oid, Vec<usize>> = HashMap::from([(head.id(), in_head)]);
    let mut walk = repo.revwalk()?;
    walk.push(head.id())?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL)?;
    for id in walk {
        if arrived.is_empty() {
            break;
        }
        let id = id?;
        let Some(mut here) = arrived.remove(&id) else { continue };
        let commit = repo.find_commit(id)?;
        let tree = commit.tree()?;
        for parent in commit.parents() {
            if here.is_empty() {
                break;
            }
            let older = changed(&repo, &parent.tree()?, &tree)?;
            let (kept, lost): (Vec<usize>, Vec<usize>) = here.into_iter().partition(|&i| match older.get(&files[i]) {
                None => true,
                Some(None) => false,
                Some(Some(blob)) => blobs.holds(grants[i], *blob),
            });
            if !kept.is_empty() {
                arrived.entry(parent.id()).or_default().extend(kept);
            }
            here = lost;
        }
        if !here.is_empty() {
            let change = Change::of(&commit);
            for i in here {
                added[i] = Some(change.clone());
            }
        }
    }
    Ok(added)
}

/// The paths whose blob differs between `older` and `newer`, each with its blob in `older`
/// (`None`: absent there). A path not listed has the same blob on both sides.
fn changed(repo: &Repository, older: &git2::Tree, newer: &git2::Tree) -> Result<HashMap<PathBuf, Option<Oid>>, SourceError> {
    let diff = repo.diff_tree_to_tree(Some(older), Some(newer), None)?;
    Ok(diff
        .deltas()
        .filter_map(|delta| {
            let old = delta.old_file();
            let path = old.path().or(delta.new_file().path())?.to_path_buf();
            Some((path, old.exists().then(|| old.id())))
        })
        .collect())
}

/// The objects each version of a file holds, loaded once per file and blob.
struct Blobs<'r> {
    repo: &'r Repository,
    held: HashMap<(String, Oid), Vec<ObjectId>>,
}

impl Blobs<'_> {
    fn holds(&mut self, grant: &Object, blob: Oid) -> bool {
        let file = &grant.origin.file;
        let repo = self.repo;
        self.held
            .entry((file.clone(), blob))
            .or_insert_with(|| {
                let Ok(content) = repo.find_blob(blob) else { return Vec::new() };
                let bytes = content.content().to_vec();
                let snapshot = source::Snapshot { files: vec![source::SourceFile { path: file.clone(), bytes }], ..Default::default() };
                load::load(snapshot).state.objects.into_iter().map(|o| o.id).collect()
            })
            .contains(&grant.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use std::collections::BTreeMap;

    /// The walk grant by grant, as the review made it before the single walk: the reference.
    fn added_one_by_one(path: &Path, grant: &Object) -> Result<Option<Change>, SourceError> {
        let file = &grant.origin.file;
        let holds = |bytes: &[u8], id: &ObjectId| {
            let snapshot =
                source::Snapshot { files: vec![source::SourceFile { path: file.clone(), bytes: bytes.to_vec() }], ..Default::default() };
            load::load(snapshot).state.objects.iter().any(|o| o.id == *id)
        };
        let repo = Repository::discover(path)?;
        let in_head = repo
            .head()
            .and_then(|h| h.peel_to_tree())
            .and_then(|tree| tree.get_path(&Path::new(&source::path_in_repository(path)).join(file)))
            .and_then(|entry| repo.find_blob(entry.id()))
            .is_ok_and(|blob| holds(blob.content(), &grant.id));
        if !in_head {
            return Ok(None);
        }
        source::last_change(path, "HEAD", file, |older, _| holds(older, &grant.id)).map(Some)
    }

    /// A file's grants (name, label) and an edit count that changes its bytes alone.
    type Files = BTreeMap<String, (Vec<(String, u32)>, u32)>;

    fn text(grants: &[(String, u32)], edits: u32) -> String {
        let mut text = format!("# edit {edits}\n");
        for (name, label) in grants {
            text += &format!(
                "---\napiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: {name}\n  namespace: team\n  labels:\n    v: \"{label}\"\nspec:\n  serverRef:\n    name: srv\n  subject:\n    agentID: agent-{name}\n  maxTrust: low\n  allowedSideEffects: [read]\n"
            );
        }
        text
    }

    /// A repository whose platform is under `platform/`, commits made an hour apart.
    struct History {
        dir: tempfile::TempDir,
        repo: Repository,
        hour: i64,
    }

    impl History {
        fn new() -> History {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("platform")).unwrap();
            let repo = Repository::init(dir.path()).unwrap();
            History { dir, repo, hour: 0 }
        }

        fn commit(&mut self, files: &Files, parents: &[Oid]) -> Oid {
            let mut index = git2::Index::new().unwrap();
            for (path, (grants, edits)) in files {
                let bytes = text(grants, *edits);
                let id = self.repo.blob(bytes.as_bytes()).unwrap();
                let path = format!("platform/{path}").into_bytes();
                let time = git2::IndexTime::new(0, 0);
                index
                    .add(&git2::IndexEntry {
                        ctime: time,
                        mtime: time,
                        dev: 0,
                        ino: 0,
                        mode: 0o100644,
                        uid: 0,
                        gid: 0,
                        file_size: bytes.len() as u32,
                        id,
                        flags: path.len() as u16,
                        flags_extended: 0,
                        path,
                    })
                    .unwrap();
            }
            let tree = self.repo.find_tree(index.write_tree_to(&self.repo).unwrap()).unwrap();
            self.hour += 1;
            let who =
                git2::Signature::new("Platform", "platform@example.com", &git2::Time::new(1_790_000_000 + self.hour * 3600, 0)).unwrap();
            let parents: Vec<git2::Commit> = parents.iter().map(|p| self.repo.find_commit(*p).unwrap()).collect();
            let parents: Vec<&git2::Commit> = parents.iter().collect();
            self.repo.commit(None, &who, &who, &format!("commit {}", self.hour), &tree, &parents).unwrap()
        }

        fn head(&self, at: Oid) -> PathBuf {
            self.repo.reference("refs/heads/main", at, true, "head").unwrap();
            self.repo.set_head("refs/heads/main").unwrap();
            self.dir.path().join("platform")
        }
    }

    fn grants_in_head(path: &Path) -> Vec<Object> {
        let state = load::load(source::from_git(path, "HEAD").unwrap()).state;
        state.of_kind(Kind::Grant).cloned().collect()
    }

    /// The single walk's answer for every grant of HEAD, checked against the walk grant by grant.
    fn added_by_both(path: &Path) -> BTreeMap<String, Option<String>> {
        let grants = grants_in_head(path);
        let all: Vec<&Object> = grants.iter().collect();
        let together = added(path, &all).unwrap();
        let mut found = BTreeMap::new();
        for (grant, change) in grants.iter().zip(together) {
            let alone = added_one_by_one(path, grant).unwrap();
            assert_eq!(change.as_ref().map(|c| &c.commit), alone.as_ref().map(|c| &c.commit), "{} in {}", grant.id.name, grant.origin.file);
            found.insert(format!("{} in {}", grant.id.name, grant.origin.file), change.map(|c| c.summary));
        }
        found
    }

    /// A file: its path, its grants (name, label) and its edit count.
    type Written<'a> = (&'a str, &'a [(&'a str, u32)], u32);

    fn files(of: &[Written]) -> Files {
        of.iter()
            .map(|(file, grants, edits)| (file.to_string(), (grants.iter().map(|(n, l)| (n.to_string(), *l)).collect(), *edits)))
            .collect()
    }

    #[test]
    fn edits_are_not_additions_and_re_adds_merges_and_moves_are() {
        let mut history = History::new();
        let first = history.commit(&files(&[("f1.yaml", &[("a", 0), ("b", 0)], 0), ("f2.yaml", &[("c", 0)], 0)]), &[]);
        // a relabelled, c deleted.
        let second = history.commit(&files(&[("f1.yaml", &[("a", 1), ("b", 0)], 0)]), &[first]);
        // A branch adds d; main adds c again.
        let branch = history.commit(&files(&[("f1.yaml", &[("a", 1), ("b", 0)], 0), ("f3.yaml", &[("d", 0)], 0)]), &[second]);
        let again = history.commit(&files(&[("f1.yaml", &[("a", 1), ("b", 0)], 0), ("f2.yaml", &[("c", 0)], 0)]), &[second]);
        let merged = files(&[("f1.yaml", &[("a", 1), ("b", 0)], 1), ("f2.yaml", &[("c", 0)], 0), ("f3.yaml", &[("d", 0)], 0)]);
        let merge = history.commit(&merged, &[again, branch]);
        // b moves to f3.
        let moved = history
            .commit(&files(&[("f1.yaml", &[("a", 1)], 1), ("f2.yaml", &[("c", 0)], 0), ("f3.yaml", &[("d", 0), ("b", 0)], 0)]), &[merge]);
        let path = history.head(moved);
        let found = added_by_both(&path);
        let expected: BTreeMap<String, Option<String>> =
            [("a in f1.yaml", "commit 1"), ("b in f3.yaml", "commit 6"), ("c in f2.yaml", "commit 4"), ("d in f3.yaml", "commit 3")]
                .into_iter()
                .map(|(g, c)| (g.to_string(), Some(c.to_string())))
                .collect();
        assert_eq!(found, expected);
        // A grant HEAD does not hold (not committed yet) has no commit.
        let mut uncommitted = grants_in_head(&path).into_iter().find(|g| g.id.name == "a").unwrap();
        uncommitted.id.name = "e".into();
        assert_eq!(added(&path, &[&uncommitted]).unwrap().into_iter().next().unwrap().map(|c| c.commit), None);
    }

    /// splitmix64, so that a failing history can be made again from its seed.
    struct Dice(u64);

    impl Dice {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) % n as u64) as usize
        }
    }

    /// One random change of a branch's files: a grant added, deleted, relabelled or moved, or
    /// a file's bytes changed alone.
    fn change(files: &mut Files, dice: &mut Dice) {
        let file = format!("grants/f{}.yaml", dice.below(4));
        let names: Vec<String> = files.values().flat_map(|(g, _)| g.iter().map(|(n, _)| n.clone())).collect();
        let held: Vec<(String, usize)> = files.iter().flat_map(|(f, (g, _))| (0..g.len()).map(move |i| (f.clone(), i))).collect();
        match dice.below(5) {
            0 | 1 => {
                let name = format!("g{}", dice.below(10));
                if !names.contains(&name) {
                    files.entry(file).or_default().0.push((name, 0));
                }
            }
            2 if !held.is_empty() => {
                let (from, i) = held[dice.below(held.len())].clone();
                let grant = files.get_mut(&from).unwrap().0.remove(i);
                if dice.below(2) == 0 {
                    files.entry(file).or_default().0.push(grant);
                }
            }
            3 if !held.is_empty() => {
                let (from, i) = held[dice.below(held.len())].clone();
                files.get_mut(&from).unwrap().0[i].1 += 1;
            }
            _ => files.entry(file).or_default().1 += 1,
        }
        files.retain(|_, (grants, edits)| !grants.is_empty() || *edits % 3 != 0);
    }

    #[test]
    fn one_walk_answers_as_a_walk_per_grant_on_random_histories_with_merges() {
        for seed in 0..12 {
            let mut dice = Dice(seed);
            let mut history = History::new();
            let mut branches: Vec<(Oid, Files)> = vec![(history.commit(&Files::new(), &[]), Files::new())];
            for _ in 0..40 {
                let i = dice.below(branches.len());
                match dice.below(8) {
                    0 if branches.len() < 3 => branches.push(branches[i].clone()),
                    1 if branches.len() > 1 => {
                        let j = (i + 1 + dice.below(branches.len() - 1)) % branches.len();
                        // The merge's tree takes each file from either side.
                        let mut merged = branches[i].1.clone();
                        for (file, theirs) in branches[j].1.clone() {
                            if dice.below(2) == 0 {
                                merged.insert(file, theirs);
                            }
                        }
                        let commit = history.commit(&merged, &[branches[i].0, branches[j].0]);
                        branches[i] = (commit, merged);
                        if j != 0 && dice.below(2) == 0 {
                            branches.remove(j);
                        }
                    }
                    _ => {
                        let mut files = branches[i].1.clone();
                        for _ in 0..=dice.below(3) {
                            change(&mut files, &mut dice);
                        }
                        branches[i] = (history.commit(&files, &[branches[i].0]), files);
                    }
                }
            }
            let path = history.head(branches[0].0);
            let found = added_by_both(&path);
            assert!(!found.is_empty() && found.values().all(Option::is_some), "seed {seed}: {found:?}");
        }
    }
}
