//! The plan as a pull-request comment: summary and diagnostics, access changes (what reviewers
//! decide on) before the object changes, one collapsible block per object. Kept under
//! `MAX_COMMENT` characters; what does not fit is cut with a notice. A plan of several clusters
//! (`clusters:`) gets one block per cluster that changes.

use super::escape::{html, markdown as text, markdown_cell as cell, markdown_code as code, markdown_fenced};
use crate::model::{Diagnostic, Severity};
use crate::plan::access::Quoting;
use crate::plan::{Action, Direction, Plan};
use std::fmt::Write;

/// Names as code spans and words as inline text, in the sentences of access changes.
const QUOTING: Quoting<'static> = Quoting { name: &code, text: &text };

/// GitHub rejects comments over 65,536 characters; stay clear of it.
pub const MAX_COMMENT: usize = 60_000;

/// The first line of every plan comment, hidden when rendered: a CI step finds the comment it
/// posted before by it and updates that one instead of adding one per push.
pub const MARKER: &str = "<!-- mcp-gitops-plan -->";

/// GitHub takes at most 1 MiB of job summary per step.
const MAX_STEP_SUMMARY: usize = 1_000_000;

pub fn render(plan: &Plan) -> String {
    render_capped(plan, MAX_COMMENT)
}

pub fn render_capped(plan: &Plan, cap: usize) -> String {
    if !plan.clusters.is_empty() {
        return by_cluster(plan, cap);
    }
    let note = |left: usize| {
        format!(
            "\n> [!NOTE]\n> The plan is too long for one comment: it was cut here ({left} more section(s) not shown). Run `mcp-gitops plan --format text` for all of it."
        )
    };
    fit(head(plan), &sections(plan, true), cap, note)
}

/// What a block needs beyond its sections: its summary line and the closing tag.
const CLUSTER_BLOCK: usize = 400;

/// The comment of a plan with `clusters:` (docs/fleet.md): the head of the whole plan (summary,
/// approvals, every problem with its clusters), the clusters with no change in one line, then one
/// collapsible block per cluster that changes; each block gets an equal share of what is left of
/// the comment's size, and says so where it is cut.
fn by_cluster(plan: &Plan, cap: usize) -> String {
    let mut out = head(plan);
    if !plan.diagnostics.is_empty() {
        let note = |left: usize| format!("\n> [!NOTE]\n> {left} more section(s) not shown. Run `mcp-gitops validate` for every problem.");
        // The problems first, with their clusters, in a quarter of the comment at most.
        let section = format!("#### Diagnostics\n\n{}", diagnostics_table(&plan.diagnostics));
        out = fit(out, &[section], cap / 4, note);
        out.push('\n');
    }
    let (changed, unchanged): (Vec<_>, Vec<_>) =
        plan.clusters.iter().partition(|c| c.plan.summary.has_changes() || !c.plan.access_changes.is_empty());
    if !unchanged.is_empty() {
        let names: Vec<String> = unchanged.iter().map(|c| code(&c.name)).collect();
        let _ = writeln!(out, "No change in {}.\n", names.join(", "));
    }
    for (i, cluster) in changed.iter().enumerate() {
        let share = cap.saturating_sub(out.len()) / (changed.len() - i);
        let name = cluster.name.clone();
        let note = move |left: usize| {
            format!(
                "\n> [!NOTE]\n> The plan of {} is too long for its share of the comment: it was cut here ({left} more section(s) not shown). Run `mcp-gitops plan --cluster {} --format text` for all of it.",
                code(&name),
                text(&name)
            )
        };
        let summary = format!(
            "<details><summary><b>{}</b> (<code>{}</code>): {}</summary>\n\n",
            html(&cluster.name),
            html(&cluster.cluster_name),
            html(&cluster.plan.summary.to_string())
        );
        out.push_str(&fit(summary, &sections(&cluster.plan, false), share.saturating_sub(CLUSTER_BLOCK), note));
        out.push_str("\n</details>\n\n");
    }
    out
}

/// The comment's head: the marker, the summary, what needs attention first and the approvals.
pub(super) fn head(plan: &Plan) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "{MARKER}\n### mcp-gitops plan\n");
    let _ = writeln!(head, "**{}**\n", plan.summary);
    let _ = writeln!(
        head,
        "Base: {} ({}) · desired revision `{}`\n",
        code(&plan.base.source),
        short(&plan.base.revision),
        short(&plan.desired_revision)
    );
    if plan.summary.errors > 0 {
        let _ =
            writeln!(head, "> [!CAUTION]\n> {} error(s) in the repository: this change cannot be applied as is.\n", plan.summary.errors);
    }
    if let Some(warning) = plan.summary.deletes_everything_warning() {
        let _ = writeln!(head, "> [!CAUTION]\n> **{}**\n", text(&warning));
    }

    if !plan.base_diagnostics.is_empty() {
        let _ = writeln!(
            head,
            "> [!WARNING]\n> The base has {} problem(s) of its own (below): objects in the files it could not read are missing from it, so creates marked uncertain, deletions and access changes of those objects may be wrong.\n",
            plan.base_diagnostics.len()
        );
    }

    if let Some(b) = &plan.approvals.break_glass {
        let opened = format!("by {} ({}), until {}", code(&b.requester), text(&b.reason), code(&b.expires_at));
        let _ = match b.within_rules {
            true => writeln!(
                head,
                "> [!IMPORTANT]\n> **Break-glass** {opened}: within `owners.breakGlass`, it needs no approval when its author is the requester. Follow-up review due by {}.\n",
                code(&b.review_by)
            ),
            false => writeln!(
                head,
                "> [!WARNING]\n> **Not break-glass** {opened}, beyond `owners.breakGlass`: {}. It is an ordinary change.\n",
                text(&b.beyond_rules.join("; "))
            ),
        };
    }
    if !plan.approvals.required.is_empty() {
        let _ = writeln!(
            head,
            "#### Approvals needed\n\nEvery line must hold: the change needs all of them.\n\n| approvals | from | servers | why |\n|---|---|---|---|"
        );
        for r in &plan.approvals.required {
            let who = if r.approvers.is_empty() { "nobody: the server has no owner".to_string() } else { text(&r.approvers.join(", ")) };
            let servers: Vec<String> = r.servers.iter().map(|s| code(s)).collect();
            let _ = writeln!(head, "| {} | {} | {} | {} |", r.count, cell(&who), cell(&servers.join(", ")), cell(&reason(&r.reason)));
        }
        head.push('\n');
    }
    head
}

/// The comment's sections, each kept whole or cut as one (`fit`); the plan's diagnostics only
/// `with_diagnostics`.
pub(super) fn sections(plan: &Plan, with_diagnostics: bool) -> Vec<String> {
    let mut sections = Vec::new();
    let diagnostics = if with_diagnostics { plan.diagnostics.as_slice() } else { &[] };
    for (title, diagnostics) in [("Diagnostics", diagnostics), ("Problems in the base", plan.base_diagnostics.as_slice())] {
        if !diagnostics.is_empty() {
            sections.push(format!("#### {title}\n\n{}", diagnostics_table(diagnostics)));
        }
    }
    // What reviewers decide on first; a denial that only changes its reason apart, collapsed.
    let (decisive, reasons) = crate::plan::access::decisive_first(&plan.access_changes);
    if !decisive.is_empty() {
        // One group of rows per subject, its name in the first row only; destructive first.
        let mut s = String::from("#### Access changes\n\n| subject | | change |\n|---|---|---|\n");
        for (subject, changes) in crate::plan::access::by_subject(decisive, &QUOTING) {
            for (i, change) in changes.into_iter().enumerate() {
                // A widening is coloured by what it opens; less access is no risk to review.
                let mark = match (change.direction, change.widening_risk()) {
                    (Direction::Widened, 3) => "🔴 widened",
                    (Direction::Widened, 2) => "🟡 widened",
                    (Direction::Widened, _) => "🟢 widened",
                    (Direction::Narrowed, _) => "⚪ narrowed",
                    (Direction::Changed, _) => "🔵 changed",
                };
                let who = if i == 0 { cell(&subject) } else { String::new() };
                let _ = writeln!(s, "| {who} | {mark} | {} |", cell(&change.predicate_in(&QUOTING)));
            }
        }
        sections.push(s);
    }
    if !reasons.is_empty() {
        let mut s =
            format!("<details><summary>{} call(s) still denied, for another reason</summary>\n\n| change |\n|---|\n", reasons.len());
        for change in reasons {
            let _ = writeln!(s, "| {} |", cell(&change.sentence_in(&QUOTING)));
        }
        s.push_str("\n</details>\n");
        sections.push(s);
    }
    if !plan.expiring.is_empty() {
        let mut s = String::from("#### Time-bound grants\n\n| grant | expires | then |\n|---|---|---|\n");
        for grant in &plan.expiring {
            let then: Vec<String> = grant.access_changes.iter().map(|c| cell(&c.sentence_in(&QUOTING))).collect();
            let _ = writeln!(
                s,
                "| {} | in {} day(s), {} | {} |",
                cell(&code(&grant.grant)),
                grant.in_days,
                grant.expires_at,
                then.join("<br>")
            );
        }
        sections.push(s);
    }
    if !plan.policy_revisions.is_empty() {
        let mut s = String::from(
            "#### Predicted gateway policy revisions\n\nRevisions of the rendering sorted by namespace/name: the operator's may differ for a server with several grants or sessions (it renders them in its cache's list order).\n\n| server | before | after |\n|---|---|---|\n",
        );
        for r in &plan.policy_revisions {
            let show = |r: &Option<String>| r.as_deref().map(|r| cell(&code(short(r)))).unwrap_or_else(|| "—".into());
            let _ = writeln!(s, "| {} | {} | {} |", cell(&code(&r.server)), show(&r.before), show(&r.after));
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
            let uncertain = change.uncertain.as_deref().map(|why| format!("> ⚠️ uncertain: {}\n\n", text(why))).unwrap_or_default();
            let last_changed = if change.last_changed.is_empty() {
                String::new()
            } else {
                format!("Last changed {}.\n\n", text(&super::text::last_changed(&change.last_changed)))
            };
            let (fence, body) = markdown_fenced(&body);
            sections.push(format!(
                "<details><summary>{mark} {} <code>{}</code>{}</summary>\n\n{uncertain}{last_changed}{fence}diff\n{body}{fence}\n\n</details>\n",
                change.action.as_str(),
                html(&format!("{}/{}/{}", change.kind, change.namespace, change.name)),
                if uncertain.is_empty() { "" } else { " ⚠️ uncertain" },
            ));
        }
    }

    sections
}

/// `head` and as many of `sections` as fit in `cap` characters; where one does not, it is cut
/// (a table row by row) and `note` says how many more were left out.
pub(super) fn fit(head: String, sections: &[String], cap: usize, note: impl Fn(usize) -> String) -> String {
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
            let _ = writeln!(out, "{}", note(sections.len() - i - 1));
            return out;
        }
        out.push_str(section);
        out.push('\n');
    }
    out
}

pub(super) fn diagnostics_table(diagnostics: &[Diagnostic]) -> String {
    let mut s = String::from("| | code | where | message |\n|---|---|---|---|\n");
    for d in diagnostics {
        let icon = if d.severity == Severity::Error { "❌" } else { "⚠️" };
        let place = code(&format!("{}:{}:{}", d.file, d.line, d.column));
        let message = format!("{}{}", super::in_clusters(d), d.message);
        let _ = writeln!(s, "| {icon} | `{}` | {} | {} |", d.code, cell(&place), cell(&text(&message)));
    }
    s
}

/// `validate`'s report for a job summary: counts, then every diagnostic, cut with a notice
/// where the summary's size limit would be passed.
pub fn validation_report(path: &str, diagnostics: &[Diagnostic]) -> String {
    let mut out = format!("### mcp-gitops validate\n\n**{}** in {}\n\n", crate::render::diagnostics::counts(diagnostics), code(path));
    if diagnostics.is_empty() {
        return out;
    }
    let table = diagnostics_table(diagnostics);
    for (i, line) in table.lines().enumerate() {
        if out.len() + line.len() + 200 > MAX_STEP_SUMMARY {
            let _ = writeln!(
                out,
                "\n> [!NOTE]\n> {} more diagnostic(s) not shown: the summary is full. Run `mcp-gitops validate` for all of them.",
                diagnostics.len() + 2 - i
            );
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// An approval's reason: ours, with the rule's `on:` in one code span, shown as it is; but the
/// rule comes from the repository, so a reason with anything more is shown as plain text.
fn reason(reason: &str) -> String {
    let ordinary = reason.matches('`').count() == 2 && text(&reason.replace('`', "")) == reason.replace('`', "");
    if ordinary { reason.to_string() } else { text(reason) }
}

fn short(revision: &str) -> &str {
    let body = revision.strip_prefix("sha256:").unwrap_or(revision);
    &body[..body.len().min(12)]
}
