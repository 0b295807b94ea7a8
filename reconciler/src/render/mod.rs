//! Renderers: pure functions from a plan, a diagnostic list or a decision to text. The core
//! never prints; the CLI chooses a renderer and writes its output.

pub mod diagnostics;
pub mod escape;
pub mod github;
pub mod gitlab;
pub mod junit;
pub mod markdown;
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

/// ANSI colour, used only when writing to a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    pub color: bool,
}

impl Palette {
    pub const PLAIN: Palette = Palette { color: false };

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
