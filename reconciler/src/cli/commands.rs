//! One function per command: source -> load -> validate -> (plan | gateway) -> renderer.

use super::args::*;
use super::offline::{self, Planned};
use super::{CliError, EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use crate::apply::{self, Outcome, Status, wait::Expectation};
use crate::cache::Cache;
use crate::cluster::Cluster;
use crate::gateway::{self, PolicyDocument, authorize, check::check};
use crate::model::live::{ApplySet, LiveState, Provenance};
use crate::model::{DesiredState, Diagnostic, Kind, ObjectId};
use crate::plan::{Action, Plan, Work};
use crate::render::{Palette, diagnostics, github, gitlab, junit, markdown, sarif, text};
use crate::{load, plan, source, validate};
use jiff::Timestamp;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Read;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

/// Writes to stdout; a closed pipe (`mcp-gitops ... | head`) ends the output quietly.
fn write_stdout(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

pub fn dispatch(command: Command, palette: Palette) -> Result<i32, CliError> {
    match command {
        Command::Validate(args) => validate_command(args, palette),
        Command::Plan(args) => plan_command(args, palette),
        Command::Access(AccessCommand::Explain(args)) => explain_command(args),
        Command::Access(AccessCommand::Matrix(args)) => matrix_command(args),
        Command::Access(AccessCommand::WhoCan(args)) => who_can_command(args),
        Command::Access(AccessCommand::WhatCan(args)) => what_can_command(args),
        Command::Render(args) => render_command(args),
        Command::Apply(args) => apply_command(args, palette),
        Command::Daemon(args) => daemon_command(args),
        Command::Approvals(ApprovalsCommand::Check(args)) => approvals_check_command(args),
        Command::Verify(args) => verify_command(args),
        Command::Completion(args) => {
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut <Cli as clap::CommandFactory>::command(), "mcp-gitops", &mut out);
            write_stdout(&String::from_utf8_lossy(&out));
            Ok(EXIT_OK)
        }
    }
}

/// Diagnostics in a forge's format, paths relative to the git repository that holds `dir`.
fn forge_report(format: ForgeFormat, diagnostics: &[Diagnostic], files: &BTreeMap<String, Arc<str>>, dir: &Path) -> String {
    let root = source::path_in_repository(dir);
    match format {
        ForgeFormat::Github => github::render(diagnostics, &root),
        ForgeFormat::Sarif => sarif::render(diagnostics, &root),
        ForgeFormat::Gitlab => gitlab::render(diagnostics, &root),
        ForgeFormat::Junit => junit::render(diagnostics, files.keys().map(String::as_str), &root),
    }
}

/// Appends Markdown to the GitHub Actions job summary when the job has one. A failure to
/// write it is reported and does not fail the command.
fn append_step_summary(markdown: &str) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else { return };
    let written = std::fs::OpenOptions::new().append(true).create(true).open(&path).and_then(|mut f| f.write_all(markdown.as_bytes()));
    if let Err(e) = written {
        eprintln!("warning: cannot append to GITHUB_STEP_SUMMARY ({}): {e}", Path::new(&path).display());
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| CliError::Failed(e.to_string()))
}

/// The provenance of what is applied from `path`, when it is in a git work tree.
fn checkout_provenance(path: &Path) -> Option<Provenance> {
    source::checkout_revision(path).map(|revision| Provenance { revision, root: source::path_in_repository(path), signer: String::new() })
}

/// Connects and reads the live state of the three kinds and the inventory.
async fn live(args: &ClusterArgs) -> Result<(Cluster, ApplySet, LiveState), CliError> {
    let cluster =
        Cluster::connect(args.kubeconfig.as_deref(), args.context.as_deref()).await.map_err(|e| CliError::Failed(e.to_string()))?;
    let applyset = ApplySet::new(&args.inventory_namespace);
    let state =
        cluster.live_state(&applyset).await.map_err(|e| CliError::Failed(format!("cannot read the cluster: {}", apply::describe(&e))))?;
    Ok((cluster, applyset, state))
}

fn parse_time(value: Option<&str>, flag: &str) -> Result<Timestamp, CliError> {
    match value {
        None => Ok(Timestamp::now()),
        Some(text) => {
            text.parse().map_err(|e| CliError::Usage(format!("{flag} {text:?} is not an RFC 3339 time (e.g. 2030-01-01T00:00:00Z): {e}")))
        }
    }
}

/// Loads and validates the repository in a directory, with the policy directories its
/// `mcp-gitops.yaml` adds.
fn desired_from_dir(path: &Path, now: Timestamp) -> Result<DesiredState, CliError> {
    desired_from(path, None, now, None, &Cache::off())
}

/// The cache `--cache-dir`/`--no-cache` ask for, for the repository at `path`.
fn cache_of(args: &CacheArgs, path: &Path) -> Cache {
    match args.cache_dir.clone().or_else(Cache::default_dir) {
        Some(dir) if !args.no_cache => Cache::open(&dir, path),
        _ => Cache::off(),
    }
}

/// Keeps what this run made for the next one, written on another core while the command renders
/// its report; the command waits for it when the value returned is dropped. A cache that cannot
/// be written costs speed only.
fn save(cache: Cache) -> Saving {
    Saving(Some(std::thread::spawn(move || {
        if let Err(e) = cache.save() {
            eprintln!("warning: cannot write the cache ({e}); the next run will do all the work again (--no-cache to skip it)");
        }
    })))
}

/// The cache being written (`save`).
struct Saving(Option<std::thread::JoinHandle<()>>);

impl Drop for Saving {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

/// The repository under `path` (its policy directories too), loaded and validated: as the work
/// tree has it, or with `rev` as the tree of that git revision has it. With `loaded`, the state
/// as loaded from `path` alone (no policy directory, not validated) is kept there too: what a
/// plan's base can share (`load::state_sharing`). What `cache` has is taken, what is made is kept there.
fn desired_from(
    path: &Path,
    rev: Option<&str>,
    now: Timestamp,
    loaded: Option<&mut DesiredState>,
    cache: &Cache,
) -> Result<DesiredState, CliError> {
    if let Some(rev) = rev
        && !source::resolve_revision_in(path, rev)
    {
        return Err(CliError::Failed(format!("--revision {rev:?} is not a commit of the git repository that holds {}", path.display())));
    }
    let read = |dir: &Path| match rev {
        Some(rev) => source::from_git(dir, rev),
        None => source::from_dir(dir),
    };
    let mut repository = load::load_cached(read(path)?, cache);
    if let Some(loaded) = loaded {
        *loaded = repository.state.clone();
    }
    for (dir, snapshot) in policy_snapshots(path, &repository.state.config.policies.directories, read)? {
        load::add_policies(&mut repository, &dir, snapshot);
    }
    Ok(validate::validate_cached(repository, now, cache))
}

/// The policy directories `directories` (from `mcp-gitops.yaml`) of the repository at `path`, each read with `read`.
pub(super) fn policy_snapshots(
    path: &Path,
    directories: &[String],
    read: impl Fn(&Path) -> Result<source::Snapshot, source::SourceError>,
) -> Result<Vec<(String, source::Snapshot)>, CliError> {
    let read =
        |dir: &String| read(&path.join(dir)).map_err(|e| CliError::Failed(format!("policy directory {dir} (from mcp-gitops.yaml): {e}")));
    directories.iter().map(|dir| Ok((dir.clone(), read(dir)?))).collect()
}

fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Failed(e.to_string()))?;
    write_stdout(&format!("{text}\n"));
    Ok(())
}

fn validate_command(args: ValidateArgs, palette: Palette) -> Result<i32, CliError> {
    let now = parse_time(args.now.as_deref(), "--now")?;
    let cache = cache_of(&args.cache, &args.path);
    let mut state = desired_from(&args.path, None, now, None, &cache)?;
    let _saving = save(cache);
    if let Some(url) = &args.from_server {
        let server = live_check_server(&state, args.server.as_deref())?;
        let timeout = parse_duration(&args.from_server_timeout, "--from-server-timeout")?;
        let live = runtime()?.block_on(source::live_tools::discover(url, timeout));
        state.diagnostics.extend(validate::live_tools::compare(server, url, &live));
        crate::model::diagnostic::sort(&mut state.diagnostics);
    }
    if args.format == DiagnosticsFormat::Github {
        append_step_summary(&markdown::validation_report(&args.path.display().to_string(), &state.diagnostics));
    }
    match args.format {
        DiagnosticsFormat::Json => print_json(&json!({"ok": !state.has_errors(), "diagnostics": state.diagnostics}))?,
        DiagnosticsFormat::Github | DiagnosticsFormat::Sarif | DiagnosticsFormat::Gitlab | DiagnosticsFormat::Junit => {
            let format = args.format.forge().unwrap_or(ForgeFormat::Github);
            write_stdout(&forge_report(format, &state.diagnostics, &state.sources, &args.path));
        }
        DiagnosticsFormat::Text => {
            write_stdout(&diagnostics::render(&state.diagnostics, &state.sources, palette));
            let objects = |kind| state.of_kind(kind).count();
            write_stdout(&format!(
                "{}: {} servers, {} grants, {} sessions in {} files; {}\n",
                args.path.display(),
                objects(Kind::Server),
                objects(Kind::Grant),
                objects(Kind::Session),
                state.sources.len(),
                diagnostics::counts(&state.diagnostics)
            ));
        }
    }
    let code = if state.has_errors() { EXIT_ERROR } else { EXIT_OK };
    left_to_the_os(state);
    Ok(code)
}

/// The process exits right after a one-shot command: its repository-sized values are left to
/// the OS, which takes the memory back at once, instead of being freed one allocation at a time
/// (a tenth of a `validate` or `plan` of 21,000 objects). Never used by the daemon.
fn left_to_the_os<T>(value: T) {
    std::mem::forget(value);
}

/// The server `--from-server` is about: `--server` (NAME or NAMESPACE/NAME), or the only one.
fn live_check_server<'a>(state: &'a DesiredState, wanted: Option<&str>) -> Result<&'a crate::model::Object, CliError> {
    let servers: Vec<&crate::model::Object> = state.of_kind(Kind::Server).collect();
    let matches = |o: &&crate::model::Object| match wanted {
        Some(w) if w.contains('/') => format!("{}/{}", o.id.namespace, o.id.name) == w,
        Some(w) => o.id.name == w,
        None => true,
    };
    let found: Vec<&crate::model::Object> = servers.iter().copied().filter(matches).collect();
    let names = || servers.iter().map(|o| format!("{}/{}", o.id.namespace, o.id.name)).collect::<Vec<_>>().join(", ");
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(CliError::Usage(format!("--server {}: no such server; servers: {}", wanted.unwrap_or(""), names()))),
        _ => Err(CliError::Usage(format!(
            "the repository declares several servers ({}); say which one runs at the URL with --server",
            names()
        ))),
    }
}

fn plan_command(args: PlanArgs, palette: Palette) -> Result<i32, CliError> {
    let now = parse_time(args.now.as_deref(), "--now")?;
    let work = if args.no_incremental { Work::All } else { Work::Changed };
    let cache = if work == Work::All { Cache::off() } else { cache_of(&args.cache, &args.path) };
    let planned = match &args.base {
        Some(base) if work == Work::Changed && !Path::new(base).is_dir() => offline::plan_against_git(&args.path, base, now, &cache)?,
        _ => None,
    };
    let Planned { plan, desired, base_sources } = match planned {
        Some(planned) => planned,
        None => full_plan(&args, now, work, &cache)?,
    };
    let _saving = save(cache);
    if let Some(out) = &args.out {
        let text = serde_json::to_string_pretty(&plan).map_err(|e| CliError::Failed(e.to_string()))?;
        std::fs::write(out, text + "\n").map_err(|e| CliError::Failed(format!("cannot write {}: {e}", out.display())))?;
    }
    append_step_summary(&markdown::render(&plan));
    match args.format {
        PlanFormat::Json => print_json(&plan)?,
        PlanFormat::Markdown => write_stdout(&markdown::render(&plan)),
        PlanFormat::Github | PlanFormat::Sarif | PlanFormat::Gitlab | PlanFormat::Junit => {
            let format = args.format.forge().unwrap_or(ForgeFormat::Github);
            write_stdout(&forge_report(format, &plan.diagnostics, &desired.sources, &args.path));
        }
        PlanFormat::Text => {
            if !plan.diagnostics.is_empty() {
                write_stdout(&diagnostics::render(&plan.diagnostics, &desired.sources, palette));
            }
            if !plan.base_diagnostics.is_empty() {
                write_stdout(&format!("Problems in the base ({}):\n", plan.base.source));
                write_stdout(&diagnostics::render(&plan.base_diagnostics, &base_sources, palette));
            }
            write_stdout(&text::render(&plan, palette));
        }
    }
    let code = if plan.summary.errors > 0 {
        EXIT_ERROR
    } else if args.detailed_exitcode && plan.summary.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    };
    left_to_the_os((desired, plan));
    Ok(code)
}

/// `--base` names neither a directory nor a commit of the repository at `path`.
pub(super) fn not_a_base(base: &str, path: &Path) -> CliError {
    CliError::Failed(format!("--base {base:?} is neither a directory nor a git revision of the repository that holds {}", path.display()))
}

/// A plan of every object of the desired state: against a directory, a cluster, or a git
/// revision when `plan::partial` cannot plan it (or `--no-incremental`). With the desired state
/// and the base's file texts, kept when its problems are shown with their lines.
fn full_plan(args: &PlanArgs, now: Timestamp, work: Work, cache: &Cache) -> Result<Planned, CliError> {
    let mut loaded = DesiredState::default();
    let desired = desired_from(&args.path, None, now, (args.base.is_some() && work == Work::Changed).then_some(&mut loaded), cache)?;
    let mut base_sources = BTreeMap::new();
    let plan = match &args.base {
        Some(base) => {
            let (base_snapshot, base_kind) = if Path::new(base).is_dir() {
                (source::from_dir(Path::new(base))?, "directory")
            } else if source::resolve_revision_in(&args.path, base) {
                (source::from_git(&args.path, base)?, "git")
            } else {
                return Err(not_a_base(base, &args.path));
            };
            // The base's own problems are not this change's: load it, do not validate it. What
            // it could not load is reported apart (`base_diagnostics`).
            // It shares most files with the desired state: those are taken, not parsed again.
            let mut base = match work {
                Work::Changed => load::state_sharing(base_snapshot, &loaded, cache),
                Work::All => load::load(base_snapshot).state,
            };
            left_to_the_os(loaded);
            // Compared at the same time as the desired state: a grant that expired in both is
            // disabled in both, not an update.
            validate::expiry::expire(&mut base, now);
            let plan = plan::plan(&base, base_kind, &desired, now, work);
            if !plan.base_diagnostics.is_empty() && matches!(args.format, PlanFormat::Text) {
                base_sources = base.sources.clone();
            }
            left_to_the_os(base);
            plan
        }
        None => runtime()?.block_on(async {
            let (_, applyset, state) = live(&args.cluster).await?;
            let plan = plan::live::plan(&state, &desired, &applyset, checkout_provenance(&args.path).as_ref(), now);
            left_to_the_os(state);
            Ok::<_, CliError>(plan)
        })?,
    };
    Ok(Planned { plan, desired, base_sources })
}

fn parse_duration(text: &str, flag: &str) -> Result<std::time::Duration, CliError> {
    text.parse::<jiff::SignedDuration>()
        .ok()
        .and_then(|d| std::time::Duration::try_from(d).ok())
        .ok_or_else(|| CliError::Usage(format!("{flag} {text:?} is not a duration (e.g. 30s, 5m)")))
}

fn parse_server(text: &str) -> Result<ObjectId, CliError> {
    match text.split_once('/') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(ObjectId { kind: Kind::Server, namespace: namespace.into(), name: name.into() })
        }
        _ => Err(CliError::Usage(format!("--server {text:?} must be NAMESPACE/NAME"))),
    }
}

/// The rendered policy of one server of a repository.
fn policy_of(state: &DesiredState, path: &Path, server: &str) -> Result<PolicyDocument, CliError> {
    let id = parse_server(server)?;
    if state.objects.iter().all(|o| o.id != id) {
        let known: Vec<String> = state.of_kind(Kind::Server).map(|o| format!("{}/{}", o.id.namespace, o.id.name)).collect();
        return Err(CliError::Failed(format!("no server {server} in {}; servers: {}", path.display(), known.join(", "))));
    }
    let document =
        gateway::render_all(state).into_iter().find(|(found, _)| *found == id).map(|(_, document)| document).ok_or_else(|| {
            CliError::Failed(format!(
                "server {server} has its gateway disabled (or an invalid spec): no policy is rendered and tool calls are not governed"
            ))
        })?;
    check(&document).map_err(|reason| {
        CliError::Failed(format!(
            "the operator would refuse to render the policy of {server} ({reason}): the server goes to Error and keeps its old policy"
        ))
    })?;
    Ok(document)
}

fn read_policy(file: &str) -> Result<PolicyDocument, CliError> {
    let mut text = String::new();
    let read =
        if file == "-" { std::io::stdin().read_to_string(&mut text).map(|_| ()) } else { std::fs::read_to_string(file).map(|t| text = t) };
    read.map_err(|e| CliError::Failed(format!("cannot read policy {file}: {e}")))?;
    let document: PolicyDocument =
        serde_json::from_str(&text).map_err(|e| CliError::Failed(format!("policy {file} is not a policy document: {e}")))?;
    check(&document).map_err(|reason| CliError::Failed(format!("policy {file} refused, as the gateway would refuse it: {reason}")))?;
    Ok(gateway::check::with_gateway_defaults(document))
}

fn explain_command(args: ExplainArgs) -> Result<i32, CliError> {
    let at = parse_time(args.at.as_deref(), "--at")?;
    let (document, state) = match (&args.policy, &args.server) {
        (Some(file), _) => (read_policy(file)?, None),
        (None, Some(server)) => {
            let state = desired_from(&args.path, args.revision.as_deref(), at, None, &Cache::off())?;
            (policy_of(&state, &args.path, server)?, Some(state))
        }
        (None, None) => return Err(CliError::Usage("give --server NAMESPACE/NAME (or --policy FILE)".into())),
    };
    let identity = args.caller.identity();
    let decision = authorize(&document, &identity, &args.method, &args.tool, at);
    let history = match (&args.revision, &state) {
        (Some(rev), Some(state)) => last_changes(state, &args.path, rev, &decision)?,
        _ => Vec::new(),
    };
    match args.format {
        AnswerFormat::Json if args.revision.is_some() => {
            let mut value = serde_json::to_value(&decision).map_err(|e| CliError::Failed(e.to_string()))?;
            value["provenance"] = serde_json::to_value(&history).map_err(|e| CliError::Failed(e.to_string()))?;
            print_json(&value)?
        }
        AnswerFormat::Json => print_json(&decision)?,
        AnswerFormat::Text => write_stdout(&text::explain(&document, &identity, &args.tool, &decision, &history)),
    }
    Ok(EXIT_OK)
}

/// Where the grant and the session that decided come from, at `rev`: the commit that last
/// changed each one's content (an edit elsewhere in its file does not count).
fn last_changes(state: &DesiredState, path: &Path, rev: &str, decision: &gateway::Decision) -> Result<Vec<source::LastChange>, CliError> {
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

fn matrix_command(args: MatrixArgs) -> Result<i32, CliError> {
    let at = parse_time(args.at.as_deref(), "--at")?;
    let only = args.server.as_deref().map(parse_server).transpose()?;
    let state = desired_from_dir(&args.path, at)?;
    if let Some(only) = &only
        && state.objects.iter().all(|o| o.id != *only)
    {
        let known: Vec<String> = state.of_kind(Kind::Server).map(|o| format!("{}/{}", o.id.namespace, o.id.name)).collect();
        return Err(CliError::Failed(format!(
            "no server {}/{} in {}; servers: {}",
            only.namespace,
            only.name,
            args.path.display(),
            known.join(", ")
        )));
    }
    let cells: Vec<gateway::Access> = gateway::render_all(&state)
        .into_iter()
        .filter(|(id, _)| only.as_ref().is_none_or(|o| o == id))
        .flat_map(|(id, document)| gateway::matrix(&id, &document, at))
        .collect();
    match args.format {
        AnswerFormat::Json => print_json(&cells)?,
        AnswerFormat::Text => write_stdout(&text::matrix(&cells)),
    }
    Ok(if state.has_errors() { EXIT_ERROR } else { EXIT_OK })
}

fn who_can_command(args: WhoCanArgs) -> Result<i32, CliError> {
    let at = parse_time(args.at.as_deref(), "--at")?;
    let server = parse_server(&args.server)?;
    let document = policy_of(&desired_from_dir(&args.path, at)?, &args.path, &args.server)?;
    let callers = gateway::who_can(&server, &document, &args.tool, at);
    let anyone = gateway::anyone_can(&document, &args.tool, at);
    match args.format {
        AnswerFormat::Json => print_json(&json!({
            "server": args.server, "tool": args.tool, "at": at.to_string(), "anyone": anyone, "callers": callers,
        }))?,
        AnswerFormat::Text => write_stdout(&text::who_can(&args.server, &args.tool, &callers, anyone.as_ref())),
    }
    Ok(EXIT_OK)
}

fn what_can_command(args: WhatCanArgs) -> Result<i32, CliError> {
    let at = parse_time(args.at.as_deref(), "--at")?;
    let identity = args.caller.identity();
    if identity.human.is_empty() && identity.agent.is_empty() && identity.team.is_empty() {
        return Err(CliError::Usage("name the caller with --agent, --human or --team (a session id alone is no identity)".into()));
    }
    let state = desired_from_dir(&args.path, at)?;
    let cells: Vec<gateway::Access> =
        gateway::render_all(&state).into_iter().flat_map(|(id, document)| gateway::what_can(&id, &document, &identity, at)).collect();
    match args.format {
        AnswerFormat::Json => print_json(&cells)?,
        AnswerFormat::Text => write_stdout(&text::what_can(&identity, &cells)),
    }
    Ok(if state.has_errors() { EXIT_ERROR } else { EXIT_OK })
}

fn verify_command(args: VerifyArgs) -> Result<i32, CliError> {
    let keys = crate::trust::Keys::read(args.allowed_signers.as_deref(), &args.pgp_keys).map_err(|e| CliError::Failed(e.to_string()))?;
    let repo = git2::Repository::discover(&args.path)
        .map_err(|e| CliError::Failed(format!("{} is not in a git repository: {}", args.path.display(), e.message())))?;
    let root = source::path_in_repository(&args.path);
    let verdicts = crate::trust::verify_range(&repo, args.from.as_deref(), &args.to, args.first_parent, &keys, &root)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let ok = verdicts.iter().all(|v| v.verified);
    match args.format {
        AnswerFormat::Json => print_json(&json!({"ok": ok, "commits": verdicts}))?,
        AnswerFormat::Text => write_stdout(&text::verdicts(&verdicts)),
    }
    Ok(if ok { EXIT_OK } else { EXIT_ERROR })
}

fn approvals_check_command(args: ApprovalsCheckArgs) -> Result<i32, CliError> {
    let text = std::fs::read_to_string(&args.plan).map_err(|e| CliError::Failed(format!("cannot read {}: {e}", args.plan.display())))?;
    let plan: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| CliError::Failed(format!("{} is not a JSON plan: {e}", args.plan.display())))?;
    if plan["format_version"] != plan::FORMAT_VERSION {
        return Err(CliError::Failed(format!("{} is not a format_version {} plan", args.plan.display(), plan::FORMAT_VERSION)));
    }
    let approvals: plan::Approvals = serde_json::from_value(plan["approvals"].clone()).map_err(|_| {
        CliError::Failed(format!("{} has no approvals (a plan made by an older mcp-gitops): make it again", args.plan.display()))
    })?;
    let unmet = plan::approvals::unmet(&approvals, &args.approved_by, args.author.as_deref());
    write_stdout(&text::approvals_check(&approvals, &unmet, args.author.as_deref()));
    Ok(if unmet.is_empty() { EXIT_OK } else { EXIT_ERROR })
}

fn render_command(args: RenderArgs) -> Result<i32, CliError> {
    let document = policy_of(&desired_from_dir(&args.path, Timestamp::now())?, &args.path, &args.server)?;
    let policy_json = gateway::revision::indented_json(&document);
    match args.format {
        RenderFormat::Json => write_stdout(&format!("{policy_json}\n")),
        RenderFormat::Configmap => {
            let name = &document.server.name;
            let configmap = json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": format!("{name}-gateway-policy"),
                    "namespace": document.server.namespace,
                    "labels": {"app": name, "app.kubernetes.io/managed-by": "mcp-runtime"},
                },
                "data": {"policy.json": policy_json},
            });
            write_stdout(&plan::diff::to_yaml(&configmap));
        }
    }
    eprintln!("revision: {}", document.revision);
    Ok(EXIT_OK)
}

/// The parts of a saved JSON plan that `apply --plan` checks.
#[derive(serde::Deserialize)]
struct Reviewed {
    format_version: String,
    desired_revision: String,
    changes: Vec<ReviewedChange>,
}

#[derive(serde::Deserialize)]
struct ReviewedChange {
    kind: Kind,
    namespace: String,
    name: String,
    action: Action,
    expected_resource_version: Option<String>,
}

/// Why a reviewed plan no longer describes what applying now would do; empty when it still does.
fn staleness(reviewed: &Reviewed, current: &Plan) -> Vec<String> {
    let mut moved = Vec::new();
    if reviewed.desired_revision != current.desired_revision {
        moved.push(format!("the repository changed (plan made at {}, now {})", reviewed.desired_revision, current.desired_revision));
    }
    let now: std::collections::BTreeMap<ObjectId, (&Action, &Option<String>)> =
        current.changes.iter().map(|c| (c.id(), (&c.action, &c.expected_resource_version))).collect();
    for change in &reviewed.changes {
        let id = ObjectId { kind: change.kind, namespace: change.namespace.clone(), name: change.name.clone() };
        match now.get(&id) {
            Some((action, rv)) if **action == change.action && **rv == change.expected_resource_version => {}
            Some((_, rv)) => moved.push(format!(
                "{id} moved (resourceVersion {} in the plan, {} now)",
                change.expected_resource_version.as_deref().unwrap_or("none"),
                rv.as_deref().unwrap_or("none")
            )),
            None => moved.push(format!("{id} is no longer part of the plan")),
        }
    }
    let planned: std::collections::BTreeSet<ObjectId> =
        reviewed.changes.iter().map(|c| ObjectId { kind: c.kind, namespace: c.namespace.clone(), name: c.name.clone() }).collect();
    moved.extend(current.changes.iter().filter(|c| !planned.contains(&c.id())).map(|c| format!("{} appeared since the plan", c.id())));
    moved
}

/// `file:line:column: ` of the field the API server blamed, in the repository.
fn blamed_position(outcome: &Outcome, desired: &DesiredState) -> String {
    let Some(field) = &outcome.field else { return String::new() };
    let Some(object) = desired.objects.iter().find(|o| o.id == outcome.id) else { return String::new() };
    let pointer: String = field.split('.').map(|segment| format!("/{}", crate::model::object::pointer_segment(segment))).collect();
    let pos = object.pos(&pointer);
    format!("{}:{}:{}: ", object.origin.file, pos.line, pos.column)
}

fn outcome_line(outcome: &Outcome, desired: &DesiredState, dry_run: bool, palette: Palette) -> String {
    let done = match outcome.action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Delete => "deleted",
        Action::NoOp => "unchanged",
    };
    let suffix = if dry_run && outcome.status == Status::Done { " (dry run)" } else { "" };
    match &outcome.status {
        Status::Done => format!("  {} {}{suffix}\n", palette.green(done), outcome.id),
        Status::Unchanged => String::new(),
        Status::Skipped(why) => format!("  {} {}: {why}\n", palette.yellow("skipped"), outcome.id),
        Status::Failed(why) => format!("  {} {}: {}{why}\n", palette.red("failed"), outcome.id, blamed_position(outcome, desired)),
        Status::NotAttempted => format!("  {} {}\n", palette.red("not attempted"), outcome.id),
    }
}

fn apply_command(args: ApplyArgs, palette: Palette) -> Result<i32, CliError> {
    let timeout = parse_duration(&args.timeout, "--timeout")?;
    let reviewed: Option<Reviewed> = match &args.plan {
        Some(file) => {
            let text = std::fs::read_to_string(file).map_err(|e| CliError::Failed(format!("cannot read {}: {e}", file.display())))?;
            let reviewed: Reviewed = serde_json::from_str(&text)
                .map_err(|e| CliError::Failed(format!("{} is not a mcp-gitops JSON plan: {e}", file.display())))?;
            if reviewed.format_version != plan::FORMAT_VERSION {
                return Err(CliError::Failed(format!(
                    "{} has format_version {:?}; this mcp-gitops reads {:?}",
                    file.display(),
                    reviewed.format_version,
                    plan::FORMAT_VERSION
                )));
            }
            Some(reviewed)
        }
        None => None,
    };
    let now = Timestamp::now();
    let desired = desired_from_dir(&args.path, now)?;
    if desired.has_errors() {
        write_stdout(&diagnostics::render(&desired.diagnostics, &desired.sources, palette));
        eprintln!("error: {} has errors ({}); nothing was applied", args.path.display(), diagnostics::counts(&desired.diagnostics));
        return Ok(EXIT_ERROR);
    }
    let options = apply::Options {
        dry_run: args.dry_run,
        force_conflicts: args.force_conflicts,
        prune: args.prune,
        max_deletes: args.max_deletes,
        adopt: args.adopt,
        concurrency: args.concurrency,
    };
    runtime()?.block_on(async {
        let (cluster, applyset, state) = live(&args.cluster).await?;
        let plan = plan::live::plan(&state, &desired, &applyset, checkout_provenance(&args.path).as_ref(), now);
        if let Some(reviewed) = &reviewed {
            let moved = staleness(reviewed, &plan);
            if !moved.is_empty() {
                return Err(CliError::Failed(format!("plan is stale, nothing was applied: {}; make a new plan", moved.join("; "))));
            }
        }
        apply::check_guards(&plan, &options).map_err(CliError::Failed)?;
        let mode = if options.dry_run { " (server dry run)" } else { "" };
        eprintln!("Applying {} to {}{mode}, inventory {}/{}", args.path.display(), cluster.label, applyset.namespace, applyset.name);
        let total = plan.changes.len();
        let mut seen = 0;
        let tty = std::io::stderr().is_terminal();
        let report = apply::apply(&cluster, &plan, &applyset, state.inventory.as_ref(), &options, |outcome| {
            seen += 1;
            write_stdout(&outcome_line(outcome, &desired, options.dry_run, palette));
            if tty {
                eprint!("\r[{seen}/{total}] {}", outcome.id.kind);
            }
        })
        .await;
        if tty {
            eprint!("\r\x1b[K");
        }
        let done = |action| report.count(action, &Status::Done);
        let failed = report.outcomes.iter().filter(|o| matches!(o.status, Status::Failed(_))).count();
        let not_attempted: Vec<String> =
            report.outcomes.iter().filter(|o| o.status == Status::NotAttempted).map(|o| o.id.to_string()).collect();
        write_stdout(&format!(
            "Apply {}: {} created, {} updated, {} deleted, {} unchanged (no request){}{}\n",
            if report.succeeded() { "complete" } else { "incomplete" },
            done(Action::Create),
            done(Action::Update),
            done(Action::Delete),
            report.count(Action::NoOp, &Status::Unchanged),
            if failed > 0 { format!(", {failed} failed") } else { String::new() },
            if not_attempted.is_empty() { String::new() } else { format!(", {} not attempted", not_attempted.len()) },
        ));
        if let Some(error) = &report.inventory_error {
            eprintln!("error: cannot write the inventory {}/{}: {error}", applyset.namespace, applyset.name);
        }
        if !not_attempted.is_empty() {
            // The full list is on stdout, one line each; a few names say enough here.
            let more = not_attempted.len().saturating_sub(10);
            eprintln!(
                "error: the API server stopped answering; not applied: {}{}. Run apply again: it picks up where this run stopped.",
                not_attempted[..not_attempted.len().min(10)].join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            );
        }
        if !report.succeeded() {
            return Ok(EXIT_ERROR);
        }
        if args.wait && !options.dry_run {
            let expectations = expectations(&plan, &after_apply(&desired, &state, &report));
            if !expectations.is_empty() {
                eprintln!("Waiting for the operator ({} server(s), timeout {}s)...", expectations.len(), timeout.as_secs());
                apply::wait::wait(&cluster, &expectations, timeout).await.map_err(|e| CliError::Failed(e.to_string()))?;
                write_stdout(&format!(
                    "The operator has taken the change: {} server(s) Ready with the predicted policy.\n",
                    expectations.len()
                ));
            }
        }
        Ok(EXIT_OK)
    })
}

/// What the cluster holds once the apply is done: the desired objects, and the live ones it
/// did not delete (not pruned, or not ours).
fn after_apply(desired: &DesiredState, live: &LiveState, report: &apply::Report) -> DesiredState {
    let deleted: std::collections::BTreeSet<&ObjectId> =
        report.outcomes.iter().filter(|o| o.action == Action::Delete && o.status == Status::Done).map(|o| &o.id).collect();
    let declared: std::collections::BTreeSet<&ObjectId> = desired.objects.iter().map(|o| &o.id).collect();
    let remaining = LiveState {
        objects: live.objects.iter().filter(|o| !deleted.contains(&o.id) && !declared.contains(&o.id)).cloned().collect(),
        ..LiveState::default()
    };
    let mut state = plan::live::as_desired_state(&remaining);
    state.objects.extend(desired.objects.iter().cloned());
    state.config = desired.config.clone();
    state
}

/// The servers `--wait` watches: those changed, and those whose policy the change re-renders.
fn expectations(plan: &Plan, desired: &DesiredState) -> Vec<Expectation> {
    let mut predicted: BTreeMap<ObjectId, PolicyDocument> = gateway::render_all(desired).into_iter().collect();
    let mut servers: std::collections::BTreeSet<ObjectId> = plan
        .changes
        .iter()
        .filter(|c| c.kind == Kind::Server && matches!(c.action, Action::Create | Action::Update))
        .map(|c| c.id())
        .collect();
    for revision in plan.policy_revisions.iter().filter(|r| r.after.is_some()) {
        if let Some((namespace, name)) = revision.server.split_once('/') {
            servers.insert(ObjectId { kind: Kind::Server, namespace: namespace.into(), name: name.into() });
        }
    }
    servers.into_iter().map(|server| Expectation { policy: predicted.remove(&server), server }).collect()
}

fn daemon_command(args: DaemonArgs) -> Result<i32, CliError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let webhook_secret = match &args.webhook_secret_file {
        Some(file) => {
            let secret =
                std::fs::read(file).map_err(|e| CliError::Failed(format!("cannot read --webhook-secret-file {}: {e}", file.display())))?;
            Some(secret.trim_ascii().to_vec())
        }
        None => None,
    };
    let options = crate::daemon::Options {
        repo: args.repo,
        branch: args.branch,
        path: args.path,
        interval: parse_duration(&args.interval, "--interval")?,
        resync: parse_duration(&args.resync_interval, "--resync-interval")?,
        listen: args.listen,
        webhook_secret,
        kubeconfig: args.cluster.kubeconfig,
        context: args.cluster.context,
        inventory_namespace: args.cluster.inventory_namespace,
        drift: args.drift,
        max_deletes: args.max_deletes,
        cache: args.cache_dir,
        credentials: crate::source::mirror::Credentials {
            username: args.git.git_username,
            token_file: args.git.git_token_file,
            ssh_key_file: args.git.git_ssh_key_file,
            known_hosts_file: args.git.git_known_hosts_file,
        },
        leader_elect: if args.leader_elect { Some(parse_duration(&args.lease_duration, "--lease-duration")?) } else { None },
        verification: args.verify_signatures.then_some(crate::daemon::Verification {
            allowed_signers: args.allowed_signers,
            pgp_keys: args.pgp_keys,
            allow_non_fast_forward: args.allow_non_fast_forward,
        }),
    };
    runtime()?.block_on(crate::daemon::run(options)).map_err(CliError::Failed)?;
    Ok(EXIT_OK)
}
