//! The access review (`crate::review::Review`) for a terminal and as a pull-request comment:
//! one section per set of owners, each grant with its verdict, calls, last use and why.

use super::escape::{markdown, markdown_cell, markdown_code, terminal_lines};
use crate::review::write::Written;
use crate::review::{GrantReview, Review};
use std::fmt::Write;

/// The marker line that starts the Markdown, so that a bot can find and update its comment.
pub const MARKER: &str = "<!-- mcp-gitops-access-review -->";

/// The grants by owners, in the review's order (it is sorted by owners first).
fn by_owners(review: &Review) -> Vec<(&[String], Vec<&GrantReview>)> {
    let mut groups: Vec<(&[String], Vec<&GrantReview>)> = Vec::new();
    for grant in &review.grants {
        match groups.last_mut() {
            Some((owners, grants)) if *owners == grant.owners.as_slice() => grants.push(grant),
            _ => groups.push((&grant.owners, vec![grant])),
        }
    }
    groups
}

fn summary(review: &Review) -> String {
    let proposed = review.proposals().count();
    format!(
        "{} grant(s) reviewed over {} (from {} to {}): {proposed} proposed for removal.",
        review.grants.len(),
        review.unused_for,
        review.window_start,
        review.at
    )
}

fn last_use(grant: &GrantReview) -> &str {
    grant.last_use.as_deref().unwrap_or("never")
}

pub fn text(review: &Review, written: Option<&Written>) -> String {
    let mut out = String::new();
    for (owners, grants) in by_owners(review) {
        let who = if owners.is_empty() { "no owner (owners.servers names none of these servers)".to_string() } else { owners.join(", ") };
        let _ = writeln!(out, "Owners: {who}");
        for grant in grants {
            let mark = if grant.proposed() { "-" } else { " " };
            let _ = writeln!(
                out,
                "  {mark} {} on {} ({}:{}): {} — {} call(s) in the window, last use {}; {}",
                grant.grant,
                grant.server,
                grant.file,
                grant.line,
                grant.verdict.words(),
                grant.calls,
                last_use(grant),
                grant.why
            );
        }
    }
    for nobody in &review.unattributed {
        let _ = writeln!(
            out,
            "{} call(s) to {} were allowed with no grant (observe mode or a default decision of allow): use by nobody.",
            nobody.calls, nobody.server
        );
    }
    let _ = writeln!(out, "{}", summary(review));
    match written.and_then(|w| w.commit.as_deref().map(|c| (w, c))) {
        Some((w, commit)) => {
            let _ = writeln!(out, "Committed {commit}: removed {} file(s), disabled {} grant(s).", w.removed.len(), w.disabled.len());
        }
        None if written.is_some() => {
            let _ = writeln!(out, "Nothing to propose: no commit.");
        }
        None => {}
    }
    terminal_lines(&out)
}

pub fn markdown_comment(review: &Review) -> String {
    let mut out = format!("{MARKER}\n## Access review\n\n{}\n", markdown(&summary(review)));
    for (owners, grants) in by_owners(review) {
        let who =
            if owners.is_empty() { "no owner".to_string() } else { owners.iter().map(|o| markdown_code(o)).collect::<Vec<_>>().join(", ") };
        let _ = writeln!(
            out,
            "\n### Owners: {who}\n\n| | Grant | Server | Verdict | Calls in window | Last use | Why |\n|---|---|---|---|---|---|---|"
        );
        for grant in grants {
            let cells = [
                if grant.proposed() { "remove".to_string() } else { String::new() },
                format!("{} ({})", markdown_code(&grant.grant), markdown(&format!("{}:{}", grant.file, grant.line))),
                markdown_code(&grant.server),
                format!("**{}**", grant.verdict.words()),
                grant.calls.to_string(),
                markdown(last_use(grant)),
                markdown(&grant.why),
            ];
            let row: Vec<String> = cells.iter().map(|c| markdown_cell(c)).collect();
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
    }
    if !review.unattributed.is_empty() {
        let _ = writeln!(out, "\nAllowed with no grant (observe mode or a default decision of allow), use by nobody:\n");
        for nobody in &review.unattributed {
            let _ = writeln!(out, "- {}: {} call(s)", markdown_code(&nobody.server), nobody.calls);
        }
    }
    out
}
