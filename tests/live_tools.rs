//! `validate --from-server` against a real MCP server built with the official Rust SDK and
//! served over streamable HTTP on a loopback port.

mod common;

use common::{NOW, json, run};
use rmcp::model::{JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use std::sync::Arc;

/// An MCP server that lists a fixed set of tools, `page` at a time (so clients must follow
/// `nextCursor`).
#[derive(Clone)]
struct Catalog {
    tools: Vec<&'static str>,
    page: usize,
}

impl ServerHandler for Catalog {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let start: usize = request.and_then(|r| r.cursor).and_then(|c| c.parse().ok()).unwrap_or(0).min(self.tools.len());
        let end = (start + self.page).min(self.tools.len());
        let tools = self.tools[start..end].iter().map(|name| Tool::new(*name, "a test tool", Arc::new(JsonObject::new()))).collect();
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = (end < self.tools.len()).then(|| end.to_string());
        Ok(result)
    }
}

/// Serves `server` (a catalog, a hostile server) at http://127.0.0.1:<port>/mcp for the life of
/// the test; returns the base URL.
fn serve<S: ServerHandler + Clone + Send + Sync + 'static>(server: S) -> String {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let service = StreamableHttpService::new(
                move || Ok(server.clone()),
                Arc::new(LocalSessionManager::default()),
                StreamableHttpServerConfig::default(),
            );
            let router = axum::Router::new().nest_service("/mcp", service);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            sender.send(listener.local_addr().expect("address")).expect("send");
            let _ = axum::serve(listener, router).await;
        });
    });
    format!("http://127.0.0.1:{}", receiver.recv().expect("server started").port())
}

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join(".mcp")).expect("mkdir");
    std::fs::write(
        dir.path().join(".mcp/servers.yaml"),
        "servers:\n  - name: payments-mcp\n    namespace: team-a\n    gateway: {enabled: true}\n    tools:\n      - {name: list_invoices, sideEffect: read}\n      - {name: create_invoice, sideEffect: write}\n      - {name: refund_invoice, sideEffect: destructive}\n",
    )
    .expect("write");
    dir
}

fn check(url: &str, extra: &[&str]) -> (i32, Vec<(String, String, u64)>) {
    let dir = repo();
    let path = dir.path().to_string_lossy().into_owned();
    let args = [&["validate", path.as_str(), "--from-server", url, "--format", "json", "--now", NOW][..], extra].concat();
    let out = run(&args);
    let report = json(&out.stdout);
    let found = report["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_string(),
                d["message"].as_str().unwrap_or_default().to_string(),
                d["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    (out.code, found)
}

#[test]
fn a_server_that_offers_exactly_the_metadata_is_clean() {
    let url = serve(Catalog { tools: vec!["list_invoices", "create_invoice", "refund_invoice"], page: 2 });
    let (code, found) = check(&url, &[]);
    assert_eq!((code, found), (0, vec![]));
}

#[test]
fn missing_tools_are_errors_and_ungoverned_ones_warnings_across_pages() {
    let url = serve(Catalog { tools: vec!["list_invoices", "create_invoice", "export_everything", "purge_cache"], page: 1 });
    let (code, found) = check(&format!("{url}/mcp/"), &["--server", "team-a/payments-mcp"]);
    assert_eq!(code, 1);
    let codes: Vec<(&str, u64)> = found.iter().map(|(c, _, l)| (c.as_str(), *l)).collect();
    assert_eq!(codes, [("tool_ungoverned", 6), ("tool_ungoverned", 6), ("tool_missing_on_server", 8)], "{found:?}");
    assert!(found[2].1.contains("refund_invoice"));
    assert!(found.iter().any(|(_, m, _)| m.contains("\"purge_cache\"")), "the last page was read: {found:?}");
}

#[test]
fn an_unreachable_or_silent_server_is_a_diagnostic_not_a_hang() {
    // Bound and never listening: connections are refused, and the port stays ours meanwhile.
    let closed = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    closed.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind");
    let port = closed.local_addr().expect("address").as_socket().expect("an IP address").port();
    let (code, found) = check(&format!("http://127.0.0.1:{port}"), &[]);
    assert_eq!(code, 1);
    assert_eq!(found.iter().map(|(c, _, _)| c.as_str()).collect::<Vec<_>>(), ["server_unreachable"], "{found:?}");

    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://127.0.0.1:{}", silent.local_addr().expect("address").port());
    let started = std::time::Instant::now();
    let (code, found) = check(&url, &["--from-server-timeout", "2s"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "took {:?}", started.elapsed());
    assert_eq!(code, 1);
    assert!(found.iter().any(|(c, m, _)| c == "server_unreachable" && m.contains("did not answer within 2s")), "{found:?}");
    drop(silent);
}

#[test]
fn several_servers_need_a_name() {
    let dir = repo();
    let metadata = dir.path().join(".mcp/servers.yaml");
    let text = std::fs::read_to_string(&metadata).expect("read") + "  - name: ledger-mcp\n    namespace: team-a\n";
    std::fs::write(&metadata, text).expect("write");
    let out = run(&["validate", &dir.path().to_string_lossy(), "--from-server", "http://127.0.0.1:9/mcp"]);
    assert_eq!(out.code, 64);
    assert!(out.stderr.contains("--server"), "{}", out.stderr);
    // A name the repository does not know is an answer, as for every other command (exit 1).
    let unknown = run(&["validate", &dir.path().to_string_lossy(), "--from-server", "http://127.0.0.1:9/mcp", "--server", "ledger-mpc"]);
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("--server ledger-mpc: no such server") && unknown.stderr.contains("did you mean ledger-mcp?"),
        "{}",
        unknown.stderr
    );
}

/// A hostile MCP server (#33.5): `per_page` fresh tools on every page, and a `nextCursor` after
/// each of the first `pages` pages (`usize::MAX`: never ending).
#[derive(Clone)]
struct Hostile {
    per_page: usize,
    pages: usize,
}

impl ServerHandler for Hostile {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let page: usize = request.and_then(|r| r.cursor).and_then(|c| c.parse().ok()).unwrap_or(0);
        let schema = Arc::new(JsonObject::new());
        let tools = (0..self.per_page).map(|i| Tool::new(format!("tool_{page}_{i}"), "a hostile tool", schema.clone())).collect();
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = (page + 1 < self.pages).then(|| (page + 1).to_string());
        Ok(result)
    }
}

/// `validate --from-server` against a hostile server, bounded in time and memory; the one
/// diagnostic it gives.
fn check_hostile(url: &str, timeout: &str, limit: std::time::Duration) -> (i32, String, std::time::Duration) {
    let dir = repo();
    let path = dir.path().to_string_lossy().into_owned();
    let started = std::time::Instant::now();
    let args = ["validate", path.as_str(), "--from-server", url, "--from-server-timeout", timeout, "--format", "json", "--now", NOW];
    let out = common::run_bounded(&args, &[], 2048, limit);
    let elapsed = started.elapsed();
    let report = json(&out.stdout);
    let unreachable: Vec<String> = report["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["code"] == "server_unreachable")
        .map(|d| d["message"].as_str().unwrap_or_default().to_string())
        .collect();
    (out.code, unreachable.join("\n"), elapsed)
}

#[test]
fn a_server_listing_200000_tools_is_cut_at_the_cap_within_the_timeout() {
    let url = serve(Hostile { per_page: 200_000, pages: 1 });
    let (code, message, elapsed) = check_hostile(&url, "5s", std::time::Duration::from_secs(30));
    assert_eq!(code, 1);
    assert!(message.contains("lists more than 10000 tools (the most mcp-gitops reads from one server)"), "{message}");
    assert!(elapsed < std::time::Duration::from_secs(12), "took {elapsed:?} with a 5s timeout");
}

#[test]
fn an_endless_next_cursor_is_cut_at_the_cap_in_bounded_memory() {
    // Fresh tools on every page, forever: the tools cap ends it.
    let url = serve(Hostile { per_page: 1_000, pages: usize::MAX });
    let (code, message, elapsed) = check_hostile(&url, "20s", std::time::Duration::from_secs(40));
    assert_eq!(code, 1);
    assert!(message.contains("more than 10000 tools"), "{message}");
    assert!(elapsed < std::time::Duration::from_secs(25), "took {elapsed:?}");

    // Empty pages, forever: the pages cap ends it.
    let url = serve(Hostile { per_page: 0, pages: usize::MAX });
    let (code, message, elapsed) = check_hostile(&url, "10s", std::time::Duration::from_secs(30));
    assert_eq!(code, 1);
    assert!(message.contains("still had a nextCursor after 1000 pages of tools/list"), "{message}");
    assert!(elapsed < std::time::Duration::from_secs(15), "took {elapsed:?}");
}

#[test]
fn tool_names_from_a_live_server_reach_the_summary_and_terminal_as_text() {
    let hostile = "x\n<img src=x onerror=alert(1)> @octocat #1 <!-- mcp-gitops-plan --> \u{1b}]0;pwned\u{7}\u{1b}[2J";
    let url = serve(Catalog { tools: vec!["list_invoices", "create_invoice", "refund_invoice", hostile], page: 10 });
    let dir = repo();
    let path = dir.path().to_string_lossy().into_owned();
    let summary = dir.path().join("summary.md");
    let out = common::mcp_gitops()
        .args(["validate", &path, "--from-server", &url, "--format", "github", "--now", NOW])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .expect("runs");
    let report = std::fs::read_to_string(&summary).expect("summary");
    assert!(report.contains("tool_ungoverned"), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    for raw in ["<img", "<!--", "@octocat", "#1", "\u{1b}", "\n<"] {
        assert!(!report.contains(raw), "{raw:?} reached the job summary:\n{report}");
    }
    let text = run(&["--color", "never", "validate", &path, "--from-server", &url, "--now", NOW]).stdout;
    assert!(text.contains("tool_ungoverned") && !text.contains('\u{1b}') && !text.contains('\u{7}'), "{text}");
}
