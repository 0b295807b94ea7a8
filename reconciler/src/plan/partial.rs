//! A plan against a base that shares most files with the desired state, made from the objects a
//! change can reach alone. What a plan needs of a validated tree is kept as a `Record` (each
//! file's git blob id and the objects it declares, the diagnostics); the changed files are found
//! by their blob ids; the objects of the changed files and of every file that declares or
//! targets a server they touch are loaded on both sides; the objects of the other files, the
//! same in both, join the plan as no-ops (`complete`). Pure: the CLI reads the trees and the
//! cache.
//!
//! Exact only when each unchanged file means the same on both sides: the CLI falls back to a
//! full plan when `mcp-gitops.yaml` differs, when an object is declared twice, or when an
//! unchanged file could not be loaded (`Record::load_errors`). A file whose work-tree bytes are
//! not its blob's (line endings converted on checkout) counts as changed: loaded on both sides,
//! it costs time, not exactness.

use super::{Action, Plan, change};
use crate::gateway::render::targets;
use crate::model::{DesiredState, Diagnostic, Kind, ObjectId};
use crate::validate::expiry::EXPIRES_AT;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What a plan needs of a validated tree without its objects.
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    /// Every file read (the ignored ones and `mcp-gitops.yaml` too), in path order.
    pub files: Vec<FileRecord>,
    /// Every object, by id (one declared twice comes twice, side by side).
    objects: Vec<ObjectRecord>,
    /// The paths of the state's `sources`: the files loaded, policy directories' included.
    pub sources: Vec<String>,
    /// The validated state's diagnostics, in order.
    diagnostics: Vec<Diagnostic>,
    /// Which of them must not show their source (`Diagnostic::redact_source` is not written).
    redacted: Vec<usize>,
    /// The files, `mcp-gitops.yaml` aside, whose loading found an error.
    load_errors: BTreeSet<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    /// The git blob id of its bytes, in hex (`None`: bytes git refuses, made to collide).
    blob: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ObjectRecord {
    id: ObjectId,
    /// Its file, in `Record::files`.
    file: usize,
    /// The server a grant or session targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<(String, String)>,
    /// A grant's expiry annotation, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
}

impl Record {
    /// The record of `state`, validated from files with the blob ids `blobs` (path order); the
    /// files of `load_errors` could not be loaded in full.
    pub fn of(state: &DesiredState, blobs: Vec<(String, Option<String>)>, load_errors: BTreeSet<String>) -> Record {
        let pointer = expiry_pointer();
        let file: HashMap<&str, usize> = blobs.iter().enumerate().map(|(i, (path, _))| (path.as_str(), i)).collect();
        let mut objects: Vec<ObjectRecord> = crate::parallel::ordered_map(&state.objects, 1024, |object| ObjectRecord {
            id: object.id.clone(),
            file: file.get(object.origin.file.as_str()).copied().unwrap_or(usize::MAX),
            target: targets(object).map(|(namespace, name)| (namespace.to_string(), name.to_string())),
            expires: object.body.pointer(&pointer).and_then(|v| v.as_str()).map(str::to_string),
        });
        objects.sort_by(|a, b| a.id.cmp(&b.id));
        let redacted = state.diagnostics.iter().enumerate().filter(|(_, d)| d.redact_source).map(|(i, _)| i).collect();
        Record {
            files: blobs.into_iter().map(|(path, blob)| FileRecord { path, blob }).collect(),
            objects,
            sources: state.sources.keys().cloned().collect(),
            diagnostics: state.diagnostics.clone(),
            redacted,
            load_errors,
        }
    }

    /// The validated state's diagnostics.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut diagnostics = self.diagnostics.clone();
        for &i in &self.redacted {
            if let Some(d) = diagnostics.get_mut(i) {
                d.redact_source = true;
            }
        }
        diagnostics
    }

    /// Whether a file of `paths` (files the base has as they are here) could not be loaded in
    /// full: the base's problems would be its too.
    pub fn load_errors_in<'a>(&self, mut paths: impl Iterator<Item = &'a str>) -> bool {
        paths.any(|path| self.load_errors.contains(path))
    }

    /// Whether each file is one of `paths`.
    fn marks(&self, paths: &BTreeSet<String>) -> Vec<bool> {
        self.files.iter().map(|f| paths.contains(&f.path)).collect()
    }

    /// The objects, each with whether its file is one of `paths`.
    fn objects_in<'a>(&'a self, paths: &BTreeSet<String>) -> impl Iterator<Item = (&'a ObjectRecord, bool)> {
        let marks = self.marks(paths);
        self.objects.iter().map(move |o| (o, marks.get(o.file).copied().unwrap_or(false)))
    }
}

/// The files that differ between the desired tree and the base (each path's blob id): each path
/// either side has whose blob id differs or is not known (`None`: a symbolic link, whose file is
/// another, or bytes git refuses).
pub fn touched(desired: &Record, base: &HashMap<String, Option<String>>) -> BTreeSet<String> {
    let ids: HashMap<&str, Option<&str>> = desired.files.iter().map(|f| (f.path.as_str(), f.blob.as_deref())).collect();
    let same = |path: &str| matches!((ids.get(path), base.get(path)), (Some(Some(a)), Some(Some(b))) if a == b);
    ids.keys().copied().chain(base.keys().map(String::as_str)).filter(|path| !same(path)).map(str::to_string).collect()
}

/// Whether an object is declared twice on either side: the desired record's, and the base's
/// (the record's objects of the files not `touched`, and `base`, the base's objects of those).
pub fn declared_twice(desired: &Record, touched: &BTreeSet<String>, base: &DesiredState) -> bool {
    if desired.objects.windows(2).any(|pair| pair[0].id == pair[1].id) {
        return true;
    }
    let mut ids: Vec<&ObjectId> = base.objects.iter().map(|o| &o.id).collect();
    ids.sort();
    if ids.windows(2).any(|pair| pair[0] == pair[1]) {
        return true;
    }
    let marks = desired.marks(touched);
    let kept = |id: &ObjectId| {
        let at = desired.objects.partition_point(|o| o.id < *id);
        desired.objects.get(at).is_some_and(|o| o.id == *id && !marks.get(o.file).copied().unwrap_or(false))
    };
    ids.into_iter().any(kept)
}

/// The files beyond the changed ones that a plan of `base` and `desired` (the objects of the
/// changed files) must load: every file that declares, or declares a grant or session that
/// targets, a server whose policy may change. That is a server a changed object targets (or
/// is), and, when a changed grant expires later and what its expiry takes away is not
/// `recorded` already, each server a grant expiring by then targets (the plan shows what its
/// expiry takes away: every grant expired by then counts).
pub fn reached(
    desired_record: &Record,
    touched: &BTreeSet<String>,
    base: &DesiredState,
    desired: &DesiredState,
    now: Timestamp,
    recorded: bool,
) -> BTreeSet<String> {
    let path = |o: &ObjectRecord| desired_record.files.get(o.file).map(|f| f.path.clone());
    let untouched = || desired_record.objects_in(touched).filter(|(_, touched)| !touched).map(|(o, _)| o);
    let Some(mut servers) = super::changed_servers(base, desired) else {
        // Another cluster name: every policy changes.
        return untouched().filter_map(path).collect();
    };
    let pointer = expiry_pointer();
    let latest = desired
        .of_kind(Kind::Grant)
        .filter_map(|o| o.body.pointer(&pointer)?.as_str()?.parse::<Timestamp>().ok())
        .filter(|at| *at > now && !recorded)
        .max();
    if let Some(latest) = latest {
        let expiring =
            |o: &ObjectRecord| o.expires.as_deref().and_then(|at| at.parse::<Timestamp>().ok()).is_some_and(|at| at > now && at <= latest);
        servers.extend(desired_record.objects.iter().filter(|o| expiring(o)).filter_map(|o| o.target.clone()));
    }
    let reaches = |o: &&ObjectRecord| match &o.target {
        Some(target) => servers.contains(target),
        None => o.id.kind == Kind::Server && servers.contains(&(o.id.namespace.clone(), o.id.name.clone())),
    };
    untouched().filter(reaches).filter_map(path).collect()
}

/// Completes a plan made from the objects of some files of the desired tree (`desired`) with
/// a no-op for each object of the others, in the order a plan of every object has (by id, then
/// the deletes). No id is declared twice (`declared_twice`).
pub fn complete(plan: &mut Plan, desired_record: &Record, desired: &DesiredState) {
    let planned: HashSet<&ObjectId> = desired.objects.iter().map(|o| &o.id).collect();
    let split = plan.changes.iter().position(|c| c.action == Action::Delete).unwrap_or(plan.changes.len());
    let deletes = plan.changes.split_off(split);
    let mut made = std::mem::take(&mut plan.changes).into_iter().peekable();
    let mut changes = Vec::with_capacity(desired_record.objects.len() + deletes.len());
    for id in desired_record.objects.iter().map(|o| &o.id).filter(|id| !planned.contains(id)) {
        while let Some(change) = made.next_if(|c| (c.kind, &c.namespace, &c.name) < (id.kind, &id.namespace, &id.name)) {
            changes.push(change);
        }
        changes.push(change(id, Action::NoOp, String::new()));
        plan.summary.no_op += 1;
    }
    changes.extend(made);
    changes.extend(deletes);
    plan.changes = changes;
    plan.summary.judge_deletions();
}

fn expiry_pointer() -> String {
    format!("/metadata/annotations/{}", EXPIRES_AT.replace('/', "~1"))
}
