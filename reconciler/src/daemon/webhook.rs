//! Webhook authentication: GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of the body) and
//! GitLab's `X-Gitlab-Token`, both compared in constant time. The headers are checked first, so
//! that a request without a usable signature is refused before any of its body is read.

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

/// A webhook request being checked: first its headers, then, only when its signature needs it,
/// its body, which is fed through the HMAC as it arrives and never kept.
pub enum Check {
    /// Decided by the headers alone: a GitLab token, or a missing or malformed signature.
    Decided(Verdict),
    /// A GitHub signature: the body decides (`Signed::update`, then `Signed::finish`).
    Signed(Signed),
}

pub struct Signed {
    mac: Hmac<Sha256>,
    expected: Vec<u8>,
    ping: bool,
}

impl Signed {
    pub fn update(&mut self, chunk: &[u8]) {
        self.mac.update(chunk);
    }

    pub fn finish(self) -> Verdict {
        verdict(self.mac.verify_slice(&self.expected).is_ok(), self.ping)
    }
}

/// What the headers of a request say. `headers` is a lookup of (lower-case) header names.
pub fn check(secret: &[u8], headers: impl Fn(&str) -> Option<String>) -> Check {
    let ping = headers("x-github-event").as_deref() == Some("ping");
    if let Some(signature) = headers("x-hub-signature-256") {
        let Some(hex_digest) = signature.strip_prefix("sha256=") else {
            return Check::Decided(Verdict::Rejected("malformed X-Hub-Signature-256"));
        };
        let Ok(expected) = hex::decode(hex_digest.trim()) else {
            return Check::Decided(Verdict::Rejected("malformed X-Hub-Signature-256"));
        };
        let Ok(mac) = Hmac::<Sha256>::new_from_slice(secret) else { return Check::Decided(Verdict::Rejected("unusable secret")) };
        Check::Signed(Signed { mac, expected, ping })
    } else if let Some(token) = headers("x-gitlab-token") {
        Check::Decided(verdict(constant_time_eq(token.as_bytes(), secret), ping))
    } else {
        Check::Decided(Verdict::Rejected("no X-Hub-Signature-256 or X-Gitlab-Token header"))
    }
}

/// [`check`] for a `POST /hook` request as the HTTP server hands it over. A header value that is
/// not visible ASCII counts as absent; of a repeated header, the first counts.
pub fn check_request(secret: &[u8], headers: &axum::http::HeaderMap) -> Check {
    check(secret, |name| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from))
}

/// Checks one whole webhook request.
pub fn verify(secret: &[u8], headers: impl Fn(&str) -> Option<String>, body: &[u8]) -> Verdict {
    match check(secret, headers) {
        Check::Decided(verdict) => verdict,
        Check::Signed(mut signed) => {
            signed.update(body);
            signed.finish()
        }
    }
}

fn verdict(valid: bool, ping: bool) -> Verdict {
    match (valid, ping) {
        (false, _) => Verdict::Rejected("signature does not match"),
        (true, true) => Verdict::Ping,
        (true, false) => Verdict::Accepted,
    }
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

    #[test]
    fn only_a_github_signature_needs_the_body_and_it_may_come_in_pieces() {
        assert!(matches!(check(b"tok", headers(&[("x-gitlab-token", "tok")])), Check::Decided(Verdict::Accepted)));
        assert!(matches!(check(b"s", headers(&[])), Check::Decided(Verdict::Rejected(_))));
        assert!(matches!(check(b"s", headers(&[("x-hub-signature-256", "sha256=zz")])), Check::Decided(Verdict::Rejected(_))));
        let signature: &'static str = Box::leak(sign(b"k", b"Hello, World!").into_boxed_str());
        let pairs: &'static [(&'static str, &'static str)] = Box::leak(vec![("x-hub-signature-256", signature)].into_boxed_slice());
        let Check::Signed(mut signed) = check(b"k", headers(pairs)) else { panic!("a signature needs the body") };
        signed.update(b"Hello, ");
        signed.update(b"World!");
        assert_eq!(signed.finish(), Verdict::Accepted);
    }
}
