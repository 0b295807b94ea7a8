//! Shared by the integration tests: run the real binary from the workspace root.
#![allow(dead_code)]

pub mod cluster;
pub mod daemon;
pub mod git_servers;
pub mod gpg;
pub mod operator;
pub mod properties;

use assert_cmd::Command;
use std::path::PathBuf;

/// A fixed clock, so that expiry checks and access decisions do not move with the date.
pub const NOW: &str = "2026-11-25T00:00:00Z";

/// Installs the Debian packages a test needs when they are missing (`tests/packages.sh`, one
/// installer at a time): `cargo test --workspace` alone must pass on a fresh machine.
pub fn install(packages: &[&str]) {
    let status = std::process::Command::new("bash").arg(root().join("tests/packages.sh")).args(packages).status();
    assert!(status.is_ok_and(|s| s.success()), "tests/packages.sh {packages:?} failed");
}

/// The tests' Python with the PyPI packages `pins` (`NAME==VERSION`) installed when missing: a
/// virtual environment under the cache, made by `tests/packages.sh --pip`.
pub fn python(pins: &[&str]) -> PathBuf {
    let out = std::process::Command::new("bash").arg(root().join("tests/packages.sh")).arg("--pip").args(pins).output().expect("bash runs");
    assert!(out.status.success(), "tests/packages.sh --pip {pins:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last().expect("the python path").trim())
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where the binary keeps its cache in tests (`--cache-dir`): under the target directory, not
/// the user's.
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache")
}

pub fn mcp_gitops() -> Command {
    let mut cmd = Command::cargo_bin("mcp-gitops").expect("binary is built");
    cmd.current_dir(root()).env("NO_COLOR", "1").env("MCP_GITOPS_CACHE_DIR", cache_dir());
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

/// Copies the directory `from` to `to`, sub-directories included.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// Runs the binary under an address-space cap (`ulimit -v`) and a wall-clock bound: it fails
/// the test when the binary panics, is killed (out of memory) or runs past `limit`.
pub fn run_bounded(args: &[&str], env: &[(&str, &str)], memory_mib: u64, limit: std::time::Duration) -> Run {
    use std::io::Read;
    let mut child = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -v {}; exec \"$@\"", memory_mib * 1024))
        .arg("bash")
        .arg(env!("CARGO_BIN_EXE_mcp-gitops"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env("MCP_GITOPS_CACHE_DIR", cache_dir())
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("mcp-gitops {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let run =
        Run { code: status.code().unwrap_or(-1), stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() };
    assert!(!run.stderr.contains("panicked"), "mcp-gitops {args:?} panicked:\n{}", run.stderr);
    assert!(run.code >= 0, "mcp-gitops {args:?} was killed by a signal (over {memory_mib} MiB?):\n{}", run.stderr);
    run
}

/// The git CLI in `dir`, as the platform team, with SSH signing (`gpg.format=ssh`) and `config`
/// (`key=value` pairs) on top; the person's own git configuration is ignored. Returns stdout.
pub fn git(dir: &std::path::Path, config: &[String], args: &[&str]) -> String {
    let mut command = std::process::Command::new("git");
    command.arg("-C").arg(dir).args(["-c", "user.name=Platform Team", "-c", "user.email=platform@fernhill.io", "-c", "gpg.format=ssh"]);
    for pair in config {
        command.arg("-c").arg(pair);
    }
    let out = command.args(args).env("GIT_CONFIG_GLOBAL", "/dev/null").env("GIT_CONFIG_NOSYSTEM", "1").output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
