//! Credentials and host checks for fetching a remote repository: an HTTPS token or password
//! (basic auth), an SSH key, and the SSH server's host key checked against a known_hosts file.
//! Secrets are read from files at every fetch (so a rotated Kubernetes Secret needs no restart)
//! and never kept in a value that is printed.

use base64::Engine;
use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// HTTPS: the user name sent with the token (`git` when neither this nor the URL names one).
    pub username: Option<String>,
    /// HTTPS: a file holding a token or password.
    pub token_file: Option<PathBuf>,
    /// SSH: a private key file (OpenSSH or PEM format, without a passphrase).
    pub ssh_key_file: Option<PathBuf>,
    /// SSH: the server's host key must be listed here (plain `ssh-keyscan` lines, not hashed).
    /// Without it libgit2 checks `~/.ssh/known_hosts`.
    pub known_hosts_file: Option<PathBuf>,
    /// Send credentials over plain http:// (refused otherwise: anyone on the way could read them).
    pub allow_insecure_http: bool,
}

/// Whether fetching `url` would send a secret unencrypted: a token file, or user-info in the URL
/// (a token may be the user name alone), for an http:// URL.
pub fn sends_secrets_in_clear(url: &str, credentials: &Credentials) -> bool {
    let Ok(parsed) = url::Url::parse(url) else { return false };
    parsed.scheme() == "http" && (credentials.token_file.is_some() || !parsed.username().is_empty() || parsed.password().is_some())
}

/// Why a fetch was refused by our own checks. libgit2 replaces the message of an error that a
/// callback returns with a generic one, so the callbacks leave theirs here.
pub type Refusal = Rc<RefCell<Option<String>>>;

fn refuse(refusal: &Refusal, message: String) -> git2::Error {
    *refusal.borrow_mut() = Some(message.clone());
    git2::Error::from_str(&message)
}

/// Callbacks for one fetch of `url`. Fails (rather than retries forever) when the server
/// refuses the credentials it was given.
pub fn callbacks<'a>(url: &str, credentials: &'a Credentials, refusal: &Refusal) -> Result<RemoteCallbacks<'a>, git2::Error> {
    let token = match &credentials.token_file {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| git2::Error::from_str(&format!("cannot read the git token file {}: {e}", file.display())))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let known_hosts = match &credentials.known_hosts_file {
        Some(file) => Some(KnownHosts::parse(
            &std::fs::read_to_string(file)
                .map_err(|e| git2::Error::from_str(&format!("cannot read the known_hosts file {}: {e}", file.display())))?,
        )),
        None => None,
    };
    let endpoint = ssh_endpoint(url);
    let mut callbacks = RemoteCallbacks::new();
    let mut offered_secret = false;
    let refused = refusal.clone();
    callbacks.credentials(move |_url, user_from_url, allowed| {
        let user = credentials.username.as_deref().or(user_from_url).unwrap_or("git");
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(user);
        }
        if offered_secret {
            return Err(refuse(&refused, "the server refused the credentials".into()));
        }
        offered_secret = true;
        if allowed.contains(CredentialType::SSH_KEY)
            && let Some(key) = &credentials.ssh_key_file
        {
            return Cred::ssh_key(user_from_url.unwrap_or("git"), None, key, None);
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
            && let Some(token) = &token
        {
            return Cred::userpass_plaintext(user, token);
        }
        Err(refuse(&refused, "the repository asks for credentials: pass --git-token-file (HTTPS) or --git-ssh-key-file (SSH)".into()))
    });
    if let (Some(known_hosts), Some((host, port))) = (known_hosts, endpoint) {
        let file = credentials.known_hosts_file.clone().unwrap_or_default();
        let refused = refusal.clone();
        callbacks.certificate_check(move |cert, _| {
            let Some(key) = cert.as_hostkey().and_then(|k| k.hostkey()) else { return Ok(CertificateCheckStatus::CertificatePassthrough) };
            if known_hosts.accepts(&host, port, key) {
                Ok(CertificateCheckStatus::CertificateOk)
            } else {
                Err(refuse(
                    &refused,
                    format!(
                        "the host key of {host}:{port} is not in {} (add the line `ssh-keyscan -p {port} {host}` prints, after checking it)",
                        file.display()
                    ),
                ))
            }
        });
    }
    Ok(callbacks)
}

/// Host and port of an SSH URL (`ssh://[user@]host[:port]/path` or `user@host:path`).
fn ssh_endpoint(url: &str) -> Option<(String, u16)> {
    if let Some(rest) = url.strip_prefix("ssh://") {
        let authority = rest.split('/').next()?;
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = match host_port.strip_prefix('[') {
            Some(bracketed) => bracketed.split_once(']').map(|(h, rest)| (h, rest.strip_prefix(':')))?,
            None => host_port.split_once(':').map_or((host_port, None), |(h, p)| (h, Some(p))),
        };
        return Some((host.to_string(), port.map_or(Some(22), |p| p.parse().ok())?));
    }
    if url.contains("://") {
        return None;
    }
    let (authority, _) = url.split_once(':')?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty() && !host.contains('/')).then(|| (host.to_string(), 22))
}

/// The entries of a known_hosts file.
struct KnownHosts {
    entries: Vec<KnownHost>,
}

struct KnownHost {
    /// Host patterns as written: `host` for port 22, `[host]:port` otherwise.
    hosts: Vec<String>,
    /// The key blob (base64-decoded), which starts with the key type.
    key: Vec<u8>,
    /// An `@revoked` line: this key is refused for these hosts.
    revoked: bool,
}

impl KnownHosts {
    fn parse(text: &str) -> KnownHosts {
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let mut hosts = fields.next()?;
                let revoked = hosts == "@revoked";
                if revoked {
                    hosts = fields.next()?;
                } else if hosts.starts_with('@') {
                    // `@cert-authority` lines are not supported.
                    return None;
                }
                let _key_type = fields.next()?;
                let key = base64::engine::general_purpose::STANDARD.decode(fields.next()?).ok()?;
                Some(KnownHost { hosts: hosts.split(',').map(String::from).collect(), key, revoked })
            })
            .collect();
        KnownHosts { entries }
    }

    fn accepts(&self, host: &str, port: u16, key: &[u8]) -> bool {
        let name = if port == 22 { host.to_string() } else { format!("[{host}]:{port}") };
        let matching: Vec<&KnownHost> = self.entries.iter().filter(|e| e.key == key && e.hosts.contains(&name)).collect();
        !matching.is_empty() && matching.iter().all(|e| !e.revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_endpoints_are_read_from_both_url_forms() {
        assert_eq!(ssh_endpoint("ssh://git@127.0.0.1:2222/srv/platform.git"), Some(("127.0.0.1".into(), 2222)));
        assert_eq!(ssh_endpoint("ssh://git.example.com/platform.git"), Some(("git.example.com".into(), 22)));
        assert_eq!(ssh_endpoint("ssh://git@[::1]:2222/platform.git"), Some(("::1".into(), 2222)));
        assert_eq!(ssh_endpoint("git@github.com:fernhill/platform.git"), Some(("github.com".into(), 22)));
        assert_eq!(ssh_endpoint("https://github.com/fernhill/platform.git"), None);
        assert_eq!(ssh_endpoint("/srv/git/platform.git"), None);
    }

    #[test]
    fn host_keys_must_be_listed_for_the_host_and_port() {
        let key = b"\x00\x00\x00\x0bssh-ed25519key-bytes";
        let line = base64::engine::general_purpose::STANDARD.encode(key);
        let known =
            KnownHosts::parse(&format!("# comment\n[127.0.0.1]:2222,other ssh-ed25519 {line}\ngit.example.com ssh-ed25519 {line}\n"));
        assert!(known.accepts("127.0.0.1", 2222, key));
        assert!(known.accepts("git.example.com", 22, key));
        assert!(!known.accepts("127.0.0.1", 22, key), "the port is part of the name");
        assert!(!known.accepts("127.0.0.1", 2222, b"another key"));
        let revoked = KnownHosts::parse(&format!("@revoked git.example.com ssh-ed25519 {line}\ngit.example.com ssh-ed25519 {line}\n"));
        assert!(!revoked.accepts("git.example.com", 22, key));
    }
}
