//! Webhook authentication: GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of the body) and
//! GitLab's `X-Gitlab-Token`, both compared in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Signed correctly: reconcile.
    Accepted,
    /// A GitHub ping: signed correctly, nothing to do.
    Ping,
    /// Missing or wrong signature.
    Rejected(&'static str),
}

/// Checks one webhook request. `headers` is a lookup of (lower-case) header names.
pub fn verify(secret: &[u8], headers: impl Fn(&str) -> Option<String>, body: &[u8]) -> Verdict {
    let valid = if let Some(signature) = headers("x-hub-signature-256") {
        let Some(hex_digest) = signature.strip_prefix("sha256=") else { return Verdict::Rejected("malformed X-Hub-Signature-256") };
        let Ok(expected) = hex::decode(hex_digest.trim()) else { return Verdict::Rejected("malformed X-Hub-Signature-256") };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return Verdict::Rejected("unusable secret") };
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    } else if let Some(token) = headers("x-gitlab-token") {
        constant_time_eq(token.as_bytes(), secret)
    } else {
        return Verdict::Rejected("no X-Hub-Signature-256 or X-Gitlab-Token header");
    };
    match (valid, headers("x-github-event").as_deref()) {
        (false, _) => Verdict::Rejected("signature does not match"),
        (true, Some("ping")) => Verdict::Ping,
        (true, _) => Verdict::Accepted,
    }
}

/// Checks a `POST /hook` request as the HTTP server hands it over. A header value that is not
/// visible ASCII counts as absent; of a repeated header, the first counts.
pub fn verify_request(secret: &[u8], headers: &axum::http::HeaderMap, body: &[u8]) -> Verdict {
    verify(secret, |name| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from), body)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `X-Hub-Signature-256` value for `body` (for tests and for people wiring webhooks).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length; this never returns early.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return String::new() };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn github_signatures_are_checked() {
        // The example of GitHub's webhook documentation.
        let signature = sign(b"It's a Secret to Everybody", b"Hello, World!");
        assert_eq!(signature, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
        let body = b"Hello, World!";
        let good = move |name: &str| (name == "x-hub-signature-256").then(|| signature.clone());
        assert_eq!(verify(b"It's a Secret to Everybody", &good, body), Verdict::Accepted);
        assert_eq!(verify(b"another secret", &good, body), Verdict::Rejected("signature does not match"));
        assert_eq!(verify(b"s", headers(&[]), body), Verdict::Rejected("no X-Hub-Signature-256 or X-Gitlab-Token header"));
        assert_eq!(verify(b"s", headers(&[("x-hub-signature-256", "md5=abc")]), body), Verdict::Rejected("malformed X-Hub-Signature-256"));
    }

    #[test]
    fn gitlab_tokens_and_pings() {
        assert_eq!(verify(b"tok", headers(&[("x-gitlab-token", "tok")]), b""), Verdict::Accepted);
        assert_eq!(verify(b"tok", headers(&[("x-gitlab-token", "toc")]), b""), Verdict::Rejected("signature does not match"));
        let body = b"{}";
        let signature: &'static str = Box::leak(sign(b"k", body).into_boxed_str());
        let pairs: &'static [(&'static str, &'static str)] =
            Box::leak(vec![("x-hub-signature-256", signature), ("x-github-event", "ping")].into_boxed_slice());
        assert_eq!(verify(b"k", headers(pairs), body), Verdict::Ping);
    }
}
