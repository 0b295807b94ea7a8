//! The in-cluster daemon: follows a branch and keeps the cluster at its tip.
//!
//! Triggers (the interval with jitter, a signed webhook) wake one reconcile loop; bursts coalesce
//! into one reconcile. Each reconcile reads the pipeline top to bottom: fetch -> load -> validate
//! (an invalid commit is never applied: the last good revision stays) -> plan against the live
//! cluster -> guards -> apply -> record status and metrics. SIGTERM lets the running reconcile
//! finish (the inventory is never left half-written) and then stops.

pub mod metrics;
pub mod webhook;

use crate::apply::{self, Status};
use crate::cluster::Cluster;
use crate::model::live::ApplySet;
use crate::plan::Action;
use crate::source::mirror::{Mirror, redact};
use crate::{load, plan, validate};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use jiff::Timestamp;
use metrics::Metrics;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Webhook bodies larger than this are refused.
pub const MAX_HOOK_BODY: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriftMode {
    /// Revert out-of-band edits (server-side apply takes the fields back).
    Correct,
    /// Leave them, and report them in /status, the metrics and the logs.
    Report,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub repo: String,
    pub branch: String,
    pub path: String,
    pub interval: Duration,
    pub listen: SocketAddr,
    pub webhook_secret: Option<Vec<u8>>,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub inventory_namespace: String,
    pub drift: DriftMode,
    pub max_deletes: usize,
    pub cache: PathBuf,
}

/// What `GET /status` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The revision live in the cluster (the last one applied).
    pub revision: String,
    /// The revision of the last reconcile attempt.
    pub attempted_revision: String,
    /// `applied`, `unchanged`, `invalid`, `refused`, `failed` or `fetch_failed`.
    pub last_result: String,
    pub last_message: String,
    pub last_reconcile: String,
    pub last_success: String,
    pub counts: Counts,
    pub diagnostics: DiagnosticsSummary,
    pub drifted: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DiagnosticsSummary {
    pub errors: usize,
    pub warnings: usize,
    /// The first errors, as `file:line:column: [code] message`.
    pub first: Vec<String>,
}

struct Shared {
    options: Options,
    trigger: Notify,
    ready: AtomicBool,
    stopping: AtomicBool,
    report: Mutex<Report>,
    metrics: Metrics,
}

impl Shared {
    /// The status report; a panic elsewhere never makes it unreadable.
    fn report(&self) -> std::sync::MutexGuard<'_, Report> {
        self.report.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub async fn run(options: Options) -> Result<(), String> {
    let cluster = Cluster::connect(options.kubeconfig.as_deref(), options.context.as_deref()).await.map_err(|e| e.to_string())?;
    let mut mirror = Mirror::open(&options.repo, &options.branch, &options.path, &options.cache).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(options.listen).await.map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    let shared = Arc::new(Shared {
        options,
        trigger: Notify::new(),
        ready: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        report: Mutex::new(Report::default()),
        metrics: Metrics::default(),
    });
    tracing::info!(repo = %redact(&shared.options.repo), branch = %shared.options.branch, path = %shared.options.path, listen = %shared.options.listen, cluster = %cluster.label, "daemon starting");

    let router = Router::new()
        .route("/hook", post(hook))
        .route("/status", get(status))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .layer(DefaultBodyLimit::max(MAX_HOOK_BODY))
        .with_state(shared.clone());
    let server_shared = shared.clone();
    let server = tokio::spawn(async move {
        let stopped = async move {
            while !server_shared.stopping.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        axum::serve(listener, router).with_graceful_shutdown(stopped).await
    });
    let ticker_shared = shared.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(jittered(ticker_shared.options.interval)).await;
            ticker_shared.trigger.notify_one();
        }
    });
    let signal_shared = shared.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop requested; finishing the current reconcile");
        signal_shared.stopping.store(true, Ordering::Relaxed);
        signal_shared.trigger.notify_one();
    });

    let applyset = ApplySet::new(&shared.options.inventory_namespace);
    let mut failures: u32 = 0;
    while !shared.stopping.load(Ordering::Relaxed) {
        let ok = reconcile(&shared, &cluster, &applyset, &mut mirror).await;
        failures = if ok { 0 } else { failures + 1 };
        if shared.stopping.load(Ordering::Relaxed) {
            break;
        }
        // Repeated failures back off (up to 5 minutes); a trigger still wakes the loop early.
        let wait = if failures == 0 {
            None
        } else {
            Some(Duration::from_secs(2u64.saturating_pow(failures.min(8))).min(Duration::from_secs(300)))
        };
        match wait {
            Some(wait) => {
                let _ = tokio::time::timeout(wait, shared.trigger.notified()).await;
            }
            None => shared.trigger.notified().await,
        }
    }
    let _ = server.await;
    tracing::info!("daemon stopped");
    Ok(())
}

fn jittered(interval: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    // +-10%, from the clock's low bits: replicas started together do not poll together.
    let spread = interval.as_millis() as f64 * 0.2 * (f64::from(nanos % 1000) / 1000.0 - 0.5);
    Duration::from_millis((interval.as_millis() as f64 + spread).max(1000.0) as u64)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// One pass of the pipeline. Returns whether it succeeded (for the backoff).
async fn reconcile(shared: &Shared, cluster: &Cluster, applyset: &ApplySet, mirror: &mut Mirror) -> bool {
    let started = Instant::now();
    let (result, message) = pipeline(shared, cluster, applyset, mirror).await;
    let seconds = started.elapsed().as_secs_f64();
    let metrics = &shared.metrics;
    metrics.reconcile_duration.get_or_create(&Metrics::label("result", result)).observe(seconds);
    metrics.reconciles.get_or_create(&Metrics::label("result", result)).inc();
    let now = Timestamp::now();
    let succeeded = matches!(result, "applied" | "unchanged");
    {
        let mut report = shared.report();
        report.last_result = result.to_string();
        report.last_message = message.clone();
        report.last_reconcile = now.to_string();
        if succeeded {
            // With the result, under one lock: /status never shows a new revision with the
            // previous reconcile's result.
            report.revision = report.attempted_revision.clone();
            report.last_success = now.to_string();
        }
    }
    if succeeded {
        metrics.last_success.set(now.as_millisecond() as f64 / 1000.0);
        shared.ready.store(true, Ordering::Relaxed);
        tracing::info!(result, seconds, "{message}");
    } else {
        tracing::warn!(result, seconds, "{message}");
    }
    succeeded
}

async fn pipeline(shared: &Shared, cluster: &Cluster, applyset: &ApplySet, mirror: &mut Mirror) -> (&'static str, String) {
    let options = &shared.options;
    // fetch
    let poll = match tokio::task::block_in_place(|| mirror.poll()) {
        Ok(poll) => poll,
        Err(e) => {
            shared.metrics.git_fetch_failures.inc();
            return ("fetch_failed", format!("cannot read {}: {e}; the last good revision stays live", redact(&options.repo)));
        }
    };
    if poll.force_pushed {
        tracing::warn!(branch = %options.branch, revision = %poll.snapshot.revision, "the branch was force-pushed; following the new tip");
    }
    let revision = poll.snapshot.revision.clone();
    shared.report().attempted_revision = revision.clone();
    // load + validate
    let now = Timestamp::now();
    let desired = validate::validate(load::load(poll.snapshot), now);
    let errors: Vec<String> = desired
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}:{}:{}: [{}] {}", d.file, d.line, d.column, d.code, d.message))
        .collect();
    {
        let mut report = shared.report();
        report.diagnostics = DiagnosticsSummary {
            errors: errors.len(),
            warnings: desired.diagnostics.len() - errors.len(),
            first: errors.iter().take(10).cloned().collect(),
        };
    }
    if !errors.is_empty() {
        return (
            "invalid",
            format!("revision {revision} has {} error(s) and is not applied; the last good revision stays live", errors.len()),
        );
    }
    // plan against the live cluster
    let live = match cluster.live_state(applyset).await {
        Ok(live) => live,
        Err(e) => return ("failed", format!("cannot read the cluster: {}", apply::describe(&e))),
    };
    let mut plan = plan::live::plan(&live, &desired, applyset, now);
    let drifted: Vec<String> = plan.changes.iter().filter(|c| !c.drift.is_empty()).map(|c| c.id().to_string()).collect();
    shared.metrics.drifted_objects.set(drifted.len() as i64);
    if options.drift == DriftMode::Report {
        // Leave out-of-band edits alone: changes that only undo someone else's edit are not sent.
        for change in plan.changes.iter_mut().filter(|c| !c.drift.is_empty() && c.action == Action::Update) {
            change.action = Action::NoOp;
            change.object = None;
        }
    }
    shared.report().drifted = drifted.clone();
    if !drifted.is_empty() {
        tracing::warn!(objects = %drifted.join(", "), mode = ?options.drift, "drift: fields changed outside git");
    }
    // guards, then apply
    let apply_options = apply::Options {
        dry_run: false,
        force_conflicts: options.drift == DriftMode::Correct,
        prune: true,
        max_deletes: options.max_deletes,
        adopt: false,
        concurrency: 8,
    };
    if let Err(refusal) = apply::check_guards(&plan, &apply_options) {
        return ("refused", refusal);
    }
    let report = apply::apply(cluster, &plan, applyset, live.inventory.as_ref(), &apply_options, |outcome| {
        if let Status::Failed(why) = &outcome.status {
            tracing::warn!(object = %outcome.id, "{why}");
        }
    })
    .await;
    let done = |action| report.count(action, &Status::Done);
    let counts = Counts {
        created: done(Action::Create),
        updated: done(Action::Update),
        deleted: done(Action::Delete),
        unchanged: report.count(Action::NoOp, &Status::Unchanged),
        failed: report.outcomes.iter().filter(|o| matches!(o.status, Status::Failed(_) | Status::NotAttempted)).count(),
    };
    for (action, count) in [("create", counts.created), ("update", counts.updated), ("delete", counts.deleted)] {
        shared.metrics.objects_applied.get_or_create(&Metrics::label("action", action)).inc_by(count as u64);
    }
    let written = counts.created + counts.updated + counts.deleted;
    let summary = format!(
        "revision {revision}: {} created, {} updated, {} deleted, {} unchanged, {} failed",
        counts.created, counts.updated, counts.deleted, counts.unchanged, counts.failed
    );
    let succeeded = report.succeeded();
    shared.report().counts = counts;
    if !succeeded {
        return ("failed", summary);
    }
    shared.metrics.set_revision(&revision);
    (if written == 0 { "unchanged" } else { "applied" }, summary)
}

async fn hook(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let Some(secret) = &shared.options.webhook_secret else {
        return (StatusCode::NOT_FOUND, "the webhook is off: start the daemon with --webhook-secret-file\n");
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    match webhook::verify(secret, header, &body) {
        webhook::Verdict::Accepted => {
            shared.trigger.notify_one();
            (StatusCode::ACCEPTED, "reconcile requested\n")
        }
        webhook::Verdict::Ping => (StatusCode::OK, "pong\n"),
        webhook::Verdict::Rejected(why) => {
            shared.metrics.webhook_rejections.inc();
            tracing::warn!("webhook refused: {why}");
            (StatusCode::UNAUTHORIZED, "signature missing or wrong\n")
        }
    }
}

async fn status(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let report = shared.report().clone();
    axum::Json(report)
}

async fn readyz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if shared.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no successful reconcile yet\n")
    }
}

async fn metrics_text(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], shared.metrics.render())
}
