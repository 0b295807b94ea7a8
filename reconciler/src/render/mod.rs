//! Renderers: pure functions from a plan, a diagnostic list or a decision to text. The core
//! never prints; the CLI chooses a renderer and writes its output.

pub mod diagnostics;
pub mod escape;
pub mod fleet;
pub mod github;
pub mod gitlab;
pub mod junit;
pub mod markdown;
pub mod review;
pub mod sarif;
pub mod text;

use crate::model::Diagnostic;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The formats a forge reads diagnostics in, shared by `validate` and `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    Github,
    Sarif,
    Gitlab,
    Junit,
}

/// `diagnostics` in a forge's format, with paths under `root` (the repository's place in its git
/// repository); `files` are the files checked (JUnit lists each).
pub fn forge(format: Forge, diagnostics: &[Diagnostic], files: &BTreeMap<String, Arc<str>>, root: &str) -> String {
    match format {
        Forge::Github => github::render(diagnostics, root),
        Forge::Sarif => sarif::render(diagnostics, root),
        Forge::Gitlab => gitlab::render(diagnostics, root),
        Forge::Junit => junit::render(diagnostics, files.keys().map(String::as_str), root),
    }
}

/// `[dev, prod] ` before a diagnostic's message when the repository declares `clusters:` (the
/// clusters whose state has it, docs/fleet.md); empty otherwise.
pub fn in_clusters(d: &Diagnostic) -> String {
    match d.clusters.is_empty() {
        true => String::new(),
        false => format!("[{}] ", d.clusters.join(", ")),
    }
}

/// ANSI colour, used only when writing to a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    pub color: bool,
}

impl Palette {
    pub const PLAIN: Palette = Palette { color: false };

    /// Whether `--color auto` colours: only a terminal that shows colour (`TERM=dumb` does not),
    /// and only when `NO_COLOR` is not set.
    pub fn auto(terminal: bool, no_color: Option<std::ffi::OsString>, term: Option<std::ffi::OsString>) -> bool {
        terminal && no_color.is_none() && term.is_none_or(|term| term != "dumb")
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }

    pub fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_colours_only_a_terminal_that_shows_colour() {
        let set = |value: &str| Some(std::ffi::OsString::from(value));
        assert!(Palette::auto(true, None, set("xterm-256color")));
        assert!(Palette::auto(true, None, None));
        assert!(!Palette::auto(false, None, set("xterm")), "not a terminal");
        assert!(!Palette::auto(true, set("1"), set("xterm")), "NO_COLOR");
        assert!(!Palette::auto(true, None, set("dumb")), "TERM=dumb");
    }
}
