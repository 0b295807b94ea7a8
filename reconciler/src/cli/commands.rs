//! One function per command: source -> load -> validate -> (plan | gateway) -> renderer.

use super::args::*;
use super::{CliError, EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use crate::gateway::{self, Identity, PolicyDocument, authorize, check::check};
use crate::model::{DesiredState, Kind, ObjectId};
use crate::render::{Palette, diagnostics, markdown, text};
use crate::{load, plan, source, validate};
use jiff::Timestamp;
use serde_json::json;
use std::io::Read;
use std::io::Write;
use std::path::Path;

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
        Command::Render(args) => render_command(args),
    }
}

fn parse_time(value: Option<&str>, flag: &str) -> Result<Timestamp, CliError> {
    match value {
        None => Ok(Timestamp::now()),
        Some(text) => {
            text.parse().map_err(|e| CliError::Usage(format!("{flag} {text:?} is not an RFC 3339 time (e.g. 2030-01-01T00:00:00Z): {e}")))
        }
    }
}

/// Loads and validates the repository in a directory.
fn desired_from_dir(path: &Path, now: Timestamp) -> Result<DesiredState, CliError> {
    Ok(validate::validate(load::load(source::from_dir(path)?), now))
}

fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Failed(e.to_string()))?;
    write_stdout(&format!("{text}\n"));
    Ok(())
}

fn validate_command(args: ValidateArgs, palette: Palette) -> Result<i32, CliError> {
    let now = parse_time(args.now.as_deref(), "--now")?;
    let state = desired_from_dir(&args.path, now)?;
    match args.format {
        DiagnosticsFormat::Json => print_json(&json!({"ok": !state.has_errors(), "diagnostics": state.diagnostics}))?,
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
    Ok(if state.has_errors() { EXIT_ERROR } else { EXIT_OK })
}

fn plan_command(args: PlanArgs, palette: Palette) -> Result<i32, CliError> {
    let now = parse_time(args.now.as_deref(), "--now")?;
    let desired = desired_from_dir(&args.path, now)?;
    let (base_snapshot, base_kind) = if Path::new(&args.base).is_dir() {
        (source::from_dir(Path::new(&args.base))?, "directory")
    } else if source::resolve_revision_in(&args.path, &args.base) {
        (source::from_git(&args.path, &args.base)?, "git")
    } else {
        return Err(CliError::Failed(format!(
            "--base {:?} is neither a directory nor a git revision of the repository that holds {}",
            args.base,
            args.path.display()
        )));
    };
    // The base's own problems are not this change's: load it, do not validate it.
    let base = load::load(base_snapshot).state;
    let plan = plan::plan(&base, base_kind, &desired, now);
    if let Some(out) = &args.out {
        let text = serde_json::to_string_pretty(&plan).map_err(|e| CliError::Failed(e.to_string()))?;
        std::fs::write(out, text + "\n").map_err(|e| CliError::Failed(format!("cannot write {}: {e}", out.display())))?;
    }
    match args.format {
        PlanFormat::Json => print_json(&plan)?,
        PlanFormat::Markdown => write_stdout(&markdown::render(&plan)),
        PlanFormat::Text => {
            if !plan.diagnostics.is_empty() {
                write_stdout(&diagnostics::render(&plan.diagnostics, &desired.sources, palette));
            }
            write_stdout(&text::render(&plan, palette));
        }
    }
    Ok(if desired.has_errors() {
        EXIT_ERROR
    } else if args.detailed_exitcode && plan.summary.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
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
fn policy_of(path: &Path, server: &str, now: Timestamp) -> Result<PolicyDocument, CliError> {
    let id = parse_server(server)?;
    let state = desired_from_dir(path, now)?;
    if state.objects.iter().all(|o| o.id != id) {
        let known: Vec<String> = state.of_kind(Kind::Server).map(|o| format!("{}/{}", o.id.namespace, o.id.name)).collect();
        return Err(CliError::Failed(format!("no server {server} in {}; servers: {}", path.display(), known.join(", "))));
    }
    let document =
        gateway::render_all(&state).into_iter().find(|(found, _)| *found == id).map(|(_, document)| document).ok_or_else(|| {
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
    let document = match (&args.policy, &args.server) {
        (Some(file), _) => read_policy(file)?,
        (None, Some(server)) => policy_of(&args.path, server, at)?,
        (None, None) => return Err(CliError::Usage("give --server NAMESPACE/NAME (or --policy FILE)".into())),
    };
    let identity = Identity { human: args.human, agent: args.agent, team: args.team, session: args.session };
    let decision = authorize(&document, &identity, &args.method, &args.tool, at);
    match args.format {
        DiagnosticsFormat::Json => print_json(&decision)?,
        DiagnosticsFormat::Text => write_stdout(&text::explain(&document, &identity, &args.tool, &decision)),
    }
    Ok(EXIT_OK)
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
        DiagnosticsFormat::Json => print_json(&cells)?,
        DiagnosticsFormat::Text => write_stdout(&text::matrix(&cells)),
    }
    Ok(if state.has_errors() { EXIT_ERROR } else { EXIT_OK })
}

fn render_command(args: RenderArgs) -> Result<i32, CliError> {
    let document = policy_of(&args.path, &args.server, Timestamp::now())?;
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
