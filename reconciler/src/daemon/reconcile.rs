//! One reconcile, top to bottom: fetch -> load -> validate (an invalid commit is never applied:
//! the last good revision stays) -> plan against the live cluster -> guards -> apply -> record.
//! Recording sets /status and the metrics every time, and writes the inventory's status
//! annotations and a Kubernetes Event only when the outcome differs from the previous one, so
//! that a daemon with nothing to do writes nothing.

use super::live::{self, Ledger};
use super::reconciled::Reconciled;
use super::{DriftMode, Shared};
use crate::apply::{self, Counts, Status};
use crate::cache::Cache;
use crate::cluster::Cluster;
use crate::model::live::{
    ApplySet, Control, LAST_ATTEMPTED_REVISION, LAST_COUNTS, LAST_DRIFTED, LAST_MESSAGE, LAST_RESULT, LAST_RESULT_TIME, Provenance,
    SOURCE_PATH, Suspension,
};
use crate::model::{DesiredState, Kind};
use crate::pipeline;
use crate::plan::Action;
use crate::source::mirror::{Mirror, redact};
use jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// How many changed objects a reconcile's message names.
const CHANGES_SHOWN: usize = 20;
/// Failures named in a reconcile's message: each carries the API server's words.
const FAILURES_SHOWN: usize = 5;

/// What `GET /status` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// `leader`, `standby` (another replica holds the lease) or `single` (no leader election).
    pub role: super::Role,
    /// The revision live in the cluster (the last one applied).
    pub revision: String,
    /// The revision of the last reconcile attempt.
    pub attempted_revision: String,
    /// The result of the last reconcile (`""` before the first one).
    #[serde(serialize_with = "result_or_empty")]
    pub last_result: Option<Reconciled>,
    pub last_message: String,
    pub last_reconcile: String,
    pub last_success: String,
    pub counts: Counts,
    pub diagnostics: DiagnosticsSummary,
    pub drifted: Vec<String>,
    /// `soft` or `hard` while `mcp-gitops daemon suspend` holds, else `""`.
    pub suspended: &'static str,
    /// Who suspended, when and why.
    pub suspension_note: String,
    /// The changes the suspension or a freeze window holds back, as `action Kind/namespace/name`.
    pub held: Vec<String>,
    /// The revision `mcp-gitops daemon pin` set, applied instead of the branch tip; `""` when none.
    pub pinned: String,
    /// The freeze window open at the last reconcile (name, `ends_at`); `null` when none.
    pub window: Option<crate::windows::Open>,
    /// The cluster of the repository's `clusters:` this daemon applies (`--cluster`); `""` when none.
    pub cluster: String,
}

fn result_or_empty<S: serde::Serializer>(result: &Option<Reconciled>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(result.map(Reconciled::as_str).unwrap_or_default())
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DiagnosticsSummary {
    pub errors: usize,
    pub warnings: usize,
    /// The first errors, as `file:line:column: [code] message`.
    pub first: Vec<String>,
}

/// What one reconcile leaves the next.
pub struct Memory {
    /// What validating the last revision made: the next validation parses and checks only the
    /// files that changed. The validated state itself is not kept (at 21,000 objects it was
    /// two thirds of an idle daemon's memory); a drift or interval pass validates again from here.
    cache: Cache,
    ledger: Ledger,
}

impl Default for Memory {
    fn default() -> Self {
        Memory { cache: Cache::in_memory(), ledger: Ledger::default() }
    }
}

/// The outcome of one pass: its result and what to tell about it.
pub(super) struct Outcome {
    result: Reconciled,
    message: String,
    /// What to tell of each break-glass grant this pass wrote (a `BreakGlass` Event each).
    break_glass: Vec<String>,
}

impl Outcome {
    fn new(result: Reconciled, message: String) -> Outcome {
        Outcome { result, message, break_glass: Vec::new() }
    }

    fn succeeded(&self) -> bool {
        self.result.succeeded()
    }
}

/// One pass of the pipeline. Returns whether it settled (else the loop backs off and retries).
pub async fn reconcile(shared: &Shared, cluster: &Cluster, applyset: &ApplySet, mirror: &mut Mirror, memory: &mut Memory) -> bool {
    let started = Instant::now();
    let outcome = pipeline(shared, cluster, applyset, mirror, memory).await;
    let seconds = started.elapsed().as_secs_f64();
    let metrics = &shared.metrics;
    let result = outcome.result.as_str();
    metrics.reconcile_duration.get_or_create(&super::metrics::Metrics::label("result", result)).observe(seconds);
    metrics.reconciles.get_or_create(&super::metrics::Metrics::label("result", result)).inc();
    let now = Timestamp::now();
    {
        let mut report = shared.report();
        report.last_result = Some(outcome.result);
        report.last_message = outcome.message.clone();
        report.last_reconcile = now.to_string();
        if outcome.succeeded() {
            // With the result, under one lock: /status never shows a new revision with the
            // previous reconcile's result.
            report.revision = report.attempted_revision.clone();
            report.last_success = now.to_string();
        }
    }
    if outcome.succeeded() {
        metrics.last_success.set(now.as_millisecond() as f64 / 1000.0);
        shared.ready.store(true, Ordering::Relaxed);
        tracing::info!(result, seconds, "{}", outcome.message);
    } else if !outcome.result.held_on_purpose() {
        tracing::warn!(result, seconds, "{}", outcome.message);
    }
    if outcome.result.held_on_purpose() {
        // Suspended or held on purpose: ready, as a rolling update needs, though the revision is not live.
        shared.ready.store(true, Ordering::Relaxed);
        tracing::info!(result, seconds, "{}", outcome.message);
    }
    record(shared, cluster, applyset, &outcome, now).await;
    outcome.result.settled()
}

async fn pipeline(shared: &Shared, cluster: &Cluster, applyset: &ApplySet, mirror: &mut Mirror, memory: &mut Memory) -> Outcome {
    let options = &shared.options;
    // What `daemon suspend|pin` said, read before a revision is chosen. When the cluster cannot be
    // read, the tip is still fetched and validated (its problems are reported) and nothing is applied.
    let control = cluster.control(applyset).await.map_err(|e| format!("cannot read the cluster: {}", apply::describe(&e)));
    let pin = control.as_ref().ok().and_then(|c| c.pin.clone());
    shared.report().pinned = pin.clone().unwrap_or_default();
    // fetch
    let poll = match tokio::task::block_in_place(|| mirror.poll(pin.as_deref())) {
        Ok(poll) => poll,
        Err(e @ crate::source::SourceError::PinNotOnBranch { .. }) => {
            return Outcome::new(
                Reconciled::Invalid,
                format!("{e}; the last good revision stays live (mcp-gitops daemon unpin, or pin another)"),
            );
        }
        Err(e) => {
            shared.metrics.git_fetch_failures.inc();
            return Outcome::new(
                Reconciled::FetchFailed,
                format!("cannot read {}: {e}; the last good revision stays live", redact(&options.repo)),
            );
        }
    };
    if poll.force_pushed {
        tracing::warn!(branch = %options.branch, revision = %poll.snapshot.revision, "the branch was force-pushed; following the new tip");
    }
    let revision = poll.snapshot.revision.clone();
    let mut signer = String::new();
    if let Some(verification) = &options.verification {
        // A pinned revision goes back on purpose (never a rewritten history): it is verified
        // alone, and its own signature must hold under today's trust files.
        let live = match pin {
            Some(_) => String::new(),
            None => match super::live::revision(shared, cluster, applyset).await {
                Ok(live) => live,
                Err(e) => return Outcome::new(Reconciled::Failed, format!("cannot read the inventory: {}", apply::describe(&e))),
            },
        };
        match verify_new_commits(shared, mirror, verification, &live, &revision) {
            Ok(principal) => signer = principal,
            Err(outcome) => {
                shared.report().attempted_revision = revision;
                return outcome;
            }
        }
    }
    // Objects applied from a git revision say where their content comes from.
    let provenance = mirror.repository().map(|_| Provenance { revision: revision.clone(), root: mirror.prefix(), signer });
    let full = shared.full_pass.swap(false, Ordering::Relaxed);
    {
        let mut report = shared.report();
        // The branch did not move and nothing changed in the cluster since the last success:
        // a webhook or file event for a commit already live needs no LIST of every object.
        if !full && report.revision == revision && report.last_result.is_some_and(Reconciled::succeeded) {
            let message = match pin {
                Some(_) => format!("pinned: revision {revision} is live; the pin did not move"),
                None => format!("revision {revision} is live; the branch did not move"),
            };
            return Outcome::new(Reconciled::Unchanged, message);
        }
        report.attempted_revision = revision.clone();
    }
    // load + validate (unchanged files cost a cache lookup)
    let now = Timestamp::now();
    let snapshot = crate::source::Snapshot { cluster: options.fleet_cluster.clone(), ..poll.snapshot };
    let validated = pipeline::desired::of_snapshot(snapshot, mirror, &options.allowed_policy_dirs, now, None, &memory.cache);
    memory.cache = std::mem::take(&mut memory.cache).renewed();
    let mut desired = match validated {
        Ok(desired) => desired,
        Err(why) => return Outcome::new(Reconciled::Invalid, format!("revision {revision}: {why}; the last good revision stays live")),
    };
    super::ratchet::against_live(shared, cluster, applyset, mirror, &mut desired, now, &memory.cache).await;
    let next_expiry = crate::validate::expiry::next_expiry(&desired, now);
    // Unread (the cluster is down): the new revision's windows alone; nothing is applied then anyway.
    let live = super::live::revision(shared, cluster, applyset).await.unwrap_or_else(|_| String::new());
    let window = super::windows::open(mirror, &live, &desired.config.windows, now);
    let break_glass = super::break_glass::Open::of(&desired, now);
    let mut outcome = plan_and_apply(
        shared,
        cluster,
        applyset,
        desired,
        Applying {
            revision: &revision,
            provenance: provenance.as_ref(),
            control: &control,
            window: window.as_ref(),
            break_glass: &break_glass,
        },
        &mut memory.ledger,
    )
    .await;
    shared.apply_held_at(window.filter(|_| outcome.result == Reconciled::Held).map(|w| w.ends_at));
    if pin.is_some() {
        outcome.message = format!("pinned: {}", outcome.message);
    }
    // Held passes too: an expiry is a revocation, and goes through a freeze window.
    if outcome.result.settled() {
        if outcome.succeeded() {
            shared.metrics.break_glass_active.set(break_glass.count());
        }
        shared.expire_next_at(next_expiry);
        let due = shared.expiry().due.take_if(|due| *due <= now);
        if let Some(due) = due {
            let lag = Timestamp::now().duration_since(due).as_secs_f64();
            shared.metrics.expiry_lag.observe(lag);
            tracing::info!(lag_seconds = lag, expiry = %due, "an expired grant is applied disabled");
        }
    }
    outcome
}

/// `--verify-signatures`: every commit between the `live` revision and the new tip, and the tip
/// itself (a key removed from the trust file stops its revision from being applied again), is
/// signed by an allowed signer; a tip that does not descend from the live revision is refused
/// unless `--allow-non-fast-forward`; without a `live` revision, the tip alone is verified. The
/// trust files are read on every pass. Returns the tip's signer (principals).
fn verify_new_commits(
    shared: &Shared,
    mirror: &Mirror,
    verification: &super::Verification,
    live: &str,
    tip: &str,
) -> Result<String, Outcome> {
    use crate::trust::Failure::NotADescendant;
    let refuse = |why: String| Outcome::new(Reconciled::Unverified, format!("{why}; the last good revision stays live"));
    let repo = mirror.repository().ok_or_else(|| refuse("--verify-signatures needs a git repository, not a directory".into()))?;
    let keys =
        crate::trust::Keys::read(verification.allowed_signers.as_deref(), &verification.pgp_keys).map_err(|e| refuse(e.to_string()))?;
    let from = (!live.is_empty() && live != tip).then_some(live);
    // The commits not yet applied are judged at this daemon's clock, never at the dates they carry.
    let now = jiff::Timestamp::now().as_second();
    let verify = |from: Option<&str>| {
        crate::trust::verify_range(repo, from, tip, false, &keys, &mirror.prefix(), now).map_err(|e| refuse(e.to_string()))
    };
    // The fetched branch holds every ancestor of its tip: a live revision it lacks is none of them.
    let on_branch = |rev: &str| git2::Oid::from_str(rev).is_ok_and(|id| repo.find_commit(id).is_ok());
    let mut verdicts = match from {
        Some(live) if !on_branch(live) => {
            let mut verdicts = verify(None)?;
            for verdict in &mut verdicts {
                verdict.verified = false;
                verdict.reason = Some(NotADescendant);
                verdict.detail = format!("{tip} does not descend from {live}, the live revision, which the branch no longer holds");
            }
            verdicts
        }
        _ => verify(from)?,
    };
    let rewritten = verdicts.first().is_some_and(|v| v.reason == Some(NotADescendant));
    if rewritten && verification.allow_non_fast_forward {
        let base = git2::Oid::from_str(live).and_then(|live| repo.merge_base(live, git2::Oid::from_str(tip)?)).ok().map(|b| b.to_string());
        verdicts = verify(base.as_deref())?;
    }
    let failed: Vec<&crate::trust::Verdict> = verdicts.iter().filter(|v| !v.verified).collect();
    if failed.is_empty() {
        // Oldest first: the tip is the last verdict.
        return Ok(verdicts.last().map(|v| v.principal.clone()).unwrap_or_default());
    }
    let new = {
        let mut seen = shared.unverified.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failed.iter().filter(|v| seen.insert(v.commit.clone())).count()
    };
    shared.metrics.unverified_commits.inc_by(new as u64);
    let named: Vec<String> = failed
        .iter()
        .map(|v| {
            let key = if v.key.is_empty() { String::new() } else { format!(", key {}", v.key) };
            format!("{} {}{key} ({})", &v.commit[..7], v.reason.map(|r| r.as_str()).unwrap_or_default(), v.detail)
        })
        .collect();
    Err(refuse(format!("unverified commit(s): {}", named.join("; "))))
}

/// What a pass applies: the revision, where its objects' content comes from (a git source),
/// what `daemon suspend|pin` said (or why that could not be read), and the freeze window open now.
struct Applying<'a> {
    revision: &'a str,
    provenance: Option<&'a Provenance>,
    control: &'a Result<Control, String>,
    window: Option<&'a crate::windows::Open>,
    break_glass: &'a super::break_glass::Open,
}

/// The rest of a reconcile, once the revision is loaded and validated. The desired state is
/// taken: its objects become the plan's documents, so that a first apply of 21,000 objects does
/// not hold each body twice.
async fn plan_and_apply(
    shared: &Shared,
    cluster: &Cluster,
    applyset: &ApplySet,
    desired: DesiredState,
    applying: Applying<'_>,
    ledger: &mut Ledger,
) -> Outcome {
    let Applying { revision, provenance, control, window, break_glass } = applying;
    let options = &shared.options;
    let errors: Vec<String> = pipeline::apply::gate(&desired, &options.allowed_namespaces)
        .iter()
        .map(|d| format!("{}:{}:{}: [{}] {}", d.file, d.line, d.column, d.code, d.message))
        .collect();
    shared.report().diagnostics = DiagnosticsSummary {
        errors: errors.len(),
        warnings: desired.diagnostics.iter().filter(|d| !d.is_error()).count(),
        first: errors.iter().take(10).cloned().collect(),
    };
    if !errors.is_empty() {
        return Outcome::new(
            Reconciled::Invalid,
            format!("revision {revision} has {} error(s) and is not applied; the last good revision stays live", errors.len()),
        );
    }
    let control = match control {
        Ok(control) => control,
        Err(why) => return Outcome::new(Reconciled::Failed, why.clone()),
    };
    // plan against the live cluster: all of it now and then, else what the watches say changed
    let mut planned = match live::plan(cluster, applyset, &shared.members, ledger, desired, provenance, options.resync).await {
        Ok(planned) => planned,
        Err(e) => return Outcome::new(Reconciled::Failed, format!("cannot read the cluster: {}", apply::describe(&e))),
    };
    let how = if planned.listed { "list" } else { "watch" };
    shared.metrics.live_reads.get_or_create(&super::metrics::Metrics::label("how", how)).inc();
    shared.metrics.live_objects_read.inc_by(planned.read as u64);
    let drifted: Vec<String> = planned.plan.changes.iter().filter(|c| !c.drift.is_empty()).map(|c| c.id().to_string()).collect();
    shared.metrics.drifted_objects.set(drifted.len() as i64);
    if options.drift == DriftMode::Report {
        // Leave out-of-band edits alone: changes that only undo someone else's edit are not sent.
        for change in planned.plan.changes.iter_mut().filter(|c| !c.drift.is_empty() && c.action == Action::Update) {
            change.action = Action::NoOp;
            change.object = None;
        }
    }
    shared.report().drifted = drifted.clone();
    if !drifted.is_empty() {
        tracing::warn!(objects = %drifted.join(", "), mode = ?options.drift, "drift: fields changed outside git");
    }
    // suspended, or a freeze window open: hold back what could give access (a window as a soft suspension)
    let suspension = control.suspension.map(|s| (s, control.suspension_note.clone()));
    let holding = suspension.as_ref().map(|(s, _)| *s).or(window.map(|_| Suspension::Soft));
    let held = holding.map(|holding| hold(&mut planned.plan, holding)).unwrap_or_default();
    let held_by_window = window.filter(|_| suspension.is_none() && !held.is_empty());
    shared.metrics.suspended.set(i64::from(suspension.is_some()));
    shared.metrics.held_changes.set(held.len() as i64);
    shared.metrics.held_by_window.set(i64::from(held_by_window.is_some()));
    {
        let mut report = shared.report();
        report.suspended = suspension.as_ref().map(|(s, _)| s.as_str()).unwrap_or_default();
        report.suspension_note = suspension.as_ref().map(|(_, note)| note.clone()).unwrap_or_default();
        report.held = held.clone();
        report.window = window.cloned();
    }
    let plan = &mut planned.plan;
    // guards, then apply
    let apply_options = apply::Options {
        dry_run: false,
        force_conflicts: options.drift == DriftMode::Correct,
        prune: true,
        max_deletes: options.max_deletes,
        adopt: false,
        concurrency: 8,
        held_back: !held.is_empty(),
    };
    let noting_prunes = || {
        *shared.pruning.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
            plan.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.id()).collect();
    };
    let applied = pipeline::apply::apply(cluster, plan, applyset, planned.inventory.as_ref(), &apply_options, noting_prunes, |outcome| {
        if let Status::Failed(why) = &outcome.status {
            tracing::warn!(object = %outcome.id, "{why}");
        }
    })
    .await;
    let report = match applied {
        Ok(report) => report,
        Err(refusal) => return Outcome::new(Reconciled::Refused, refusal.to_string()),
    };
    ledger.record(planned, &report);
    let counts = report.counts();
    for (action, count) in [("create", counts.created), ("update", counts.updated), ("delete", counts.deleted)] {
        shared.metrics.objects_applied.get_or_create(&super::metrics::Metrics::label("action", action)).inc_by(count as u64);
    }
    let written = counts.written();
    let mut summary = format!(
        "revision {revision}: {} created, {} updated, {} deleted, {} unchanged, {} failed{}",
        counts.created,
        counts.updated,
        counts.deleted,
        counts.unchanged,
        counts.failed,
        if counts.not_attempted > 0 { format!(", {} not attempted", counts.not_attempted) } else { String::new() }
    );
    // The change set, then what failed and why ("permission denied", a missing namespace), for
    // the log line, /status and the Event (which cuts what does not fit).
    let changed: Vec<String> =
        report.outcomes.iter().filter(|o| o.status == Status::Done).map(|o| format!("{} {}", o.action.as_str(), o.id)).collect();
    if !changed.is_empty() {
        summary = format!("{summary}: {}", first_of(&changed, CHANGES_SHOWN));
    }
    let failed: Vec<String> = report
        .outcomes
        .iter()
        .filter_map(|o| match &o.status {
            Status::Failed(why) => Some(format!("{} {}: {why}", o.action.as_str(), o.id)),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        summary = format!("{summary}; failed: {}", first_of(&failed, FAILURES_SHOWN));
    }
    if let Some(why) = &report.inventory_error {
        summary = format!("{summary}; the inventory could not be written: {why}");
    }
    let succeeded = report.succeeded();
    shared.report().counts = counts;
    if !succeeded {
        return Outcome::new(Reconciled::Failed, summary);
    }
    if let Some((suspension, note)) = suspension.filter(|_| !held.is_empty()) {
        let more = held.len().saturating_sub(CHANGES_SHOWN);
        let shown = held[..held.len() - more].join(", ");
        let shown = if more == 0 { shown } else { format!("{shown} and {more} more") };
        let note = if note.is_empty() { String::new() } else { format!(" ({note})") };
        return Outcome::new(
            Reconciled::Suspended,
            format!("suspended {}{note}: revision {revision} is held back: {shown}; applied instead: {summary}", suspension.as_str()),
        );
    }
    if let Some(window) = held_by_window {
        return Outcome::new(
            Reconciled::Held,
            format!(
                "held by window {} until {}: revision {revision} is held back: {}; applied instead: {summary}",
                window.name,
                window.ends_at,
                first_of(&held, CHANGES_SHOWN)
            ),
        );
    }
    shared.metrics.set_revision(revision);
    let outcome = Outcome::new(if written == 0 { Reconciled::Unchanged } else { Reconciled::Applied }, summary);
    Outcome { break_glass: break_glass.applied(&report), ..outcome }
}

/// What a suspension or an open freeze window (as `Soft`) holds back of `plan`, as `action id`: under `Soft` every change but those
/// that only take access away (a grant or session deleted, a grant updated to `disabled` — its
/// expiry included — or a session to `revoked`), under `Hard` every change. Held changes become
/// no-ops that the ledger does not count as in sync, so that a resume plans them again.
fn hold(plan: &mut crate::plan::Plan, suspension: Suspension) -> Vec<String> {
    let takes_away = |change: &crate::plan::Change| {
        let kill_switch = |object: &serde_json::Value| match change.kind {
            Kind::Grant => object.pointer("/spec/disabled") == Some(&true.into()),
            Kind::Session => object.pointer("/spec/revoked") == Some(&true.into()),
            Kind::Server => false,
        };
        change.kind != Kind::Server
            && match change.action {
                Action::Delete => true,
                Action::Update => change.object.as_ref().is_some_and(kill_switch),
                Action::Create | Action::NoOp => false,
            }
    };
    let mut held = Vec::new();
    for change in plan.changes.iter_mut().filter(|c| c.action != Action::NoOp) {
        if suspension == Suspension::Soft && takes_away(change) {
            continue;
        }
        held.push(format!("{} {}", change.action.as_str(), change.id()));
        change.action = Action::NoOp;
        change.object = None;
        change.expected_resource_version = None;
    }
    held
}

/// Events and status annotations, for people who look at the cluster rather than at /status.
/// Written only when the outcome changed (a new result, revision or change set).
async fn record(shared: &Shared, cluster: &Cluster, applyset: &ApplySet, outcome: &Outcome, now: Timestamp) {
    let (attempted, counts, drifted, first_errors) = {
        let report = shared.report();
        (report.attempted_revision.clone(), report.counts.clone(), report.drifted.clone(), report.diagnostics.first.clone())
    };
    let counts_text = format!(
        "created={} updated={} deleted={} unchanged={} failed={}{}",
        counts.created,
        counts.updated,
        counts.deleted,
        counts.unchanged,
        counts.failed,
        if counts.not_attempted > 0 { format!(" not_attempted={}", counts.not_attempted) } else { String::new() }
    );
    let result = outcome.result.as_str();
    let key = format!("{result} {attempted} {counts_text} {}", drifted.join(","));
    {
        let mut last = shared.last_recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let repeated = *last == key && !(outcome.result == Reconciled::Applied && counts.written() > 0);
        if repeated {
            return;
        }
        *last = key;
    }
    let mut annotations = BTreeMap::from([
        (LAST_RESULT.to_string(), result.to_string()),
        (LAST_RESULT_TIME.to_string(), now.to_string()),
        (LAST_COUNTS.to_string(), counts_text),
        (LAST_MESSAGE.to_string(), outcome.message.clone()),
        (LAST_ATTEMPTED_REVISION.to_string(), attempted),
        (LAST_DRIFTED.to_string(), drifted.len().to_string()),
        (SOURCE_PATH.to_string(), shared.options.path.clone()),
    ]);
    if let Some(name) = &shared.options.fleet_cluster {
        annotations.insert(crate::model::live::CLUSTER.to_string(), name.clone());
    }
    if let Err(e) = cluster.annotate_inventory(applyset, &annotations).await {
        tracing::warn!("cannot write the status annotations of the inventory: {}", apply::describe(&e));
    }
    let mut events = Vec::new();
    if let Some((warning, reason)) = outcome.result.event() {
        let note = match outcome.result {
            Reconciled::Invalid => format!("{}: {}", outcome.message, first_errors.join("; ")),
            _ => outcome.message.clone(),
        };
        events.push((warning, reason, note));
    }
    if !drifted.is_empty() {
        let (warning, reason) = match shared.options.drift {
            DriftMode::Correct => (false, "DriftCorrected"),
            DriftMode::Report => (true, "DriftDetected"),
        };
        events.push((warning, reason, format!("changed outside git: {}", drifted.join(", "))));
    }
    events.extend(outcome.break_glass.iter().map(|note| (true, "BreakGlass", note.clone())));
    for (warning, reason, note) in events {
        super::notifications::publish(shared, cluster, applyset, warning, reason, &note).await;
    }
}

/// The first `shown` of `items`, and how many more there are.
fn first_of(items: &[String], shown: usize) -> String {
    let more = items.len().saturating_sub(shown);
    let listed = items[..items.len() - more].join(", ");
    if more == 0 { listed } else { format!("{listed} and {more} more") }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_list_names_its_first_items_and_counts_the_rest() {
        let items: Vec<String> = (1..=7).map(|i| format!("o{i}")).collect();
        assert_eq!(super::first_of(&items, 5), "o1, o2, o3, o4, o5 and 2 more");
        assert_eq!(super::first_of(&items[..2], 5), "o1, o2");
        assert_eq!(super::first_of(&[], 5), "");
    }
}
