//! The plan as a pull-request comment: summary and diagnostics, access changes (what reviewers
//! decide on) before the object changes, one collapsible block per object. Kept under
//! `MAX_COMMENT` characters; what does not fit is cut with a notice.

use crate::model::Severity;
use crate::plan::{Action, Direction, Plan};
use std::fmt::Write;

/// GitHub rejects comments over 65,536 characters; stay clear of it.
pub const MAX_COMMENT: usize = 60_000;

pub fn render(plan: &Plan) -> String {
    render_capped(plan, MAX_COMMENT)
}

pub fn render_capped(plan: &Plan, cap: usize) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "### mcp-gitops plan\n");
    let _ = writeln!(head, "**{}**\n", plan.summary);
    let _ = writeln!(
        head,
        "Base: `{}` ({}) · desired revision `{}`\n",
        plan.base.source,
        short(&plan.base.revision),
        short(&plan.desired_revision)
    );
    if plan.summary.errors > 0 {
        let _ =
            writeln!(head, "> [!CAUTION]\n> {} error(s) in the repository: this change cannot be applied as is.\n", plan.summary.errors);
    }

    let mut sections = Vec::new();
    if !plan.diagnostics.is_empty() {
        let mut s = String::from("#### Diagnostics\n\n| | code | where | message |\n|---|---|---|---|\n");
        for d in &plan.diagnostics {
            let icon = if d.severity == Severity::Error { "❌" } else { "⚠️" };
            let _ = writeln!(s, "| {icon} | `{}` | `{}:{}:{}` | {} |", d.code, d.file, d.line, d.column, escape_cell(&d.message));
        }
        sections.push(s);
    }
    // What reviewers decide on: calls that become possible or impossible, and trust changes.
    // A denial that only changes its reason is listed apart, collapsed.
    let (decisive, reasons): (Vec<_>, Vec<_>) =
        plan.access_changes.iter().partition(|c| c.direction != Direction::Changed || c.before.allowed || c.after.allowed);
    if !decisive.is_empty() {
        let mut s = String::from("#### Access changes\n\n| | change |\n|---|---|\n");
        for change in decisive {
            let mark = match change.direction {
                Direction::Widened => "🟢 widened",
                Direction::Narrowed => "🔴 narrowed",
                Direction::Changed => "🟡 changed",
            };
            let _ = writeln!(s, "| {mark} | {} |", escape_cell(&change.sentence()));
        }
        sections.push(s);
    }
    if !reasons.is_empty() {
        let mut s =
            format!("<details><summary>{} call(s) still denied, for another reason</summary>\n\n| change |\n|---|\n", reasons.len());
        for change in reasons {
            let _ = writeln!(s, "| {} |", escape_cell(&change.sentence()));
        }
        s.push_str("\n</details>\n");
        sections.push(s);
    }
    if !plan.policy_revisions.is_empty() {
        let mut s = String::from("#### Predicted gateway policy revisions\n\n| server | before | after |\n|---|---|---|\n");
        for r in &plan.policy_revisions {
            let show = |r: &Option<String>| r.as_deref().map(|r| format!("`{}`", short(r))).unwrap_or_else(|| "—".into());
            let _ = writeln!(s, "| `{}` | {} | {} |", r.server, show(&r.before), show(&r.after));
        }
        sections.push(s);
    }
    let changed: Vec<_> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    if !changed.is_empty() {
        sections.push("#### Object changes\n".to_string());
        for change in changed {
            let mark = match change.action {
                Action::Create => "➕",
                Action::Update => "✏️",
                Action::Delete => "🗑️",
                Action::NoOp => "",
            };
            let body: String =
                change.diff.lines().filter(|l| !l.starts_with("---") && !l.starts_with("+++")).map(|l| format!("{l}\n")).collect();
            sections.push(format!(
                "<details><summary>{mark} {} <code>{}/{}/{}</code></summary>\n\n```diff\n{}```\n\n</details>\n",
                change.action.as_str(),
                change.kind,
                change.namespace,
                change.name,
                body.replace("```", "`\u{200b}``")
            ));
        }
    }

    let mut out = head;
    for (i, section) in sections.iter().enumerate() {
        if out.len() + section.len() + 300 > cap {
            // Tables are cut row by row; a collapsible diff is kept whole or not at all.
            if section.contains("\n|") {
                for line in section.lines() {
                    if out.len() + line.len() + 300 > cap {
                        break;
                    }
                    out.push_str(line);
                    out.push('\n');
                }
                if section.starts_with("<details>") {
                    out.push_str("\n</details>\n");
                }
            }
            let _ = writeln!(
                out,
                "\n> [!NOTE]\n> The plan is too long for one comment: it was cut here ({} more section(s) not shown). Run `mcp-gitops plan --format text` for all of it.",
                sections.len() - i - 1
            );
            return out;
        }
        out.push_str(section);
        out.push('\n');
    }
    out
}

fn short(revision: &str) -> &str {
    let body = revision.strip_prefix("sha256:").unwrap_or(revision);
    &body[..body.len().min(12)]
}

fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
