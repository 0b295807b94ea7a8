//! How a repository's address is shown in logs, `/status` and Events: without the credentials it
//! may carry. A URL is parsed (the `url` crate) and loses its user-info (an SSH login name alone
//! is kept), the values of query parameters that look like credentials, and its fragment.
//! git's scp-like `[user@]host:path` form and local paths are not URLs: they are shown as they
//! are, unless what precedes the `@` holds a `:` (a password).

use url::Url;

/// What is shown in place of a credential.
const HIDDEN: &str = "***";

/// Query parameter names that carry credentials: a name (compared without case) containing any of
/// these (`private_token`, `access_token`, `token`, `password`, `api_key`, `X-Amz-Signature`, `sig`…).
const SECRET_PARAMETERS: &[&str] = &["token", "secret", "pass", "pwd", "key", "auth", "sig", "credential", "session"];

/// `repo` as it may be shown to anyone.
pub fn redact(repo: &str) -> String {
    if !repo.contains("://") {
        return redact_scp_like(repo);
    }
    let Ok(mut url) = Url::parse(repo) else {
        // Not a URL git could fetch either; its scheme is all that is safe to show.
        let scheme = repo.split("://").next().unwrap_or_default();
        return format!("{scheme}://<not a valid URL>");
    };
    let mut changed = false;
    let login_only = is_ssh(&url) && url.password().is_none();
    if !login_only && (!url.username().is_empty() || url.password().is_some()) {
        if url.set_password(None).is_err() || url.set_username(HIDDEN).is_err() {
            return format!("{}://<not a valid URL>", url.scheme());
        }
        changed = true;
    }
    if url.query_pairs().any(|(name, _)| is_secret(&name)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if is_secret(&name) { HIDDEN.to_string() } else { value.into_owned() };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if url.fragment().is_some() {
        url.set_fragment(None);
        changed = true;
    }
    // A URL with nothing to hide is shown exactly as it was given.
    if changed { url.to_string() } else { repo.to_string() }
}

/// `text` (a message from git, say) with `repo` redacted, and any credential of `repo` that
/// appears in it on its own (git may quote the URL in another form) hidden too.
pub fn redact_in(text: &str, repo: &str) -> String {
    let mut text = text.replace(repo, &redact(repo));
    for secret in secrets(repo) {
        text = text.replace(&secret, HIDDEN);
    }
    text
}

/// The credentials `repo` carries, as written and percent-decoded. Shorter than 4 characters
/// they would garble the message and are no secret worth the name.
fn secrets(repo: &str) -> Vec<String> {
    let Ok(url) = Url::parse(repo) else { return Vec::new() };
    let mut found: Vec<String> = url.password().into_iter().map(String::from).collect();
    if !is_ssh(&url) || url.password().is_some() {
        found.push(url.username().to_string());
    }
    found.extend(url.query_pairs().filter(|(name, _)| is_secret(name)).map(|(_, value)| value.into_owned()));
    if let Some(fragment) = url.fragment() {
        found.push(fragment.to_string());
    }
    let decoded: Vec<String> =
        found.iter().filter_map(|s| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned())).collect();
    found.extend(decoded);
    found.retain(|s| s.chars().count() >= 4);
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found.dedup();
    found
}

fn is_ssh(url: &Url) -> bool {
    matches!(url.scheme(), "ssh" | "git+ssh" | "ssh+git")
}

fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMETERS.iter().any(|word| name.contains(word))
}

/// `[user@]host:path`: the login is kept, a `user:password` is not. A local path is left alone.
fn redact_scp_like(repo: &str) -> String {
    let authority = &repo[..repo.find('/').unwrap_or(repo.len())];
    match authority.rfind('@') {
        Some(at) if authority[..at].contains(':') => format!("{HIDDEN}@{}", &repo[at + 1..]),
        _ => repo.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_logs() {
        let table = [
            ("https://user:token@git.example.com/org/repo.git", "https://***@git.example.com/org/repo.git"),
            // #32.3: no path at all.
            ("https://user:TOKEN@host", "https://***@host/"),
            ("https://user:TOKEN@127.0.0.1:1", "https://***@127.0.0.1:1/"),
            // A token as the user name (GitHub accepts one so), or percent-encoded characters.
            ("https://ghp_abcdef123456@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
            ("https://oauth2:p%40ss%3Aw0rd@gitlab.com/org/repo.git", "https://***@gitlab.com/org/repo.git"),
            ("http://user:TOKEN@[::1]:8080/repo", "http://***@[::1]:8080/repo"),
            // Credentials in the query, in the fragment.
            ("https://gitlab.com/org/repo.git?private_token=TOKEN", "https://gitlab.com/org/repo.git?private_token=***"),
            ("https://host/repo?access_token=TOKEN&ref=main", "https://host/repo?access_token=***&ref=main"),
            ("https://host/repo?Token=TOKEN", "https://host/repo?Token=***"),
            ("https://host/repo?password=TOKEN&X-Amz-Signature=abc", "https://host/repo?password=***&X-Amz-Signature=***"),
            ("https://host/repo#access_token=TOKEN", "https://host/repo"),
            // Nothing to hide: shown exactly as given.
            ("https://git.example.com/org/repo.git", "https://git.example.com/org/repo.git"),
            ("https://HOST.example.com", "https://HOST.example.com"),
            ("https://host/repo?ref=main", "https://host/repo?ref=main"),
            ("file:///srv/repo.git", "file:///srv/repo.git"),
            ("/srv/repo.git", "/srv/repo.git"),
            ("./platform@2026:v1", "./platform@2026:v1"),
            // SSH: the login name is no secret; a password is.
            ("git@github.com:fernhill/platform.git", "git@github.com:fernhill/platform.git"),
            ("github.com:fernhill/platform.git", "github.com:fernhill/platform.git"),
            ("user:TOKEN@host:org/repo.git", "***@host:org/repo.git"),
            ("ssh://git@127.0.0.1:2222/srv/platform.git", "ssh://git@127.0.0.1:2222/srv/platform.git"),
            ("ssh://git:TOKEN@host/platform.git", "ssh://***@host/platform.git"),
            // Not a URL git could use: only the scheme is shown.
            ("https://user:TO KEN@host:99999/repo", "https://<not a valid URL>"),
        ];
        for (given, shown) in table {
            assert_eq!(redact(given), shown, "{given}");
        }
    }

    #[test]
    fn credentials_are_hidden_wherever_a_message_quotes_them() {
        let repo = "https://oauth2:p%40ssw0rd@host/repo?private_token=TOKEN-123";
        let message = format!("failed to fetch {repo}: auth p@ssw0rd for https://host (token TOKEN-123, user oauth2)");
        let shown = redact_in(&message, repo);
        assert_eq!(shown, "failed to fetch https://***@host/repo?private_token=***: auth *** for https://host (token ***, user ***)");
        assert_eq!(redact_in("cannot reach git@github.com", "git@github.com:org/repo.git"), "cannot reach git@github.com");
    }
}
