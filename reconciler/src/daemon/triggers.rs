//! What wakes the reconcile loop: the interval (with jitter), SIGTERM/SIGINT, filesystem events
//! for a local source, watch events on managed objects that another manager changed or deleted
//! (drift), the instant a time-bound grant expires, and the loss of the leader lease. Each trigger only notifies; the loop coalesces.

use super::Shared;
use crate::cluster::{Cluster, MemberChange};
use crate::model::live::{ApplySet, MemberEvent};
use crate::source::mirror::Mirror;
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long filesystem events settle before they trigger (an editor's save is several events).
const FILE_DEBOUNCE: Duration = Duration::from_millis(300);

pub fn on_interval(shared: Arc<Shared>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(jittered(shared.options.interval)).await;
            shared.trigger_full();
        }
    });
}

fn jittered(interval: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    // +-10%, from the clock's low bits: replicas started together do not poll together.
    let spread = interval.as_millis() as f64 * 0.2 * (f64::from(nanos % 1000) / 1000.0 - 0.5);
    Duration::from_millis((interval.as_millis() as f64 + spread).max(1000.0) as u64)
}

pub fn on_signal(shared: Arc<Shared>) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop requested; finishing the current reconcile");
        shared.stop();
    });
}

/// Resolves once a stop was requested.
pub async fn stopped(shared: &Shared) {
    while !shared.stopping() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// Watches a local source (a directory, or a local repository whose refs move on commit).
/// The returned watcher must be kept alive; `None` for remote repositories or when the
/// platform's file events are not available (the interval still rescans).
pub fn on_file_change(shared: Arc<Shared>, mirror: &Mirror) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let path = mirror.local_path()?.to_path_buf();
    let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = sender.send(());
        }
    });
    let watcher = match watcher.and_then(|mut w| w.watch(&path, notify::RecursiveMode::Recursive).map(|()| w)) {
        Ok(watcher) => watcher,
        Err(e) => {
            tracing::warn!(path = %path.display(), "filesystem events are not available ({e}); relying on the interval");
            return None;
        }
    };
    tokio::spawn(async move {
        while events.recv().await.is_some() {
            tokio::time::sleep(FILE_DEBOUNCE).await;
            while events.try_recv().is_ok() {}
            tracing::debug!("the source changed on disk");
            shared.trigger.notify_one();
        }
    });
    Some(watcher)
}

/// Keeps `Shared::members` as the watches see the ApplySet's members, and reconciles when one is
/// changed by someone else or deleted (drift) instead of waiting for the next interval, and after
/// a watch that fell behind listed its kind again. Our own writes are recognised and ignored.
pub fn on_members(shared: Arc<Shared>, cluster: Cluster, applyset: ApplySet) {
    tokio::spawn(async move {
        let mut changes = std::pin::pin!(cluster.watch_members(&applyset));
        while let Some(MemberChange { event, changed_by }) = changes.next().await {
            let drift = match (&event, changed_by) {
                (MemberEvent::Changed { id, .. }, Some(manager)) => {
                    tracing::info!(object = %id, manager, "a managed object was changed outside git");
                    true
                }
                (MemberEvent::Deleted(id), _) if !shared.pruned_by_us(id) => {
                    tracing::info!(object = %id, "a managed object was deleted outside git");
                    true
                }
                _ => false,
            };
            let relisted = shared.members().record(event);
            if relisted {
                tracing::info!("a watch listed its objects again");
            }
            if drift || relisted {
                shared.trigger_full();
            }
        }
    });
}

/// Reconciles when `daemon suspend|resume|pin|unpin` changes what the inventory tells, so that
/// it takes effect at once rather than at the next interval. The daemon's own status writes to
/// the inventory change nothing it tells, and wake nothing.
pub fn on_control(shared: Arc<Shared>, cluster: Cluster, applyset: ApplySet) {
    tokio::spawn(async move {
        let mut told = std::pin::pin!(cluster.watch_control(&applyset));
        let mut last = None;
        while let Some(control) = told.next().await {
            if last.as_ref().is_some_and(|last| *last != control) {
                tracing::info!(suspension = ?control.suspension, pin = ?control.pin, "the daemon's control changed: reconciling");
                shared.trigger_full();
            }
            last = Some(control);
        }
    });
}

/// Reconciles at the instant the next time-bound grant expires, so that its revocation reaches
/// the cluster then, not at the next interval; and at the end of a freeze window that held
/// changes back. Rescheduled whenever a reconcile finds another next expiry or window end.
pub fn on_expiry(shared: Arc<Shared>) {
    tokio::spawn(async move {
        loop {
            let next = shared.expiry().wake_at();
            let Some(at) = next else {
                shared.expiry_changed.notified().await;
                continue;
            };
            let wait = Duration::try_from(at.duration_since(jiff::Timestamp::now())).unwrap_or(Duration::ZERO);
            tokio::select! {
                // A few milliseconds late: at the instant itself the grant counts as expired.
                _ = tokio::time::sleep(wait + Duration::from_millis(5)) => {
                    {
                        let mut expiry = shared.expiry();
                        if expiry.next == Some(at) {
                            expiry.due = Some(at);
                            expiry.next = None;
                            tracing::info!(expiry = %at, "a time-bound grant expires: reconciling");
                        }
                        if expiry.window_closes == Some(at) {
                            expiry.window_closes = None;
                            tracing::info!(closes = %at, "a freeze window closes: applying what it held");
                        }
                    }
                    shared.trigger_full();
                }
                _ = shared.expiry_changed.notified() => {}
            }
        }
    });
}

/// Stops the daemon when another replica took the lease (after a network partition, say).
pub fn on_lost_leadership(shared: Arc<Shared>, mut leader: tokio::sync::watch::Receiver<bool>, lost: Arc<AtomicBool>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = leader.changed() => if changed.is_err() { return },
                // Dropping the receiver on the way out lets the Lease be released.
                _ = stopped(&shared) => return,
            }
            if !*leader.borrow_and_update() {
                tracing::error!("lost the leader lease");
                lost.store(true, Ordering::Relaxed);
                shared.stop();
                return;
            }
        }
    });
}
