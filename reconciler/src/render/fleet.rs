//! `fleet status` as text: one aligned row per cluster, then each cluster's details (its last
//! message, signer, drift, suspension, pin, expiring grants, the access changes still pending,
//! and, for a cluster that follows a ref of its own, what catching up with the branch would add). The JSON is the `Fleet` value itself (docs/fleet.md).

use crate::fleet::{Fleet, Pending, Row};

/// A row's names (cluster, context), then its other columns or why it has none.
type Line = ([String; 2], Result<[String; 4], String>);

/// The text of `fleet`.
pub fn text(fleet: &Fleet) -> String {
    let header = ["CLUSTER", "CONTEXT", "REVISION", "BEHIND", "PENDING", "LAST RESULT"].map(String::from);
    let rows: Vec<Line> = fleet.clusters.iter().map(|row| ([row.cluster.clone(), row.context.clone()], columns(row))).collect();
    // A row that could not be read says why after its names, outside the columns.
    let mut widths = header.clone().map(|h| h.len());
    for (names, rest) in &rows {
        let cells = names.iter().chain(rest.as_ref().map(|cells| cells.as_slice()).unwrap_or_default());
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(cell, width)| format!("{cell:width$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(&header);
    for (names, rest) in &rows {
        match rest {
            Ok(cells) => out.push_str(&line(&[names.as_slice(), cells.as_slice()].concat())),
            Err(why) => out.push_str(&line(&[names[0].clone(), names[1].clone(), why.clone()])),
        }
    }
    if !fleet.tip.is_empty() {
        out.push_str(&format!("\nBranch {} is at {}.\n", fleet.branch, short(&fleet.tip)));
    }
    for row in fleet.clusters.iter().filter(|row| row.reachable && row.inventory) {
        out.push_str(&details(row, &fleet.branch));
    }
    out
}

/// Revision, behind, pending and last result; or why there are none.
fn columns(row: &Row) -> Result<[String; 4], String> {
    if !row.reachable {
        return Err(format!("unreachable: {}", row.error));
    }
    if !row.inventory {
        return Err("no inventory: no daemon has applied here".into());
    }
    let behind = row.behind_commits.map_or("-".to_string(), |n| n.to_string());
    let pending = row.pending.as_ref().map_or("-".to_string(), changes);
    let result = match (row.last_result.as_str(), row.last_result_time.as_str()) {
        ("", _) => "-".to_string(),
        (result, "") => result.to_string(),
        (result, time) => format!("{result} at {time}"),
    };
    Ok([short(&row.revision), behind, pending, result])
}

fn details(row: &Row, branch: &str) -> String {
    let mut lines = vec![format!("\n{} ({}):", row.cluster, row.context)];
    let mut say = |label: &str, value: String| lines.push(format!("  {label}: {value}"));
    if !row.error.is_empty() {
        say("note", row.error.clone());
    }
    if !row.last_message.is_empty() {
        say("last message", row.last_message.clone());
    }
    if !row.path.is_empty() {
        say("path", row.path.clone());
    }
    say("signed by", if row.signed_by.is_empty() { "-".into() } else { row.signed_by.clone() });
    say("drift", row.drifted.map_or("unknown (the daemon recorded none)".into(), |n| format!("{n} object(s) changed outside git")));
    if !row.suspended.is_empty() {
        say("suspended", format!("{} {}", row.suspended, row.suspension_note).trim_end().to_string());
    }
    if !row.pinned.is_empty() {
        say("pinned", row.pinned.clone());
    }
    for grant in &row.expiring {
        say("expiring", format!("{} at {} (in {} min)", grant.grant, grant.expires_at, grant.in_minutes));
    }
    if let Some(pending) = &row.pending {
        if pending.errors > 0 {
            say("branch tip", format!("{} error(s): the daemon applies nothing of it until they are fixed", pending.errors));
        }
        for change in &pending.access_changes {
            say("pending", format!("{}: {}", change.server, change.sentence()));
        }
    }
    if let (Some(commits), Some(catch_up)) = (row.catch_up_commits, &row.catch_up) {
        say("follows", format!("{}; {branch} is {commits} commit(s) ahead: {}", row.follows, changes(catch_up)));
        for change in &catch_up.access_changes {
            say("gain", format!("{}: {}", change.server, change.sentence()));
        }
    }
    lines.join("\n") + "\n"
}

/// What catching up would change, in a few words.
fn changes(p: &Pending) -> String {
    if p.widened + p.narrowed + p.changed + p.create + p.update + p.delete == 0 {
        return "nothing".to_string();
    }
    format!("{} widened, {} narrowed; {} object(s)", p.widened, p.narrowed, p.create + p.update + p.delete)
}

/// A commit id as people read it.
fn short(revision: &str) -> String {
    revision.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use crate::fleet::{ExpiringGrant, FORMAT_VERSION, Fleet, Pending, Row};

    fn fleet() -> Fleet {
        let at_tip = Row {
            context: "prod-eu".into(),
            cluster: "prod-eu".into(),
            reachable: true,
            inventory: true,
            revision: "a7e4aea9638ebfd36b92cd692b025a37a6c9acc8".into(),
            signed_by: "platform@fernhill.io".into(),
            path: "clusters/prod-eu".into(),
            follows: "main".into(),
            behind_commits: Some(0),
            pending: Some(Pending::default()),
            last_result: "applied".into(),
            last_result_time: "2026-11-25T00:00:00Z".into(),
            last_message: "revision a7e4aea9638e: 0 created, 1 updated".into(),
            drifted: Some(0),
            suspended: "soft".into(),
            suspension_note: "by dana at 2026-11-24T23:00:00Z: incident 4711".into(),
            expiring: vec![ExpiringGrant {
                expires_at: "2026-11-25T06:00:00Z".into(),
                grant: "mcp-team-payments/oncall".into(),
                in_minutes: 360,
            }],
            ..Row::default()
        };
        let behind = Row {
            context: "staging".into(),
            cluster: "staging-eu".into(),
            revision: "d4f9bc4c46246566080629e9fc1b76fb737f58cb".into(),
            follows: "release".into(),
            behind_commits: Some(3),
            pending: Some(Pending { update: 1, widened: 1, ..Pending::default() }),
            catch_up_commits: Some(5),
            catch_up: Some(Pending { create: 1, update: 1, widened: 2, ..Pending::default() }),
            drifted: None,
            pinned: "d4f9bc4c46246566080629e9fc1b76fb737f58cb".into(),
            last_result: "unchanged".into(),
            last_result_time: String::new(),
            last_message: String::new(),
            signed_by: String::new(),
            path: String::new(),
            suspended: String::new(),
            suspension_note: String::new(),
            expiring: Vec::new(),
            ..at_tip.clone()
        };
        let fresh = Row { context: "dev".into(), cluster: "dev".into(), reachable: true, ..Row::default() };
        let gone = Row {
            context: "prod-us".into(),
            cluster: "prod-us".into(),
            error: "the API server did not answer: client error (Connect)".into(),
            ..Row::default()
        };
        Fleet {
            format_version: FORMAT_VERSION,
            branch: "main".into(),
            tip: "a7e4aea9638ebfd36b92cd692b025a37a6c9acc8".into(),
            clusters: vec![at_tip, behind, fresh, gone],
        }
    }

    #[test]
    fn text_has_one_aligned_row_per_cluster_then_the_details() {
        insta::assert_snapshot!(super::text(&fleet()));
    }

    #[test]
    fn json_names_every_field() {
        insta::assert_json_snapshot!(fleet());
    }
}
