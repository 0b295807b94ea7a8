//! The man pages of mcp-gitops and of each of its subcommands (`mcp-gitops.1`,
//! `mcp-gitops-plan.1`, `mcp-gitops-access-explain.1`, ...), rendered from the same clap
//! definitions the binary parses with.

use anyhow::Context;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

/// Each page as its file name and its roff text.
pub fn pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut pages = Vec::new();
    render(&mcp_gitops::cli::args::Cli::command(), "mcp-gitops", "mcp-gitops", &mut pages)?;
    Ok(pages)
}

/// Writes every page to `dir`; returns their paths.
pub fn write(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let write_all = || -> anyhow::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        for (name, page) in pages()? {
            let path = dir.join(name);
            std::fs::write(&path, page)?;
            written.push(path);
        }
        Ok(written)
    };
    write_all().with_context(|| format!("cannot write the man pages to {}", dir.display()))
}

/// One page for `command`, named `name` and invoked as `bin`, then one for each subcommand.
fn render(command: &clap::Command, name: &str, bin: &str, pages: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    let command = command.clone().name(name.to_string()).bin_name(bin.to_string());
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    pages.push((format!("{name}.1"), page));
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        render(sub, &format!("{name}-{}", sub.get_name()), &format!("{bin} {}", sub.get_name()), pages)?;
    }
    Ok(())
}
