//! What a changed grant's expiry takes away (`expiring[]` of a plan), on a real git repository
//! where every grant is time-bound, planned on the running clock as CI does. The expiry of the
//! changed grant takes away the access of every grant that expires by then, on every server: the
//! first plan of a tree judges them all and records the result with the tree's validation; a
//! second plan of the same tree takes it from the cache (`trees.pack` is only read, not written
//! again) and loads the changed server's objects alone. Every plan must print what
//! `--no-incremental` prints, in JSON and Markdown; an edit to a grant of another server that
//! expires earlier, or a clock moved past its expiry, must be judged again.

mod common;

use std::path::Path;
use std::time::SystemTime;

/// The support team's grants expire first, the payments team's (the changed grant's) later:
/// the payments grant's expiry takes the support server's access away too.
const EARLY: &str = "2030-06-01T00:00:00Z";
const LATE: &str = "2031-01-01T00:00:00Z";

fn plan(dir: &Path, extra: &[&str]) -> (i32, String) {
    let dir = dir.to_string_lossy();
    let mut args = vec!["plan", &dir, "--base", "HEAD", "--detailed-exitcode"];
    args.extend(extra);
    let run = common::run(&args);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    (run.code, run.stdout)
}

/// The plan with the cache in `cache`, and with `--no-incremental` (every server judged, no
/// cache), in `format`.
fn both(dir: &Path, cache: &Path, format: &str, now: Option<&str>) -> ((i32, String), (i32, String)) {
    let cache = cache.to_string_lossy();
    let mut usual = vec!["--format", format, "--cache-dir", &cache];
    let mut cold = vec!["--format", format, "--no-incremental", "--no-cache"];
    if let Some(now) = now {
        usual.extend(["--now", now]);
        cold.extend(["--now", now]);
    }
    (plan(dir, &usual), plan(dir, &cold))
}

/// The one `trees.pack` under `cache`, with when it was last written.
fn trees_pack(cache: &Path) -> (Vec<u8>, SystemTime) {
    let folder = std::fs::read_dir(cache).expect("cache folder").flatten().next().expect("a repository's folder").path();
    let pack = folder.join("trees.pack");
    (std::fs::read(&pack).expect("trees.pack"), std::fs::metadata(&pack).and_then(|m| m.modified()).expect("mtime"))
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "{from:?} in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write");
}

/// `examples/platform` with every grant time-bound (support's `EARLY`, payments' `LATE`),
/// committed; then the refund desk's grant (payments) lowered to trust low in the work tree.
fn repository(dir: &Path) {
    common::copy_dir(&common::root().join("examples/platform"), dir);
    for (team, expires) in [("payments", LATE), ("support", EARLY)] {
        for file in std::fs::read_dir(dir.join("teams").join(team).join("grants")).expect("grants").flatten() {
            let annotation = format!("metadata:\n  annotations:\n    mcp-gitops.io/expires-at: \"{expires}\"\n");
            edit(&file.path(), "metadata:\n", &annotation);
        }
    }
    common::git(dir, &[], &["init", "-q", "-b", "main"]);
    common::git(dir, &[], &["add", "-A"]);
    common::git(dir, &[], &["commit", "-q", "--no-gpg-sign", "-m", "platform"]);
    edit(&dir.join("teams/payments/grants/refund-desk.yaml"), "maxTrust: medium", "maxTrust: low");
}

/// The servers named by what the expiry of `grant` takes away in a JSON plan.
fn taken_from(plan: &str, grant: &str) -> Vec<String> {
    let plan = common::json(plan);
    let expiring = plan["expiring"].as_array().expect("expiring[]");
    let entry = expiring.iter().find(|e| e["grant"] == grant).unwrap_or_else(|| panic!("{grant} in {expiring:#?}"));
    let mut servers: Vec<String> = entry["access_changes"]
        .as_array()
        .expect("access_changes")
        .iter()
        .map(|c| c["server"].as_str().expect("server").to_string())
        .collect();
    servers.sort();
    servers.dedup();
    servers
}

#[test]
fn a_second_plan_takes_what_the_expiry_takes_away_from_the_cache() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, cache) = (tmp.path().join("platform"), tmp.path().join("cache"));
    repository(&dir);

    let (first, cold) = both(&dir, &cache, "json", None);
    assert_eq!(first.0, 2, "a change: {}", first.1);
    assert_eq!(first, cold, "the first plan prints what --no-incremental prints");
    let servers = taken_from(&first.1, "mcp-team-payments/refund-desk");
    assert!(servers.contains(&"mcp-team-support/ticketing-mcp".to_string()), "the earlier grants of another server count: {servers:?}");
    assert!(servers.contains(&"mcp-team-payments/payments-mcp".to_string()), "{servers:?}");
    let recorded = trees_pack(&cache);

    let (second, cold) = both(&dir, &cache, "json", None);
    assert_eq!(second, first, "the same tree on the running clock plans alike");
    assert_eq!(second, cold);
    let (markdown, cold) = both(&dir, &cache, "markdown", None);
    assert_eq!(markdown, cold, "the Markdown comment too");
    assert!(markdown.1.contains("ticketing-mcp"), "{}", markdown.1);
    assert!(trees_pack(&cache) == recorded, "the later runs took the validation and what the expiry takes away from trees.pack");
}

#[test]
fn an_earlier_grant_of_another_server_edited_or_expired_is_judged_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, cache) = (tmp.path().join("platform"), tmp.path().join("cache"));
    repository(&dir);
    let (first, _) = both(&dir, &cache, "json", None);
    let before = common::json(&first.1)["expiring"].clone();

    // The support lead's grant (support, expiring first) loses its destructive tools: the payments
    // grant's expiry takes less away on the support server.
    let leads = dir.join("teams/support/grants/support-leads.yaml");
    edit(&leads, "[read, write, destructive]", "[read, write]");
    for format in ["json", "markdown"] {
        let (usual, cold) = both(&dir, &cache, format, None);
        assert_eq!(usual, cold, "{format}: the edited tree is judged again");
    }
    let (edited, _) = both(&dir, &cache, "json", None);
    let after = common::json(&edited.1)["expiring"].clone();
    let refund = |expiring: &serde_json::Value| {
        expiring.as_array().and_then(|e| e.iter().find(|e| e["grant"] == "mcp-team-payments/refund-desk")).cloned()
    };
    assert_ne!(refund(&after), refund(&before), "what the refund desk's expiry takes away changed with another server's grant");

    // Past the support grants' expiry (and before the payments ones'), on the recorded tree:
    // they are expired already, so the refund desk's expiry takes nothing from their server.
    std::fs::write(&leads, std::fs::read_to_string(&leads).expect("read").replace("[read, write]", "[read, write, destructive]"))
        .expect("write");
    let later = "2030-07-01T00:00:00Z";
    for format in ["json", "markdown"] {
        let (usual, cold) = both(&dir, &cache, format, Some(later));
        assert_eq!(usual, cold, "{format}: --now {later} plans as a run with no cache");
    }
    let (moved, _) = both(&dir, &cache, "json", Some(later));
    assert_eq!(taken_from(&moved.1, "mcp-team-payments/refund-desk"), ["mcp-team-payments/payments-mcp"]);
}
