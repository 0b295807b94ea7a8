//! The tools a running MCP server offers: initialize -> notifications/initialized -> tools/list
//! over streamable HTTP (following pagination), with the official MCP SDK. Network I/O only; the
//! comparison with the metadata is `validate::live_tools`.

use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use std::time::Duration;

/// The URL as mcp-runtime's discovery uses it: trailing `/` trimmed, `/mcp` when there is no path.
pub fn endpoint(url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/');
    let (scheme, rest) = trimmed.split_once("://").ok_or_else(|| format!("{url:?} is not a URL (want e.g. http://localhost:8088/mcp)"))?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() {
        return Err(format!("{url:?} is not an http(s) URL"));
    }
    Ok(if rest.contains('/') { trimmed.to_string() } else { format!("{trimmed}/mcp") })
}

/// The names of the tools the server at `url` lists, in its order, trimmed and de-duplicated.
pub async fn discover(url: &str, timeout: Duration) -> Result<Vec<String>, String> {
    let url = endpoint(url)?;
    let work = async {
        let transport = StreamableHttpClientTransport::from_uri(url.as_str());
        let client = ().serve(transport).await.map_err(|e| format!("cannot initialize an MCP session with {url}: {e}"))?;
        let tools = client.list_all_tools().await.map_err(|e| format!("tools/list failed on {url}: {e}"));
        let _ = client.cancel().await;
        tools
    };
    let tools = tokio::time::timeout(timeout, work).await.map_err(|_| format!("{url} did not answer within {}s", timeout.as_secs()))??;
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
        assert_eq!(endpoint("http://localhost:8088").as_deref(), Ok("http://localhost:8088/mcp"));
        assert_eq!(endpoint("http://localhost:8088/").as_deref(), Ok("http://localhost:8088/mcp"));
        assert_eq!(endpoint("http://h/payments/mcp/").as_deref(), Ok("http://h/payments/mcp"));
        assert!(endpoint("localhost:8088").is_err());
    }
}
