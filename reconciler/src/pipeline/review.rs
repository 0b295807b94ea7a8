//! `access review` as a use: the repository's desired state, the audit records summed up over
//! the window, and the verdicts (`crate::review`). Nothing here prints.

use super::desired::{self, Allowed};
use crate::cache::Cache;
use crate::review::audit::{AuditError, Window};
use crate::review::source::AuditSource;
use crate::review::write::{self, WriteError, Written};
use crate::review::{self, Review};
use crate::source::SourceError;
use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};
use std::path::Path;

/// Why a review cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum AccessReviewError {
    #[error("--unused-for {0:?} is not a duration (e.g. 30d, 90d, 12h)")]
    BadWindow(String),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("the review needs the repository's git history to tell a grant's age: {0}")]
    History(SourceError),
    #[error(transparent)]
    Pipeline(#[from] super::Error),
    #[error("--write: {0}")]
    Write(#[from] WriteError),
}

impl AccessReviewError {
    pub fn is_usage(&self) -> bool {
        matches!(self, AccessReviewError::BadWindow(_) | AccessReviewError::Audit(AuditError::BadSource(_)))
    }
}

/// The window that ends at `at` and reaches back `unused_for` (`30d`: a day is 24 hours).
pub fn window(unused_for: &str, at: Timestamp) -> Result<Window, AccessReviewError> {
    let bad = || AccessReviewError::BadWindow(unused_for.to_string());
    let span: Span = unused_for.parse().map_err(|_| bad())?;
    let length: SignedDuration = span.to_duration(SpanRelativeTo::days_are_24_hours()).map_err(|_| bad())?;
    if length.is_negative() || length.is_zero() {
        return Err(bad());
    }
    let start = at.checked_sub(length).map_err(|_| bad())?;
    Ok(Window { start, end: at })
}

/// Reviews the repository at `path` by the records of `source` over `unused_for` up to `at`;
/// with `write`, commits its proposals (`review::write`).
pub fn access_review(
    path: &Path,
    source: &AuditSource,
    unused_for: &str,
    at: Timestamp,
    allowed: &Allowed,
    write: bool,
) -> Result<(Review, Option<Written>), AccessReviewError> {
    let window = window(unused_for, at)?;
    let state = desired::of_path(path, None, allowed, at, None, &Cache::off())?;
    let usage = source.read(window)?;
    let review = review::review(&state, path, &usage, window, unused_for).map_err(AccessReviewError::History)?;
    let written = if write { Some(write::commit(path, &state, &review)?) } else { None };
    Ok((review, written))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_reaches_back_in_days_of_24_hours_and_is_never_empty() {
        let at: Timestamp = "2026-11-25T00:00:00Z".parse().unwrap();
        assert_eq!(window("30d", at).unwrap().start, "2026-10-26T00:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(window("12h", at).unwrap().start, "2026-11-24T12:00:00Z".parse::<Timestamp>().unwrap());
        for bad in ["0d", "-3d", "a month", ""] {
            assert!(matches!(window(bad, at), Err(AccessReviewError::BadWindow(_))), "{bad}");
        }
    }
}
