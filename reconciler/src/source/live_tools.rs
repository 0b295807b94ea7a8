//! The tools a running MCP server offers: initialize -> notifications/initialized -> tools/list
//! over streamable HTTP (following pagination), with the official MCP SDK. Network I/O only; the
//! comparison with the metadata is `validate::live_tools`. A server is not trusted to end its
//! list: the tools and pages kept are capped, and the timeout covers the whole discovery.

use rmcp::ServiceExt;
use rmcp::model::PaginatedRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use std::collections::HashSet;
use std::time::Duration;

/// The most tools read from one server: far above any server a gateway governs tool by tool,
/// far below what makes the check slow or large.
pub const MAX_TOOLS: usize = 10_000;

/// The most `tools/list` pages followed: a `nextCursor` that never ends stops here.
pub const MAX_PAGES: usize = 1_000;

/// Why the tools of a running server could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{0:?} is not a URL (want e.g. http://localhost:8088/mcp)")]
    NotAUrl(String),
    #[error("{0:?} is not an http(s) URL")]
    NotHttp(String),
    /// No MCP session could be opened (connection refused, not an MCP server, ...).
    #[error("cannot initialize an MCP session with {url}: {source}")]
    Initialize { url: String, source: Box<rmcp::service::ClientInitializeError> },
    #[error("tools/list failed on {url}: {source}")]
    ListTools { url: String, source: Box<rmcp::ServiceError> },
    #[error("{url} did not answer within {}s", .timeout.as_secs())]
    Timeout { url: String, timeout: Duration },
    #[error("{url} lists more than {MAX_TOOLS} tools (the most mcp-gitops reads from one server); stopped there")]
    TooManyTools { url: String },
    #[error("{url} still had a nextCursor after {MAX_PAGES} pages of tools/list (the most mcp-gitops follows); stopped there")]
    TooManyPages { url: String },
}

/// The URL as mcp-runtime's discovery uses it: trailing `/` trimmed, `/mcp` when there is no path.
pub fn endpoint(url: &str) -> Result<String, DiscoveryError> {
    let trimmed = url.trim().trim_end_matches('/');
    let (scheme, rest) = trimmed.split_once("://").ok_or_else(|| DiscoveryError::NotAUrl(url.to_string()))?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() {
        return Err(DiscoveryError::NotHttp(url.to_string()));
    }
    Ok(if rest.contains('/') { trimmed.to_string() } else { format!("{trimmed}/mcp") })
}

/// The names of the tools the server at `url` lists, in its order, trimmed and de-duplicated;
/// all of it within `timeout`.
pub async fn discover(url: &str, timeout: Duration) -> Result<Vec<String>, DiscoveryError> {
    let url = endpoint(url)?;
    let work = async {
        let transport = StreamableHttpClientTransport::from_uri(url.as_str());
        let client = ().serve(transport).await.map_err(|e| DiscoveryError::Initialize { url: url.clone(), source: Box::new(e) })?;
        let names = list_names(&client, &url).await;
        let _ = client.cancel().await;
        names
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| DiscoveryError::Timeout { url: url.clone(), timeout })?
}

/// Follows `nextCursor` page by page, keeping only the names (not the schemas), each once.
async fn list_names(client: &rmcp::Peer<rmcp::RoleClient>, url: &str) -> Result<Vec<String>, DiscoveryError> {
    let mut names: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let (mut listed, mut cursor) = (0usize, None);
    for _ in 0..MAX_PAGES {
        let page = client
            .list_tools(Some(PaginatedRequestParams::default().with_cursor(cursor)))
            .await
            .map_err(|e| DiscoveryError::ListTools { url: url.to_string(), source: Box::new(e) })?;
        listed += page.tools.len();
        if listed > MAX_TOOLS {
            return Err(DiscoveryError::TooManyTools { url: url.to_string() });
        }
        for tool in page.tools {
            let name = tool.name.trim();
            if !name.is_empty() && seen.insert(name.to_string()) {
                names.push(name.to_string());
            }
        }
        cursor = page.next_cursor;
        if cursor.is_none() {
            return Ok(names);
        }
        // A server answering instantly must not keep the timeout from firing.
        tokio::task::yield_now().await;
    }
    Err(DiscoveryError::TooManyPages { url: url.to_string() })
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn urls_are_normalised_like_the_platform_does() {
        assert_eq!(endpoint("http://localhost:8088").ok().as_deref(), Some("http://localhost:8088/mcp"));
        assert_eq!(endpoint("http://localhost:8088/").ok().as_deref(), Some("http://localhost:8088/mcp"));
        assert_eq!(endpoint("http://h/payments/mcp/").ok().as_deref(), Some("http://h/payments/mcp"));
        assert!(matches!(endpoint("localhost:8088"), Err(super::DiscoveryError::NotAUrl(_))));
        let ftp = endpoint("ftp://h/").unwrap_err();
        assert_eq!(ftp.to_string(), "\"ftp://h/\" is not an http(s) URL");
    }
}
