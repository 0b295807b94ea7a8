//! The daemon's HTTP face: `POST /hook` (signed webhooks wake the reconcile loop), `/status`,
//! `/healthz`, `/readyz` and `/metrics`. Handlers only read the shared state or wake the loop.
//!
//! Anyone who can reach the port can open connections before any authentication, so what one
//! costs is bounded: the connections served at once, the bytes each may buffer, how long a
//! request's head and then the request may take, and a webhook body is read only when its
//! signature needs it, straight through the HMAC, never kept.

use super::{Shared, triggers, webhook};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use futures::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::timeout::TimeoutLayer;

/// Webhook bodies larger than this are refused (GitHub caps its payloads at 25 MB, but push
/// events of one branch are a few KiB).
pub const MAX_HOOK_BODY: usize = 1024 * 1024;
/// Connections served at once; more wait in the kernel's accept queue until one closes. The
/// daemon's own clients are a probe, a scraper and a few webhooks.
pub const MAX_CONNECTIONS: usize = 512;
/// What one connection may buffer; a request head must fit in it (a larger one is answered 431).
pub const MAX_CONNECTION_BUFFER: usize = 16 * 1024;
/// How long a request's head may take to arrive, counted from the connection's start or the end
/// of its previous request (so this is also how long an idle keep-alive connection stays open).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take from its head to its answer, body included: GitHub and GitLab
/// give up on a webhook after 10 s themselves. Answered 408, then the connection is closed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/hook", post(hook))
        .route("/status", get(status))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .with_state(shared)
}

/// Serves the router on `listener` with the limits above until the daemon stops, then lets the
/// requests in flight finish (each is bounded by the timeouts).
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let service = TowerToHyperService::new(router(shared.clone()));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).max_buf_size(MAX_CONNECTION_BUFFER);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let stopped = triggers::stopped(&shared);
    tokio::pin!(stopped);
    loop {
        // A free slot first: at the cap, new connections wait in the kernel's queue.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut stopped => break,
        };
        let Ok(slot) = slot else { break };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service.clone()));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    let _ = tokio::time::timeout(HEADER_TIMEOUT + REQUEST_TIMEOUT, graceful.shutdown()).await;
}

async fn hook(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> impl IntoResponse {
    let Some(secret) = &shared.webhook_secret else {
        return (StatusCode::NOT_FOUND, "the webhook is off: start the daemon with --webhook-secret-file\n");
    };
    let verdict = match webhook::check_request(secret, &headers) {
        webhook::Check::Decided(verdict) => verdict,
        webhook::Check::Signed(signed) => match signed_body(signed, &headers, body).await {
            Ok(verdict) => verdict,
            Err(refusal) => return refusal,
        },
    };
    match verdict {
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

/// Feeds the body through the signature's HMAC as it arrives; nothing of it is kept.
async fn signed_body(mut signed: webhook::Signed, headers: &HeaderMap, body: Body) -> Result<webhook::Verdict, (StatusCode, &'static str)> {
    const TOO_LARGE: (StatusCode, &str) = (StatusCode::PAYLOAD_TOO_LARGE, "webhook body over 1 MiB\n");
    let announced = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|length| length > MAX_HOOK_BODY as u64) {
        return Err(TOO_LARGE);
    }
    let (mut chunks, mut read) = (body.into_data_stream(), 0usize);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|_| (StatusCode::BAD_REQUEST, "the webhook body could not be read\n"))?;
        read += chunk.len();
        if read > MAX_HOOK_BODY {
            return Err(TOO_LARGE);
        }
        signed.update(&chunk);
    }
    Ok(signed.finish())
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
