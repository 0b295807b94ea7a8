//! Feeds a `POST /hook` request (header lines, a blank line, the body) to the daemon's webhook
//! check as the daemon runs it: `webhook::check_request` on the headers, then, for a GitHub
//! signature, the body fed through the HMAC in chunks as it arrives.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mcp_gitops::daemon::{MAX_HOOK_BODY, webhook};

/// The daemon's `--webhook-secret-file`; the seed corpus signs with it.
const SECRET: &[u8] = b"fuzz-webhook-secret";

fuzz_target!(|data: &[u8]| {
    let (headers, body) = request(data);
    // Larger bodies are refused by the HTTP layer before the handler runs.
    if body.len() > MAX_HOOK_BODY {
        return;
    }
    let verdict = match webhook::check_request(SECRET, &headers) {
        webhook::Check::Decided(verdict) => verdict,
        webhook::Check::Signed(mut signed) => {
            body.chunks(7).for_each(|chunk| signed.update(chunk));
            signed.finish()
        }
    };
    if matches!(verdict, webhook::Verdict::Accepted | webhook::Verdict::Ping) {
        assert!(proves_secret(&headers, body), "a request that does not know the secret was accepted: {headers:?}");
    }
    if verdict == webhook::Verdict::Ping {
        assert!(headers.get_all("x-github-event").iter().any(|v| v == "ping"), "a ping without X-GitHub-Event: ping");
    }
});

/// Splits the input as HTTP does: `name: value` lines up to the first empty line, then the body.
/// Lines that HTTP would refuse (no colon, a bad name or value) are left out, as hyper refuses them.
fn request(data: &[u8]) -> (HeaderMap, &[u8]) {
    let mut headers = HeaderMap::new();
    let mut rest = data;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(line[colon + 1..].trim_ascii())) {
            headers.append(name, value);
        }
    }
    (headers, rest)
}

/// Whether some header carries the secret (GitLab) or an HMAC of the body made with it (GitHub).
fn proves_secret(headers: &HeaderMap, body: &[u8]) -> bool {
    let signature = webhook::sign(SECRET, body);
    let digest = signature.trim_start_matches("sha256=").as_bytes();
    headers.get_all("x-gitlab-token").iter().any(|v| v.as_bytes() == SECRET)
        || headers
            .get_all("x-hub-signature-256")
            .iter()
            .filter_map(|v| v.as_bytes().strip_prefix(b"sha256="))
            .any(|hex| hex.trim_ascii().eq_ignore_ascii_case(digest))
}
