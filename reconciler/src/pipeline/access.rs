//! Questions about one server's access: its rendered policy, checked as the operator and the
//! gateway check it, from a repository or from a policy document; and where the grant and the
//! session that decided a call come from in git.

use crate::gateway::{self, Decision, Identity, PolicyDocument, check::check};
use crate::load;
use crate::model::{DesiredState, Kind, Object, ObjectId, spelling};
use crate::source::{self, SourceError};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a question about a server's access cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("no server {server} in {}; servers: {}{hint}", path.display(), known.join(", "))]
    NoSuchServer { server: String, path: PathBuf, known: Vec<String>, hint: String },
    #[error("server {0} has its gateway disabled (or an invalid spec): no policy is rendered and tool calls are not governed")]
    GatewayDisabled(String),
    #[error("the operator would refuse to render the policy of {server} ({reason}): the server goes to Error and keeps its old policy")]
    OperatorRefuses { server: String, reason: String },
    #[error("--server {wanted} names several servers ({}); give NAMESPACE/NAME", known.join(", "))]
    AmbiguousServer { wanted: String, known: Vec<String> },
    #[error("--server {0:?} must be NAME or NAMESPACE/NAME")]
    BadServerName(String),
    #[error("--server {wanted}: no such server; servers: {}{hint}", known.join(", "))]
    NoServerNamed { wanted: String, known: Vec<String>, hint: String },
    #[error("the repository declares several servers ({}); say which one runs at the URL with --server", known.join(", "))]
    SeveralServers { known: Vec<String> },
    #[error("cannot read policy {file}: {source}")]
    ReadPolicy { file: String, source: std::io::Error },
    #[error("policy {file} is not a policy document: {source}")]
    NotAPolicy { file: String, source: serde_json::Error },
    #[error("policy {file} refused, as the gateway would refuse it: {reason}")]
    GatewayRefuses { file: String, reason: String },
    #[error("no tool {tool:?} on {server} (neither its metadata nor a grant names it){hint}")]
    UnknownTool { tool: String, server: String, hint: String },
    #[error("{part} {name:?} is named by no grant, session or server team of {place}{hint}")]
    UnknownCaller { part: &'static str, name: String, place: String, hint: String },
    #[error("name the caller with --agent, --human or --team (a session id alone is no identity)")]
    NoCaller,
    #[error(transparent)]
    Source(#[from] SourceError),
}

impl AccessError {
    /// Whether the question was asked wrong (a usage error), rather than answered "no such thing".
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            AccessError::SeveralServers { .. }
                | AccessError::AmbiguousServer { .. }
                | AccessError::BadServerName(_)
                | AccessError::NoCaller
        )
    }
}

/// An error unless `state` (read from `path`) declares the server `id`.
pub fn server_in(state: &DesiredState, path: &Path, id: &ObjectId) -> Result<(), AccessError> {
    if state.objects.iter().any(|o| o.id == *id) {
        return Ok(());
    }
    Err(no_such_server(state, path, format!("{}/{}", id.namespace, id.name)))
}

fn no_such_server(state: &DesiredState, path: &Path, server: String) -> AccessError {
    let known: Vec<String> = state.of_kind(Kind::Server).map(|o| format!("{}/{}", o.id.namespace, o.id.name)).collect();
    let hint = spelling::did_you_mean(&server, known.iter().map(String::as_str));
    AccessError::NoSuchServer { server, path: path.to_path_buf(), known, hint }
}

/// The server `wanted` names, as every command's `--server` takes it: NAMESPACE/NAME, or a NAME
/// only one server of `state` (read from `path`) has.
pub fn server_id(state: &DesiredState, path: &Path, wanted: &str) -> Result<ObjectId, AccessError> {
    match wanted.split_once('/') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() && !name.contains('/') => {
            let id = ObjectId { kind: Kind::Server, namespace: namespace.into(), name: name.into() };
            server_in(state, path, &id).map(|()| id)
        }
        Some(_) => Err(AccessError::BadServerName(wanted.to_string())),
        None => {
            let named: Vec<&Object> = state.of_kind(Kind::Server).filter(|o| o.id.name == wanted).collect();
            match named.as_slice() {
                [one] => Ok(one.id.clone()),
                [] => Err(no_such_server(state, path, wanted.to_string())),
                several => {
                    let known = several.iter().map(|o| format!("{}/{}", o.id.namespace, o.id.name)).collect();
                    Err(AccessError::AmbiguousServer { wanted: wanted.to_string(), known })
                }
            }
        }
    }
}

/// An error unless the server's policy knows `tool` (declared in its metadata or named by a
/// grant): a misspelled tool would otherwise be answered "nobody may call it".
pub fn tool_known(document: &PolicyDocument, tool: &str) -> Result<(), AccessError> {
    let tools = gateway::tools(document);
    if tools.contains(tool) {
        return Ok(());
    }
    let server = format!("{}/{}", document.server.namespace, document.server.name);
    Err(AccessError::UnknownTool { tool: tool.to_string(), server, hint: spelling::did_you_mean(tool, tools.iter().map(String::as_str)) })
}

/// One name of a caller: its human, agent or team.
type NamePart = fn(&Identity) -> &str;

/// An error unless each name of the caller (human, agent, team) is named in one of `documents`
/// (`place` says where they come from): a misspelled caller would otherwise be answered "nothing".
pub fn caller_known<'a>(
    documents: impl IntoIterator<Item = &'a PolicyDocument>,
    identity: &Identity,
    place: &str,
) -> Result<(), AccessError> {
    let known: BTreeSet<Identity> = documents.into_iter().flat_map(gateway::identities).collect();
    let parts: [(&'static str, NamePart); 3] = [("human", |i| &i.human), ("agent", |i| &i.agent), ("team", |i| &i.team)];
    for (part, of) in parts {
        let name = of(identity);
        if name.is_empty() || known.iter().any(|k| of(k) == name) {
            continue;
        }
        let names: BTreeSet<&str> = known.iter().map(of).filter(|n| !n.is_empty()).collect();
        let hint = spelling::did_you_mean(name, names);
        return Err(AccessError::UnknownCaller { part, name: name.to_string(), place: place.to_string(), hint });
    }
    Ok(())
}

/// The server named `wanted` (NAME or NAMESPACE/NAME), or the only one when none is named.
pub fn server_named<'a>(state: &'a DesiredState, wanted: Option<&str>) -> Result<&'a Object, AccessError> {
    let servers: Vec<&Object> = state.of_kind(Kind::Server).collect();
    let matches = |o: &&Object| match wanted {
        Some(w) if w.contains('/') => format!("{}/{}", o.id.namespace, o.id.name) == w,
        Some(w) => o.id.name == w,
        None => true,
    };
    let found: Vec<&Object> = servers.iter().copied().filter(matches).collect();
    let known = || servers.iter().map(|o| format!("{}/{}", o.id.namespace, o.id.name)).collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => {
            let wanted = wanted.unwrap_or_default().to_string();
            let names: Vec<String> = servers
                .iter()
                .map(|o| if wanted.contains('/') { format!("{}/{}", o.id.namespace, o.id.name) } else { o.id.name.clone() })
                .collect();
            let hint = spelling::did_you_mean(&wanted, names.iter().map(String::as_str));
            Err(AccessError::NoServerNamed { wanted, known: known(), hint })
        }
        _ => Err(AccessError::SeveralServers { known: known() }),
    }
}

/// The rendered policy of the server `id` of a repository, as the operator would write it.
pub fn policy_of(state: &DesiredState, path: &Path, id: &ObjectId) -> Result<PolicyDocument, AccessError> {
    server_in(state, path, id)?;
    let server = format!("{}/{}", id.namespace, id.name);
    let document = gateway::render_all(state)
        .into_iter()
        .find(|(found, _)| found == id)
        .map(|(_, document)| document)
        .ok_or_else(|| AccessError::GatewayDisabled(server.clone()))?;
    check(&document).map_err(|reason| AccessError::OperatorRefuses { server, reason: reason.to_string() })?;
    Ok(document)
}

/// An error unless the names of an `access explain` question are known: the tool (for a governed
/// method) on the server of `document`, and the caller in the repository `state` (read from
/// `path`). A document read from a cluster has no repository: any caller may be asked about.
pub fn question_known(
    document: &PolicyDocument,
    state: Option<(&DesiredState, &Path)>,
    identity: &Identity,
    method: &str,
    tool: &str,
) -> Result<(), AccessError> {
    if gateway::authorize::is_tool_call(method) {
        tool_known(document, tool)?;
    }
    let Some((state, path)) = state else { return Ok(()) };
    let documents = gateway::render_unstamped(state, |_| true);
    caller_known(documents.iter().map(|(_, d)| d), identity, &path.display().to_string())
}

/// What a caller may call on every server of a repository, and, for each server that allows it
/// nothing, the grants and sessions that name part of it (`gateway::near_misses`).
pub struct CallerAccess {
    pub cells: Vec<gateway::Access>,
    pub near_misses: Vec<gateway::NearMiss>,
}

/// `access what-can`: an error when no caller is named (a session id alone is none), or the
/// repository names it nowhere.
pub fn what_can(state: &DesiredState, path: &Path, identity: &Identity, at: jiff::Timestamp) -> Result<CallerAccess, AccessError> {
    if identity.human.is_empty() && identity.agent.is_empty() && identity.team.is_empty() {
        return Err(AccessError::NoCaller);
    }
    let documents = gateway::render_all(state);
    caller_known(documents.iter().map(|(_, d)| d), identity, &path.display().to_string())?;
    let mut access = CallerAccess { cells: Vec::new(), near_misses: Vec::new() };
    for (id, document) in &documents {
        let cells = gateway::what_can(id, document, identity, at);
        if cells.is_empty() {
            access.near_misses.extend(gateway::near_misses(id, document, identity));
        }
        access.cells.extend(cells);
    }
    Ok(access)
}

/// The policy document in `file` (`-`: standard input), checked as the gateway checks a document
/// before activating it, with the gateway's defaults.
pub fn read_policy(file: &str) -> Result<PolicyDocument, AccessError> {
    let mut text = String::new();
    let read =
        if file == "-" { std::io::stdin().read_to_string(&mut text).map(|_| ()) } else { std::fs::read_to_string(file).map(|t| text = t) };
    read.map_err(|source| AccessError::ReadPolicy { file: file.to_string(), source })?;
    let document: PolicyDocument =
        serde_json::from_str(&text).map_err(|source| AccessError::NotAPolicy { file: file.to_string(), source })?;
    check(&document).map_err(|reason| AccessError::GatewayRefuses { file: file.to_string(), reason: reason.to_string() })?;
    Ok(gateway::check::with_gateway_defaults(document))
}

/// Where the grant and the session that decided come from, at `rev` of the repository that
/// holds `path`: the commit that last changed each one's content (an edit elsewhere in its file
/// does not count).
pub fn last_changes(state: &DesiredState, path: &Path, rev: &str, decision: &Decision) -> Result<Vec<source::LastChange>, AccessError> {
    let prefix = source::path_in_repository(path);
    let decided = [
        (Kind::Grant, &decision.matched_grant_namespace, &decision.matched_grant),
        (Kind::Session, &decision.matched_session_namespace, &decision.matched_session),
    ];
    let mut history = Vec::new();
    for (kind, namespace, name) in decided.into_iter().filter(|(_, _, name)| !name.is_empty()) {
        let id = ObjectId { kind, namespace: namespace.clone(), name: name.clone() };
        let Some(object) = state.objects.iter().find(|o| o.id == id) else { continue };
        let file = &object.origin.file;
        let content = |bytes: &[u8]| {
            let snapshot =
                source::Snapshot { files: vec![source::SourceFile { path: file.clone(), bytes: bytes.to_vec() }], ..Default::default() };
            load::load(snapshot).state.objects.into_iter().find(|o| o.id == id).map(|o| o.body)
        };
        let change = source::last_change(path, rev, file, |older, newer| content(older) == content(newer))?;
        history.push(source::LastChange { object: id.to_string(), source: format!("{prefix}{file}:{}", object.origin.line), change });
    }
    Ok(history)
}
