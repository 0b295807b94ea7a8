//! Feeds one file's bytes to the repository loader (`load::load`) as a manifest, as `.mcp` metadata and as `mcp-gitops.yaml`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gitops::load;
use mcp_gitops::source::{Snapshot, SourceFile};

/// Where the file is placed: each path takes a different road through the loader.
const PATHS: &[&str] = &["team/grants.yaml", "team/.mcp/servers.yaml", load::CONFIG_FILE];

fuzz_target!(|data: &[u8]| {
    // YAML ends a line at CR, LF or CRLF; a diagnostic never points past the last line.
    let breaks = data.iter().enumerate().filter(|&(i, &b)| b == b'\n' || (b == b'\r' && data.get(i + 1) != Some(&b'\n'))).count();
    for path in PATHS {
        let snapshot = Snapshot { files: vec![SourceFile { path: path.to_string(), bytes: data.to_vec() }], ..Snapshot::default() };
        let loaded = load::load(snapshot);
        for d in &loaded.state.diagnostics {
            assert!(d.line >= 1 && d.column >= 1, "a diagnostic without a position: {d:?}");
            assert!(d.line <= breaks + 1, "a diagnostic past the last line ({} breaks): {d:?}", breaks);
        }
    }
});
