//! What the repository under review (or a live server's answer) wrote, escaped for the place a
//! person or a parser reads it: one function per output context, and every renderer passes
//! every such value through the one for its context. Names made of ordinary characters come
//! out unchanged, so only hostile input reads differently. Pure; docs/ci.md lists the rules.

use std::fmt::Write;

/// A character that makes a terminal, or a Markdown or XML reader, do something rather than
/// show it: C0 and C1 controls, DEL, the Unicode line and paragraph separators and the
/// bidirectional overrides that reorder what a reader sees. A tab only moves to the next stop:
/// it stays, as it always did.
fn is_control(c: char) -> bool {
    (c.is_control() && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A control character as text: `\x1b`, `\u{2028}`.
fn push_visible(out: &mut String, c: char) {
    if (c as u32) < 0x100 {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

/// For a terminal: every control character shown as `\x1b`-style text, so that nothing from
/// the repository can move the cursor, clear the screen, retitle the window or start a line.
/// (The palette's own colour codes are added around the escaped text, not through it.)
pub fn terminal(text: &str) -> String {
    if !text.chars().any(is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_control(c) { push_visible(&mut out, c) } else { out.push(c) }
    }
    out
}

/// A text of several lines for a terminal (a diff): its line breaks kept, everything else as
/// [`terminal`].
pub fn terminal_lines(text: &str) -> String {
    text.split('\n').map(terminal).collect::<Vec<_>>().join("\n")
}

/// The last guard before a terminal, over a whole text report: every control character but a
/// line break or a tab shown as [`terminal`] shows it; with `color`, the palette's own colour
/// codes (and only those) kept. Fields are escaped where they are written (a line break in a
/// name included); this catches any path that forgot.
pub fn terminal_report(text: &str, color: bool) -> String {
    const PALETTE: [&str; 6] = ["\x1b[0m", "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[32m", "\x1b[33m"];
    if !text.chars().any(|c| is_control(c) && c != '\n') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(code) = PALETTE.iter().find(|code| color && rest.starts_with(**code)) {
            out.push_str(code);
            rest = &rest[code.len()..];
            continue;
        }
        if is_control(c) && c != '\n' {
            push_visible(&mut out, c)
        } else {
            out.push(c)
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Markdown (and GitHub's flavour of it): the line ending CommonMark reads (`\r`, `\n`) and the
/// Unicode separators become a space, so that no value starts a line or a block of its own.
fn one_line(c: char) -> Option<char> {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{85}').then_some(' ')
}

/// Inline Markdown text (a table cell, a sentence, a note): on one line; no HTML (`<`, `>`, and
/// `&` where it would start an entity, as entities); no code span or escape of its own (`` ` ``,
/// `\` escaped); no image; no `@user`/`@org/team` mention and no `#1` issue link (a zero-width
/// joiner after the `@` or `#`). A table's `|` is the cell's business: see [`markdown_cell`].
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut previous: Option<char> = None;
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        match c {
            _ if one_line(c).is_some() => out.push(' '),
            _ if is_control(c) => push_visible(&mut out, c),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' if next.is_some_and(|n| n == '#' || n.is_alphanumeric()) => out.push_str("&amp;"),
            '`' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '[' if previous == Some('!') => out.push_str("\\["),
            // GitHub links `@name` after a non-word character, and `#1`, `repo#1`, `GH-1` anywhere.
            '@' if !previous.is_some_and(|p| p.is_alphanumeric()) && next.is_some_and(|n| n.is_alphanumeric() || n == '-') => {
                out.push_str("@\u{200d}")
            }
            '#' if next.is_some_and(|n| n.is_alphanumeric()) => out.push_str("#\u{200d}"),
            '-' if previous.is_some_and(|p| p.eq_ignore_ascii_case(&'h')) && next.is_some_and(|n| n.is_ascii_digit()) => {
                out.push_str("-\u{200d}")
            }
            _ => out.push(c),
        }
        previous = Some(c);
    }
    out
}

/// A name as a Markdown code span: a fence of one backtick more than the longest run inside, so
/// that a backtick in the name cannot close it; on one line; control characters visible; the
/// `<!--` of a comment (which a code span shows, but a script reading the raw comment sees)
/// broken by a zero-width space. `payments/refund` stays `` `payments/refund` ``.
pub fn markdown_code(text: &str) -> String {
    let mut inner = String::with_capacity(text.len());
    for c in text.chars() {
        match one_line(c) {
            Some(space) => inner.push(space),
            None if is_control(c) => push_visible(&mut inner, c),
            None => inner.push(c),
        }
    }
    let inner = break_comments(&inner);
    let fence = "`".repeat(longest_run(&inner, '`') + 1);
    // CommonMark strips one space from each end when both ends have one; a backtick at an end
    // would join the fence.
    let pad = inner.starts_with('`') || inner.ends_with('`') || (inner.starts_with(' ') && inner.ends_with(' ') && inner.trim() != "");
    let pad = if pad { " " } else { "" };
    format!("{fence}{pad}{inner}{pad}{fence}")
}

/// A Markdown table cell made of [`markdown`] text and [`markdown_code`] spans: its `|` escaped
/// (GitHub reads `\|` as part of the cell, inside code spans too).
pub fn markdown_cell(cell: &str) -> String {
    cell.replace('|', "\\|")
}

/// Text inside raw HTML (the `<summary>` of a collapsible block): entities for `<`, `>`, `&` and
/// quotes, on one line (a blank line would end the HTML block and start Markdown), mentions
/// broken as in [`markdown`].
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        match c {
            _ if one_line(c).is_some() => out.push(' '),
            _ if is_control(c) => push_visible(&mut out, c),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '@' | '#' if next.is_some_and(|n| n.is_alphanumeric()) => {
                out.push(c);
                out.push('\u{200d}');
            }
            _ => out.push(c),
        }
    }
    out
}

/// The body of a fenced code block (a diff) and the fence for it: longer than any backtick run
/// inside, so that no line of the body closes it; a `\r` (a line ending to CommonMark) and other
/// control characters visible; comments' `<!--` broken as in [`markdown_code`].
pub fn markdown_fenced(body: &str) -> (String, String) {
    let body: String = body.chars().map(|c| if c != '\n' && is_control(c) { visible_char(c) } else { c.to_string() }).collect();
    let body = break_comments(&body);
    let fence = "`".repeat((longest_run(&body, '`') + 1).max(3));
    (fence, body)
}

fn visible_char(c: char) -> String {
    let mut out = String::new();
    push_visible(&mut out, c);
    out
}

fn break_comments(text: &str) -> String {
    text.replace("<!--", "<\u{200b}!--")
}

fn longest_run(text: &str, of: char) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in text.chars() {
        run = if c == of { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// Text for XML 1.0 (JUnit): characters XML cannot hold at all (most C0 controls, U+FFFE,
/// U+FFFF; a lone surrogate cannot reach a `String`, a non-UTF-8 file name arrives as U+FFFD)
/// shown as `\x1b`-style text. The XML writer escapes `<`, `&` and quotes itself.
pub fn xml(text: &str) -> String {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
    if text.chars().all(allowed) {
        return text.to_string();
    }
    text.chars().map(|c| if allowed(c) { c.to_string() } else { visible_char(c) }).collect()
}

/// A repository path as a URI reference (SARIF's `artifactLocation.uri`): each segment
/// percent-encoded (RFC 3986), so `%2F` in a file name stays a name and not a `/`.
pub fn uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => out.push(byte as char),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_come_out_unchanged() {
        for name in ["payments-mcp/refund_invoice", "dana.whitfield@fernhill.io", "teams/payments/grants.yaml", "A & B", "a\tb"] {
            assert_eq!(terminal(name), name);
            assert_eq!(markdown(name), name);
            assert_eq!(markdown_code(name), format!("`{name}`"));
            assert_eq!(xml(name), name);
        }
        assert_eq!(uri_path("teams/payments/grants.yaml"), "teams/payments/grants.yaml");
    }

    #[test]
    fn terminal_shows_controls() {
        assert_eq!(terminal("a\x1b]0;owned\x07b\r\n\u{9b}2J"), "a\\x1b]0;owned\\x07b\\x0d\\x0a\\x9b2J");
    }

    #[test]
    fn a_report_keeps_the_palette_and_nothing_else() {
        let painted = "\x1b[31merror\x1b[0m a\x1b[2Jb\r\n";
        assert_eq!(terminal_report(painted, true), "\x1b[31merror\x1b[0m a\\x1b[2Jb\\x0d\n");
        assert_eq!(terminal_report(painted, false), "\\x1b[31merror\\x1b[0m a\\x1b[2Jb\\x0d\n");
    }

    #[test]
    fn code_spans_outgrow_the_backticks_inside() {
        assert_eq!(markdown_code("a`b"), "``a`b``");
        assert_eq!(markdown_code("`x``"), "``` `x`` ```");
    }

    #[test]
    fn uris_keep_encoded_slashes_apart() {
        assert_eq!(uri_path("a%2Fb c/d.yaml"), "a%252Fb%20c/d.yaml");
    }
}
