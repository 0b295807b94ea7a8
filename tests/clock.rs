//! `plan --base` without `--now`, on a real git repository: the work tree's validation is
//! recorded with the window of clocks it holds for (until the next expiry instant in the tree,
//! `validate::clock`), so a second run on the running clock takes it from the cache; a clock
//! moved past an expiry (`--now`, the only way a test can move it) validates again and plans what
//! a run with no cache plans. A hit is seen from outside: a run that only reads `trees.pack` does
//! not write it again. With the default policies that read `now` on, the window runs between
//! the instants their comparisons flip at (`expires-at - 30 days`), so the second run still hits.

mod common;

use std::path::Path;
use std::time::SystemTime;

/// The expiry of the grant the change touches, years after the clock these tests run on.
const EXPIRES: &str = "2031-01-01T00:00:00Z";

fn plan(dir: &Path, cache: &Path, at: Option<&str>) -> (i32, String) {
    let (dir, cache) = (dir.to_string_lossy(), cache.to_string_lossy());
    let mut args = vec!["plan", &dir, "--base", "HEAD", "--format", "json", "--detailed-exitcode", "--cache-dir", &cache];
    if let Some(at) = at {
        args.extend(["--now", at]);
    }
    let run = common::run(&args);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    (run.code, run.stdout)
}

fn plan_cold(dir: &Path, at: &str) -> (i32, String) {
    let dir = dir.to_string_lossy();
    let run = common::run(&["plan", &dir, "--base", "HEAD", "--format", "json", "--detailed-exitcode", "--no-cache", "--now", at]);
    (run.code, run.stdout)
}

/// The one `trees.pack` under `cache`, with when it was last written.
fn trees_pack(cache: &Path) -> (Vec<u8>, SystemTime) {
    let folder = std::fs::read_dir(cache).expect("cache folder").flatten().next().expect("a repository's folder").path();
    let pack = folder.join("trees.pack");
    (std::fs::read(&pack).expect("trees.pack"), std::fs::metadata(&pack).and_then(|m| m.modified()).expect("mtime"))
}

/// `examples/platform` committed, then a time-bound grant's trust changed in the work tree.
fn repository(dir: &Path) {
    common::copy_dir(&common::root().join("examples/platform"), dir);
    let grant = dir.join("teams/payments/grants/refund-desk.yaml");
    let text = std::fs::read_to_string(&grant).expect("grant");
    let annotated = text.replacen("metadata:\n", &format!("metadata:\n  annotations:\n    mcp-gitops.io/expires-at: \"{EXPIRES}\"\n"), 1);
    std::fs::write(&grant, &annotated).expect("write");
    common::git(dir, &[], &["init", "-q", "-b", "main"]);
    common::git(dir, &[], &["add", "-A"]);
    common::git(dir, &[], &["commit", "-q", "--no-gpg-sign", "-m", "platform"]);
    assert!(annotated.contains("maxTrust: medium"), "{annotated}");
    std::fs::write(&grant, annotated.replace("maxTrust: medium", "maxTrust: low")).expect("write");
}

#[test]
fn a_plan_on_the_running_clock_hits_until_the_next_expiry() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, cache) = (tmp.path().join("platform"), tmp.path().join("cache"));
    repository(&dir);

    let first = plan(&dir, &cache, None);
    assert_eq!(first.0, 2, "a change: {}", first.1);
    let plan_json = common::json(&first.1);
    assert_eq!(plan_json["expiring"][0]["grant"], "mcp-team-payments/refund-desk", "{:#}", plan_json["expiring"]);
    let (recorded, written) = trees_pack(&cache);

    let second = plan(&dir, &cache, None);
    assert_eq!(second, first, "the same clock window plans alike");
    assert!(trees_pack(&cache) == (recorded.clone(), written), "the second run took the validation from trees.pack");

    // At the expiry and after it the grant is expired: the recorded validation does not hold.
    for at in [EXPIRES, "2031-01-01T00:00:00.000000001Z", "2031-06-01T00:00:00Z"] {
        let moved = plan(&dir, &cache, Some(at));
        assert_eq!(moved, plan_cold(&dir, at), "--now {at} plans as a run with no cache");
        assert!(moved.1.contains("grant_expired"), "{}", moved.1);
        assert!(trees_pack(&cache).0 != recorded, "--now {at}: validated again and recorded");
    }
    // Back in the first run's window (which ends at the first session's expiry, 2030-01-01):
    // validated again (the pack holds the last window only), recorded as the first run did.
    let back = "2029-12-31T00:00:00Z";
    assert_eq!(plan(&dir, &cache, Some(back)), plan_cold(&dir, back));
    assert!(trees_pack(&cache).0 == recorded, "the first run's window and validation again");
}

/// `examples/platform` with the default policies on, as a repository that follows them: every
/// grant time-bound (`expires`), every session ending within the day (`sessions_end`); committed,
/// then a grant's trust changed in the work tree.
fn guarded_repository(dir: &Path, expires: &str, sessions_end: &str) {
    common::copy_dir(&common::root().join("examples/platform"), dir);
    let config = dir.join("mcp-gitops.yaml");
    let text = std::fs::read_to_string(&config).expect("config");
    let on = text.replace("policies:\n  disabled: [sessions-expire-within-a-day, destructive-grants-expire]\n", "");
    assert_ne!(on, text, "the example switches the two policies off");
    std::fs::write(&config, on).expect("write");
    for team in ["payments", "support"] {
        for kind in ["grants", "sessions"] {
            for file in std::fs::read_dir(dir.join("teams").join(team).join(kind)).expect("folder").flatten() {
                let text = std::fs::read_to_string(file.path()).expect("file");
                let text = if kind == "grants" {
                    text.replace("metadata:\n", &format!("metadata:\n  annotations:\n    mcp-gitops.io/expires-at: \"{expires}\"\n"))
                } else {
                    text.lines()
                        .map(|line| match line.split_once("expiresAt: ") {
                            Some((indent, _)) => format!("{indent}expiresAt: \"{sessions_end}\"\n"),
                            None => format!("{line}\n"),
                        })
                        .collect()
                };
                std::fs::write(file.path(), text).expect("write");
            }
        }
    }
    common::git(dir, &[], &["init", "-q", "-b", "main"]);
    common::git(dir, &[], &["add", "-A"]);
    common::git(dir, &[], &["commit", "-q", "--no-gpg-sign", "-m", "platform"]);
    let grant = dir.join("teams/payments/grants/refund-desk.yaml");
    let text = std::fs::read_to_string(&grant).expect("grant");
    assert!(text.contains("maxTrust: medium"), "{text}");
    std::fs::write(&grant, text.replace("maxTrust: medium", "maxTrust: low")).expect("write");
}

#[test]
fn with_the_policies_that_read_now_a_plan_on_the_running_clock_still_hits() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, cache) = (tmp.path().join("platform"), tmp.path().join("cache"));
    let second = jiff::Timestamp::now().as_second();
    let at = |seconds: i64| jiff::Timestamp::from_second(second + seconds).expect("a time");
    // Grants end in 10 days, sessions in 20 hours: destructive-grants-expire holds from 20 days
    // ago on (expires-at - 30 days), sessions-expire-within-a-day from 4 hours ago on.
    let (expires, sessions_end) = (at(10 * 86_400), at(20 * 3_600));
    guarded_repository(&dir, &expires.to_string(), &sessions_end.to_string());

    let first = plan(&dir, &cache, None);
    assert_eq!(first.0, 2, "a change, and no policy finding: {}", first.1);
    assert!(!first.1.contains("destructive-grants-expire") && !first.1.contains("sessions-expire-within-a-day"), "{}", first.1);
    let (recorded, written) = trees_pack(&cache);
    let again = plan(&dir, &cache, None);
    assert_eq!(again, first, "the same clock window plans alike");
    assert!(trees_pack(&cache) == (recorded.clone(), written), "the second run took the validation from trees.pack");

    // Around the instant destructive-grants-expire flips at, as a run with no cache plans.
    let flip = expires.checked_sub(jiff::SignedDuration::from_hours(30 * 24)).expect("a time");
    for moved in [
        flip.checked_sub(jiff::SignedDuration::from_secs(1)).expect("t"),
        flip,
        flip.checked_add(jiff::SignedDuration::from_nanos(1)).expect("t"),
    ] {
        let text = moved.to_string();
        let planned = plan(&dir, &cache, Some(&text));
        assert_eq!(planned, plan_cold(&dir, &text), "--now {text} plans as a run with no cache");
        assert_eq!(planned.1.contains("destructive-grants-expire"), moved < flip, "--now {text}: {}", planned.1);
    }
}
