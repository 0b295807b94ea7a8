//! Build and packaging tasks of mcp-gitops, run as `cargo xtask TASK` (an alias in
//! .cargo/config.toml). The binary itself carries none of this code.
//!
//! - `cargo xtask man [DIR]`: the man pages (man.rs).
//! - `cargo xtask dist [--out DIR]`: the release artifacts (dist.rs, sbom.rs).
//!
//! Exit codes as the binary's: 0 done, 1 failed, 64 usage.

mod dist;
mod man;
mod sbom;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", about = "Build and packaging tasks of mcp-gitops")]
struct Xtask {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Write the man pages of mcp-gitops and of each of its subcommands.
    Man {
        /// Where the pages go.
        #[arg(default_value = "target/man")]
        dir: PathBuf,
    },
    /// Build the release artifacts: archive, SHA256SUMS, CycloneDX SBOM, image as an OCI archive.
    Dist(dist::DistArgs),
}

fn main() {
    let xtask = match Xtask::try_parse() {
        Ok(xtask) => xtask,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 64 } else { 0 });
        }
    };
    let result = match xtask.task {
        Task::Man { dir } => man::write(&dir).map(|pages| println!("{} man pages in {}", pages.len(), dir.display())),
        Task::Dist(args) => dist::run(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
