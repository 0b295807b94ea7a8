//! The tools a running MCP server offers: initialize -> notifications/initialized -> tools/list
//! over streamable HTTP (following pagination), with the official MCP SDK. Network I/O only; the
//! comparison with the metadata is `validate::live_tools`.

use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use std::time::Duration;

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

/// The names of the tools the server at `url` lists, in its order, trimmed and de-duplicated.
pub async fn discover(url: &str, timeout: Duration) -> Result<Vec<String>, DiscoveryError> {
    let url = endpoint(url)?;
    let work = async {
        let transport = StreamableHttpClientTransport::from_uri(url.as_str());
        let client = ().serve(transport).await.map_err(|e| DiscoveryError::Initialize { url: url.clone(), source: Box::new(e) })?;
        let tools = client.list_all_tools().await.map_err(|e| DiscoveryError::ListTools { url: url.clone(), source: Box::new(e) });
        let _ = client.cancel().await;
        tools
    };
    let tools = tokio::time::timeout(timeout, work).await.map_err(|_| DiscoveryError::Timeout { url: url.clone(), timeout })??;
    let mut names: Vec<String> = Vec::new();
    for tool in tools {
        let name = tool.name.trim().to_string();
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
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
