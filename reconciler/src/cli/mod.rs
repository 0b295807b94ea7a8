//! The command line: parses arguments, runs what the command needs of the pipeline
//! (`crate::pipeline`), picks a renderer and maps the outcome to an exit code (0 ok, 1 error,
//! 2 changes, 64 usage).

pub mod args;
mod commands;

use crate::apply::{Refusal, wait::TimedOut};
use crate::daemon::DaemonError;
use crate::pipeline::{self, access::AccessError, apply::ReviewError, plan::SavedPlanError};
use crate::source::SourceError;
use crate::trust::TrustError;
use args::{Cli, Color};
use clap::Parser;
use std::io::IsTerminal;

pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_CHANGES: i32 = 2;
pub const EXIT_USAGE: i32 = 64;

/// A failure to run a command (not a finding about the repository): printed as one message.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

/// The library's failures to run are printed as they say themselves.
macro_rules! failed_from {
    ($($error:ty),*) => {$(
        impl From<$error> for CliError {
            fn from(e: $error) -> Self {
                CliError::Failed(e.to_string())
            }
        }
    )*};
}

failed_from!(
    SourceError,
    pipeline::Error,
    ReviewError,
    SavedPlanError,
    Refusal,
    TimedOut,
    TrustError,
    serde_json::Error,
    DaemonError,
    crate::scaffold::ScaffoldError,
    crate::scaffold::break_glass::BreakGlassError
);

/// The library's failures that tell a mistake in the command line (exit 64) from a failure to
/// run (exit 1).
macro_rules! usage_or_failed_from {
    ($($error:ty),*) => {$(
        impl From<$error> for CliError {
            fn from(e: $error) -> Self {
                if e.is_usage() { CliError::Usage(e.to_string()) } else { CliError::Failed(e.to_string()) }
            }
        }
    )*};
}

usage_or_failed_from!(AccessError, crate::install::InstallError, pipeline::review::AccessReviewError, crate::fleet::FleetError);

/// Runs the command line and returns the process exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            crate::render::Palette::auto(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR"), std::env::var_os("TERM"))
        }
    };
    let allowed = pipeline::desired::Allowed::new(&cli.allow_policy_dir);
    match commands::dispatch(cli.command, crate::render::Palette { color }, &allowed) {
        Ok(code) => code,
        Err(CliError::Usage(message)) => {
            eprintln!("error: {}", crate::render::escape::terminal_report(&message, false));
            EXIT_USAGE
        }
        Err(CliError::Failed(message)) => {
            eprintln!("error: {}", crate::render::escape::terminal_report(&message, false));
            EXIT_ERROR
        }
    }
}

usage_or_failed_from!(pipeline::fleet::SliceError);
