//! Renderers: pure functions from a plan, a diagnostic list or a decision to text. The core
//! never prints; the CLI chooses a renderer and writes its output.

pub mod diagnostics;
pub mod github;
pub mod gitlab;
pub mod junit;
pub mod markdown;
pub mod sarif;
pub mod text;

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
