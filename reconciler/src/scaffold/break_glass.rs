//! `mcp-gitops break-glass`: emergency access as a commit. Checks the request against
//! `owners.breakGlass` (the same limits `approvals check` applies), writes a grant for one tool
//! (and a session when asked) marked break-glass and ending at `now + --for`, and commits them
//! with git2 — signed, when git's configuration says so, the way git signs (`gpg.format ssh`:
//! `ssh-keygen -Y sign -n git` with `user.signingkey`).

use crate::model::OwnerMap;
use crate::model::spelling::did_you_mean;
use crate::model::{DesiredState, Object, ObjectId};
use crate::validate::break_glass::{BREAK_GLASS, Limits, REASON, REQUESTER, REVIEWED_BY};
use crate::validate::expiry::EXPIRES_AT;
use jiff::{SignedDuration, Timestamp};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What `mcp-gitops break-glass` is asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub server: ObjectId,
    pub tool: String,
    pub human: String,
    pub agent: String,
    pub reason: String,
    /// How long (default: 1h, or `maxDuration` when that is shorter).
    pub duration: Option<SignedDuration>,
    /// The name of a session to write as well.
    pub session: Option<String>,
    /// Who asks (default: git's `user.email`).
    pub requester: Option<String>,
}

/// Why the access was not opened.
#[derive(Debug, thiserror::Error)]
pub enum BreakGlassError {
    #[error("break-glass refused: {}", .0.join("; "))]
    Refused(Vec<String>),
    #[error("no tool {tool:?} on {server}; its tools: {}{hint}", known.join(", "))]
    UnknownTool { tool: String, server: String, known: Vec<String>, hint: String },
    #[error("{} already exists; nothing was written", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {}: {source}", file.display())]
    Write { file: PathBuf, source: std::io::Error },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("cannot sign the commit: {0}")]
    Sign(String),
}

/// What was opened and committed.
#[derive(Debug)]
pub struct Opened {
    /// The files written, relative to the repository.
    pub files: Vec<String>,
    pub commit: String,
    pub signed: bool,
    pub expires_at: Timestamp,
    pub review_by: Timestamp,
}

/// Opens the access `request` asks for in the repository at `root` (loaded as `state`) at `now`.
pub fn open(root: &Path, state: &DesiredState, request: &Request, now: Timestamp) -> Result<Opened, BreakGlassError> {
    let repo = git2::Repository::discover(root)?;
    let requester = match &request.requester {
        Some(requester) => requester.trim().to_string(),
        None => repo.config()?.get_string("user.email").unwrap_or_default(),
    };
    let limits = Limits::of(state.config.owners.break_glass.as_ref()).map_err(|why| BreakGlassError::Refused(vec![why]))?;
    let server = state.objects.iter().find(|o| o.id == request.server).and_then(|o| Some((o, o.server()?)));
    let Some((server_object, spec)) = server else {
        return Err(BreakGlassError::Refused(vec![format!("{} is not a valid server", request.server)]));
    };
    let Some(tool) = spec.tools.iter().find(|t| t.name == request.tool) else {
        let known: Vec<String> = spec.tools.iter().map(|t| t.name.clone()).collect();
        let hint = did_you_mean(&request.tool, known.iter().map(String::as_str));
        return Err(BreakGlassError::UnknownTool { tool: request.tool.clone(), server: server_name(&request.server), known, hint });
    };
    let duration = request.duration.unwrap_or(SignedDuration::from_hours(1).min(limits.max_duration));
    let expires_at =
        Timestamp::from_second(now.as_second() + duration.as_secs()).map_err(|e| BreakGlassError::Refused(vec![e.to_string()]))?;
    let owners: Vec<String> = OwnerMap::new(&state.config.owners).of(&server_name(&request.server)).into_iter().collect();
    let refusals: Vec<String> = [
        limits.requester_refused(&requester, &owners),
        limits.reason_refused(&request.reason),
        limits.lifetime_refused(expires_at, now).map(|why| format!("--for {duration:#}: {why}")),
        request
            .session
            .as_ref()
            .filter(|name| !super::import::is_dns_name(name))
            .map(|name| format!("--session {name:?} is not an object name (lower-case letters, digits, '-' and '.')")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !refusals.is_empty() {
        return Err(BreakGlassError::Refused(refusals));
    }
    let trust = if tool.required_trust.is_empty() { "low" } else { tool.required_trust.as_str() };
    let name = object_name(&request.tool, now);
    let folder = folder_of(server_object);
    let marks = Marks { reason: &request.reason, requester: &requester };
    let mut files =
        vec![(format!("{folder}/grants/{name}.yaml"), grant_text(&name, request, &marks, (tool.side_effect.as_str(), trust), expires_at))];
    if let Some(session) = &request.session {
        files.push((format!("{folder}/sessions/{session}.yaml"), session_text(session, request, &marks, trust, expires_at)));
    }
    let written = write(&repo, root, &files)?;
    let message = format!(
        "break-glass: {} on {} for {} / {} until {expires_at}\n\nReason: {}\nRequester: {requester}\n",
        request.tool,
        server_name(&request.server),
        request.human,
        request.agent,
        request.reason
    );
    let (commit, signed) = commit(&repo, &written, &message)?;
    let review_by = expires_at.checked_add(limits.review_within).unwrap_or(expires_at);
    Ok(Opened { files: files.into_iter().map(|(path, _)| path).collect(), commit, signed, expires_at, review_by })
}

fn server_name(id: &ObjectId) -> String {
    format!("{}/{}", id.namespace, id.name)
}

/// `break-glass-issue-refund-20261207-185400`: a DNS label, unique to the second.
fn object_name(tool: &str, now: Timestamp) -> String {
    let tool: String = tool.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let stamp = now.strftime("%Y%m%d-%H%M%S").to_string();
    let tool = tool.trim_matches('-');
    let tool = &tool[..tool.len().min(63 - "break-glass--".len() - stamp.len())];
    format!("break-glass-{}-{stamp}", tool.trim_end_matches('-'))
}

/// Where the team's files live: beside the `.mcp/` folder that declares the server, else a
/// folder named after the namespace.
fn folder_of(server: &Object) -> String {
    match server.origin.file.rsplit_once(".mcp/") {
        Some((folder, _)) => folder.trim_end_matches('/').to_string(),
        None => server.id.namespace.clone(),
    }
    .trim_start_matches("./")
    .to_string()
}

struct Marks<'a> {
    reason: &'a str,
    requester: &'a str,
}

/// A YAML string: JSON's quoting is YAML's.
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn annotations(marks: &Marks) -> String {
    format!(
        "  annotations:\n    {BREAK_GLASS}: \"true\"\n    {REASON}: {}\n    {REQUESTER}: {}\n",
        quoted(marks.reason),
        quoted(marks.requester)
    )
}

fn grant_text(name: &str, request: &Request, marks: &Marks, (side_effect, trust): (&str, &str), expires_at: Timestamp) -> String {
    format!(
        "# Break-glass access opened by {requester} (mcp-gitops break-glass). It ends at {expires_at};\n\
         # then someone other than the requester reviews it and sets {REVIEWED_BY}.\n\
         apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: {name}\n  namespace: {namespace}\n{annotations}    {EXPIRES_AT}: \"{expires_at}\"\n\
         spec:\n  serverRef:\n    name: {server}\n    namespace: {namespace}\n  subject:\n    humanID: {human}\n    agentID: {agent}\n\
         \x20 maxTrust: {trust}\n  allowedSideEffects: [{side_effect}]\n  policyVersion: v1\n  toolRules:\n    - name: {tool}\n      decision: allow\n      requiredTrust: {trust}\n",
        requester = marks.requester.replace(['\n', '\r'], " "),
        namespace = request.server.namespace,
        annotations = annotations(marks),
        server = request.server.name,
        human = quoted(&request.human),
        agent = quoted(&request.agent),
        tool = quoted(&request.tool),
    )
}

fn session_text(name: &str, request: &Request, marks: &Marks, trust: &str, expires_at: Timestamp) -> String {
    format!(
        "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAgentSession\nmetadata:\n  name: {name}\n  namespace: {namespace}\n{annotations}\
         spec:\n  serverRef:\n    name: {server}\n    namespace: {namespace}\n  subject:\n    humanID: {human}\n    agentID: {agent}\n\
         \x20 consentedTrust: {trust}\n  expiresAt: \"{expires_at}\"\n  policyVersion: v1\n",
        namespace = request.server.namespace,
        annotations = annotations(marks),
        server = request.server.name,
        human = quoted(&request.human),
        agent = quoted(&request.agent),
    )
}

/// Writes `files` (relative to `root`) unless one exists; returns their paths relative to the
/// git work tree.
fn write(repo: &git2::Repository, root: &Path, files: &[(String, String)]) -> Result<Vec<PathBuf>, BreakGlassError> {
    let workdir = repo.workdir().ok_or_else(|| git2::Error::from_str("the repository has no work tree"))?;
    let workdir = workdir.canonicalize().map_err(|source| BreakGlassError::Write { file: workdir.to_path_buf(), source })?;
    let root = root.canonicalize().map_err(|source| BreakGlassError::Write { file: root.to_path_buf(), source })?;
    if let Some(file) = files.iter().map(|(path, _)| root.join(path)).find(|file| file.symlink_metadata().is_ok()) {
        return Err(BreakGlassError::Exists(file));
    }
    let mut written = Vec::new();
    for (path, text) in files {
        let file = root.join(path);
        let write = || -> std::io::Result<()> {
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::File::create_new(&file)?.write_all(text.as_bytes())
        };
        write().map_err(|source| BreakGlassError::Write { file: file.clone(), source })?;
        let relative = file.strip_prefix(&workdir).map_err(|_| git2::Error::from_str("the repository is outside the git work tree"))?;
        written.push(relative.to_path_buf());
    }
    Ok(written)
}

/// Commits `files` (and nothing else staged) on the current branch, signed when git's
/// `commit.gpgsign` says so. Returns the commit id and whether it is signed.
fn commit(repo: &git2::Repository, files: &[PathBuf], message: &str) -> Result<(String, bool), BreakGlassError> {
    let head = repo.head()?.peel_to_commit()?;
    // The commit's tree is HEAD's and the new files: whatever else the index holds stays uncommitted.
    let mut tree = git2::Index::new()?;
    tree.read_tree(&head.tree()?)?;
    let mut index = repo.index()?;
    for file in files {
        index.add_path(file)?;
        let entry = index.get_path(file, 0).ok_or_else(|| git2::Error::from_str("the file was not staged"))?;
        tree.add(&entry)?;
    }
    index.write()?;
    let tree = repo.find_tree(tree.write_tree_to(repo)?)?;
    let signature = repo.signature()?;
    let config = repo.config()?;
    if !config.get_bool("commit.gpgsign").unwrap_or(false) {
        let id = repo.commit(Some("HEAD"), &signature, &signature, message, &tree, &[&head])?;
        return Ok((id.to_string(), false));
    }
    let format = config.get_string("gpg.format").unwrap_or_else(|_| "openpgp".into());
    if format != "ssh" {
        return Err(BreakGlassError::Sign(format!(
            "commit.gpgsign is set with gpg.format {format}; mcp-gitops signs as git does with gpg.format ssh only (commit the files yourself with git commit -S)"
        )));
    }
    let key =
        config.get_path("user.signingkey").map_err(|_| BreakGlassError::Sign("commit.gpgsign is set but user.signingkey is not".into()))?;
    let program = config.get_string("gpg.ssh.program").unwrap_or_else(|_| "ssh-keygen".into());
    let buffer = repo.commit_create_buffer(&signature, &signature, message, &tree, &[&head])?;
    let buffer = buffer.as_str().map_err(|_| git2::Error::from_str("the commit is not UTF-8"))?;
    let armored = ssh_sign(&program, &key, buffer.as_bytes())?;
    let id = repo.commit_signed(buffer, &armored, None)?;
    repo.head()?.set_target(id, &format!("commit: {}", message.lines().next().unwrap_or_default()))?;
    Ok((id.to_string(), true))
}

/// `ssh-keygen -Y sign -n git -f KEY` over stdin, as git runs it for `gpg.format ssh`.
fn ssh_sign(program: &str, key: &Path, data: &[u8]) -> Result<String, BreakGlassError> {
    let mut child = std::process::Command::new(program)
        .args(["-Y", "sign", "-n", "git", "-f"])
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| BreakGlassError::Sign(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(data).map_err(|e| BreakGlassError::Sign(format!("{program}: {e}")))?;
    }
    let output = child.wait_with_output().map_err(|e| BreakGlassError::Sign(format!("{program}: {e}")))?;
    if !output.status.success() {
        return Err(BreakGlassError::Sign(format!("{program} -Y sign failed: {}", String::from_utf8_lossy(&output.stderr).trim())));
    }
    String::from_utf8(output.stdout).map_err(|_| BreakGlassError::Sign(format!("{program} wrote no text signature")))
}
