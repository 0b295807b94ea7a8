//! `plan --base` without `--now`, on a real git repository: the work tree's validation is
//! recorded with the window of clocks it holds for (until the next expiry instant in the tree,
//! `validate::clock`), so a second run on the running clock takes it from the cache; a clock
//! moved past an expiry (`--now`, the only way a test can move it) validates again and plans what
//! a run with no cache plans. A hit is seen from outside: a run that only reads `trees.pack` does
//! not write it again.

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
