//! Notifications: every Event the daemon publishes is also sent to the receivers of
//! `--notifications FILE` (a CloudEvents webhook signed with HMAC-SHA256, a Slack or a Microsoft
//! Teams incoming webhook). The file is the daemon's, never the repository's: a revision under
//! review cannot choose where the daemon sends. Each receiver has a bounded queue (the oldest
//! notice is dropped when it is full) and one task that delivers it, retrying network errors,
//! 429 and 5xx with exponential backoff; a reconcile only enqueues, so a slow or dead receiver
//! never delays it. Receiver URLs and keys are secrets: they are read from files and never
//! appear in logs, /status or errors.

use super::Shared;
use super::metrics::Metrics;
use super::reconciled::EVENT_REASONS;
use crate::cluster::Cluster;
use crate::model::live::ApplySet;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Notices a receiver holds while it cannot keep up; beyond, the oldest is dropped.
pub const QUEUE: usize = 100;
/// Tries of one notice, the first included.
pub const ATTEMPTS: u32 = 4;
/// The wait before the first retry; it doubles each time (1s, 2s, 4s).
const BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait a receiver's `Retry-After` may ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How long one request may take unless the receiver's `timeout` says otherwise.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The header that carries a CloudEvent's signature, as GitHub signs its webhooks (and as `/hook`
/// checks them): `sha256=` and the hex HMAC-SHA256 of the body.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// Why the notifications file cannot be used; the daemon does not start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read --notifications {}: {source}", file.display())]
    Read { file: PathBuf, source: std::io::Error },
    #[error("--notifications {}: {message}", file.display())]
    Syntax { file: PathBuf, message: String },
    #[error("--notifications {}: receiver {receiver:?}: {why}", file.display())]
    Receiver { file: PathBuf, receiver: String, why: String },
}

/// How a receiver wants its notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// CloudEvents 1.0, structured JSON, signed.
    Cloudevents,
    /// A Slack incoming webhook: `{"text": ...}`.
    Slack,
    /// A Teams incoming webhook (Workflows): a message carrying an Adaptive Card.
    Teams,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    receivers: Vec<Entry>,
}

/// One receiver as the file writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Entry {
    name: String,
    #[serde(rename = "type")]
    format: Format,
    url_file: PathBuf,
    hmac_key_file: Option<PathBuf>,
    #[serde(default)]
    reasons: Vec<String>,
    #[serde(default)]
    warnings_only: bool,
    timeout: Option<String>,
}

/// One receiver: where and how to send, what it wants, and its queue.
pub struct Receiver {
    pub name: String,
    format: Format,
    url_file: PathBuf,
    /// The HMAC key of a CloudEvents receiver (never empty).
    key: Option<Vec<u8>>,
    /// Only these reasons (empty: every reason).
    reasons: BTreeSet<String>,
    warnings_only: bool,
    client: reqwest::Client,
    queue: Queue,
}

impl Receiver {
    fn wants(&self, notice: &Notice) -> bool {
        (!self.warnings_only || notice.warning) && (self.reasons.is_empty() || self.reasons.contains(&notice.reason))
    }
}

/// Reads and checks `--notifications FILE`: every URL file readable and holding an http(s) URL,
/// every key file a non-empty key.
pub fn read(file: &Path) -> Result<Vec<Receiver>, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read { file: file.into(), source })?;
    let parsed: File = serde_saphyr::from_str(&text).map_err(|e| {
        // The snippet shows the file's own lines (paths, never the secrets they hold).
        let name = file.display().to_string();
        let rendered = e.render_with_options(serde_saphyr::render_options! { source_name: Some(&name) });
        ConfigError::Syntax { file: file.into(), message: rendered.strip_prefix("error: ").unwrap_or(&rendered).to_string() }
    })?;
    let mut names = BTreeSet::new();
    let mut receivers = Vec::new();
    for entry in parsed.receivers {
        let refuse = |why: String| ConfigError::Receiver { file: file.into(), receiver: entry.name.clone(), why };
        if entry.name.is_empty() {
            return Err(refuse("needs a name (it labels the metrics and the logs)".into()));
        }
        if !names.insert(entry.name.clone()) {
            return Err(refuse("is named twice".into()));
        }
        url(&entry.url_file).map_err(refuse)?;
        let key = match (entry.format, &entry.hmac_key_file) {
            (Format::Cloudevents, Some(key_file)) => Some(key(key_file).map_err(refuse)?),
            (Format::Cloudevents, None) => {
                return Err(refuse("type cloudevents needs hmacKeyFile: its notices are signed".into()));
            }
            (_, Some(_)) => return Err(refuse("hmacKeyFile is for type cloudevents; Slack and Teams do not check signatures".into())),
            (_, None) => None,
        };
        if let Some(bad) = entry.reasons.iter().find(|r| !EVENT_REASONS.contains(&r.as_str())) {
            let hint = crate::model::spelling::did_you_mean(bad, EVENT_REASONS);
            return Err(refuse(format!(
                "reasons: {bad:?} is not a reason of the daemon's Events{hint} (they are {})",
                EVENT_REASONS.join(", ")
            )));
        }
        let timeout = match &entry.timeout {
            None => TIMEOUT,
            Some(text) => text
                .parse::<jiff::SignedDuration>()
                .ok()
                .and_then(|d| Duration::try_from(d).ok())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| refuse(format!("timeout {text:?} is not a duration (e.g. 5s)")))?,
        };
        // No redirects: a notice and its signature go only where the URL file says.
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mcp-gitops/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| refuse(format!("cannot make an HTTP client: {}", e.without_url())))?;
        receivers.push(Receiver {
            name: entry.name,
            format: entry.format,
            url_file: entry.url_file,
            key,
            reasons: entry.reasons.into_iter().collect(),
            warnings_only: entry.warnings_only,
            client,
            queue: Queue::new(QUEUE),
        });
    }
    Ok(receivers)
}

/// The URL in `file`; an error never quotes it (a webhook URL is a secret).
fn url(file: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read urlFile {}: {e}", file.display()))?;
    let text = text.trim();
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(text.to_string()),
        _ => Err(format!("urlFile {} does not hold an http:// or https:// URL", file.display())),
    }
}

fn key(file: &Path) -> Result<Vec<u8>, String> {
    let key = std::fs::read(file).map_err(|e| format!("cannot read hmacKeyFile {}: {e}", file.display()))?;
    let key = key.trim_ascii();
    if key.is_empty() {
        return Err(format!("hmacKeyFile {} is empty: anyone could sign with an empty key", file.display()));
    }
    Ok(key.to_vec())
}

/// What one Event says, as a receiver gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The Event's reason (`ApplyFailed`, `DriftCorrected`...).
    pub reason: String,
    pub warning: bool,
    pub message: String,
    /// The revision the reconcile attempted.
    pub revision: String,
    pub time: jiff::Timestamp,
    /// Unique per daemon process: with its start and identity, the CloudEvent's id.
    pub sequence: u64,
}

/// Who sends: the same for every notice of one daemon.
pub struct Sender {
    /// The CloudEvents `source`: the inventory the Events regard.
    pub source: String,
    /// The cluster, for people (`https://host:port (context)`).
    pub cluster: String,
    /// This replica, and when it started: with a notice's sequence, a unique id.
    pub instance: String,
    pub started: jiff::Timestamp,
}

impl Sender {
    pub fn new(cluster: &Cluster, applyset: &ApplySet, identity: &str) -> Sender {
        Sender {
            source: format!("/namespaces/{}/configmaps/{}", applyset.namespace, applyset.name),
            cluster: cluster.label.clone(),
            instance: identity.to_string(),
            started: jiff::Timestamp::now(),
        }
    }

    /// The body `format` sends for `notice`.
    pub fn body(&self, format: Format, notice: &Notice) -> Value {
        let short = notice.revision.get(..7).unwrap_or(&notice.revision);
        let level = if notice.warning { "Warning" } else { "Normal" };
        match format {
            Format::Cloudevents => {
                let mut event = json!({
                "specversion": "1.0",
                "id": format!("{}-{}-{}", self.instance, self.started.as_millisecond(), notice.sequence),
                "source": self.source,
                "type": format!("org.mcpruntime.gitops.{}", notice.reason),
                "time": notice.time.to_string(),
                "subject": notice.revision,
                "datacontenttype": "application/json",
                "data": {
                    "reason": notice.reason,
                    "warning": notice.warning,
                    "message": notice.message,
                    "revision": notice.revision,
                    "cluster": self.cluster,
                    "instance": self.instance,
                },
                });
                // A CloudEvent's subject is absent or non-empty: none before a revision was fetched.
                if let Some(event) = event.as_object_mut().filter(|_| notice.revision.is_empty()) {
                    event.remove("subject");
                }
                event
            }
            Format::Slack => json!({
                "text": format!(
                    "{} *{}* ({level}) on {}, revision `{short}`: {}",
                    if notice.warning { ":warning:" } else { ":white_check_mark:" },
                    notice.reason,
                    self.cluster,
                    notice.message
                ),
            }),
            Format::Teams => json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {
                                "type": "TextBlock",
                                "text": format!("{} ({level})", notice.reason),
                                "weight": "Bolder",
                                "size": "Medium",
                                "color": if notice.warning { "Attention" } else { "Good" },
                            },
                            {"type": "TextBlock", "text": notice.message, "wrap": true},
                            {"type": "FactSet", "facts": [
                                {"title": "Revision", "value": notice.revision},
                                {"title": "Cluster", "value": self.cluster},
                            ]},
                        ],
                    },
                }],
            }),
        }
    }
}

/// A receiver's notices waiting to be sent: at most `capacity`, the oldest dropped first.
pub struct Queue {
    notices: Mutex<VecDeque<Notice>>,
    capacity: usize,
    ready: tokio::sync::Notify,
    /// Notices queued or being sent, not yet sent or given up: what a stopping daemon waits for.
    unsent: std::sync::atomic::AtomicUsize,
}

impl Queue {
    pub fn new(capacity: usize) -> Queue {
        Queue { notices: Mutex::new(VecDeque::new()), capacity: capacity.max(1), ready: tokio::sync::Notify::new(), unsent: 0.into() }
    }

    /// Adds `notice`; returns the notice dropped to make room, if any. Never waits.
    pub fn push(&self, notice: Notice) -> Option<Notice> {
        let dropped = {
            let mut notices = self.notices.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let dropped = if notices.len() >= self.capacity { notices.pop_front() } else { None };
            notices.push_back(notice);
            if dropped.is_none() {
                self.unsent.fetch_add(1, Ordering::Relaxed);
            }
            dropped
        };
        self.ready.notify_one();
        dropped
    }

    /// The notice `pop` gave was sent, or given up.
    pub fn done(&self) {
        self.unsent.fetch_sub(1, Ordering::Relaxed);
    }

    /// The oldest notice, once there is one.
    pub async fn pop(&self) -> Notice {
        loop {
            if let Some(notice) = self.notices.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop_front() {
                return notice;
            }
            self.ready.notified().await;
        }
    }
}

/// The receivers of one daemon, and what it needs to make their notices.
pub struct Notifier {
    receivers: Vec<Arc<Receiver>>,
    sender: Sender,
    sequence: AtomicU64,
}

impl Notifier {
    pub fn new(receivers: Vec<Receiver>, sender: Sender) -> Notifier {
        Notifier { receivers: receivers.into_iter().map(Arc::new).collect(), sender, sequence: AtomicU64::new(0) }
    }

    /// Starts one delivery task per receiver.
    pub(super) fn start(shared: &Arc<Shared>) {
        let Some(notifier) = shared.notifier.as_ref() else { return };
        let names: Vec<&str> = notifier.receivers.iter().map(|r| r.name.as_str()).collect();
        tracing::info!(receivers = %names.join(", "), "notifications on");
        for receiver in &notifier.receivers {
            // Every series from the start, so that an alert on a rise sees the first one.
            for outcome in ["sent", "failed", "dropped"] {
                let _ = shared.metrics.notifications.get_or_create(&labels(&receiver.name, outcome));
            }
            tokio::spawn(deliver(shared.clone(), receiver.clone()));
        }
    }

    /// Enqueues the Event for every receiver that wants it; never waits.
    fn enqueue(&self, metrics: &Metrics, warning: bool, reason: &str, message: &str, revision: &str) {
        let notice = Notice {
            reason: reason.to_string(),
            warning,
            message: message.to_string(),
            revision: revision.to_string(),
            time: jiff::Timestamp::now(),
            sequence: self.sequence.fetch_add(1, Ordering::Relaxed),
        };
        for receiver in self.receivers.iter().filter(|r| r.wants(&notice)) {
            if let Some(dropped) = receiver.queue.push(notice.clone()) {
                count(metrics, &receiver.name, "dropped");
                tracing::warn!(receiver = %receiver.name, reason = %dropped.reason, "notification queue full: dropped the oldest notice");
            }
        }
    }
}

/// Publishes one Event regarding the inventory and sends it to the receivers: the one way the
/// daemon reports an outcome, so that every Event is also a notification.
pub(super) async fn publish(shared: &Shared, cluster: &Cluster, applyset: &ApplySet, warning: bool, reason: &str, note: &str) {
    if let Some(notifier) = &shared.notifier {
        let revision = shared.report().attempted_revision.clone();
        notifier.enqueue(&shared.metrics, warning, reason, note, &revision);
    }
    if let Err(e) = cluster.publish_event(applyset, &shared.identity, warning, reason, note).await {
        tracing::warn!(reason, "cannot publish the event: {}", crate::apply::describe(&e));
    }
}

fn labels(receiver: &str, outcome: &str) -> Vec<(String, String)> {
    vec![("receiver".to_string(), receiver.to_string()), ("outcome".to_string(), outcome.to_string())]
}

fn count(metrics: &Metrics, receiver: &str, outcome: &str) {
    metrics.notifications.get_or_create(&labels(receiver, outcome)).inc();
}

/// Sends `receiver`'s notices one after another, for as long as the daemon runs.
async fn deliver(shared: Arc<Shared>, receiver: Arc<Receiver>) {
    let Some(notifier) = shared.notifier.as_ref() else { return };
    loop {
        let notice = receiver.queue.pop().await;
        let body = notifier.sender.body(receiver.format, &notice);
        let outcome = send_with_retries(&shared.metrics, &receiver, &body).await;
        match &outcome {
            Ok(()) => tracing::debug!(receiver = %receiver.name, reason = %notice.reason, "notification sent"),
            Err(why) => tracing::warn!(receiver = %receiver.name, reason = %notice.reason, "notification not sent: {why}"),
        }
        count(&shared.metrics, &receiver.name, if outcome.is_ok() { "sent" } else { "failed" });
        receiver.queue.done();
    }
}

/// Waits, up to `limit`, until every queued notice is sent or given up: a daemon told to stop
/// still sends what its last pass said (an `ApplyFailed` is most wanted just then). What is
/// left at the limit is logged as lost.
pub(super) async fn drain(shared: &Shared, limit: Duration) {
    let Some(notifier) = &shared.notifier else { return };
    let unsent = || notifier.receivers.iter().map(|r| r.queue.unsent.load(Ordering::Relaxed)).sum::<usize>();
    let deadline = tokio::time::Instant::now() + limit;
    while unsent() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if unsent() > 0 {
        tracing::warn!(unsent = unsent(), "stopping with notices not sent after {limit:?}");
    }
}

/// A failed try: whether another may succeed (and how long the receiver asked to wait), and why
/// (never quoting the URL).
enum Failure {
    Retry(String, Option<Duration>),
    GiveUp(String),
}

async fn send_with_retries(metrics: &Metrics, receiver: &Receiver, body: &Value) -> Result<(), String> {
    let body = body.to_string().into_bytes();
    let mut wait = BACKOFF;
    for attempt in 1..=ATTEMPTS {
        match send(receiver, &body).await {
            Ok(()) => return Ok(()),
            Err(Failure::GiveUp(why)) => return Err(why),
            Err(Failure::Retry(why, _)) if attempt == ATTEMPTS => return Err(format!("{why} (after {ATTEMPTS} tries)")),
            Err(Failure::Retry(why, asked)) => {
                metrics.notification_retries.get_or_create(&Metrics::label("receiver", &receiver.name)).inc();
                let pause = asked.map_or(wait, |asked| asked.clamp(wait, MAX_RETRY_AFTER));
                tracing::debug!(receiver = %receiver.name, attempt, "notification failed, retrying in {pause:?}: {why}");
                tokio::time::sleep(pause).await;
                wait *= 2;
            }
        }
    }
    Ok(())
}

/// One try. The URL file is read each time, so that a rotated Secret needs no restart.
async fn send(receiver: &Receiver, body: &[u8]) -> Result<(), Failure> {
    let url = url(&receiver.url_file).map_err(Failure::GiveUp)?;
    let content_type = match receiver.format {
        Format::Cloudevents => "application/cloudevents+json; charset=utf-8",
        Format::Slack | Format::Teams => "application/json",
    };
    let mut request = receiver.client.post(&url).header(reqwest::header::CONTENT_TYPE, content_type).body(body.to_vec());
    if let Some(key) = &receiver.key {
        request = request.header(SIGNATURE_HEADER, super::webhook::sign(key, body));
    }
    let hide = |text: String| text.replace(&url, "<url>");
    match request.send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => {
            let status = response.status();
            let why = format!("the receiver answered {status}");
            // Slack and Teams say how long to back off with a 429 (seconds; an HTTP date is ignored).
            let asked = response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()?.trim().parse().ok());
            if status.as_u16() == 429 || status.is_server_error() {
                Err(Failure::Retry(why, asked.map(Duration::from_secs)))
            } else {
                Err(Failure::GiveUp(why))
            }
        }
        Err(e) => {
            let kind = if e.is_timeout() { "no answer in time" } else { "cannot reach the receiver" };
            let mut why = String::new();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                why = format!("{why}: {cause}");
                source = cause.source();
            }
            Err(Failure::Retry(hide(format!("{kind}{why}")), None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(sequence: u64) -> Notice {
        Notice {
            reason: "ApplyFailed".into(),
            warning: true,
            message: format!("notice {sequence}"),
            revision: "0123456789abcdef".into(),
            time: jiff::Timestamp::UNIX_EPOCH,
            sequence,
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_oldest_and_keeps_the_newest() {
        let queue = Queue::new(3);
        for sequence in 0..3 {
            assert_eq!(queue.push(notice(sequence)), None);
        }
        assert_eq!(queue.push(notice(3)).map(|n| n.sequence), Some(0));
        assert_eq!(queue.push(notice(4)).map(|n| n.sequence), Some(1));
        let mut left = Vec::new();
        for _ in 0..3 {
            left.push(queue.pop().await.sequence);
        }
        assert_eq!(left, [2, 3, 4]);
        assert_eq!(queue.notices.lock().unwrap().len(), 0);
    }

    #[test]
    fn a_cloudevent_before_any_revision_has_no_subject() {
        let sender = Sender { source: "/s".into(), cluster: "c".into(), instance: "i".into(), started: jiff::Timestamp::UNIX_EPOCH };
        assert_eq!(sender.body(Format::Cloudevents, &notice(1))["subject"], "0123456789abcdef");
        let fetch_failed = Notice { reason: "FetchFailed".into(), revision: String::new(), ..notice(2) };
        let event = sender.body(Format::Cloudevents, &fetch_failed);
        assert!(event.get("subject").is_none(), "{event}");
        assert_eq!(event["id"], "i-0-2");
        assert_eq!(event["type"], "org.mcpruntime.gitops.FetchFailed");
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn error_of(dir: &Path, yaml: &str) -> String {
        let file = write(dir, "notifications.yaml", yaml);
        match read(&file) {
            Ok(_) => panic!("accepted:\n{yaml}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn mistakes_in_the_file_are_named_and_secrets_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let secret_url = "https://hooks.slack.com/services/T000/B000/never-print-me";
        write(dir.path(), "url", &format!("{secret_url}\n"));
        write(dir.path(), "not-a-url", "never-print-me\n");
        write(dir.path(), "empty", "\n");
        let d = dir.path().display();
        let unknown = error_of(dir.path(), &format!("receivers:\n  - name: ops\n    type: slack\n    urlFile: {d}/url\n    url: x\n"));
        assert!(unknown.contains("url") && unknown.contains(":5:"), "{unknown}");
        let kind = error_of(dir.path(), &format!("receivers:\n  - name: ops\n    type: discord\n    urlFile: {d}/url\n"));
        assert!(kind.contains("discord") && kind.contains(":3:"), "{kind}");
        let bad_url = error_of(dir.path(), &format!("receivers:\n  - name: ops\n    type: slack\n    urlFile: {d}/not-a-url\n"));
        assert!(bad_url.contains("receiver \"ops\"") && bad_url.contains("does not hold an http:// or https:// URL"), "{bad_url}");
        let unsigned = error_of(dir.path(), &format!("receivers:\n  - name: audit\n    type: cloudevents\n    urlFile: {d}/url\n"));
        assert!(unsigned.contains("needs hmacKeyFile"), "{unsigned}");
        let empty_key = error_of(
            dir.path(),
            &format!("receivers:\n  - name: audit\n    type: cloudevents\n    urlFile: {d}/url\n    hmacKeyFile: {d}/empty\n"),
        );
        assert!(empty_key.contains("is empty"), "{empty_key}");
        let twice = error_of(
            dir.path(),
            &format!(
                "receivers:\n  - name: ops\n    type: slack\n    urlFile: {d}/url\n  - name: ops\n    type: teams\n    urlFile: {d}/url\n"
            ),
        );
        assert!(twice.contains("named twice"), "{twice}");
        let timeout =
            error_of(dir.path(), &format!("receivers:\n  - name: ops\n    type: slack\n    urlFile: {d}/url\n    timeout: soon\n"));
        assert!(timeout.contains("\"soon\" is not a duration"), "{timeout}");
        let reason = error_of(
            dir.path(),
            &format!("receivers:\n  - name: ops\n    type: slack\n    urlFile: {d}/url\n    reasons: [ApplyFailed, DriftCorected]\n"),
        );
        assert!(reason.contains("\"DriftCorected\" is not a reason") && reason.contains("did you mean DriftCorrected?"), "{reason}");
        for error in [unknown, kind, bad_url, unsigned, empty_key, twice, timeout, reason] {
            assert!(!error.contains("never-print-me"), "a secret in: {error}");
        }
        let good = write(
            dir.path(),
            "good.yaml",
            &format!(
                "receivers:\n  - name: ops\n    type: slack\n    urlFile: {d}/url\n    warningsOnly: true\n    reasons: [ApplyFailed]\n    timeout: 2s\n"
            ),
        );
        let receivers = read(&good).unwrap();
        assert_eq!(receivers.len(), 1);
        assert!(receivers[0].wants(&notice(0)));
        assert!(!receivers[0].wants(&Notice { reason: "DriftCorrected".into(), ..notice(0) }));
        assert!(!receivers[0].wants(&Notice { warning: false, ..notice(0) }));
    }
}
