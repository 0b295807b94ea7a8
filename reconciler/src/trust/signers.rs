//! git's `allowed_signers` file (ssh-keygen's ALLOWED SIGNERS format): one key per line,
//! `principals [options] keytype base64-key [comment]`. Principals are comma-separated patterns
//! (`*` and `?`, a leading `!` excluding what it matches); options are `namespaces="git,file"`, `valid-after=`, `valid-before=` (times as
//! `YYYYMMDD[HHMM[SS]][Z]`) and `cert-authority`. Blank lines and `#` comments are skipped.

use super::TrustError;
use ssh_key::PublicKey;

#[derive(Debug, Clone)]
pub struct AllowedSigner {
    /// Where it was declared, for messages: `file:line`.
    pub at: String,
    pub principals: Vec<String>,
    pub namespaces: Option<Vec<String>>,
    /// Seconds since the epoch (UTC).
    pub valid_after: Option<i64>,
    pub valid_before: Option<i64>,
    pub cert_authority: bool,
    pub key: PublicKey,
}

/// Why a line of an allowed_signers file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("no principals")]
    NoPrincipals,
    #[error("no key")]
    NoKey,
    #[error("no key data after the key type")]
    NoKeyData,
    #[error("unknown option {0:?}")]
    UnknownOption(String),
    /// A `valid-after` or `valid-before` that is not a time.
    #[error("{0:?} is not a time like 20260101 or 202601011200")]
    NotATime(String),
    #[error("unreadable {key_type} key: {source}")]
    UnreadableKey { key_type: String, source: ssh_key::Error },
}

/// Parses an allowed_signers file; a line that cannot be read is an error naming it.
pub fn parse(text: &str, file: &str) -> Result<Vec<AllowedSigner>, TrustError> {
    let mut signers = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{file}:{}", n + 1);
        signers.push(parse_line(line, &at).map_err(|why| TrustError::AllowedSigners { file: file.to_string(), line: n + 1, why })?);
    }
    Ok(signers)
}

fn parse_line(line: &str, at: &str) -> Result<AllowedSigner, LineError> {
    let mut words = split_words(line).into_iter();
    let principals: Vec<String> = unquote(&words.next().ok_or(LineError::NoPrincipals)?).split(',').map(str::to_string).collect();
    let (mut namespaces, mut valid_after, mut valid_before, mut cert_authority) = (None, None, None, false);
    let mut key_type = words.next().ok_or(LineError::NoKey)?;
    // Options come before the key type, which is the first word that looks like one.
    if !is_key_type(&key_type) {
        for option in split_options(&key_type) {
            let (name, value) = match option.split_once('=') {
                Some((name, value)) => (name.to_ascii_lowercase(), unquote(value)),
                None => (option.to_ascii_lowercase(), String::new()),
            };
            match name.as_str() {
                "namespaces" => namespaces = Some(value.split(',').map(str::to_string).collect()),
                "valid-after" => valid_after = Some(parse_time(&value)?),
                "valid-before" => valid_before = Some(parse_time(&value)?),
                "cert-authority" => cert_authority = true,
                _ => return Err(LineError::UnknownOption(name)),
            }
        }
        key_type = words.next().ok_or(LineError::NoKey)?;
    }
    let data = words.next().ok_or(LineError::NoKeyData)?;
    let key = PublicKey::from_openssh(&format!("{key_type} {data}")).map_err(|source| LineError::UnreadableKey { key_type, source })?;
    Ok(AllowedSigner { at: at.to_string(), principals, namespaces, valid_after, valid_before, cert_authority, key })
}

fn is_key_type(word: &str) -> bool {
    word.starts_with("ssh-") || word.starts_with("ecdsa-") || word.starts_with("sk-")
}

/// Words separated by blanks, a double-quoted part kept whole.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Comma-separated options, a double-quoted value kept whole.
fn split_options(text: &str) -> Vec<String> {
    let mut options = Vec::new();
    let mut option = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                option.push(c);
            }
            ',' if !quoted => options.push(std::mem::take(&mut option)),
            c => option.push(c),
        }
    }
    options.push(option);
    options
}

fn unquote(text: &str) -> String {
    text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text).to_string()
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, with an optional `Z`; read as UTC.
fn parse_time(text: &str) -> Result<i64, LineError> {
    let digits = text.trim_end_matches(['Z', 'z']);
    let bad = || LineError::NotATime(text.to_string());
    if !digits.chars().all(|c| c.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let padded = format!("{digits:0<14}");
    let part = |range: std::ops::Range<usize>| padded[range].parse::<i16>().map_err(|_| bad());
    // DateTime::new refuses a month 50 or a day 0 (jiff's `datetime` would panic on them).
    let civil = jiff::civil::DateTime::new(
        part(0..4)?,
        part(4..6)? as i8,
        part(6..8)? as i8,
        part(8..10)? as i8,
        part(10..12)? as i8,
        part(12..14)? as i8,
        0,
    )
    .map_err(|_| bad())?;
    civil.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp().as_second()).map_err(|_| bad())
}

/// Whether a line's principals, a pattern list, admit `principal`, as OpenSSH's
/// `match_pattern_list` decides for `ssh-keygen -Y verify`: a pattern matches, and no negated
/// pattern (`!contractor@fernhill.io`) does, wherever it stands in the list.
pub fn list_matches(patterns: &[String], principal: &str) -> bool {
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if principal_matches(negated, principal) => return false,
            Some(_) => {}
            None => matched |= principal_matches(pattern, principal),
        }
    }
    matched
}

/// Whether `principal` matches a pattern with `*` and `?` (and a leading `!` never matches).
/// Linear in practice: on a mismatch only the last `*` takes one more character, so a hostile
/// pattern such as `*a*a*a*a*b` cannot make it exponential.
pub fn principal_matches(pattern: &str, principal: &str) -> bool {
    if pattern.starts_with('!') {
        return false;
    }
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), principal.chars().collect());
    let (mut i, mut j) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and how much of the principal it took.
    let mut star: Option<(usize, usize)> = None;
    while j < s.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i + 1, j));
                i += 1;
            }
            Some(&c) if c == '?' || c == s[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((resume, taken)) => {
                    star = Some((resume, taken + 1));
                    (i, j) = (resume, taken + 1);
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn lines_with_and_without_options_are_read() {
        let text = format!(
            "# team keys\n\n\"alice@x.io,bob@x.io\" {KEY} alice laptop\n*@x.io namespaces=\"git,file\",valid-after=20260101,valid-before=\"202612312359Z\" {KEY}\nca@x.io cert-authority {KEY}\n"
        );
        let signers = parse(&text, "allowed_signers").expect("parses");
        assert_eq!(signers.len(), 3);
        assert_eq!(signers[0].principals, ["alice@x.io", "bob@x.io"]);
        assert_eq!(signers[0].at, "allowed_signers:3");
        assert_eq!(signers[1].namespaces.as_deref(), Some(&["git".to_string(), "file".to_string()][..]));
        assert_eq!(signers[1].valid_after, Some(1767225600));
        assert_eq!(signers[1].valid_before, Some(1798761540));
        assert!(signers[2].cert_authority);
        let unknown = parse("alice@x.io nonsense=1 ssh-ed25519 AAAA", "f").expect_err("an unknown option");
        assert_eq!(unknown.to_string(), "f:1: unknown option \"nonsense\"");
        assert!(matches!(unknown, TrustError::AllowedSigners { line: 1, why: LineError::UnknownOption(_), .. }));
        assert!(parse("alice@x.io ssh-ed25519 !!!", "f").is_err_and(|e| e.to_string().starts_with("f:1: unreadable ssh-ed25519 key: ")));
        // Found by the commit_signature fuzz target: an impossible date is an error, not a panic.
        let impossible = parse(&format!("a@x.io valid-before=\"10150050560000Z\" {KEY}"), "f").expect_err("an impossible date");
        assert_eq!(impossible.to_string(), "f:1: \"10150050560000Z\" is not a time like 20260101 or 202601011200");
    }

    #[test]
    fn principal_patterns() {
        assert!(principal_matches("*@fernhill.io", "dana@fernhill.io"));
        assert!(principal_matches("dan?@fernhill.io", "dana@fernhill.io"));
        assert!(!principal_matches("*@fernhill.io", "dana@evil.io"));
        assert!(!principal_matches("!dana@fernhill.io", "dana@fernhill.io"));
        assert!(principal_matches("*", "") && principal_matches("a*b*c", "axxbyyc") && !principal_matches("a*b*c", "axxbyy"));
        assert!(principal_matches("*@*.fernhill.io", "sam@ops.fernhill.io") && !principal_matches("?", ""));
        let list = ["*@fernhill.io".to_string(), "!contractor@fernhill.io".to_string()];
        assert!(list_matches(&list, "dana@fernhill.io") && !list_matches(&list, "contractor@fernhill.io"));
        assert!(!list_matches(&list[1..], "dana@fernhill.io"), "a negation alone admits nobody");
        let hostile = format!("{}b", "*a".repeat(40));
        assert!(!principal_matches(&hostile, &"a".repeat(200)));
    }
}
