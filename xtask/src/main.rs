//! `cargo xtask man [DIR]`: writes the man pages of mcp-gitops and of each of its subcommands
//! (`mcp-gitops.1`, `mcp-gitops-plan.1`, `mcp-gitops-access-explain.1`, ...) to DIR (default
//! `target/man`), from the same clap definitions the binary parses with. Run at build or
//! packaging time; the binary itself carries no man page code.

use clap::CommandFactory;
use std::path::{Path, PathBuf};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["man"] => man(Path::new("target/man")),
        ["man", dir] => man(Path::new(dir)),
        _ => {
            eprintln!("usage: cargo xtask man [DIR]   (writes the man pages to DIR, default target/man)");
            64
        }
    };
    std::process::exit(code);
}

fn man(dir: &Path) -> i32 {
    let mut written = Vec::new();
    let result = std::fs::create_dir_all(dir).and_then(|()| {
        let command = mcp_gitops::cli::args::Cli::command();
        write_pages(&command, "mcp-gitops", "mcp-gitops", dir, &mut written)
    });
    match result {
        Ok(()) => {
            println!("{} man pages in {}", written.len(), dir.display());
            0
        }
        Err(e) => {
            eprintln!("error: cannot write the man pages to {}: {e}", dir.display());
            1
        }
    }
}

/// One page for `command`, named `name` and invoked as `bin`, then one for each subcommand.
fn write_pages(command: &clap::Command, name: &str, bin: &str, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let command = command.clone().name(name.to_string()).bin_name(bin.to_string());
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page)?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), &format!("{bin} {}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
