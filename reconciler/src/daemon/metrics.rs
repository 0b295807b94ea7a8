//! The daemon's Prometheus metrics. Labels are low-cardinality: an action, a result, and the one
//! current revision.

use super::Reconciled;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    pub reconcile_duration: Family<Labels, Histogram>,
    pub reconciles: Family<Labels, Counter>,
    pub last_success: Gauge<f64, AtomicU64>,
    pub objects_applied: Family<Labels, Counter>,
    pub drifted_objects: Gauge,
    pub git_fetch_failures: Counter,
    pub webhook_rejections: Counter,
    pub revision: Family<Labels, Gauge>,
    pub expiry_lag: Histogram,
    pub unverified_commits: Counter,
    pub live_reads: Family<Labels, Counter>,
    pub live_objects_read: Counter,
    pub suspended: Gauge,
    pub held_changes: Gauge,
    pub held_by_window: Gauge,
    pub notifications: Family<Labels, Counter>,
    pub notification_retries: Family<Labels, Counter>,
    pub break_glass_active: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mcp_gitops");
        let reconcile_duration = Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.01, 2.0, 12)));
        let metrics = Metrics {
            reconcile_duration,
            reconciles: Family::default(),
            last_success: Gauge::default(),
            objects_applied: Family::default(),
            drifted_objects: Gauge::default(),
            git_fetch_failures: Counter::default(),
            webhook_rejections: Counter::default(),
            revision: Family::default(),
            expiry_lag: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            unverified_commits: Counter::default(),
            live_reads: Family::default(),
            live_objects_read: Counter::default(),
            suspended: Gauge::default(),
            held_changes: Gauge::default(),
            held_by_window: Gauge::default(),
            notifications: Family::default(),
            notification_retries: Family::default(),
            break_glass_active: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "reconcile_duration_seconds",
            "Time of one reconcile (fetch, validate, plan, apply), by result",
            metrics.reconcile_duration.clone(),
        );
        registry.register(
            "reconciles",
            format!("Reconciles by result: {}", Reconciled::ALL.map(Reconciled::as_str).join(", ")),
            metrics.reconciles.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last reconcile that applied (or confirmed) the revision",
            metrics.last_success.clone(),
        );
        registry.register("objects_applied", "Objects written, by action (create, update, delete)", metrics.objects_applied.clone());
        registry.register(
            "drifted_objects",
            "Live objects whose fields another manager changed, as last seen",
            metrics.drifted_objects.clone(),
        );
        registry.register("git_fetch_failures", "Failed fetches of the source repository", metrics.git_fetch_failures.clone());
        registry.register(
            "webhook_rejections",
            "Webhook requests refused (missing or wrong signature)",
            metrics.webhook_rejections.clone(),
        );
        registry.register("revision_info", "The revision last applied (value 1)", metrics.revision.clone());
        registry.register(
            "live_reads",
            "Reads of the live state by a reconcile, by how: list (every object, one LIST per kind) or watch (only the objects the watches say may differ)",
            metrics.live_reads.clone(),
        );
        registry.register(
            "live_objects_read",
            "Live objects read by reconciles (listed, or read one by one)",
            metrics.live_objects_read.clone(),
        );
        registry.register(
            "unverified_commits",
            "Commits found unsigned or signed by no allowed signer (--verify-signatures), each counted once",
            metrics.unverified_commits.clone(),
        );
        registry.register(
            "expiry_lag_seconds",
            "From the instant a time-bound grant expired to the end of the reconcile that applied it disabled",
            metrics.expiry_lag.clone(),
        );
        registry.register("suspended", "1 while mcp-gitops daemon suspend holds, as last seen by a reconcile", metrics.suspended.clone());
        registry.register(
            "held_changes",
            "Changes of the revision that the suspension held back in the last reconcile",
            metrics.held_changes.clone(),
        );
        registry.register(
            "held_by_window",
            "1 while an open freeze window of mcp-gitops.yaml holds changes back, as last seen by a reconcile",
            metrics.held_by_window.clone(),
        );
        registry.register(
            "notifications",
            "Notifications (--notifications) by receiver and outcome: sent, failed (refused, or given up after retries), dropped (the receiver's queue was full)",
            metrics.notifications.clone(),
        );
        registry.register(
            "notification_retries",
            "Notification requests tried again after a network error, a 429 or a 5xx, by receiver",
            metrics.notification_retries.clone(),
        );
        registry.register(
            "break_glass_active_grants",
            "Break-glass grants of the applied revision that have not expired, as of the last successful reconcile",
            metrics.break_glass_active.clone(),
        );
        Metrics { registry, ..metrics }
    }
}

impl Metrics {
    pub fn label(key: &str, value: &str) -> Labels {
        vec![(key.to_string(), value.to_string())]
    }

    pub fn set_revision(&self, revision: &str) {
        self.revision.clear();
        self.revision.get_or_create(&Self::label("revision", revision)).set(1);
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        let _ = encode(&mut text, &self.registry);
        text
    }
}
