//! The ratchet as a use (`validate::ratchet`): a desired state judged against a base — the
//! `--base` of `plan` and `validate`, a directory or a git revision — which is read and validated
//! only when the desired state has a finding the ratchet could turn into a warning.

use super::Error;
use super::desired::{self, Allowed};
use crate::cache::Cache;
use crate::model::DesiredState;
use crate::source;
use crate::validate::ratchet;
use jiff::Timestamp;
use std::path::Path;

/// `desired` (the repository at `path`) with the built-in policy violations that `base` already
/// has turned into warnings. `base` is a directory (the repository it belongs to) or a git
/// revision of the repository that holds `path`, validated with its own `mcp-gitops.yaml` and
/// policy directories at the same `now`; when it cannot be (a policy directory it names cannot
/// be read), nothing is inherited.
pub fn against_base(
    desired: &mut DesiredState,
    path: &Path,
    base: &str,
    allowed: &Allowed,
    now: Timestamp,
    cache: &Cache,
) -> Result<(), Error> {
    if !ratchet::needs_base(desired) {
        return Ok(());
    }
    let validated = if Path::new(base).is_dir() {
        desired::of_path(&source::root::find(Path::new(base)).path, None, allowed, now, None, cache)
    } else if source::resolve_revision_in(path, base) {
        desired::of_path(path, Some(base), allowed, now, None, cache)
    } else {
        return Err(Error::not_a_base(path, base));
    };
    // The base's own failures are not this change's (a policy directory it names that this run
    // may not read): then nothing is inherited, and every violation stays an error.
    let Ok(validated) = validated else { return Ok(()) };
    ratchet::inherit(desired, &validated, &format!("the base ({base})"));
    super::left_to_the_os(validated);
    Ok(())
}
