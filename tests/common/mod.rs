//! Shared by the integration tests: run the real binary from the workspace root.
#![allow(dead_code)]

pub mod cluster;
pub mod daemon;
pub mod git_servers;
pub mod operator;

use assert_cmd::Command;
use std::path::PathBuf;

/// A fixed clock, so that expiry checks and access decisions do not move with the date.
pub const NOW: &str = "2026-11-25T00:00:00Z";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn mcp_gitops() -> Command {
    let mut cmd = Command::cargo_bin("mcp-gitops").expect("binary is built");
    cmd.current_dir(root()).env("NO_COLOR", "1");
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(args: &[&str]) -> Run {
    let output = mcp_gitops().args(args).output().expect("binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}
