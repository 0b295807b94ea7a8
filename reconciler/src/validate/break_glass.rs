//! Break-glass grants (docs/access-lifecycle.md#break-glass): the annotations that mark one, the
//! limits `owners.breakGlass` sets (with the hard cap no configuration raises), and
//! `break_glass_review_late` for a break-glass grant whose follow-up review is overdue. Pure.

use super::expiry::EXPIRES_AT;
use crate::model::break_glass::BreakGlassRules;
use crate::model::object::pointer_segment;
use crate::model::spelling::identity;
use crate::model::{Code, DesiredState, Diagnostic, Kind, Object};
use jiff::{SignedDuration, Timestamp};
use regex::Regex;

/// `"true"` on a grant (and its session) opened by `mcp-gitops break-glass`.
pub const BREAK_GLASS: &str = "mcp-gitops.io/break-glass";
/// Why: the ticket or incident.
pub const REASON: &str = "mcp-gitops.io/break-glass-reason";
/// Who opened it (a forge handle, as `approvals check --author` names people).
pub const REQUESTER: &str = "mcp-gitops.io/break-glass-requester";
/// Who reviewed it afterwards (someone other than the requester).
pub const REVIEWED_BY: &str = "mcp-gitops.io/reviewed-by";

/// No configuration makes break-glass access last longer.
pub const HARD_CAP: SignedDuration = SignedDuration::from_hours(24);
const DEFAULT_MAX: SignedDuration = SignedDuration::from_hours(1);
const DEFAULT_REVIEW: SignedDuration = SignedDuration::from_hours(24);

/// The value of annotation `key` on `object`.
pub fn annotation<'a>(object: &'a Object, key: &str) -> Option<&'a str> {
    object.body.pointer(&format!("/metadata/annotations/{}", pointer_segment(key)))?.as_str()
}

/// Whether `object` says it was opened as break-glass.
pub fn is_break_glass(object: &Object) -> bool {
    annotation(object, BREAK_GLASS) == Some("true")
}

/// The instant a break-glass object ends: a grant's `mcp-gitops.io/expires-at`, a session's `spec.expiresAt`.
pub fn ends_at(object: &Object) -> Option<Timestamp> {
    let text = match object.id.kind {
        Kind::Grant => annotation(object, EXPIRES_AT)?,
        Kind::Session => object.session()?.expires_at.as_str(),
        Kind::Server => return None,
    };
    text.parse().ok()
}

/// `owners.breakGlass` read: what a break-glass change may be.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Who may open it (`owners` stands for the server's owners).
    pub requesters: Vec<String>,
    /// The longest lifetime, at most `HARD_CAP`.
    pub max_duration: SignedDuration,
    pub reason: Option<Regex>,
    pub review_within: SignedDuration,
}

impl Limits {
    /// The limits of `rules`; an error saying why when break-glass is not configured or its
    /// configuration cannot be read (then nothing is break-glass).
    pub fn of(rules: Option<&BreakGlassRules>) -> Result<Limits, String> {
        let Some(rules) = rules else { return Err("mcp-gitops.yaml declares no owners.breakGlass".into()) };
        let duration = |text: &Option<String>, default: SignedDuration, key: &str| match text {
            None => Ok(default),
            Some(text) => text.parse::<SignedDuration>().map_err(|e| format!("owners.breakGlass.{key} {text:?} is not a duration ({e})")),
        };
        let reason = match &rules.reason_pattern {
            None => None,
            Some(pattern) => {
                Some(Regex::new(pattern).map_err(|e| format!("owners.breakGlass.reasonPattern is not a regular expression ({e})"))?)
            }
        };
        Ok(Limits {
            requesters: if rules.requesters.is_empty() { vec!["owners".into()] } else { rules.requesters.clone() },
            max_duration: duration(&rules.max_duration, DEFAULT_MAX, "maxDuration")?.min(HARD_CAP),
            reason,
            review_within: duration(&rules.review_within, DEFAULT_REVIEW, "reviewWithin")?,
        })
    }

    /// Why `reason` is not enough: empty, or not matching `reasonPattern`.
    pub fn reason_refused(&self, reason: &str) -> Option<String> {
        if reason.trim().is_empty() {
            return Some("a reason is required (a ticket or incident id)".into());
        }
        let pattern = self.reason.as_ref().filter(|pattern| !pattern.is_match(reason))?;
        Some(format!("the reason {reason:?} does not match owners.breakGlass.reasonPattern {:?}", pattern.as_str()))
    }

    /// Why `requester` may not open break-glass access on a server owned by `owners`.
    pub fn requester_refused(&self, requester: &str, owners: &[String]) -> Option<String> {
        let wanted = identity(requester);
        if wanted.is_empty() {
            return Some("the requester is not named".into());
        }
        let allowed: Vec<&String> =
            self.requesters.iter().flat_map(|r| if r == "owners" { owners.iter().collect() } else { vec![r] }).collect();
        if allowed.iter().any(|a| identity(a) == wanted) {
            return None;
        }
        let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
        Some(format!(
            "{requester} may not open break-glass access here (owners.breakGlass.requesters: {}){}",
            if names.is_empty() { "nobody".to_string() } else { names.join(", ") },
            crate::model::spelling::did_you_mean(requester, names.iter().copied())
        ))
    }

    /// Why an access lasting from `now` to `ends` is too long (or already over).
    pub fn lifetime_refused(&self, ends: Timestamp, now: Timestamp) -> Option<String> {
        let lasts = ends.duration_since(now);
        if lasts > self.max_duration {
            return Some(format!(
                "it lasts {} from now, longer than owners.breakGlass.maxDuration {}",
                round(lasts),
                round(self.max_duration)
            ));
        }
        (lasts <= SignedDuration::ZERO).then(|| format!("it ended at {ends}"))
    }
}

/// A duration to the nearest minute, as `1h 30m`.
fn round(duration: SignedDuration) -> String {
    let minutes = (duration.as_secs() + 30).div_euclid(60);
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

/// `break_glass_review_late`: a break-glass grant that expired more than `reviewWithin` before
/// `now` and that nobody but its requester has reviewed (`mcp-gitops.io/reviewed-by`).
pub fn late_reviews(state: &DesiredState, now: Timestamp) -> Vec<Diagnostic> {
    let within = Limits::of(state.config.owners.break_glass.as_ref()).map_or(DEFAULT_REVIEW, |limits| limits.review_within);
    let mut found = Vec::new();
    for object in state.of_kind(Kind::Grant).filter(|o| is_break_glass(o)) {
        let Some(due) = ends_at(object).and_then(|ends| ends.checked_add(within).ok()) else { continue };
        let requester = annotation(object, REQUESTER).unwrap_or_default();
        let reviewer = annotation(object, REVIEWED_BY).map(identity).filter(|r| !r.is_empty());
        let self_reviewed = reviewer.as_deref() == Some(identity(requester).as_str());
        if now <= due || (reviewer.is_some() && !self_reviewed) {
            continue;
        }
        let why = if self_reviewed { format!(", and its requester {requester} cannot review it") } else { String::new() };
        let pointer = format!("/metadata/annotations/{}", pointer_segment(BREAK_GLASS));
        found.push(
            Diagnostic::warning(
                Code::BreakGlassReviewLate,
                &object.origin.file,
                object.origin.key_pos(&pointer),
                format!("break-glass grant opened by {requester} ({}): its follow-up review was due by {due}{why}", annotation(object, REASON).unwrap_or_default()),
            )
            .object(&object.id)
            .path(format!("metadata.annotations[{REVIEWED_BY}]"))
            .hint(format!("someone other than the requester reviews what was done with it, then sets the annotation {REVIEWED_BY}: HANDLE (or removes the grant)")),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: Option<&str>, requesters: &[&str]) -> Limits {
        let rules = BreakGlassRules {
            requesters: requesters.iter().map(|r| r.to_string()).collect(),
            max_duration: max.map(String::from),
            reason_pattern: Some("^INC-[0-9]+".into()),
            review_within: None,
        };
        Limits::of(Some(&rules)).expect("readable")
    }

    #[test]
    fn no_configuration_raises_the_lifetime_past_a_day_and_the_defaults_are_an_hour_and_a_day() {
        assert_eq!(limits(Some("30h"), &[]).max_duration, HARD_CAP);
        assert_eq!(limits(Some("90m"), &[]).max_duration, SignedDuration::from_mins(90));
        let defaults = limits(None, &[]);
        assert_eq!((defaults.max_duration, defaults.review_within), (DEFAULT_MAX, DEFAULT_REVIEW));
        assert!(Limits::of(None).is_err(), "no owners.breakGlass, no break-glass");
        let now = Timestamp::UNIX_EPOCH;
        let later = |minutes| now.checked_add(SignedDuration::from_mins(minutes)).expect("in range");
        assert_eq!(defaults.lifetime_refused(later(60), now), None);
        assert!(defaults.lifetime_refused(later(61), now).is_some_and(|why| why.contains("it lasts 1h 1m")));
        assert!(defaults.lifetime_refused(now, now).is_some(), "already over");
    }

    #[test]
    fn owners_stand_for_the_servers_owners_and_names_compare_as_the_forges_do() {
        let owners = ["pay-leads".to_string()];
        let by_default = limits(None, &[]);
        assert_eq!(by_default.requester_refused("@Pay-Leads", &owners), None);
        assert!(by_default.requester_refused("oncall", &owners).is_some_and(|why| why.contains("requesters: pay-leads")));
        assert_eq!(limits(None, &["oncall"]).requester_refused("OnCall", &owners), None);
        assert!(limits(None, &["oncall"]).requester_refused("pay-leads", &owners).is_some(), "owners only when listed");
        assert!(by_default.reason_refused("INC-1").is_none());
        assert!(by_default.reason_refused("urgent").is_some() && by_default.reason_refused("  ").is_some());
    }
}
