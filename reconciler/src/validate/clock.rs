//! What the time decides in a validation: the window of clocks around `now` that validate the
//! same loaded repository alike, so that a validation made at one clock can be reused at any
//! other in its window (`pipeline::incremental` keys the recorded validation of a tree so).
//! Takes a loaded repository (policy directories added) and the time; gives back the window.
//! Validates nothing and performs no I/O.
//!
//! A validation reads the clock in three places: a grant is expired from its
//! `mcp-gitops.io/expires-at` on (`expiry::expire`: at and after the instant), a session is
//! expired after its `spec.expiresAt` (`reference`: strictly after), and a guardrail policy may
//! read `now` (CEL sees it to the second). The window runs from the last of those instants at or
//! before `now` to the first after it. A policy's instants are where a comparison of `now` with a
//! value of the object may flip (`guardrails::now_instants`: `expires-at - 30 days` for
//! `destructive-grants-expire`); a policy in force that reads `now` in a way that analysis does
//! not follow narrows the window to `now`'s second.

use super::expiry::EXPIRES_AT;
use super::guardrails;
use crate::load::Loaded;
use crate::model::Kind;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// The clocks `from <= t < until` (an open end: no instant on that side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Window {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from.is_none_or(|from| from <= t) && self.until.is_none_or(|until| t < until)
    }
}

/// The window of clocks around `now` at which `loaded` validates as it does at `now`.
pub fn window(loaded: &Loaded, now: Timestamp) -> Window {
    let flips = guardrails::now_instants(loaded, now);
    let mut window = Window { from: None, until: None };
    for instant in instants(loaded).chain(flips.iter().flatten().copied()) {
        if instant <= now {
            window.from = window.from.max(Some(instant));
        } else if window.until.is_none_or(|until| instant < until) {
            window.until = Some(instant);
        }
    }
    if flips.is_none() {
        // CEL's `now` is written to the second (`evaluate`): within one second it is one value.
        // Floored (`as_second` truncates toward zero, before 1970 too).
        let second = now.as_second() - i64::from(now.subsec_nanosecond() < 0);
        window.from = window.from.max(Timestamp::from_second(second).ok());
        let next = Timestamp::from_second(second.saturating_add(1)).ok();
        window.until = match (window.until, next) {
            (Some(until), Some(next)) => Some(until.min(next)),
            (until, next) => until.or(next),
        };
    }
    window
}

/// Each instant at which what the validation finds may change, as the first clock that sees the
/// change: a grant's expiry, the nanosecond after a session's.
fn instants(loaded: &Loaded) -> impl Iterator<Item = Timestamp> + '_ {
    let pointer = format!("/metadata/annotations/{}", EXPIRES_AT.replace('/', "~1"));
    loaded.state.objects.iter().filter_map(move |object| match object.id.kind {
        Kind::Grant => object.body.pointer(&pointer)?.as_str()?.parse::<Timestamp>().ok(),
        Kind::Session => {
            let at = object.session()?.expires_at.parse::<Timestamp>().ok()?;
            at.checked_add(SignedDuration::from_nanos(1)).ok()
        }
        Kind::Server => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{self, SourceFile};
    use std::path::Path;

    /// `examples/platform` with two time-bound grants (one expiring at the same instant as a
    /// session) and `config` as its `mcp-gitops.yaml`.
    fn platform(config: &str) -> Loaded {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/platform");
        let mut snapshot = source::from_dir(&dir).expect("examples/platform");
        let expiring = [("refund-desk.yaml", "2030-01-01T00:00:00Z"), ("finance-ops.yaml", "2030-03-01T12:00:00.5Z")];
        for file in &mut snapshot.files {
            if let Some((_, at)) = expiring.iter().find(|(name, _)| file.path.ends_with(name)) {
                let text = String::from_utf8(file.bytes.clone()).expect("utf-8");
                let annotated = text.replacen("metadata:\n", &format!("metadata:\n  annotations:\n    {EXPIRES_AT}: \"{at}\"\n"), 1);
                file.bytes = annotated.into_bytes();
            }
        }
        snapshot.files.retain(|f| f.path != crate::load::CONFIG_FILE);
        snapshot.files.push(SourceFile { path: crate::load::CONFIG_FILE.into(), bytes: config.as_bytes().to_vec() });
        crate::load::load(snapshot)
    }

    const QUIET: &str = "policies:\n  disabled: [sessions-expire-within-a-day, destructive-grants-expire]\n";

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a time")
    }

    /// What a validation at `now` gives: its diagnostics and objects, as JSON.
    fn validated(config: &str, now: Timestamp) -> String {
        let state = super::super::validate(platform(config), now);
        let objects: Vec<&serde_json::Value> = state.objects.iter().map(|o| &*o.body).collect();
        serde_json::to_string(&(&state.diagnostics, objects)).expect("json")
    }

    /// Clocks on both sides of every instant of the tree and exactly at it, and far from all.
    fn clocks(loaded: &Loaded) -> Vec<Timestamp> {
        let nano = SignedDuration::from_nanos(1);
        let mut clocks = vec![at("2026-11-25T00:00:00Z"), at("2120-01-01T00:00:00Z")];
        for instant in instants(loaded) {
            clocks.extend([instant.checked_sub(nano).expect("t"), instant, instant.checked_add(nano).expect("t")]);
        }
        clocks
    }

    #[test]
    fn a_validation_at_any_clock_of_a_window_is_the_validation_at_now() {
        let loaded = platform(QUIET);
        let clocks = clocks(&loaded);
        assert!(clocks.len() > 20, "the grants' and sessions' instants");
        for now in clocks {
            let window = window(&loaded, now);
            assert!(window.contains(now), "{now}: {window:?}");
            let here = validated(QUIET, now);
            let ends = [window.from, window.until.and_then(|until| until.checked_sub(SignedDuration::from_nanos(1)).ok())];
            for other in ends.into_iter().flatten() {
                assert!(window.contains(other));
                assert_eq!(validated(QUIET, other), here, "{now} and {other}, both in {window:?}");
            }
        }
    }

    #[test]
    fn crossing_an_instant_leaves_the_window() {
        let loaded = platform(QUIET);
        let nano = SignedDuration::from_nanos(1);
        // A grant is expired from its instant on; a session after its instant.
        for (instant, first) in
            [("2030-03-01T12:00:00.5Z", "2030-03-01T12:00:00.5Z"), ("2030-06-30T18:00:00Z", "2030-06-30T18:00:00.000000001Z")]
        {
            let (before, first) = (at(first).checked_sub(nano).expect("t"), at(first));
            let window = window(&loaded, before);
            assert_eq!(window.until, Some(first), "{instant}");
            assert!(!window.contains(first));
            assert_ne!(validated(QUIET, before), validated(QUIET, first), "what changes at {instant}");
        }
        let late = window(&loaded, at("2120-01-01T00:00:00Z"));
        assert_eq!((late.from, late.until), (Some(at("2099-01-01T00:00:00.000000001Z")), None));
    }

    /// Clocks on both sides of every flip of the policies that read `now`, and exactly at it.
    fn flip_clocks(loaded: &Loaded) -> Vec<Timestamp> {
        let flips = guardrails::now_instants(loaded, at("2026-11-25T00:00:00Z")).expect("the default policies are followed");
        let mut clocks = clocks(loaded);
        for flip in flips.into_iter().filter(|f| *f < at("2200-01-01T00:00:00Z")) {
            for step in [-1, 0, 1] {
                clocks.push(flip.checked_add(SignedDuration::from_nanos(step)).expect("t"));
            }
        }
        clocks
    }

    #[test]
    fn with_the_policies_that_read_now_a_window_still_validates_alike() {
        let loaded = platform("");
        for now in flip_clocks(&loaded) {
            let window = window(&loaded, now);
            assert!(window.contains(now), "{now}: {window:?}");
            let here = validated("", now);
            let ends = [window.from, window.until.and_then(|until| until.checked_sub(SignedDuration::from_nanos(1)).ok())];
            for other in ends.into_iter().flatten() {
                assert_eq!(validated("", other), here, "{now} and {other}, both in {window:?}");
            }
        }
    }

    #[test]
    fn a_policy_that_reads_now_flips_where_its_comparison_does() {
        let loaded = platform("");
        // sessions-expire-within-a-day on a session expiring 2030-06-30T18:00:00Z: from a day before on, it holds.
        let flip = at("2030-06-29T18:00:00Z");
        let before = flip.checked_sub(SignedDuration::from_nanos(1)).expect("t");
        assert_eq!(window(&loaded, before).until, Some(flip));
        assert_ne!(validated("", before), validated("", flip), "what the policy finds changes at {flip}");
        // Weeks, not a second: the next flip or expiry.
        let now = at("2026-11-25T10:20:30.25Z");
        let held = window(&loaded, now);
        assert!(held.until.is_some_and(|until| until.duration_since(now) > SignedDuration::from_hours(24 * 7)), "{held:?}");
    }

    #[test]
    fn a_policy_that_reads_now_otherwise_holds_for_its_second_alone() {
        let hours = "apiVersion: mcp-gitops.mcpruntime.org/v1alpha1\nkind: GuardrailPolicy\nmetadata:\n  name: office-hours\n\
                     spec:\n  matchKinds: [MCPAgentSession]\n  severity: warning\n  expression: now.getHours() >= 8\n  message: out of hours\n";
        let mut loaded = platform(QUIET);
        let (parsed, _) = crate::load::yaml::parse("policies/office-hours.yaml", hours);
        loaded.policies.extend(parsed.into_iter().map(|d| crate::load::RawDocument {
            file: "policies/office-hours.yaml".into(),
            value: d.value,
            spans: std::sync::Arc::new(crate::model::object::Spans::Made(d.spans)),
        }));
        let now = at("2026-11-25T10:20:30.25Z");
        assert_eq!(window(&loaded, now), Window { from: Some(at("2026-11-25T10:20:30Z")), until: Some(at("2026-11-25T10:20:31Z")) });
        // One that matches no object of the tree does not count.
        loaded.state.objects.retain(|o| o.id.kind != Kind::Session);
        assert_eq!(window(&loaded, now).until, Some(at("2030-01-01T00:00:00Z")));
    }
}
