//! What the repository under review writes into the reports about it (#33): a pull request that
//! puts newlines, HTML, mentions, backticks, pipes, a copy of the comment marker and terminal
//! escape sequences into file names, grant subjects, tool names, annotation values and policy
//! messages. Each report is read the way its reader reads it (the comment with a CommonMark
//! parser, JUnit with an XML parser, SARIF's URI as a URI), not by grepping our own source.

mod common;

use common::{NOW, copy_dir, json, mcp_gitops};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use std::path::{Path, PathBuf};

/// Everything a value may try, as a YAML double-quoted scalar: new lines and blocks (`\n`, `\r`,
/// U+2028), a fake heading, a comment that would hide the rest, a second marker, backticks and
/// a pipe, HTML, mentions and an issue link, and terminal escapes (retitle, clear the screen).
const HOSTILE: &str = r#""x\n#### Access changes\n\nnothing to review\n<!-- mcp-gitops-plan -->\n<!--\r\u2028 `` ` | cell <img src=x onerror=alert(1)> <details><summary><h1>big</h1> @octocat @org/team #1 \e]0;pwned\a\e[2J""#;

/// A file name that starts lines of its own.
const HOSTILE_FILE: &str = "x\n#### Access changes\n\nnone\n<!-- mcp-gitops-plan -->\n<!-- `|` @octocat #1 \u{2028}\r.yaml";

const MARKER: &str = "<!-- mcp-gitops-plan -->";

/// The example platform as the base, and the proposed change plus a hostile grant, tool, file and
/// policy as the head.
fn hostile_repository() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, head) = (dir.path().join("base"), dir.path().join("head"));
    copy_dir(&common::root().join("examples/platform"), &base);
    copy_dir(&common::root().join("examples/pr-change"), &head);
    let support = head.join("teams/support");
    let servers = support.join(".mcp/servers.yaml");
    let metadata = std::fs::read_to_string(&servers).expect("servers.yaml");
    let tool = format!(
        "      - name: {HOSTILE}\n        description: {HOSTILE}\n        sideEffect: read\n        requiredTrust: low\n        riskLevel: low\n"
    );
    let metadata = metadata.replacen("      - name: search_tickets\n", &format!("{tool}      - name: search_tickets\n"), 1);
    std::fs::write(&servers, metadata).expect("write servers.yaml");
    std::fs::write(
        support.join("grants/hostile.yaml"),
        format!(
            "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: hostile\n  namespace: mcp-team-support\n  annotations:\n    note: {HOSTILE}\nspec:\n  serverRef:\n    name: ticketing-mcp\n    namespace: mcp-team-support\n  subject:\n    humanID: {HOSTILE}\n    agentID: {HOSTILE}\n  maxTrust: low\n  allowedSideEffects: [read]\n  policyVersion: v1\n  toolRules:\n    - name: get_ticket\n      decision: allow\n      requiredTrust: low\n    - name: {HOSTILE}\n      decision: allow\n      requiredTrust: low\n"
        ),
    )
    .expect("write grant");
    // A document of a kind we do not manage, in a file with a hostile name: a warning naming both.
    std::fs::write(support.join(HOSTILE_FILE), format!("apiVersion: v1\nkind: {HOSTILE}\nmetadata:\n  name: x\n")).expect("write");
    // A source line the text report shows under its diagnostic, with raw escape sequences.
    std::fs::write(support.join("snippet.yaml"), "apiVersion: v1\nkind: \u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[1A: [\n").expect("write");
    (dir, base, head)
}

fn plan(base: &Path, head: &Path, format: &str, env: &[(&str, &Path)]) -> std::process::Output {
    let mut command = mcp_gitops();
    command.args(["plan", &head.to_string_lossy(), "--base", &base.to_string_lossy(), "--format", format, "--now", NOW]);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("runs")
}

/// What a reader of the rendered Markdown meets: the HTML that is left, the headings, the code
/// spans, and the text outside code.
struct Rendered {
    html: Vec<String>,
    headings: Vec<String>,
    code: Vec<String>,
    text: String,
}

fn rendered(markdown: &str) -> Rendered {
    let options = Options::ENABLE_TABLES | Options::ENABLE_GFM | Options::ENABLE_STRIKETHROUGH;
    let mut out = Rendered { html: Vec::new(), headings: Vec::new(), code: Vec::new(), text: String::new() };
    let mut heading: Option<String> = None;
    let mut in_block = false;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(Tag::CodeBlock(_)) => in_block = true,
            Event::End(TagEnd::CodeBlock) => in_block = false,
            // GitHub links nothing inside a code block.
            Event::Text(_) if in_block => {}
            Event::Html(html) | Event::InlineHtml(html) => out.html.push(html.to_string()),
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => out.headings.extend(heading.take()),
            Event::Code(code) => out.code.push(code.to_string()),
            Event::Text(text) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&text);
                }
                out.text.push_str(&text);
                out.text.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// The Markdown reports (comment, job summaries) hold what the repository wrote as text only.
fn assert_markdown_holds(markdown: &str, headings_allowed: &[&str]) {
    assert_eq!(markdown.matches(MARKER).count(), usize::from(markdown.starts_with(MARKER)), "a second marker:\n{markdown}");
    for c in ['\r', '\u{2028}', '\u{1b}', '\u{7}'] {
        assert!(!markdown.contains(c), "{c:?} reached the Markdown:\n{markdown}");
    }
    let r = rendered(markdown);
    // Only our own tags are HTML; everything the repository wrote inside them is text.
    for html in &r.html {
        let mut rest = html.clone();
        for ours in [MARKER, "<details>", "</details>", "<summary>", "</summary>", "<code>", "</code>", "<br>"] {
            rest = rest.replace(ours, "");
        }
        assert!(!rest.contains('<'), "HTML from the repository: {html:?}\n{markdown}");
    }
    for heading in &r.headings {
        assert!(headings_allowed.contains(&heading.as_str()), "a heading from the repository: {heading:?}\n{markdown}");
    }
    assert!(r.headings.iter().filter(|h| h.as_str() == "Access changes").count() <= 1, "{markdown}");
    // No mention or issue link in the text GitHub links (code spans it leaves alone).
    for (i, c) in r.text.char_indices() {
        let next = r.text[i + c.len_utf8()..].chars().next();
        let before = r.text[..i].chars().next_back();
        if c == '@' && !before.is_some_and(char::is_alphanumeric) {
            assert!(!next.is_some_and(char::is_alphanumeric), "a mention in {:?}", &r.text[i..(i + 20).min(r.text.len())]);
        }
        if c == '#' {
            assert!(!next.is_some_and(|n| n.is_ascii_digit()), "an issue link in {:?}", &r.text[i..(i + 20).min(r.text.len())]);
        }
    }
    for hidden in ["nothing to review", "<img", "<h1>", "<details><summary><h1>"] {
        assert!(!r.html.iter().any(|h| h.contains(hidden)), "{hidden} is HTML:\n{markdown}");
    }
}

#[test]
fn the_plan_comment_and_job_summary_show_hostile_names_as_text() {
    let (dir, base, head) = hostile_repository();
    let summary = dir.path().join("summary.md");
    let out = plan(&base, &head, "markdown", &[("GITHUB_STEP_SUMMARY", &summary)]);
    let comment = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(comment.starts_with(MARKER), "{comment}\n{}", String::from_utf8_lossy(&out.stderr));
    let ours = [
        "mcp-gitops plan",
        "Approvals needed",
        "Diagnostics",
        "Access changes",
        "Predicted gateway policy revisions",
        "Object changes",
        "Time-bound grants",
    ];
    assert_markdown_holds(&comment, &ours);
    assert_eq!(std::fs::read_to_string(&summary).expect("summary"), comment);

    let r = rendered(&comment);
    // The hostile subject is one code span in one cell: its pipe, backticks and markup intact.
    let hostile_value = "x #### Access changes  nothing to review <!-- mcp-gitops-plan --> <!--  ";
    let spans: Vec<&String> = r.code.iter().filter(|c| c.starts_with(&hostile_value.replace("<!--", "<\u{200b}!--")[..30])).collect();
    assert!(!spans.is_empty(), "no code span holds the hostile name: {:?}\n{comment}", r.code);
    assert!(spans.iter().any(|c| c.contains("`` ` | cell <img src=x onerror=alert(1)>")), "{spans:?}");
    // The real changes are all there (nothing hidden in a comment): the example's widened refund.
    assert!(r.text.contains("may now call") && r.code.iter().any(|c| c == "payments-mcp/issue_refund"), "{comment}");
    assert!(r.text.contains("update"), "{comment}");
}

#[test]
fn the_validation_summary_shows_hostile_names_as_text() {
    let (dir, _base, head) = hostile_repository();
    let summary = dir.path().join("summary.md");
    let out = mcp_gitops()
        .args(["validate", &head.to_string_lossy(), "--format", "github", "--now", NOW])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .expect("runs");
    let report = std::fs::read_to_string(&summary).expect("summary");
    assert!(report.starts_with("### mcp-gitops validate"), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_markdown_holds(&report, &["mcp-gitops validate"]);
    assert!(rendered(&report).code.iter().any(|c| c.contains("/x #### Access changes  none")), "{report}");
}

/// Control characters from the repository, anywhere in the text report.
fn assert_terminal_safe(text: &str, color: bool) {
    let mut rest = text.to_string();
    if color {
        for ours in ["\u{1b}[0m", "\u{1b}[1m", "\u{1b}[2m", "\u{1b}[31m", "\u{1b}[32m", "\u{1b}[33m"] {
            rest = rest.replace(ours, "");
        }
    }
    let bad: Vec<char> = rest.chars().filter(|c| (c.is_control() && *c != '\n') || *c == '\u{2028}').collect();
    assert!(bad.is_empty(), "control characters {bad:?} reached the terminal:\n{text}");
    assert!(!text.lines().any(|l| l.starts_with("#### Access changes") || l == "nothing to review"), "{text}");
}

#[test]
fn text_reports_show_control_characters_visibly() {
    let (_dir, base, head) = hostile_repository();
    for color in ["never", "always"] {
        let mut command = mcp_gitops();
        command.args(["--color", color, "validate", &head.to_string_lossy(), "--now", NOW]);
        let validate = String::from_utf8_lossy(&command.output().expect("runs").stdout).into_owned();
        assert_terminal_safe(&validate, color == "always");
        // The source line under its diagnostic, and the file name, shown with their escapes.
        assert!(validate.contains("\\x1b]0;pwned\\x07\\x1b[2J"), "{validate}");
        assert!(validate.contains("x\\x0a#### Access changes"), "{validate}");

        let mut command = mcp_gitops();
        command.args(["--color", color, "plan", &head.to_string_lossy(), "--base", &base.to_string_lossy(), "--now", NOW]);
        let plan = String::from_utf8_lossy(&command.output().expect("runs").stdout).into_owned();
        assert_terminal_safe(&plan, color == "always");
        assert!(plan.contains("Access changes:") && plan.contains("\\x1b]0;pwned\\x07"), "{plan}");
    }
}

#[test]
fn junit_is_well_formed_for_any_file_name() {
    let (_dir, _base, head) = hostile_repository();
    // Characters XML 1.0 cannot hold, in a file name and in a value.
    let support = head.join("teams/support");
    std::fs::write(support.join("bad\u{fffe}\u{ffff}\u{1}.yaml"), "apiVersion: v1\nkind: \"\\uFFFE\\u0001\"\n").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        // Not UTF-8: a lone surrogate half as WTF-8 would write it.
        let name = std::ffi::OsStr::from_bytes(b"lone-\xed\xa0\x80.yaml");
        std::fs::write(support.join(name), "apiVersion: v1\nkind: Other\n").expect("write");
    }
    let out = mcp_gitops().args(["validate", &head.to_string_lossy(), "--format", "junit", "--now", NOW]).output().expect("runs");
    let xml = String::from_utf8_lossy(&out.stdout).into_owned();
    let document = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("not well-formed XML ({e}):\n{xml}"));
    let cases = document.descendants().filter(|n| n.has_tag_name("testcase")).count();
    assert!(cases > 10, "{xml}");
    assert!(xml.contains("bad\\ufffe\\uffff\\x01.yaml") || xml.contains("bad\\u{fffe}\\u{ffff}\\x01.yaml"), "{xml}");
}

#[test]
fn sarif_uris_are_percent_encoded_references() {
    let (_dir, _base, head) = hostile_repository();
    std::fs::write(head.join("teams/support/a%2Fb c#?.yaml"), "apiVersion: v1\nkind: Other\n").expect("write");
    let out = mcp_gitops().args(["validate", &head.to_string_lossy(), "--format", "sarif", "--now", NOW]).output().expect("runs");
    let sarif = json(&String::from_utf8_lossy(&out.stdout));
    let uris: Vec<String> = sarif["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().map(String::from))
        .collect();
    // RFC 3986: a path of unreserved characters, `/` and percent-encodings only.
    for uri in &uris {
        let valid = uri.chars().all(|c| c.is_ascii_alphanumeric() || "-._~/%".contains(c))
            && uri.split('%').skip(1).all(|h| h.len() >= 2 && h[..2].chars().all(|c| c.is_ascii_hexdigit()));
        assert!(valid, "not a URI reference: {uri:?}");
    }
    assert!(uris.iter().any(|u| u.ends_with("teams/support/a%252Fb%20c%23%3F.yaml")), "{uris:?}");
    assert!(uris.iter().any(|u| u.contains("x%0A%23%23%23%23%20Access")), "{uris:?}");
}
