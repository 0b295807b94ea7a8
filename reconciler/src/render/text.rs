//! The plan for a terminal: object changes with their diffs, access changes, policy revisions,
//! then the summary line. Also the other commands' answers for a terminal, and apply's progress.

use super::Palette;
use super::escape::{terminal, terminal_lines};
use crate::apply::{Outcome, Report, Status};
use crate::model::DesiredState;
use crate::plan::access::Quoting;
use crate::plan::{Action, Direction, Plan};
use crate::source::root::Shown;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The plan after its diagnostics and those of its base, each with its lines from `sources` and
/// `base_sources`.
pub fn with_diagnostics(plan: &Plan, sources: &Files, base_sources: &Files, shown: &Shown, palette: Palette) -> String {
    let mut out = String::new();
    if !plan.diagnostics.is_empty() {
        out += &super::diagnostics::render(&plan.diagnostics, sources, shown, palette);
    }
    if !plan.base_diagnostics.is_empty() {
        // The base's files are named as in the base, which the heading names.
        let _ = writeln!(out, "Problems in the base ({}):", terminal(&plan.base.source));
        out += &super::diagnostics::render(&plan.base_diagnostics, base_sources, &Shown::AS_IS, palette);
    }
    match plan.clusters.is_empty() {
        true => out + &render(plan, palette),
        false => out + &by_cluster(plan, palette),
    }
}

/// The text plan of a repository with `clusters:`: each cluster's (`render`) under its name, then
/// the counts of all.
fn by_cluster(plan: &Plan, palette: Palette) -> String {
    let mut out = String::new();
    for cluster in &plan.clusters {
        let _ = writeln!(out, "{} {} ({})\n", palette.bold("Cluster"), terminal(&cluster.name), terminal(&cluster.cluster_name));
        out += &render(&cluster.plan, palette);
        out.push('\n');
    }
    let _ = writeln!(out, "{} {}", palette.bold("All clusters:"), plan.summary);
    out
}

/// Names in backticks and words as they are, each with its control characters shown.
const QUOTING: Quoting<'static> = Quoting { name: &|name| format!("`{}`", terminal(name)), text: &terminal };

/// File texts by path.
type Files = BTreeMap<String, std::sync::Arc<str>>;

pub fn render(plan: &Plan, palette: Palette) -> String {
    let mut out = String::new();
    if let Some(warning) = plan.summary.deletes_everything_warning() {
        let _ = writeln!(out, "{} {warning}\n", palette.red(&palette.bold("WARNING:")));
    }
    if !plan.base_diagnostics.is_empty() {
        let _ = writeln!(
            out,
            "{} the base ({}) has {} problem(s) of its own: objects in the files it could not read are missing from it, so creates marked uncertain, deletions and access changes of those objects may be wrong.\n",
            palette.yellow("note:"),
            terminal(&plan.base.source),
            plan.base_diagnostics.len()
        );
    }
    if let Some(b) = &plan.approvals.break_glass {
        let opened = format!("by {} ({}), until {}", terminal(&b.requester), terminal(&b.reason), b.expires_at);
        let _ = match b.within_rules {
            true => writeln!(
                out,
                "{} {opened}: within owners.breakGlass, it needs no approval when its author is the requester.\n",
                palette.bold("Break-glass:")
            ),
            false => writeln!(
                out,
                "{} {opened}, beyond owners.breakGlass: {}. It is an ordinary change.\n",
                palette.bold("Not break-glass:"),
                terminal(&b.beyond_rules.join("; "))
            ),
        };
    }
    if !plan.approvals.required.is_empty() {
        let _ = writeln!(out, "{}", palette.bold("Approvals needed (every line must hold):"));
        for r in &plan.approvals.required {
            let _ = writeln!(out, "  {}", requirement(r));
        }
        out.push('\n');
    }
    let changed: Vec<_> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    if changed.is_empty() {
        out.push_str("No object changes.\n");
    } else {
        let _ = writeln!(out, "{}", palette.bold("Object changes:"));
    }
    for change in changed {
        let (mark, paint): (&str, fn(Palette, &str) -> String) = match change.action {
            Action::Create => ("+", Palette::green),
            Action::Update => ("~", Palette::yellow),
            Action::Delete => ("-", Palette::red),
            Action::NoOp => (" ", Palette::dim),
        };
        let id = terminal(&format!("{}/{}/{}", change.kind, change.namespace, change.name));
        let _ = writeln!(out, "  {} {} {id}", paint(palette, mark), change.action.as_str());
        for drift in &change.drift {
            let _ = writeln!(
                out,
                "      {} {} changed by {}",
                palette.yellow("drift:"),
                terminal(&drift.path),
                terminal(&drift.managers.join(", "))
            );
        }
        if let Some(why) = &change.uncertain {
            let _ = writeln!(out, "      {} {}", palette.yellow("uncertain:"), terminal(why));
        }
        if change.adopt {
            let _ = writeln!(out, "      {} it exists and is not managed by mcp-gitops; apply needs --adopt", palette.yellow("note:"));
        }
        if !change.last_changed.is_empty() {
            let _ = writeln!(out, "      {} {}", palette.dim("last changed:"), terminal(&last_changed(&change.last_changed)));
        }
        for line in change.diff.lines().filter(|l| !l.starts_with("---") && !l.starts_with("+++")) {
            let line = &terminal(line);
            let line = if line.starts_with('+') {
                palette.green(line)
            } else if line.starts_with('-') {
                palette.red(line)
            } else if line.starts_with("@@") {
                palette.dim(line)
            } else {
                line.to_string()
            };
            let _ = writeln!(out, "      {line}");
        }
    }
    // What reviewers decide on, by subject; then, apart, the denials that only changed their reason.
    let (decisive, reasons) = crate::plan::access::decisive_first(&plan.access_changes);
    if !decisive.is_empty() {
        let _ = writeln!(out, "\n{}", palette.bold("Access changes:"));
        for (subject, changes) in crate::plan::access::by_subject(decisive, &QUOTING) {
            let _ = writeln!(out, "  {subject}:");
            for change in changes {
                // A widening is coloured by what it opens; less access is no risk to review.
                let mark = match (change.direction, change.widening_risk()) {
                    (Direction::Widened, 3) => palette.red("+"),
                    (Direction::Widened, 2) => palette.yellow("+"),
                    (Direction::Widened, _) => palette.green("+"),
                    (Direction::Narrowed, _) => "-".to_string(),
                    (Direction::Changed, _) => palette.yellow("~"),
                };
                let _ = writeln!(out, "    {mark} {}", change.predicate_in(&QUOTING));
            }
        }
    }
    if !reasons.is_empty() {
        let _ = writeln!(out, "\n{}", palette.bold(&format!("{} call(s) still denied, for another reason:", reasons.len())));
        for change in reasons {
            let _ = writeln!(out, "  {} {}", palette.dim("~"), change.sentence_in(&QUOTING));
        }
    }
    for grant in &plan.expiring {
        let _ = writeln!(
            out,
            "\n{} {} expires in {} day(s), at {}: then {} call(s) change",
            palette.bold("Expiring:"),
            terminal(&grant.grant),
            grant.in_days,
            grant.expires_at,
            grant.access_changes.len()
        );
        for change in &grant.access_changes {
            let _ = writeln!(out, "  {} {}", palette.red("-"), change.sentence_in(&QUOTING));
        }
    }
    if !plan.policy_revisions.is_empty() {
        let _ = writeln!(out, "\n{}", palette.bold("Predicted gateway policy revisions (of the rendering sorted by namespace/name):"));
        for revision in &plan.policy_revisions {
            let show = |r: &Option<String>| r.clone().unwrap_or_else(|| "(none)".into());
            let _ = writeln!(out, "  {}: {} -> {}", terminal(&revision.server), show(&revision.before), show(&revision.after));
        }
    }
    let _ = writeln!(out, "\n{}", palette.bold(&plan.summary.to_string()));
    if let Some(warning) = plan.summary.deletes_everything_warning() {
        // Said again under the summary: a plan of many deletions scrolls its top away.
        let _ = writeln!(out, "{} {warning}", palette.red(&palette.bold("WARNING:")));
    }
    out
}

/// What each reason code means, in one line, for `access explain`.
fn meaning(reason: &str) -> &'static str {
    match reason {
        "allowed" => "the call is allowed",
        "missing_identity" => "no human, agent or team identity was sent (a session id alone is not an identity)",
        "missing_session" => "the server requires a session and no session id was sent",
        "session_not_found" => "no session with that name binds this identity",
        "session_revoked" => "the session is revoked",
        "session_expired" => "the session's expiresAt has passed (or does not parse)",
        "no_matching_grant" => "no grant's subject matches this identity; the server's defaultDecision applies",
        "tool_denied" => "a deny rule in an enabled matching grant names this tool (any deny wins)",
        "tool_not_granted" => "no enabled matching grant covers this tool; the server's defaultDecision applies",
        "tool_side_effect_unknown" => "the tool is not declared on the server, or declares no valid sideEffect",
        "side_effect_not_allowed" => "no covering grant lists the tool's side effect in allowedSideEffects",
        "grant_without_trust" => "the covering grants carry no trust",
        "trust_too_low" => {
            "the effective trust (lower of the grant's maxTrust and the session's consentedTrust) is below what the tool or rule requires"
        }
        _ => "",
    }
}

/// One decision, explained for a person.
pub fn explain(
    document: &crate::gateway::PolicyDocument,
    identity: &crate::gateway::Identity,
    tool: &str,
    d: &crate::gateway::Decision,
    history: &[crate::source::LastChange],
) -> String {
    let mut out = String::new();
    let verdict = if d.allowed { "ALLOW" } else { "DENY" };
    let _ = writeln!(out, "{verdict} {} {}: {}", d.status, d.reason, meaning(d.reason));
    let _ = writeln!(out, "  server    {}/{} (policy {})", document.server.namespace, document.server.name, document.revision);
    let _ = writeln!(out, "  identity  {}", if identity.to_string().is_empty() { "(none)".to_string() } else { identity.to_string() });
    let mut tool_line = tool.to_string();
    let facts: Vec<String> = [("side effect", &d.required_side_effect), ("requires", &d.required_trust), ("risk", &d.risk_level)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if !facts.is_empty() {
        tool_line.push_str(&format!(" ({})", facts.join(", ")));
    }
    let _ = writeln!(out, "  tool      {tool_line}");
    if !d.admin_trust.is_empty() {
        let _ = writeln!(out, "  trust     admin {}, consented {}, effective {}", d.admin_trust, d.consented_trust, d.effective_trust);
    }
    if !d.matched_grant.is_empty() {
        let _ = writeln!(out, "  grant     {}/{}", d.matched_grant_namespace, d.matched_grant);
    }
    if !d.matched_session.is_empty() {
        let _ = writeln!(out, "  session   {}/{}", d.matched_session_namespace, d.matched_session);
    }
    for last in history {
        let c = &last.change;
        let signed = if c.signed { "signed" } else { "unsigned" };
        let _ = writeln!(out, "  from      {} at {}", last.object, last.source);
        let _ = writeln!(out, "            last changed in {} {:?} by {}, {} ({signed})", &c.commit[..7], c.summary, c.author, c.time);
    }
    if !d.policy_version.is_empty() {
        let _ = writeln!(out, "  version   {}", d.policy_version);
    }
    if d.reason == "no_matching_grant" {
        // The usual surprise: the operator fills an empty grant team with the server's teamID.
        for g in document.grants.iter().filter(|g| {
            let same = |want: &str, have: &str| want.is_empty() || want == have;
            same(&g.human_id, &identity.human) && same(&g.agent_id, &identity.agent) && !g.team_id.is_empty() && g.team_id != identity.team
        }) {
            let _ = writeln!(
                out,
                "  note      grant {}/{} would match with --team {} (its subject's team, or the server's teamID when the grant names none)",
                g.namespace, g.name, g.team_id
            );
        }
    }
    terminal_lines(&out)
}

/// The access matrix: per server and identity, one line per tool.
pub fn matrix(cells: &[crate::gateway::Access]) -> String {
    let mut out = String::new();
    let width = cells.iter().map(|c| c.tool.len()).max().unwrap_or(0);
    let mut last: Option<(&str, &crate::gateway::Identity)> = None;
    for cell in cells {
        if last.is_none_or(|(s, _)| s != cell.server) {
            let _ = writeln!(out, "{}", cell.server);
        }
        if last.is_none_or(|(s, i)| s != cell.server || i != &cell.identity) {
            let _ = writeln!(out, "  {}", cell.identity);
        }
        let d = &cell.decision;
        let detail = if d.allowed && !d.effective_trust.is_empty() { format!(" (trust {})", d.effective_trust) } else { String::new() };
        let _ = writeln!(out, "    {} {:width$}  {}{}", if d.allowed { "✓" } else { "✗" }, cell.tool, d.reason, detail);
        last = Some((&cell.server, &cell.identity));
    }
    terminal_lines(&out)
}

/// `who-can`: one line per caller, with its effective trust and the grant that allows it.
pub fn who_can(server: &str, tool: &str, callers: &[crate::gateway::Access], anyone: Option<&crate::gateway::Decision>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{server} {tool}:");
    if let Some(d) = anyone {
        let why = if d.reason == "allowed" { "the policy is in observe mode" } else { "the server's defaultDecision is allow" };
        let _ = writeln!(out, "  any caller without a matching grant ({why}: {})", d.reason);
    }
    for cell in callers {
        let _ = writeln!(out, "  {}{}", cell.identity, granted(&cell.decision));
    }
    let _ = writeln!(
        out,
        "{} caller(s) named by the repository may call it{}.",
        callers.len(),
        if anyone.is_some() { ", and so may anyone else" } else { "" }
    );
    terminal_lines(&out)
}

/// `what-can`: per server, every tool the caller may call.
pub fn what_can(identity: &crate::gateway::Identity, cells: &[crate::gateway::Access], misses: &[crate::gateway::NearMiss]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{identity}:");
    let mut last = "";
    for cell in cells {
        if cell.server != last {
            let _ = writeln!(out, "  {}", cell.server);
            last = &cell.server;
        }
        let _ = writeln!(out, "    {}{}", cell.tool, granted(&cell.decision));
    }
    let servers = cells.iter().map(|c| c.server.as_str()).collect::<std::collections::BTreeSet<_>>().len();
    let _ = writeln!(out, "{} tool(s) on {servers} server(s).", cells.len());
    out.push_str(&near_misses(misses));
    terminal_lines(&out)
}

/// The grants and sessions that name part of a caller who may call nothing on their server, and
/// the flags that would complete the caller for each; nothing when there are none.
pub fn near_misses(misses: &[crate::gateway::NearMiss]) -> String {
    let mut out = String::new();
    if misses.is_empty() {
        return out;
    }
    let _ = writeln!(out, "Grants and sessions that name this caller on a server it may call nothing on also require:");
    for miss in misses {
        let flags: Vec<String> = miss.requires.iter().map(|(flag, value)| format!("--{flag} {value}")).collect();
        let _ = writeln!(out, "  {} ({}): {}", miss.object, miss.server, flags.join(" "));
    }
    terminal_lines(&out)
}

/// `  (destructive, trust high, grant ns/name)` for an allowing decision.
fn granted(d: &crate::gateway::Decision) -> String {
    let mut facts: Vec<String> = Vec::new();
    if !d.required_side_effect.is_empty() {
        facts.push(d.required_side_effect.clone());
    }
    if !d.effective_trust.is_empty() {
        facts.push(format!("trust {}", d.effective_trust));
    }
    if !d.matched_grant.is_empty() {
        facts.push(format!("grant {}/{}", d.matched_grant_namespace, d.matched_grant));
    }
    if d.reason != "allowed" {
        facts.push(format!("by {}", d.reason));
    }
    if facts.is_empty() { String::new() } else { format!("  ({})", facts.join(", ")) }
}

/// `2 of [a, b] for ns/name: reason`
pub fn requirement(r: &crate::plan::Requirement) -> String {
    let who = if r.approvers.is_empty() { "nobody (the server has no owner)".to_string() } else { r.approvers.join(", ") };
    format!("{} of [{}] for {}: {}", r.count, terminal(&who), terminal(&r.servers.join(", ")), terminal(&r.reason))
}

/// `approvals check`: every requirement, met or with what is missing, and the approvers that
/// count for none.
pub fn approvals_check(check: &crate::plan::approvals::Check, author: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(b) = &check.break_glass {
        let opened = format!(
            "break-glass by {} ({}): {}, until {}",
            b.break_glass.requester,
            b.break_glass.reason,
            b.break_glass.objects.join(", "),
            b.break_glass.expires_at
        );
        match &b.refused {
            None => {
                let _ = writeln!(out, "✓ {opened}: within owners.breakGlass, no approval needed.");
                let _ = writeln!(
                    out,
                    "Follow-up review due by {} (mcp-gitops.io/reviewed-by, someone other than the requester).",
                    b.break_glass.review_by
                );
                return terminal_lines(&out);
            }
            Some(why) => {
                let _ = writeln!(out, "✗ Not {opened}: {why}. It is an ordinary change and needs the usual approvals.");
            }
        }
    }
    if check.required.is_empty() {
        out.push_str("No approvals required: the change widens no access that a rule covers.\n");
        return out;
    }
    for c in &check.required {
        match c.missing {
            0 => {
                let _ = writeln!(out, "✓ {}", requirement(&c.requirement));
            }
            missing => {
                let _ = writeln!(out, "✗ {} — {missing} more approval(s) needed", requirement(&c.requirement));
            }
        }
    }
    let unmatched = &check.unmatched;
    if !unmatched.is_empty() {
        let named: Vec<String> = unmatched
            .iter()
            .map(|u| match &u.closest {
                Some(close) => format!("{} (did you mean {close}?)", u.approver),
                None => u.approver.clone(),
            })
            .collect();
        let _ = writeln!(out, "Not counted, named by no requirement: {}", named.join(", "));
    }
    if let Some(author) = author {
        let _ = writeln!(out, "({author} wrote the change and does not count as an approver.)");
    }
    let met = check.required.iter().filter(|c| c.missing == 0).count();
    let _ = writeln!(out, "{met} of {} requirement(s) met.", check.required.len());
    terminal_lines(&out)
}

/// `verify`: one line per commit, the failures with their reason.
pub fn verdicts(verdicts: &[crate::trust::Verdict]) -> String {
    let mut out = String::new();
    for v in verdicts {
        let short = &v.commit[..v.commit.len().min(7)];
        match v.reason {
            None => {
                let _ = writeln!(out, "✓ {short} signed by {} ({}) — {}", v.principal, v.key, v.summary);
            }
            Some(reason) => {
                let key = if v.key.is_empty() { String::new() } else { format!(" [{}]", v.key) };
                let _ = writeln!(out, "✗ {short} {}{key}: {} — {}", reason.as_str(), v.detail, v.summary);
            }
        }
        for note in &v.notes {
            let _ = writeln!(out, "  note: {note}");
        }
    }
    let failed = verdicts.iter().filter(|v| !v.verified).count();
    let _ = writeln!(out, "{} commit(s): {} verified, {failed} failed", verdicts.len(), verdicts.len() - failed);
    terminal_lines(&out)
}

/// `at 1a2b3c4 (teams/payments/grants.yaml:3), signed by dana@fernhill.io`, from provenance
/// annotations.
pub fn last_changed(provenance: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    if let Some(revision) = provenance.get(crate::model::live::REVISION) {
        let short = revision.get(..7).unwrap_or(revision);
        let _ = write!(out, "at {short}{}", if revision.ends_with("-dirty") { " (uncommitted changes)" } else { "" });
    }
    if let Some(source) = provenance.get(crate::model::live::SOURCE) {
        let _ = write!(out, "{}in {source}", if out.is_empty() { "" } else { " " });
    }
    if let Some(signer) = provenance.get(crate::model::live::SIGNED_BY) {
        let _ = write!(out, ", signed by {signer}");
    }
    out
}

/// One line of `apply`'s progress: what was done to an object, or why not (nothing for an
/// unchanged one). A failure names the field the API server blamed at its place in the repository.
pub fn apply_outcome(outcome: &Outcome, desired: &DesiredState, dry_run: bool, palette: Palette) -> String {
    let done = match outcome.action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Delete => "deleted",
        Action::NoOp => "unchanged",
    };
    let suffix = if dry_run && outcome.status == Status::Done { " (dry run)" } else { "" };
    match &outcome.status {
        Status::Done => format!("  {} {}{suffix}\n", palette.green(done), terminal(&outcome.id.to_string())),
        Status::Unchanged => String::new(),
        Status::Skipped(why) => format!("  {} {}: {}\n", palette.yellow("skipped"), terminal(&outcome.id.to_string()), terminal(why)),
        Status::Failed(why) => format!(
            "  {} {}: {}{}\n",
            palette.red("failed"),
            terminal(&outcome.id.to_string()),
            terminal(&blamed_position(outcome, desired)),
            terminal(why)
        ),
        Status::NotAttempted => format!("  {} {}\n", palette.red("not attempted"), terminal(&outcome.id.to_string())),
    }
}

/// `file:line:column: ` of the field the API server blamed, in the repository.
fn blamed_position(outcome: &Outcome, desired: &DesiredState) -> String {
    let Some(field) = &outcome.field else { return String::new() };
    let Some(object) = desired.objects.iter().find(|o| o.id == outcome.id) else { return String::new() };
    let pointer: String = field.split('.').map(|segment| format!("/{}", crate::model::object::pointer_segment(segment))).collect();
    let pos = object.pos(&pointer);
    format!("{}:{}:{}: ", object.origin.file, pos.line, pos.column)
}

/// `apply`'s summary line.
pub fn apply_summary(report: &Report) -> String {
    let counts = report.counts();
    format!(
        "Apply {}: {} created, {} updated, {} deleted, {} unchanged (no request){}{}\n",
        if report.succeeded() { "complete" } else { "incomplete" },
        counts.created,
        counts.updated,
        counts.deleted,
        counts.unchanged,
        if counts.failed > 0 { format!(", {} failed", counts.failed) } else { String::new() },
        if counts.not_attempted > 0 { format!(", {} not attempted", counts.not_attempted) } else { String::new() },
    )
}

/// What an apply that the API server stopped answering did not attempt, for stderr: the full list
/// is on stdout, one line each; a few names say enough here.
pub fn not_attempted(report: &Report) -> Option<String> {
    let ids: Vec<String> = report.outcomes.iter().filter(|o| o.status == Status::NotAttempted).map(|o| o.id.to_string()).collect();
    if ids.is_empty() {
        return None;
    }
    let more = ids.len().saturating_sub(10);
    Some(format!(
        "the API server stopped answering; not applied: {}{}. Run apply again: it picks up where this run stopped.",
        ids[..ids.len().min(10)].join(", "),
        if more > 0 { format!(" and {more} more") } else { String::new() }
    ))
}
