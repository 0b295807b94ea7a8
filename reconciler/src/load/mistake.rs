//! A YAML syntax error told as the mistake people make: the parser reports where it gave up,
//! often a line after the mistake and in its own words ("mapping values are not allowed in this
//! context"); this reads the lines around that place for the usual mistakes (a line indented too
//! far or too little, a key without its colon, a tab, a colon inside an unquoted value) and says
//! which line is wrong and how to fix it. Knows nothing of the parser but its message.

use crate::model::Pos;

/// A syntax error, as it is reported: where, what and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    pub pos: Pos,
    pub message: String,
    pub hint: String,
}

/// One line of the text: its number (from 1), its indentation and its content.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    number: usize,
    indent: usize,
    content: &'a str,
}

impl<'a> Line<'a> {
    /// `key` of a `key: value` or `key:` line (after a `- `), if it has one.
    fn key(&self) -> Option<&'a str> {
        let content = self.content.strip_prefix("- ").unwrap_or(self.content);
        let (key, _) = content.split_once(':')?;
        (!key.is_empty() && !key.contains(' ') && !key.starts_with(['"', '\'', '{', '['])).then_some(key)
    }

    /// The value of a `key: value` line, when the line gives one (not a nested block).
    fn value(&self) -> Option<&'a str> {
        let (_, value) = self.content.split_once(": ")?;
        let value = value.trim();
        (!value.is_empty() && !value.starts_with('#') && !matches!(value, "|" | ">" | "|-" | ">-")).then_some(value)
    }

    fn pos(&self) -> Pos {
        Pos { line: self.number, column: self.indent + 1 }
    }
}

/// The lines with content (neither blank nor a comment), up to and including line `upto`.
fn lines(text: &str, upto: usize) -> Vec<Line<'_>> {
    text.lines()
        .take(upto)
        .enumerate()
        .map(|(i, raw)| {
            let content = raw.trim_start_matches(' ');
            Line { number: i + 1, indent: raw.len() - content.len(), content: content.trim_end() }
        })
        .filter(|line| !line.content.is_empty() && !line.content.starts_with('#'))
        .collect()
}

/// The error the parser reported at `at` with `info`, told as the mistake in `text`. Every
/// message starts `invalid YAML: `, as it always has; the parser's own words close it, for
/// whoever searches them.
pub fn tell(text: &str, at: Pos, info: &str) -> Told {
    let said = format!("(the YAML parser says: {info})");
    if let Some(told) = tab(text, at).filter(|_| info.contains("tab")) {
        return Told { message: format!("invalid YAML: {} {said}", told.message), ..told };
    }
    let lines = lines(text, at.line + 1);
    let here = lines.iter().position(|l| l.number == at.line);
    let told = here.and_then(|i| {
        let (line, above) = (lines[i], i.checked_sub(1).map(|p| lines[p]));
        if info.contains("mapping values are not allowed") {
            colon_in_value(line, at).or_else(|| indented_under_a_value(line, above?))
        } else if info.contains("expected ':'") || info.contains("expect ':'") {
            above.and_then(no_colon).or_else(|| no_colon(line))
        } else if info.contains("did not find expected key") || info.contains("did not find expected '-'") {
            lines_up_with_nothing(line, &lines[..i])
        } else {
            None
        }
    });
    match told {
        Some(told) => Told { message: format!("invalid YAML: {} {said}", told.message), ..told },
        None => Told {
            pos: at,
            message: format!("invalid YAML: {info}"),
            hint: "fix the syntax at this position (or on the line above it); the other files are still checked".into(),
        },
    }
}

/// A tab in the indentation of a line near the error: YAML indents with spaces only.
fn tab(text: &str, at: Pos) -> Option<Told> {
    let first = at.line.saturating_sub(2).max(1);
    text.lines().enumerate().skip(first - 1).take(at.line + 2 - first).find_map(|(i, raw)| {
        let indent = &raw[..raw.len() - raw.trim_start().len()];
        let column = indent.find('\t')?;
        Some(Told {
            pos: Pos { line: i + 1, column: column + 1 },
            message: format!("line {} is indented with a tab; YAML indents with spaces only", i + 1),
            hint: "replace the tab with spaces".into(),
        })
    })
}

/// `description: Refund: the invoice`: a value holding `: ` before the place of the error.
fn colon_in_value(line: Line, at: Pos) -> Option<Told> {
    let key = line.key()?;
    let value = line.value()?;
    if value.starts_with(['"', '\'', '[', '{']) || at.column <= line.indent + key.len() + 2 {
        return None;
    }
    let column = line.indent + line.content[..line.content.find(value)?].chars().count() + 1;
    Some(Told {
        pos: Pos { line: line.number, column },
        message: format!("the value of `{key}` holds \": \", which YAML reads as the start of another key"),
        hint: format!("quote the value: {key}: \"{}\"", value.replace('"', "\\\"")),
    })
}

/// A `key: value` line indented further than the `key: value` line above it: YAML reads it as
/// more of that value, then meets its colon.
fn indented_under_a_value(line: Line, above: Line) -> Option<Told> {
    let (key, above_key) = (line.key()?, above.key()?);
    above.value()?;
    if line.indent <= above.indent {
        return None;
    }
    Some(Told {
        pos: line.pos(),
        message: format!(
            "`{key}` (line {}) is indented further than `{above_key}` above it, whose value is already given, so YAML reads it as more of that value",
            line.number
        ),
        hint: format!("indent `{key}` by {}, as `{above_key}`, to make it a key beside it", spaces(above.indent)),
    })
}

/// `maxTrust high`: a line that is meant as `key: value` and has no colon.
fn no_colon(line: Line) -> Option<Told> {
    if line.content.contains(':') || line.content.starts_with(['-', '"', '\'', '[', '{']) {
        return None;
    }
    let (key, value) = line.content.split_once(' ')?;
    Some(Told {
        pos: line.pos(),
        message: format!("line {} has no \":\" after its key `{key}`", line.number),
        hint: format!("write `{key}: {}`", value.trim()),
    })
}

/// A key indented so that it lines up with no key above it: the keys it could belong beside are
/// those that open the mappings above it.
fn lines_up_with_nothing(line: Line, above: &[Line]) -> Option<Told> {
    let key = line.key()?;
    let mut beside: Vec<(usize, &str)> = Vec::new();
    for other in above.iter().rev() {
        if beside.last().is_none_or(|(indent, _)| other.indent < *indent)
            && let Some(other_key) = other.key()
        {
            beside.push((other.indent, other_key));
        }
    }
    if beside.iter().any(|(indent, _)| *indent == line.indent) {
        return None;
    }
    let choices: Vec<String> = beside.iter().map(|(indent, other)| format!("{} beside `{other}`", spaces(*indent))).collect();
    Some(Told {
        pos: line.pos(),
        message: format!("`{key}` (line {}) is indented by {}, which lines up with no key above it", line.number, spaces(line.indent)),
        hint: format!("indent it as the key it belongs beside: {}", choices.join(", ")),
    })
}

fn spaces(n: usize) -> String {
    format!("{n} space{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    /// What `yaml::parse` reports for `text`: line, column, message, hint.
    fn told(text: &str) -> (usize, usize, String, String) {
        let (_, diagnostics) = super::super::yaml::parse("grant.yaml", text);
        let d = &diagnostics[0];
        (d.line, d.column, d.message.clone(), d.hint.clone())
    }

    const HEAD: &str = "kind: MCPAccessGrant\nspec:\n  subject:\n    agentID: ops-agent\n";

    #[test]
    fn a_line_indented_under_a_value_is_the_mistake() {
        let (line, column, message, hint) = told(&format!("{HEAD}      maxTrust: high\n"));
        assert_eq!((line, column), (5, 7));
        assert!(message.starts_with("invalid YAML: `maxTrust` (line 5) is indented further than `agentID` above it"), "{message}");
        assert!(message.ends_with("(the YAML parser says: mapping values are not allowed in this context)"), "{message}");
        assert_eq!(hint, "indent `maxTrust` by 4 spaces, as `agentID`, to make it a key beside it");
    }

    #[test]
    fn a_key_without_its_colon_is_named_not_the_line_after_it() {
        let (line, column, message, hint) = told(&format!("{HEAD}  maxTrust high\n  policyVersion: v1\n"));
        assert_eq!((line, column), (5, 3), "{message}");
        assert!(message.starts_with("invalid YAML: line 5 has no \":\" after its key `maxTrust`"), "{message}");
        assert_eq!(hint, "write `maxTrust: high`");
    }

    #[test]
    fn a_key_lining_up_with_nothing_lists_where_it_could_go() {
        let (line, column, message, hint) = told(&format!("{HEAD}   maxTrust: high\n"));
        assert_eq!((line, column), (5, 4));
        assert!(
            message.starts_with("invalid YAML: `maxTrust` (line 5) is indented by 3 spaces, which lines up with no key above it"),
            "{message}"
        );
        assert_eq!(
            hint,
            "indent it as the key it belongs beside: 4 spaces beside `agentID`, 2 spaces beside `subject`, 0 spaces beside `spec`"
        );
    }

    #[test]
    fn a_tab_and_a_colon_in_a_value_are_named() {
        let (line, column, message, hint) = told(&format!("{HEAD}\tmaxTrust: high\n"));
        assert_eq!((line, column), (5, 1), "{message}");
        assert!(message.starts_with("invalid YAML: line 5 is indented with a tab"), "{message}");
        assert_eq!(hint, "replace the tab with spaces");
        let (line, column, message, hint) = told("kind: MCPServer\ndescription: Refunds: the invoice\n");
        assert_eq!((line, column), (2, 14), "{message}");
        assert!(message.starts_with("invalid YAML: the value of `description` holds \": \""), "{message}");
        assert_eq!(hint, "quote the value: description: \"Refunds: the invoice\"");
    }
}
