//! The live tools check: a server's metadata against the tools its running instance lists
//! (`validate --from-server`). Pure: the discovery itself is `source::live_tools`.

use crate::model::{Code, Diagnostic, Object};
use crate::source::live_tools::DiscoveryError;

/// Diagnostics for `server` given what discovery at `url` found (or why it failed).
pub fn compare(server: &Object, url: &str, live: &Result<Vec<String>, DiscoveryError>) -> Vec<Diagnostic> {
    let Some(spec) = server.server() else { return Vec::new() };
    let file = &server.origin.file;
    let live = match live {
        Ok(names) => names,
        Err(reason) => {
            return vec![
                Diagnostic::error(
                    Code::ServerUnreachable,
                    file,
                    server.pos(""),
                    format!("cannot list the tools of the running server: {reason}"),
                )
                .object(&server.id)
                .hint("check the URL (the server's MCP endpoint, e.g. http://localhost:8088/mcp) and that the server is up"),
            ];
        }
    };
    // Sets, so that a server listing many tools costs linear time.
    let offered: std::collections::HashSet<&str> = live.iter().map(String::as_str).collect();
    let declared: std::collections::HashSet<&str> = spec.tools.iter().map(|t| t.name.as_str()).collect();
    let mut diagnostics = Vec::new();
    for (i, tool) in spec.tools.iter().enumerate().filter(|(_, t)| !offered.contains(t.name.as_str())) {
        diagnostics.push(
            Diagnostic::error(
                Code::ToolMissingOnServer,
                file,
                server.pos(&format!("/spec/tools/{i}/name")),
                format!("tool {:?} is declared in the metadata but {url} does not offer it: calls to it fail", tool.name),
            )
            .object(&server.id)
            .path(format!("spec.tools[{i}].name"))
            .hint("remove the tool from the metadata, or deploy a server version that has it"),
        );
    }
    for name in live.iter().filter(|name| !declared.contains(name.as_str())) {
        diagnostics.push(
            Diagnostic::warning(
                Code::ToolUngoverned,
                file,
                server.pos("/spec/tools"),
                format!("{url} offers tool {name:?}, which the metadata does not declare: it is ungoverned (the gateway knows no side effect or trust for it and denies its calls)"),
            )
            .object(&server.id)
            .path("spec.tools")
            .hint(format!("declare {name:?} with its sideEffect and requiredTrust in the server's metadata")),
        );
    }
    diagnostics
}
