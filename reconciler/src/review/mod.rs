//! Access review (issue #29): each grant of a repository judged by the gateway's own records
//! over a window — used, unused, shadowed (removing it changes no decision), too young (added
//! inside the window), or not judged (the records do not cover the window for its server) —
//! grouped by owner; `write` turns the proposals into a commit. Takes the desired state, its git history (`age`) and the records summed up
//! (`audit`); gives back a `Review` that `render::review` shows. It never prints, and proposes
//! nothing where the records cannot tell (DOMAIN.md §11).

pub mod age;
pub mod audit;
pub mod clickhouse;
pub mod shadow;
pub mod source;
pub mod write;

use crate::gateway::{PolicyDocument, render::targets};
use crate::model::{DesiredState, Kind, Object, ObjectId, OwnerMap};
use crate::source::{Change, SourceError};
use audit::{Named, Usage, Window};
use jiff::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The version of the review's JSON; a field's meaning changes only with it.
pub const FORMAT_VERSION: &str = "1";

/// What the records say of one grant, in the order a reviewer reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Never named by an allowed call in the window, and removing it takes access away.
    Unused,
    /// Never named by an allowed call in the window, and removing it changes no decision.
    Shadowed,
    Used,
    /// Added inside the window: it has not had the chance to be used.
    TooYoung,
    /// The records do not cover the window for its server.
    NotJudged,
}

impl Verdict {
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Unused => "unused",
            Verdict::Shadowed => "shadowed",
            Verdict::Used => "used",
            Verdict::TooYoung => "too young",
            Verdict::NotJudged => "not judged",
        }
    }
}

/// One grant, judged.
#[derive(Debug, Clone, Serialize)]
pub struct GrantReview {
    /// `NAMESPACE/NAME` of the grant.
    pub grant: String,
    /// `NAMESPACE/NAME` of the server it grants on.
    pub server: String,
    /// Where it is written: the file (from the repository's root) and line.
    pub file: String,
    pub line: usize,
    /// The server's owners (`owners.servers`); empty when it has none.
    pub owners: Vec<String>,
    pub verdict: Verdict,
    /// Allowed calls that name it in the window.
    pub calls: u64,
    /// Its last allowed call up to the review's time, earlier than the window too (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_use: Option<String>,
    /// When the commit that added it was made (RFC 3339), when the verdict needed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added: Option<String>,
    /// One sentence: why this verdict.
    pub why: String,
}

impl GrantReview {
    /// Whether the review proposes taking it away.
    pub fn proposed(&self) -> bool {
        matches!(self.verdict, Verdict::Unused | Verdict::Shadowed)
    }
}

/// Allowed calls in the window that name no grant (observe mode, a default decision of
/// allow) on a governed server of the repository: use by nobody, shown so that a reviewer sees
/// the gateway let them through.
#[derive(Debug, Clone, Serialize)]
pub struct Unattributed {
    pub server: String,
    pub calls: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Review {
    pub format_version: &'static str,
    /// The review's time and the window's start (RFC 3339), and the window as asked (`30d`).
    pub at: String,
    pub window_start: String,
    pub unused_for: String,
    /// Every grant that is not disabled, by owners, then server, then grant.
    pub grants: Vec<GrantReview>,
    pub unattributed: Vec<Unattributed>,
}

impl Review {
    pub fn proposals(&self) -> impl Iterator<Item = &GrantReview> {
        self.grants.iter().filter(|g| g.proposed())
    }
}

/// Judges every grant of `state` (read from `path`, a directory in a git repository) by the
/// records summed up in `usage` over `window`: the ages of the grants no call named come from
/// one walk of the history (`age`), and each server's access matrix is decided once for all its
/// candidates (`shadow`).
pub fn review(state: &DesiredState, path: &Path, usage: &Usage, window: Window, unused_for: &str) -> Result<Review, SourceError> {
    let documents: HashMap<ObjectId, PolicyDocument> = crate::gateway::render_unstamped(state, |_| true).into_iter().collect();
    let owners = OwnerMap::new(&state.config.owners);
    let mut grants = Vec::new();
    let mut unnamed: Vec<(usize, &Object, ObjectId)> = Vec::new();
    for object in state.of_kind(Kind::Grant).filter(|o| o.grant().is_some_and(|g| !g.disabled)) {
        let Some((namespace, name)) = targets(object) else { continue };
        let server = ObjectId { kind: Kind::Server, namespace: namespace.into(), name: name.into() };
        let named = Named { namespace: object.id.namespace.clone(), name: object.id.name.clone() };
        let shown = format!("{}/{}", server.namespace, server.name);
        let used = usage.grants.get(&named).cloned().unwrap_or_default();
        if used.calls == 0 {
            unnamed.push((grants.len(), object, server));
        }
        grants.push(GrantReview {
            grant: named.to_string(),
            server: shown.clone(),
            file: object.origin.file.clone(),
            line: object.origin.line,
            owners: owners.of(&shown).into_iter().collect(),
            verdict: Verdict::Used,
            calls: used.calls,
            last_use: used.last_use.map(|t| t.to_string()),
            added: None,
            why: format!("{} allowed call(s) in the window", used.calls),
        });
    }
    let ages = age::added(path, &unnamed.iter().map(|(_, object, _)| *object).collect::<Vec<_>>())?;
    // The grants left for the access matrix to tell shadowed from unused, by server.
    let mut candidates: BTreeMap<&ObjectId, Vec<usize>> = BTreeMap::new();
    for ((i, _, server), added) in unnamed.iter().zip(ages) {
        let document = documents.get(server);
        if judge_unnamed(&mut grants[*i], added, document, usage, window) {
            candidates.entry(server).or_default().push(*i);
        }
    }
    for (server, judged) in candidates {
        let names: Vec<&str> = judged.iter().map(|&i| grants[i].grant.as_str()).collect();
        let shadowed = documents.get(server).map(|d| shadow::shadowed(d, &names, window.end)).unwrap_or_default();
        for (i, shadowed) in judged.into_iter().zip(shadowed) {
            (grants[i].verdict, grants[i].why) = if shadowed {
                (Verdict::Shadowed, "never named in the window, and removing it changes no decision".to_string())
            } else {
                (Verdict::Unused, "never named in the window, and removing it takes access away".to_string())
            };
        }
    }
    grants.sort_by(|a, b| (&a.owners, &a.server, &a.grant).cmp(&(&b.owners, &b.server, &b.grant)));
    let unattributed = usage
        .servers
        .iter()
        .filter(|(server, records)| {
            records.unattributed > 0 && documents.keys().any(|id| id.namespace == server.namespace && id.name == server.name)
        })
        .map(|(server, records)| Unattributed { server: server.to_string(), calls: records.unattributed })
        .collect();
    Ok(Review {
        format_version: FORMAT_VERSION,
        at: window.end.to_string(),
        window_start: window.start.to_string(),
        unused_for: unused_for.to_string(),
        grants,
        unattributed,
    })
}

/// The verdict of a grant no allowed call named in the window, added by `added`: too young or
/// not judged, in that order; `true` when it is neither, and the access matrix is to tell
/// shadowed from unused.
fn judge_unnamed(
    judged: &mut GrantReview,
    added: Option<Change>,
    document: Option<&PolicyDocument>,
    usage: &Usage,
    window: Window,
) -> bool {
    let server = &judged.server;
    let (verdict, why) = match (added, document) {
        (None, _) => (Verdict::TooYoung, "not committed yet: no commit has added it".to_string()),
        (Some(change), _) if change.time.parse::<Timestamp>().is_ok_and(|t| t > window.start) => {
            let why = format!("added by {} at {}, inside the window", short(&change.commit), change.time);
            judged.added = Some(change.time);
            (Verdict::TooYoung, why)
        }
        (Some(_), None) => (
            Verdict::NotJudged,
            format!("server {server} has no gateway policy (gateway disabled or not declared): its calls are not governed"),
        ),
        (Some(_), Some(document)) => {
            match usage.servers.get(&Named { namespace: document.server.namespace.clone(), name: document.server.name.clone() }) {
                None => (Verdict::NotJudged, format!("no record at all from server {server}: the records do not cover it")),
                Some(records) if records.first > window.start => {
                    (Verdict::NotJudged, format!("the first record from server {server} is at {}, after the window's start", records.first))
                }
                Some(_) => return true,
            }
        }
    };
    judged.verdict = verdict;
    judged.why = why;
    false
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
