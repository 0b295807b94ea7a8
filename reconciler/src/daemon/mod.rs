//! The in-cluster daemon: follows a branch and keeps the cluster at its tip.
//!
//! Triggers (the interval with jitter, a signed webhook, filesystem events for a local source,
//! watch events on managed objects that someone else changed) wake one reconcile loop; bursts
//! coalesce into one reconcile. The same watches keep the live state that reconciles read only
//! the changed objects of (`live`). With `--leader-elect` only the replica holding the Lease
//! reconciles; the others wait as standby. SIGTERM lets the running reconcile finish (the
//! inventory is never left half-written), releases the Lease and stops. The reconcile itself is
//! in `reconcile`, the HTTP endpoints in `http`, the triggers in `triggers`.

mod break_glass;
mod http;
mod live;
pub mod metrics;
pub mod notifications;
mod ratchet;
mod reconcile;
mod reconciled;
mod triggers;
pub mod webhook;
mod windows;

use crate::cluster::{Cluster, ClusterError};
use crate::model::ObjectId;
use crate::model::live::{ApplySet, LEADER_LEASE, Members};
use crate::source::SourceError;
use crate::source::mirror::{Credentials, Mirror, redact};
use metrics::Metrics;
pub use reconcile::{DiagnosticsSummary, Report};
pub use reconciled::Reconciled;
use serde::Serialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How long a stopping daemon waits for its notices to go out: a retry or two, well inside the
/// kubelet's 30 s grace period.
const NOTICES_AT_STOP: Duration = Duration::from_secs(10);

pub use http::{HEADER_TIMEOUT, MAX_CONNECTION_BUFFER, MAX_CONNECTIONS, MAX_HOOK_BODY, REQUEST_TIMEOUT};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriftMode {
    /// Revert out-of-band edits (server-side apply takes the fields back).
    Correct,
    /// Leave them, and report them in /status, the metrics, Events and the logs.
    Report,
}

/// How the daemon writes its logs on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Sends the process's logs to stderr in `format`, filtered by `RUST_LOG` (default `info`).
pub fn log_to_stderr(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// No leader election: this replica always reconciles.
    #[default]
    Single,
    Leader,
    /// Another replica holds the Lease; this one waits.
    Standby,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub repo: String,
    pub branch: String,
    pub path: String,
    pub credentials: Credentials,
    pub interval: Duration,
    /// How often a reconcile reads the whole live state rather than what the watches say changed.
    pub resync: Duration,
    pub listen: SocketAddr,
    /// The file of the webhook's shared secret; without one /hook is off.
    pub webhook_secret_file: Option<PathBuf>,
    /// The cluster, and the namespace of the inventory, the Lease and the Events.
    pub cluster: crate::pipeline::plan::Target,
    pub drift: DriftMode,
    pub max_deletes: usize,
    /// The only namespaces the repository may put objects in (empty: any); it cannot widen them.
    pub allowed_namespaces: Vec<String>,
    /// The directories outside the repository its `mcp-gitops.yaml` may name as policy directories.
    pub allowed_policy_dirs: crate::pipeline::desired::Allowed,
    pub cache: PathBuf,
    /// `Some(lease duration)` with `--leader-elect`.
    pub leader_elect: Option<Duration>,
    /// With `--verify-signatures`: who may sign the commits that are applied.
    pub verification: Option<Verification>,
    /// `--notifications FILE`: where every Event is also sent.
    pub notifications: Option<PathBuf>,
    /// `--cluster NAME`: the cluster of the repository's `clusters:` whose slice is applied.
    pub fleet_cluster: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Verification {
    pub allowed_signers: Option<PathBuf>,
    pub pgp_keys: Vec<PathBuf>,
    pub allow_non_fast_forward: bool,
}

struct Shared {
    options: Options,
    /// The webhook's shared secret, never empty (`webhook_secret`).
    webhook_secret: Option<Vec<u8>>,
    /// This replica's name in the Lease and in its Events.
    identity: String,
    trigger: Notify,
    ready: AtomicBool,
    stopping: AtomicBool,
    report: Mutex<Report>,
    /// What the last status annotations and Events said, so that a repeat is not written again.
    last_recorded: Mutex<String>,
    /// Set by the triggers that ask for a full reconcile even when the branch did not move (the
    /// interval, drift); a webhook or file event for an unchanged, applied revision is answered
    /// without reading the cluster.
    full_pass: AtomicBool,
    /// The members of the ApplySet as the watches see them (each one's resourceVersion).
    members: Mutex<Members>,
    /// Objects the running reconcile is about to prune: their deletion events are our own.
    pruning: Mutex<BTreeSet<ObjectId>>,
    /// When the desired state next changes without a commit (a time-bound grant expires).
    expiry: Mutex<Expiry>,
    expiry_changed: Notify,
    /// Commits found unverified so far, each counted once in the metric.
    unverified: Mutex<BTreeSet<String>>,
    metrics: Metrics,
    /// The receivers of `--notifications`, if any.
    notifier: Option<notifications::Notifier>,
}

#[derive(Debug, Default)]
struct Expiry {
    /// The next instant a grant of the live revision expires.
    next: Option<jiff::Timestamp>,
    /// An expiry that has come and whose reconcile has not succeeded yet (for the lag metric).
    due: Option<jiff::Timestamp>,
    /// When the freeze window that holds changes back closes: the loop applies them then.
    window_closes: Option<jiff::Timestamp>,
}

impl Expiry {
    /// The next instant the loop wakes for: an expiry or the end of a freeze window.
    fn wake_at(&self) -> Option<jiff::Timestamp> {
        self.next.into_iter().chain(self.window_closes).min()
    }
}

impl Shared {
    /// The status report; a panic elsewhere never makes it unreadable.
    fn report(&self) -> std::sync::MutexGuard<'_, Report> {
        self.report.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn members(&self) -> std::sync::MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Takes `id` off the list of our own pending prunes; whether it was on it.
    fn pruned_by_us(&self, id: &ObjectId) -> bool {
        self.pruning.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(id)
    }

    /// Wakes the loop for a full reconcile (the interval, drift).
    fn trigger_full(&self) {
        self.full_pass.store(true, Ordering::Relaxed);
        self.trigger.notify_one();
    }

    fn expiry(&self) -> std::sync::MutexGuard<'_, Expiry> {
        self.expiry.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Schedules the reconcile of the next expiry (none: nothing expires).
    fn expire_next_at(&self, next: Option<jiff::Timestamp>) {
        let mut expiry = self.expiry();
        if expiry.next != next {
            expiry.next = next;
            self.expiry_changed.notify_one();
        }
    }

    /// Schedules the reconcile that applies what a freeze window held (none: nothing held).
    fn apply_held_at(&self, closes: Option<jiff::Timestamp>) {
        let mut expiry = self.expiry();
        if expiry.window_closes != closes {
            expiry.window_closes = closes;
            self.expiry_changed.notify_one();
        }
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.trigger.notify_one();
    }
}

/// Why the daemon could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot read --webhook-secret-file {}: {source}", file.display())]
    ReadWebhookSecret { file: PathBuf, source: std::io::Error },
    #[error(
        "--webhook-secret-file {} is empty: anyone could sign a webhook with an empty key; put the shared secret in it, or leave the flag out to turn /hook off",
        .0.display()
    )]
    EmptyWebhookSecret(PathBuf),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Notifications(#[from] notifications::ConfigError),
    #[error("lost the leader lease; stopping so that only the new leader applies (the pod restarts as standby)")]
    LostLease,
}

/// The shared secret in `file` (surrounding whitespace is not part of it); an empty one is refused.
fn webhook_secret(file: &Path) -> Result<Vec<u8>, DaemonError> {
    let secret = std::fs::read(file).map_err(|source| DaemonError::ReadWebhookSecret { file: file.into(), source })?;
    let secret = secret.trim_ascii();
    if secret.is_empty() {
        return Err(DaemonError::EmptyWebhookSecret(file.into()));
    }
    Ok(secret.to_vec())
}

pub async fn run(options: Options) -> Result<(), DaemonError> {
    let webhook_secret = options.webhook_secret_file.as_deref().map(webhook_secret).transpose()?;
    let receivers = options.notifications.as_deref().map(notifications::read).transpose()?;
    // The source first: a refused one (credentials over http://) is reported before anything else.
    let mut mirror = Mirror::open(&options.repo, &options.branch, &options.path, &options.cache, options.credentials.clone())?;
    let cluster = Cluster::connect(options.cluster.kubeconfig.as_deref(), options.cluster.context.as_deref()).await?;
    let listener =
        tokio::net::TcpListener::bind(options.listen).await.map_err(|source| DaemonError::Listen { address: options.listen, source })?;
    let applyset = ApplySet::new(&options.cluster.inventory_namespace);
    let identity = identity();
    let notifier = receivers.map(|r| notifications::Notifier::new(r, notifications::Sender::new(&cluster, &applyset, &identity)));
    let report = Report { cluster: options.fleet_cluster.clone().unwrap_or_default(), ..Report::default() };
    let shared = Arc::new(Shared {
        options,
        webhook_secret,
        identity,
        trigger: Notify::new(),
        ready: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        report: Mutex::new(report),
        last_recorded: Mutex::new(String::new()),
        full_pass: AtomicBool::new(true),
        members: Mutex::new(Members::default()),
        pruning: Mutex::new(BTreeSet::new()),
        expiry: Mutex::new(Expiry::default()),
        expiry_changed: Notify::new(),
        unverified: Mutex::new(BTreeSet::new()),
        metrics: Metrics::default(),
        notifier,
    });
    let options = &shared.options;
    // The bound address: with `--listen 127.0.0.1:0` the port the system picked.
    let listen = listener.local_addr().unwrap_or(options.listen);
    tracing::info!(repo = %redact(&options.repo), branch = %options.branch, path = %options.path, %listen, cluster = %cluster.label, "daemon starting");

    let server_shared = shared.clone();
    let server = tokio::spawn(http::serve(listener, server_shared));
    triggers::on_signal(shared.clone());
    notifications::Notifier::start(&shared);

    let mut leadership = None;
    if let Some(duration) = options.leader_elect {
        shared.report().role = Role::Standby;
        let identity = &shared.identity;
        let mut lease = cluster.elect_leader(&applyset.namespace, LEADER_LEASE, identity, duration).await?;
        tracing::info!(identity, lease = LEADER_LEASE, namespace = %applyset.namespace, "standby: waiting for the leader lease");
        tokio::select! {
            acquired = lease.acquired() => acquired?,
            _ = triggers::stopped(&shared) => {}
        }
        if !shared.stopping() {
            tracing::info!(identity, "leader: this replica now reconciles");
            shared.report().role = Role::Leader;
        }
        leadership = Some(lease);
    }
    let lost = Arc::new(AtomicBool::new(false));
    if let Some(lease) = &leadership {
        triggers::on_lost_leadership(shared.clone(), lease.subscribe(), lost.clone());
    }
    triggers::on_interval(shared.clone());
    let _file_watch = triggers::on_file_change(shared.clone(), &mirror);
    triggers::on_members(shared.clone(), cluster.clone(), applyset.clone());
    triggers::on_control(shared.clone(), cluster.clone(), applyset.clone());
    triggers::on_expiry(shared.clone());

    let (mut failures, mut memory) = (0u32, reconcile::Memory::default());
    while !shared.stopping() {
        let ok = reconcile::reconcile(&shared, &cluster, &applyset, &mut mirror, &mut memory).await;
        failures = if ok { 0 } else { failures + 1 };
        if shared.stopping() {
            break;
        }
        // Repeated failures back off (up to 5 minutes); a trigger still wakes the loop early.
        if failures == 0 {
            shared.trigger.notified().await;
        } else {
            let wait = Duration::from_secs(2u64.saturating_pow(failures.min(8))).min(Duration::from_secs(300));
            let _ = tokio::time::timeout(wait, shared.trigger.notified()).await;
        }
    }
    if let Some(lease) = leadership {
        lease.release().await;
    }
    notifications::drain(&shared, NOTICES_AT_STOP).await;
    let _ = server.await;
    if lost.load(Ordering::Relaxed) {
        return Err(DaemonError::LostLease);
    }
    tracing::info!("daemon stopped");
    Ok(())
}

/// This replica's name in the Lease: the pod name when Kubernetes gives one, else host and pid.
fn identity() -> String {
    std::env::var("POD_NAME").ok().filter(|name| !name.is_empty()).unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}
