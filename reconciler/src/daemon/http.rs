//! The daemon's HTTP face: `POST /hook` (signed webhooks wake the reconcile loop), `/status`,
//! `/healthz`, `/readyz` and `/metrics`. Handlers only read the shared state or wake the loop.

use super::{MAX_HOOK_BODY, Shared, webhook};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/hook", post(hook))
        .route("/status", get(status))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .layer(DefaultBodyLimit::max(MAX_HOOK_BODY))
        .with_state(shared)
}

async fn hook(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let Some(secret) = &shared.webhook_secret else {
        return (StatusCode::NOT_FOUND, "the webhook is off: start the daemon with --webhook-secret-file\n");
    };
    match webhook::verify_request(secret, &headers, &body) {
        // A standby reconciles as soon as it takes the lead, so the request is not lost.
        webhook::Verdict::Accepted if shared.report().role == super::Role::Standby => {
            (StatusCode::ACCEPTED, "standby: the leader replica reconciles; this one will when it takes the lead\n")
        }
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
    } else if shared.report().role == super::Role::Standby {
        // Ready to take over: a rolling update must be able to start the new pod while the old
        // one still holds the lease.
        (StatusCode::OK, "standby: another replica holds the leader lease\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no successful reconcile yet\n")
    }
}

async fn metrics_text(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], shared.metrics.render())
}
