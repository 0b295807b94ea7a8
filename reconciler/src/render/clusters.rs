//! The plan of a repository with `clusters:` (docs/fleet.md), grouped by cluster. As a
//! pull-request comment: the head of the whole plan (summary, approvals, every problem with its
//! clusters), the clusters with no change in one line, then one collapsible block per cluster
//! that changes; each block gets an equal share of what is left of the comment's size, and says
//! so where it is cut. As text: each cluster's plan under its name, then the whole summary.

use super::Palette;
use super::escape::{html, markdown as text, markdown_code as code, terminal};
use super::markdown::{diagnostics_table, fit, head, sections};
use crate::plan::Plan;
use std::fmt::Write;

/// What a block needs beyond its sections: its summary line and the closing tag.
const BLOCK: usize = 400;

pub(super) fn markdown(plan: &Plan, cap: usize) -> String {
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
        out.push_str(&fit(summary, &sections(&cluster.plan, false), share.saturating_sub(BLOCK), note));
        out.push_str("\n</details>\n\n");
    }
    out
}

/// The text plan: each cluster's (`text::render`) under its name, then the counts of all.
pub(super) fn plain(plan: &Plan, palette: Palette) -> String {
    let mut out = String::new();
    for cluster in &plan.clusters {
        let _ = writeln!(out, "{} {} ({})\n", palette.bold("Cluster"), terminal(&cluster.name), terminal(&cluster.cluster_name));
        out += &super::text::render(&cluster.plan, palette);
        out.push('\n');
    }
    let _ = writeln!(out, "{} {}", palette.bold("All clusters:"), plan.summary);
    out
}
