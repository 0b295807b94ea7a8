//! One function per command: what it needs of the pipeline (`crate::pipeline`), then a renderer
//! and an exit code.

use super::args::*;
use super::{CliError, EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use crate::apply;
use crate::cache::{Cache, Saving};
use crate::cluster::Cluster;
use crate::gateway::{self, authorize};
use crate::model::DesiredState;
use crate::model::live::Suspension;
use crate::pipeline::{self, Planned, access, apply::Reviewed, desired, desired::Allowed, left_to_the_os, plan::Target};
use crate::plan::Work;
use crate::render::{self, Forge, Palette, diagnostics, markdown, text};
use crate::source::root::Shown;
use crate::{install, plan, scaffold, source, validate};
use jiff::Timestamp;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Writes to stdout; a closed pipe (`mcp-gitops ... | head`) ends the output quietly.
fn write_stdout(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// A report for a person: no control character from the repository reaches the terminal, only
/// the palette's own colours (`render::escape::terminal_report`).
fn write_report(text: &str, palette: Palette) {
    write_stdout(&render::escape::terminal_report(text, palette.color));
}

pub fn dispatch(command: Command, palette: Palette, allowed: &Allowed) -> Result<i32, CliError> {
    match command {
        Command::Validate(args) => validate_command(args, allowed, palette),
        Command::Plan(args) => plan_command(args, allowed, palette),
        Command::Access(AccessCommand::Explain(args)) => explain_command(args, allowed),
        Command::Access(AccessCommand::Matrix(args)) => matrix_command(args, allowed),
        Command::Access(AccessCommand::WhoCan(args)) => who_can_command(args, allowed),
        Command::Access(AccessCommand::WhatCan(args)) => what_can_command(args, allowed),
        Command::Access(AccessCommand::Review(args)) => review_command(args, allowed),
        Command::Render(args) => render_command(args, allowed),
        Command::Apply(args) => apply_command(args, allowed, palette),
        Command::Daemon(args) => daemon_command(args, allowed),
        Command::Approvals(ApprovalsCommand::Check(args)) => approvals_check_command(args),
        Command::Verify(args) => verify_command(args),
        Command::Init(args) => init_command(args),
        Command::Import(args) => import_command(args),
        Command::Install(args) => {
            let target = match args.export {
                true => install::Target::Export { terminal: std::io::stdout().is_terminal() },
                false => install::Target::Cluster { kubeconfig: args.kubeconfig.clone(), context: args.context.clone() },
            };
            install::run(&args.install(), target, &mut std::io::stdout(), &mut std::io::stderr()).map(|()| EXIT_OK).map_err(CliError::from)
        }
        Command::BreakGlass(args) => break_glass_command(args, allowed),
        Command::Fleet(FleetCommand::Status(args)) => fleet_status_command(args, allowed),
        Command::Completion(args) => {
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut <Cli as clap::CommandFactory>::command(), "mcp-gitops", &mut out);
            write_stdout(&String::from_utf8_lossy(&out));
            Ok(EXIT_OK)
        }
    }
}

fn fleet_status_command(args: FleetStatusArgs, allowed: &Allowed) -> Result<i32, CliError> {
    let FleetStatusArgs { context: contexts, kubeconfig, inventory_namespace, repo, branch, format } = args;
    let request = crate::fleet::Request {
        kubeconfig,
        contexts,
        inventory_namespace,
        repo,
        branch,
        timeout: crate::fleet::TIMEOUT,
        now: Timestamp::now(),
    };
    let fleet = runtime()?.block_on(crate::fleet::status(&request, allowed))?;
    match format {
        AnswerFormat::Text => write_report(&render::fleet::text(&fleet), Palette::PLAIN),
        AnswerFormat::Json => write_stdout(&format!("{}\n", serde_json::to_string_pretty(&fleet)?)),
    }
    Ok(if fleet.all_reachable() { EXIT_OK } else { EXIT_ERROR })
}

fn init_command(args: InitArgs) -> Result<i32, CliError> {
    let written = scaffold::write_new(&args.dir, &scaffold::starting_files(&args.namespaces, args.ci))?;
    println!("Started a platform repository in {}:", args.dir.display());
    written.iter().for_each(|file| println!("  {}", file.display()));
    println!(
        "Next: fill in owners and trust in mcp-gitops.yaml, add servers, grants and sessions (or `mcp-gitops import`), then `mcp-gitops validate {}`.",
        args.dir.display()
    );
    Ok(EXIT_OK)
}

fn break_glass_command(args: BreakGlassArgs, allowed: &Allowed) -> Result<i32, CliError> {
    let now = Timestamp::now();
    let root = repository(&args.path);
    let state = desired::of_path(&root, None, allowed, now, None, &Cache::off())?;
    let server = access::server_id(&state, &root, &args.server)?;
    let BreakGlassArgs { tool, human, agent, reason, duration, session, requester, .. } = args;
    let request = scaffold::break_glass::Request { server, tool, human, agent, reason, duration, session, requester };
    let opened = scaffold::break_glass::open(&root, &state, &request, now)?;
    println!("Committed {}{}: {}", opened.commit, if opened.signed { " (signed)" } else { "" }, opened.files.join(", "));
    println!("The access ends at {}; follow-up review due by {} (mcp-gitops.io/reviewed-by).", opened.expires_at, opened.review_by);
    Ok(EXIT_OK)
}

fn import_command(args: ImportArgs) -> Result<i32, CliError> {
    let objects = runtime()?.block_on(async {
        let cluster = Cluster::connect(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
        scaffold::import::read(&cluster, &args.namespaces).await
    });
    let imported =
        scaffold::import::files_of(&objects.map_err(|e| CliError::Failed(format!("cannot read the cluster: {}", apply::describe(&e))))?);
    imported.left_out.iter().for_each(|line| eprintln!("note: {line}"));
    let written = scaffold::write_new(&args.out, &imported.files)?;
    println!(
        "Imported {} server(s), {} grant(s) and {} session(s) into {} file(s) under {}.",
        imported.servers,
        imported.grants,
        imported.sessions,
        written.len(),
        args.out.display()
    );
    Ok(EXIT_OK)
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

fn parse_time(value: Option<&str>, flag: &str) -> Result<Timestamp, CliError> {
    match value {
        None => Ok(Timestamp::now()),
        Some(text) => {
            text.parse().map_err(|e| CliError::Usage(format!("{flag} {text:?} is not an RFC 3339 time (e.g. 2030-01-01T00:00:00Z): {e}")))
        }
    }
}

/// The repository `path` belongs to (`source::root`); stderr says so when it is above `path`.
fn repository(path: &Path) -> PathBuf {
    let root = source::root::find(path);
    if let Some(note) = root.note() {
        eprintln!("note: {note}");
    }
    root.path
}

/// Loads and validates the repository `path` belongs to, with the policy directories its
/// `mcp-gitops.yaml` adds.
fn desired_from_dir(path: &Path, allowed: &Allowed, now: Timestamp) -> Result<DesiredState, CliError> {
    Ok(desired::of_path(&repository(path), None, allowed, now, None, &Cache::off())?)
}

/// The cache `--cache-dir`/`--no-cache` ask for, for the repository at `path`.
fn cache_of(args: &CacheArgs, path: &Path) -> Cache {
    Cache::chosen(args.cache_dir.as_deref(), args.no_cache, path)
}

/// Keeps what this run made for the next one, written on another core while the command renders
/// its report (`Cache::save_beside`). A cache that cannot be written costs speed only.
fn save(cache: Cache) -> Saving {
    cache.save_beside(|e| {
        eprintln!("warning: cannot write the cache ({e}); the next run will do all the work again (--no-cache to skip it)")
    })
}

fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)?;
    write_stdout(&format!("{text}\n"));
    Ok(())
}

fn validate_command(mut args: ValidateArgs, allowed: &Allowed, palette: Palette) -> Result<i32, CliError> {
    args.path = repository(&args.path);
    let now = parse_time(args.at.as_deref(), "--at")?;
    let cache = cache_of(&args.cache, &args.path);
    let mut state = match pipeline::fleet::validated(&args.path, allowed, now, &cache, args.only_cluster.as_deref())? {
        Some(state) => state,
        None => desired::of_path(&args.path, None, allowed, now, None, &cache)?,
    };
    if let Some(base) = &args.base {
        pipeline::ratchet::against_base(&mut state, &args.path, base, allowed, now, &cache)?;
    }
    let _saving = save(cache);
    if let Some(url) = &args.from_server {
        let server = access::server_named(&state, args.server.as_deref())?;
        let timeout = parse_duration(&args.from_server_timeout, "--from-server-timeout")?;
        let live = runtime()?.block_on(source::live_tools::discover(url, timeout));
        state.diagnostics.extend(validate::live_tools::compare(server, url, &live));
        crate::model::diagnostic::sort(&mut state.diagnostics);
    }
    if args.format == DiagnosticsFormat::Github {
        append_step_summary(&markdown::validation_report(&args.path.display().to_string(), &state.diagnostics));
    }
    // Paths relative to the git repository that holds the repository.
    let forge = |format| write_stdout(&render::forge(format, &state.diagnostics, &state.sources, &source::path_in_repository(&args.path)));
    match args.format {
        DiagnosticsFormat::Json => print_json(&json!({"ok": !state.has_errors(), "diagnostics": state.diagnostics}))?,
        DiagnosticsFormat::Github => forge(Forge::Github),
        DiagnosticsFormat::Sarif => forge(Forge::Sarif),
        DiagnosticsFormat::Gitlab => forge(Forge::Gitlab),
        DiagnosticsFormat::Junit => forge(Forge::Junit),
        DiagnosticsFormat::Text => {
            write_report(&diagnostics::render(&state.diagnostics, &state.sources, &Shown::from_cwd(&args.path), palette), palette);
            write_report(&diagnostics::summary(&args.path.display().to_string(), &state), palette);
        }
    }
    let code = if state.has_errors() { EXIT_ERROR } else { EXIT_OK };
    left_to_the_os(state);
    Ok(code)
}

fn plan_command(mut args: PlanArgs, allowed: &Allowed, palette: Palette) -> Result<i32, CliError> {
    args.path = repository(&args.path);
    let now = parse_time(args.at.as_deref(), "--at")?;
    let work = if args.no_incremental { Work::All } else { Work::Changed };
    let cache = if work == Work::All { Cache::off() } else { cache_of(&args.cache, &args.path) };
    let only = args.only_cluster.as_deref();
    let Planned { plan, desired, base_sources } = match &args.base {
        Some(base) => match pipeline::fleet::plan_against_base(&args.path, base, allowed, now, &cache, only)? {
            Some(planned) => planned,
            None => pipeline::plan::against_base(&args.path, base, allowed, now, work, &cache, args.format == PlanFormat::Text)?,
        },
        None => {
            let desired = match pipeline::fleet::for_live_cluster(&args.path, allowed, now, &cache, only)? {
                Some(desired) => desired,
                None => desired::of_path(&args.path, None, allowed, now, None, &cache)?,
            };
            let target = target(&args.cluster);
            let plan = runtime()?.block_on(pipeline::plan::against_cluster(&target, &args.path, &desired, now))?;
            Planned { plan, desired, base_sources: Default::default() }
        }
    };
    let _saving = save(cache);
    if let Some(out) = &args.out {
        let text = serde_json::to_string_pretty(&plan)?;
        std::fs::write(out, text + "\n").map_err(|e| CliError::Failed(format!("cannot write {}: {e}", out.display())))?;
    }
    append_step_summary(&markdown::render(&plan));
    let forge = |format| write_stdout(&render::forge(format, &plan.diagnostics, &desired.sources, &source::path_in_repository(&args.path)));
    match args.format {
        PlanFormat::Json => print_json(&plan)?,
        PlanFormat::Markdown => write_stdout(&markdown::render(&plan)),
        PlanFormat::Github => forge(Forge::Github),
        PlanFormat::Sarif => forge(Forge::Sarif),
        PlanFormat::Gitlab => forge(Forge::Gitlab),
        PlanFormat::Junit => forge(Forge::Junit),
        PlanFormat::Text => {
            write_report(&text::with_diagnostics(&plan, &desired.sources, &base_sources, &Shown::from_cwd(&args.path), palette), palette)
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

fn parse_duration(text: &str, flag: &str) -> Result<std::time::Duration, CliError> {
    text.parse::<jiff::SignedDuration>()
        .ok()
        .and_then(|d| std::time::Duration::try_from(d).ok())
        .ok_or_else(|| CliError::Usage(format!("{flag} {text:?} is not a duration (e.g. 30s, 5m)")))
}

fn explain_command(mut args: ExplainArgs, allowed: &Allowed) -> Result<i32, CliError> {
    if args.policy.is_none() {
        args.path = repository(&args.path);
    }
    let at = parse_time(args.at.as_deref(), "--at")?;
    let (document, state) = match (&args.policy, &args.server) {
        (Some(file), _) => (access::read_policy(file)?, None),
        (None, Some(server)) => {
            let state = desired::of_path(&args.path, args.revision.as_deref(), allowed, at, None, &Cache::off())?;
            let id = access::server_id(&state, &args.path, server)?;
            (access::policy_of(&state, &args.path, &id)?, Some(state))
        }
        (None, None) => return Err(CliError::Usage("give --server [NAMESPACE/]NAME (or --policy FILE)".into())),
    };
    let identity = args.caller.identity();
    access::question_known(&document, state.as_ref().map(|s| (s, args.path.as_path())), &identity, &args.method, &args.tool)?;
    let decision = authorize(&document, &identity, &args.method, &args.tool, at);
    let history = match (&args.revision, &state) {
        (Some(rev), Some(state)) => access::last_changes(state, &args.path, rev, &decision)?,
        _ => Vec::new(),
    };
    match args.format {
        AnswerFormat::Json if args.revision.is_some() => {
            let mut value = serde_json::to_value(&decision)?;
            value["provenance"] = serde_json::to_value(&history)?;
            print_json(&value)?
        }
        AnswerFormat::Json => print_json(&decision)?,
        AnswerFormat::Text => write_report(&text::explain(&document, &identity, &args.tool, &decision, &history), Palette::PLAIN),
    }
    Ok(EXIT_OK)
}

fn matrix_command(args: MatrixArgs, allowed: &Allowed) -> Result<i32, CliError> {
    let at = parse_time(args.at.as_deref(), "--at")?;
    let state = desired_from_dir(&args.path, allowed, at)?;
    let only = args.server.as_deref().map(|server| access::server_id(&state, &args.path, server)).transpose()?;
    let cells: Vec<gateway::Access> = gateway::render_all(&state)
        .into_iter()
        .filter(|(id, _)| only.as_ref().is_none_or(|o| o == id))
        .flat_map(|(id, document)| gateway::matrix(&id, &document, at))
        .collect();
    match args.format {
        AnswerFormat::Json => print_json(&cells)?,
        AnswerFormat::Text => write_report(&text::matrix(&cells), Palette::PLAIN),
    }
    Ok(if state.has_errors() { EXIT_ERROR } else { EXIT_OK })
}

fn who_can_command(args: WhoCanArgs, allowed: &Allowed) -> Result<i32, CliError> {
    let at = parse_time(args.at.as_deref(), "--at")?;
    let state = desired_from_dir(&args.path, allowed, at)?;
    let server = access::server_id(&state, &args.path, &args.server)?;
    let document = access::policy_of(&state, &args.path, &server)?;
    access::tool_known(&document, &args.tool)?;
    let callers = gateway::who_can(&server, &document, &args.tool, at);
    let anyone = gateway::anyone_can(&document, &args.tool, at);
    let named = format!("{}/{}", server.namespace, server.name);
    match args.format {
        AnswerFormat::Json => print_json(&json!({
            "server": named, "tool": args.tool, "at": at.to_string(), "anyone": anyone, "callers": callers,
        }))?,
        AnswerFormat::Text => write_report(&text::who_can(&named, &args.tool, &callers, anyone.as_ref()), Palette::PLAIN),
    }
    Ok(EXIT_OK)
}

fn what_can_command(args: WhatCanArgs, allowed: &Allowed) -> Result<i32, CliError> {
    let at = parse_time(args.at.as_deref(), "--at")?;
    let identity = args.caller.identity();
    let state = desired_from_dir(&args.path, allowed, at)?;
    let found = access::what_can(&state, &args.path, &identity, at)?;
    match args.format {
        AnswerFormat::Json => print_json(&found.cells).map(|()| eprint!("{}", text::near_misses(&found.near_misses)))?,
        AnswerFormat::Text => write_report(&text::what_can(&identity, &found.cells, &found.near_misses), Palette::PLAIN),
    }
    Ok(if state.has_errors() { EXIT_ERROR } else { EXIT_OK })
}

fn review_command(args: ReviewArgs, allowed: &Allowed) -> Result<i32, CliError> {
    let at = parse_time(args.at.as_deref(), "--at")?;
    let source = crate::review::source::AuditSource::parse(&args.audit, args.audit_password_file.as_deref())
        .map_err(pipeline::review::AccessReviewError::from)?;
    let (review, written) = pipeline::review::access_review(&repository(&args.path), &source, &args.unused_for, at, allowed, args.write)?;
    match args.format {
        ReviewFormat::Json => {
            let mut value = serde_json::to_value(&review)?;
            if let Some(written) = &written {
                value["written"] = serde_json::to_value(written)?;
            }
            print_json(&value)?
        }
        ReviewFormat::Text => write_report(&render::review::text(&review, written.as_ref()), Palette::PLAIN),
        ReviewFormat::Markdown => write_stdout(&render::review::markdown_comment(&review)),
    }
    Ok(EXIT_OK)
}

fn verify_command(args: VerifyArgs) -> Result<i32, CliError> {
    let keys = crate::trust::Keys::read(args.allowed_signers.as_deref(), &args.pgp_keys)?;
    let repo = git2::Repository::discover(&args.path)
        .map_err(|e| CliError::Failed(format!("{} is not in a git repository: {}", args.path.display(), e.message())))?;
    let root = source::path_in_repository(&args.path);
    let at = parse_time(args.at.as_deref(), "--at")?.as_second();
    let verdicts = crate::trust::verify_range(&repo, args.from.as_deref(), &args.to, args.first_parent, &keys, &root, at)?;
    let ok = verdicts.iter().all(|v| v.verified);
    match args.format {
        AnswerFormat::Json => print_json(&json!({"ok": ok, "commits": verdicts}))?,
        AnswerFormat::Text => write_report(&text::verdicts(&verdicts), Palette::PLAIN),
    }
    Ok(if ok { EXIT_OK } else { EXIT_ERROR })
}

fn approvals_check_command(args: ApprovalsCheckArgs) -> Result<i32, CliError> {
    let approvals = pipeline::plan::saved_approvals(&args.plan)?;
    let check = plan::approvals::check(&approvals, &args.approved_by, args.author.as_deref());
    match args.format {
        AnswerFormat::Json => print_json(&check)?,
        AnswerFormat::Text => write_report(&text::approvals_check(&check, args.author.as_deref()), Palette::PLAIN),
    }
    Ok(if check.ok { EXIT_OK } else { EXIT_ERROR })
}

fn render_command(args: RenderArgs, allowed: &Allowed) -> Result<i32, CliError> {
    let state = desired_from_dir(&args.path, allowed, Timestamp::now())?;
    let document = access::policy_of(&state, &args.path, &access::server_id(&state, &args.path, &args.server)?)?;
    match args.format {
        RenderFormat::Json => write_stdout(&format!("{}\n", gateway::revision::indented_json(&document))),
        RenderFormat::Configmap => write_stdout(&plan::diff::to_yaml(&gateway::revision::configmap(&document))),
    }
    eprintln!("revision: {}", document.revision);
    Ok(EXIT_OK)
}

fn apply_command(mut args: ApplyArgs, allowed: &Allowed, palette: Palette) -> Result<i32, CliError> {
    args.path = repository(&args.path);
    let timeout = parse_duration(&args.timeout, "--timeout")?;
    let reviewed = args.plan.as_deref().map(Reviewed::read).transpose()?;
    let now = Timestamp::now();
    let desired = desired_from_dir(&args.path, allowed, now)?;
    if !pipeline::apply::gate(&desired, &[]).is_empty() {
        write_report(&diagnostics::render(&desired.diagnostics, &desired.sources, &Shown::from_cwd(&args.path), palette), palette);
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
        held_back: false,
    };
    runtime()?.block_on(async {
        let (cluster, applyset, state) = pipeline::plan::live(&target(&args.cluster)).await?;
        let plan = plan::live::plan(&state, &desired, &applyset, pipeline::checkout_provenance(&args.path).as_ref(), now);
        if let Some(reviewed) = &reviewed {
            reviewed.still_describes(&plan)?;
        }
        let mode = if options.dry_run { " (server dry run)" } else { "" };
        let applying =
            || eprintln!("Applying {} to {}{mode}, inventory {}/{}", args.path.display(), cluster.label, applyset.namespace, applyset.name);
        let total = plan.changes.len();
        let mut seen = 0;
        let tty = std::io::stderr().is_terminal();
        let report = pipeline::apply::apply(&cluster, &plan, &applyset, state.inventory.as_ref(), &options, applying, |outcome| {
            seen += 1;
            write_report(&text::apply_outcome(outcome, &desired, options.dry_run, palette), palette);
            if tty {
                eprint!("\r[{seen}/{total}] {}", outcome.id.kind);
            }
        })
        .await?;
        if tty {
            eprint!("\r\x1b[K");
        }
        write_report(&text::apply_summary(&report), palette);
        if let Some(error) = &report.inventory_error {
            eprintln!("error: cannot write the inventory {}/{}: {error}", applyset.namespace, applyset.name);
        }
        if let Some(not_applied) = text::not_attempted(&report) {
            eprintln!("error: {not_applied}");
        }
        if !report.succeeded() {
            return Ok(EXIT_ERROR);
        }
        if args.wait && !options.dry_run {
            let expectations = pipeline::apply::expectations(&plan, &desired, &state, &report);
            if !expectations.is_empty() {
                eprintln!("Waiting for the operator ({} server(s), timeout {}s)...", expectations.len(), timeout.as_secs());
                apply::wait::wait(&cluster, &expectations, timeout).await?;
                write_stdout(&format!(
                    "The operator has taken the change: {} server(s) Ready with the predicted policy.\n",
                    expectations.len()
                ));
            }
        }
        Ok(EXIT_OK)
    })
}

/// The cluster `--kubeconfig`, `--context` and `--inventory-namespace` name.
fn target(args: &ClusterArgs) -> Target {
    Target { kubeconfig: args.kubeconfig.clone(), context: args.context.clone(), inventory_namespace: args.inventory_namespace.clone() }
}

fn daemon_command(args: Box<DaemonArgs>, allowed: &Allowed) -> Result<i32, CliError> {
    match args.control {
        Some(control) => control_command(control),
        None => run_daemon(args, allowed),
    }
}

/// `daemon suspend|resume|pin|unpin`: the inventory's control annotations, which every daemon
/// of that inventory reads at its next reconcile.
fn control_command(control: DaemonControl) -> Result<i32, CliError> {
    use crate::model::live::{PIN, PIN_MANAGER, SUSPEND, SUSPEND_MANAGER, SUSPEND_NOTE};
    let (DaemonControl::Suspend(SuspendArgs { cluster, .. })
    | DaemonControl::Resume(ControlArgs { cluster })
    | DaemonControl::Pin(PinArgs { cluster, .. })
    | DaemonControl::Unpin(ControlArgs { cluster })) = &control;
    let applyset = crate::model::live::ApplySet::new(&cluster.inventory_namespace);
    let daemons = format!("the daemons of {}/{}", applyset.namespace, applyset.name);
    let (manager, annotations, said) = match &control {
        DaemonControl::Suspend(args) => {
            let mode = if args.hard { Suspension::Hard } else { Suspension::Soft };
            let who = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "someone".into());
            let at = Timestamp::now().round(jiff::Unit::Second).unwrap_or_default();
            let note = format!("by {who} at {at}{}", args.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default());
            let applies = if args.hard { "nothing" } else { "only revocations and expiries" };
            let said = format!("Suspended ({}) {daemons}: they apply {applies} from their next reconcile.", mode.as_str());
            (SUSPEND_MANAGER, json!({SUSPEND: mode.as_str(), SUSPEND_NOTE: note}), said)
        }
        DaemonControl::Resume(_) => {
            (SUSPEND_MANAGER, json!({}), format!("Resumed {daemons}: held changes are applied at their next reconcile."))
        }
        DaemonControl::Pin(args) => {
            let is_id = args.rev.len() == 40 && args.rev.bytes().all(|b| b.is_ascii_hexdigit());
            let rev = if is_id { Some(args.rev.to_ascii_lowercase()) } else { source::commit_id_in(&args.repo_dir, &args.rev) }
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "{} names no commit in a git repository at {}; give a full commit id, or --repo-dir of a clone",
                        args.rev,
                        args.repo_dir.display()
                    ))
                })?;
            let said = format!(
                "Pinned {daemons} to {rev}: they apply it from their next reconcile, once it verifies and while it is on their branch."
            );
            (PIN_MANAGER, json!({PIN: rev}), said)
        }
        DaemonControl::Unpin(_) => {
            (PIN_MANAGER, json!({}), format!("Unpinned {daemons}: they follow their branch again from their next reconcile."))
        }
    };
    let written = runtime()?.block_on(async {
        Cluster::connect(cluster.kubeconfig.as_deref(), cluster.context.as_deref())
            .await?
            .set_control(&applyset, manager, annotations)
            .await
    });
    written.map_err(|e| {
        CliError::Failed(format!("cannot write the inventory {}/{}: {}", applyset.namespace, applyset.name, apply::describe(&e)))
    })?;
    println!("{said}");
    Ok(EXIT_OK)
}

fn run_daemon(args: Box<DaemonArgs>, allowed: &Allowed) -> Result<i32, CliError> {
    crate::daemon::log_to_stderr(args.log_format);
    let options = crate::daemon::Options {
        repo: args.repo.ok_or_else(|| CliError::Usage("daemon needs --repo".into()))?,
        branch: args.branch,
        path: args.path,
        interval: parse_duration(&args.interval, "--interval")?,
        resync: parse_duration(&args.resync_interval, "--resync-interval")?,
        listen: args.listen,
        webhook_secret_file: args.webhook_secret_file,
        cluster: target(&args.cluster),
        drift: args.drift,
        max_deletes: args.max_deletes,
        allowed_namespaces: args.allowed_namespaces,
        allowed_policy_dirs: allowed.clone(),
        cache: args.mirror_dir,
        credentials: args.git.into(),
        leader_elect: if args.leader_elect { Some(parse_duration(&args.lease_duration, "--lease-duration")?) } else { None },
        verification: args.verify_signatures.then_some(crate::daemon::Verification {
            allowed_signers: args.allowed_signers,
            pgp_keys: args.pgp_keys,
            allow_non_fast_forward: args.allow_non_fast_forward,
        }),
        notifications: args.notifications,
        fleet_cluster: args.fleet_cluster,
    };
    runtime()?.block_on(crate::daemon::run(options))?;
    Ok(EXIT_OK)
}
