//! Where a review's records come from (`--audit`): a JSON Lines file or ClickHouse.

use super::audit::{AuditError, Usage, Window, read_json_lines};
use super::clickhouse::ClickHouse;
use std::path::PathBuf;

/// Where the records are: `--audit jsonl:PATH` (or a bare path), `--audit clickhouse:URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSource {
    JsonLines(PathBuf),
    ClickHouse(ClickHouse),
}

impl AuditSource {
    /// The source `text` names. ClickHouse's user is `CLICKHOUSE_USER` (default `default`), its
    /// password the first line of `password_file`, else `CLICKHOUSE_PASSWORD` (as
    /// clickhouse-client takes them); never in the URL, where messages and logs would show it.
    pub fn parse(text: &str, password_file: Option<&std::path::Path>) -> Result<AuditSource, AuditError> {
        let Some(url) = text.strip_prefix("clickhouse:") else {
            let path = text.strip_prefix("jsonl:").or_else(|| text.strip_prefix("file:")).unwrap_or(text);
            return Ok(AuditSource::JsonLines(path.into()));
        };
        let parsed = url::Url::parse(url).map_err(|e| AuditError::BadSource(format!("clickhouse:{url} is not a URL ({e})")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(AuditError::BadSource(
                "give ClickHouse's user in CLICKHOUSE_USER and its password in CLICKHOUSE_PASSWORD or --audit-password-file, not in the URL".into(),
            ));
        }
        let password = match password_file {
            Some(file) => std::fs::read_to_string(file)
                .map_err(|source| AuditError::Read { path: file.display().to_string(), source })?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
            None => std::env::var("CLICKHOUSE_PASSWORD").unwrap_or_default(),
        };
        let user = std::env::var("CLICKHOUSE_USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "default".into());
        Ok(AuditSource::ClickHouse(ClickHouse { url: url.to_string(), user, password }))
    }

    /// The records summed up over `window`.
    pub fn read(&self, window: Window) -> Result<Usage, AuditError> {
        match self {
            AuditSource::JsonLines(path) => read_json_lines(path, window),
            AuditSource::ClickHouse(clickhouse) => clickhouse.read(window),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_names_its_kind_and_keeps_credentials_out_of_the_url() {
        assert_eq!(AuditSource::parse("jsonl:a.jsonl", None).unwrap(), AuditSource::JsonLines("a.jsonl".into()));
        assert_eq!(AuditSource::parse("file:a.jsonl", None).unwrap(), AuditSource::JsonLines("a.jsonl".into()));
        assert_eq!(AuditSource::parse("exports/a.jsonl", None).unwrap(), AuditSource::JsonLines("exports/a.jsonl".into()));
        assert!(
            matches!(AuditSource::parse("clickhouse:http://ch:8123/?database=analytics", None), Ok(AuditSource::ClickHouse(c)) if c.url == "http://ch:8123/?database=analytics")
        );
        let refused = AuditSource::parse("clickhouse:http://reader:hunter2@ch:8123/", None).unwrap_err().to_string();
        assert!(refused.contains("not in the URL") && !refused.contains("hunter2"), "{refused}");
        assert!(matches!(AuditSource::parse("clickhouse:not a url", None), Err(AuditError::BadSource(_))));
    }
}
