//! A synthetic platform repository for the benchmarks (`tests/bench.sh`, docs/benchmarks.md):
//! S servers with 10 tools each, G grants and X sessions spread over team namespaces, laid out
//! as a platform team would (`teams/<team>/.mcp/servers.yaml`, `teams/<team>/grants/<server>.yaml`,
//! `teams/<team>/sessions/<server>.yaml`, `mcp-gitops.yaml`). The output is a pure function of
//! the options (the seed and `--now` included), and valid: `mcp-gitops validate` reports no
//! errors and no warnings on it, with the six default guardrail policies on (all seven with
//! `--time-bound`).
//!
//! It is a cargo example, not a subcommand, so that the product binary carries none of it; it
//! needs nothing the library does not already depend on.
//!
//! `--index FILE` writes one line per grant: `namespace name file line`, where `line` holds the
//! grant's `disabled: false`, so that a script can flip exactly one grant with `sed` without
//! changing any line number.

use clap::{Parser, ValueEnum};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(about = "Write a synthetic, valid platform repository for the mcp-gitops benchmarks")]
pub(crate) struct Options {
    /// MCP servers (10 tools each).
    #[arg(long, default_value_t = 1000)]
    servers: usize,
    /// MCPAccessGrants, spread over the servers.
    #[arg(long, default_value_t = 10_000)]
    grants: usize,
    /// MCPAgentSessions, each bound to the subject of one enabled grant of its server.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Team namespaces the servers are spread over.
    #[arg(long, default_value_t = 20)]
    namespaces: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Namespace names are PREFIX + team slug (use a fresh prefix per run on a cluster that
    /// cannot delete namespaces).
    #[arg(long, value_name = "PREFIX", default_value = "mcp-team-")]
    namespace_prefix: String,
    /// Sessions expire 1 to 23 hours after this time (RFC 3339; default: the current hour).
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    /// How servers are declared: `.mcp/servers.yaml` metadata, or MCPServer manifests (what
    /// `kubectl apply -f DIR --recursive` can read too; no mcp-gitops.yaml is written then).
    #[arg(long, value_enum, default_value_t = ServersAs::Metadata)]
    servers_as: ServersAs,
    /// Every grant that reaches a destructive tool carries `mcp-gitops.io/expires-at`, 1 to 29
    /// days after --now, and the default policy destructive-grants-expire stays on (without it
    /// the destructive grants are standing grants and mcp-gitops.yaml switches the policy off).
    #[arg(long)]
    time_bound: bool,
    /// Also write the grant index (namespace, name, file, line of `disabled: false`) here.
    #[arg(long, value_name = "FILE")]
    index: Option<PathBuf>,
    /// The directory to write (must not exist or be empty).
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServersAs {
    Metadata,
    Manifests,
}

/// splitmix64: a small, well-mixed generator; the repository must not change with a crate version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }
}

const TEAMS: &[&str] = &[
    "payments",
    "support",
    "billing",
    "search",
    "identity",
    "logistics",
    "catalog",
    "growth",
    "data",
    "security",
    "finance",
    "platform",
    "mobile",
    "checkout",
    "risk",
    "legal",
    "people",
    "sales",
    "ops",
    "research",
    "content",
    "partners",
    "infra",
    "quality",
];

/// What a server is about: its tools act on these.
const DOMAINS: &[(&str, &str)] = &[
    ("tickets", "ticket"),
    ("invoices", "invoice"),
    ("ledger", "journal_entry"),
    ("inventory", "stock_item"),
    ("deploys", "deployment"),
    ("docs", "document"),
    ("crm", "account"),
    ("analytics", "dashboard"),
    ("hr", "employee_record"),
    ("orders", "order"),
    ("incidents", "incident"),
    ("contracts", "contract"),
];

/// The ten tools of a server: (verb pattern, description, requiredTrust, sideEffect, riskLevel).
/// `{}` is the domain's noun.
const TOOLS: &[(&str, &str, &str, &str, &str)] = &[
    ("list_{}s", "List {}s, newest first, with their status", "low", "read", "low"),
    ("get_{}", "Fetch one {} with its history", "low", "read", "low"),
    ("search_{}s", "Full-text search over {}s (may return personal data)", "medium", "read", "medium"),
    ("export_{}s", "Export {}s matching a filter as CSV", "medium", "read", "medium"),
    ("create_{}", "Create a draft {}", "medium", "write", "medium"),
    ("update_{}", "Change fields of an existing {}", "medium", "write", "medium"),
    ("comment_on_{}", "Add an internal comment to a {}", "low", "write", "low"),
    ("assign_{}", "Assign a {} to a person or queue", "low", "write", "medium"),
    ("archive_{}", "Archive a {}; archived items leave every list", "high", "destructive", "high"),
    ("delete_{}", "Delete a {} permanently", "high", "destructive", "high"),
];

const AGENTS: &[&str] = &[
    "claude-code",
    "cursor",
    "triage-bot",
    "release-copilot",
    "billing-assistant",
    "report-writer",
    "oncall-copilot",
    "sync-agent",
    "review-agent",
    "intake-bot",
];

const FIRST: &[&str] =
    &["dana", "marcus", "priya", "li", "sofia", "tomasz", "amara", "jonas", "keiko", "rafael", "ines", "noor", "felix", "ada"];
const LAST: &[&str] =
    &["whitfield", "oyelaran", "raman", "chen", "moreau", "nowak", "okafor", "berg", "tanaka", "silva", "costa", "haddad"];

struct Team {
    slug: String,
    namespace: String,
    id: String,
}

struct Tool {
    name: String,
    description: String,
    trust: &'static str,
    effect: &'static str,
    risk: &'static str,
}

struct Server {
    name: String,
    team: usize,
    description: String,
    tools: Vec<Tool>,
    session_required: bool,
}

impl Server {
    fn effects(&self) -> Vec<&'static str> {
        ["read", "write", "destructive"].into_iter().filter(|e| self.tools.iter().any(|t| t.effect == *e)).collect()
    }

    fn tools_of(&self, effect: &str) -> Vec<&Tool> {
        self.tools.iter().filter(|t| t.effect == effect).collect()
    }
}

/// Who a grant is for, and through it whom its sessions bind.
#[derive(Clone)]
struct Subject {
    human: Option<String>,
    agent: Option<String>,
    team: Option<String>,
}

struct Grant {
    name: String,
    server: usize,
    subject: Subject,
    max_trust: &'static str,
    disabled: bool,
}

fn main() {
    let options = Options::parse();
    if let Err(message) = run(&options) {
        eprintln!("generate: error: {message}");
        std::process::exit(1);
    }
}

pub(crate) fn run(options: &Options) -> Result<(), String> {
    if options.servers == 0 || options.namespaces == 0 {
        return Err("--servers and --namespaces must be at least 1".into());
    }
    let now: jiff::Timestamp = match &options.now {
        Some(text) => text.parse().map_err(|e| format!("--now {text:?}: {e}"))?,
        None => {
            let now = jiff::Timestamp::now().as_second();
            jiff::Timestamp::from_second(now - now % 3600).map_err(|e| e.to_string())?
        }
    };
    if options.out.exists() && std::fs::read_dir(&options.out).map_err(|e| e.to_string())?.next().is_some() {
        return Err(format!("{} exists and is not empty", options.out.display()));
    }
    let mut rng = Rng(options.seed);
    let teams: Vec<Team> = (0..options.namespaces)
        .map(|i| {
            let base = TEAMS[i % TEAMS.len()];
            let slug = if i < TEAMS.len() { base.to_string() } else { format!("{base}{}", i / TEAMS.len() + 1) };
            Team { namespace: format!("{}{slug}", options.namespace_prefix), slug, id: rng.uuid() }
        })
        .collect();
    let servers: Vec<Server> = (0..options.servers).map(|i| server(i, i % teams.len(), &mut rng)).collect();
    let grants = grants(options.grants, &servers, &teams, &mut rng);

    let mut files: Vec<(String, String)> = Vec::new();
    let mut index = String::new();
    if options.servers_as == ServersAs::Metadata {
        files.push(("mcp-gitops.yaml".into(), config(&teams, options.time_bound)));
    }
    for (t, team) in teams.iter().enumerate() {
        let owned: Vec<usize> = (0..servers.len()).filter(|&s| servers[s].team == t).collect();
        if owned.is_empty() {
            continue;
        }
        match options.servers_as {
            ServersAs::Metadata => {
                files.push((format!("teams/{}/.mcp/servers.yaml", team.slug), metadata_file(team, owned.iter().map(|&s| &servers[s]))))
            }
            ServersAs::Manifests => {
                let documents: Vec<String> = owned.iter().map(|&s| server_manifest(&servers[s], team)).collect();
                files.push((format!("teams/{}/servers.yaml", team.slug), documents.join("---\n")));
            }
        }
        for &s in &owned {
            let file = format!("teams/{}/grants/{}.yaml", team.slug, servers[s].name);
            let mut text = String::new();
            for grant in grants.iter().filter(|g| g.server == s) {
                if !text.is_empty() {
                    text.push_str("---\n");
                }
                let line = text.lines().count();
                let document = grant_document(grant, &servers[s], team, options.time_bound.then_some(now), &mut rng);
                let disabled_line = document.lines().position(|l| l.trim_start().starts_with("disabled:")).unwrap_or(0);
                let _ = writeln!(index, "{} {} {} {}", team.namespace, grant.name, file, line + disabled_line + 1);
                text.push_str(&document);
            }
            if !text.is_empty() {
                files.push((file, text));
            }
        }
    }
    let (session_files, sessions) = sessions(options.sessions, &servers, &teams, &grants, now, &mut rng);
    files.extend(session_files);
    for (file, text) in &files {
        write(&options.out.join(file), text)?;
    }
    if let Some(path) = &options.index {
        write(path, &index)?;
    }
    eprintln!(
        "generate: {} servers, {} grants, {} sessions in {} files, {} namespaces ({}...), seed {}, now {}",
        servers.len(),
        grants.len(),
        sessions,
        files.len(),
        teams.len(),
        teams[0].namespace,
        options.seed,
        now
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn server(i: usize, team: usize, rng: &mut Rng) -> Server {
    let (domain, noun) = *rng.pick(DOMAINS);
    // One server in four is read/write only: its grants then never need destructive.
    let with_destructive = !rng.chance(25);
    let tools = TOOLS
        .iter()
        .map(|(pattern, description, trust, effect, risk)| {
            let (trust, effect, risk) =
                if *effect == "destructive" && !with_destructive { (*trust, "write", "medium") } else { (*trust, *effect, *risk) };
            Tool { name: pattern.replace("{}", noun), description: description.replace("{}", &noun.replace('_', " ")), trust, effect, risk }
        })
        .collect();
    Server {
        name: format!("{domain}-mcp-{i:04}"),
        team,
        description: format!("{} service for the team's {domain} (synthetic benchmark server {i})", capitalised(domain)),
        tools,
        session_required: rng.chance(60),
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn human(rng: &mut Rng) -> String {
    format!("{}.{}{}@fernhill.io", rng.pick(FIRST), rng.pick(LAST), rng.below(90) + 10)
}

/// G grants over the servers, round robin so that every server gets its share. The first of a
/// server's grants is team-wide and read-only; the others name an agent, a human and an agent
/// (with destructive rights when the server has destructive tools), or both plus the team.
fn grants(count: usize, servers: &[Server], teams: &[Team], rng: &mut Rng) -> Vec<Grant> {
    let mut per_server = vec![0usize; servers.len()];
    (0..count)
        .map(|i| {
            let s = i % servers.len();
            let n = per_server[s];
            per_server[s] += 1;
            let server = &servers[s];
            let team = &teams[server.team];
            let agent = format!("{}-{}", rng.pick(AGENTS), rng.below(50));
            let (role, subject, max_trust) = match if n == 0 { 0 } else { 1 + rng.below(3) } {
                0 => ("team-read", Subject { human: None, agent: None, team: Some(team.id.clone()) }, "medium"),
                1 => ("agent", Subject { human: None, agent: Some(agent), team: None }, "medium"),
                2 => ("oncall", Subject { human: Some(human(rng)), agent: Some(agent), team: None }, "high"),
                _ => ("pair", Subject { human: Some(human(rng)), agent: Some(agent), team: Some(team.id.clone()) }, "medium"),
            };
            Grant { name: format!("{}-{role}-{n:03}", server.name), server: s, subject, max_trust, disabled: rng.chance(3) }
        })
        .collect()
}

fn config(teams: &[Team], time_bound: bool) -> String {
    let mut text = String::from("# Synthetic platform repository for the mcp-gitops benchmarks (tests/bench/generate.rs).\n");
    let _ = writeln!(text, "defaultNamespace: {}", teams[0].namespace);
    text.push_str("allowedNamespaces:\n");
    for team in teams {
        let _ = writeln!(text, "  - {}", team.namespace);
    }
    if !time_bound {
        // The synthetic destructive grants are standing grants then: they carry no dates.
        text.push_str("policies:\n  disabled: [destructive-grants-expire]\n");
    }
    text
}

fn metadata_file<'a>(team: &Team, servers: impl Iterator<Item = &'a Server>) -> String {
    let mut text = format!("# MCP servers of team {} (team ID {}).\nversion: v1\nservers:\n", team.slug, team.id);
    for server in servers {
        let name = &server.name;
        let _ = write!(
            text,
            "  - name: {name}\n    description: {}\n    image: registry.fernhill.io/{}/{name}\n    imageTag: \"1.{}.0\"\n    namespace: {}\n    scope: tenant\n    teamID: {}\n    publicPathPrefix: {name}\n    route: /{name}/mcp\n    port: 8088\n    replicas: 1\n    resources:\n      requests: {{cpu: 50m, memory: 96Mi}}\n      limits: {{cpu: 250m, memory: 256Mi}}\n    envVars:\n      - name: MCP_PATH\n        value: /{name}/mcp\n      - name: LOG_LEVEL\n        value: info\n    gateway:\n      enabled: true\n    auth:\n      mode: header\n    policy:\n      mode: allow-list\n      defaultDecision: deny\n    session:\n      required: {}\n      maxLifetime: 24h\n      idleTimeout: 1h\n    tools:\n",
            server.description,
            team.slug,
            name.len() % 9,
            team.namespace,
            team.id,
            server.session_required
        );
        for tool in &server.tools {
            let _ = write!(
                text,
                "      - name: {}\n        description: {}\n        requiredTrust: {}\n        sideEffect: {}\n        riskLevel: {}\n",
                tool.name, tool.description, tool.trust, tool.effect, tool.risk
            );
        }
    }
    text
}

/// The MCPServer the metadata above converts to, written by hand for `--servers-as manifests`.
fn server_manifest(server: &Server, team: &Team) -> String {
    let name = &server.name;
    let mut text = format!(
        "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPServer\nmetadata:\n  name: {name}\n  namespace: {}\n  labels:\n    mcpruntime.org/scope: tenant\nspec:\n  description: {}\n  image: registry.fernhill.io/{}/{name}\n  imageTag: \"1.{}.0\"\n  ingressPath: /{name}/mcp\n  publicPathPrefix: {name}\n  port: 8088\n  servicePort: 80\n  replicas: 1\n  teamID: {}\n  envVars:\n    - name: MCP_PATH\n      value: /{name}/mcp\n  gateway:\n    enabled: true\n  auth:\n    mode: header\n  policy:\n    mode: allow-list\n    defaultDecision: deny\n  session:\n    required: {}\n    maxLifetime: 24h\n    idleTimeout: 1h\n  tools:\n",
        team.namespace,
        server.description,
        team.slug,
        name.len() % 9,
        team.id,
        server.session_required
    );
    for tool in &server.tools {
        let _ = write!(
            text,
            "    - name: {}\n      description: {}\n      requiredTrust: {}\n      sideEffect: {}\n      riskLevel: {}\n",
            tool.name, tool.description, tool.trust, tool.effect, tool.risk
        );
    }
    text
}

fn subject_yaml(subject: &Subject) -> String {
    let mut text = String::from("  subject:\n");
    for (key, value) in [("humanID", &subject.human), ("agentID", &subject.agent), ("teamID", &subject.team)] {
        if let Some(value) = value {
            let _ = writeln!(text, "    {key}: {value}");
        }
    }
    text
}

/// A grant's document; with `time_bound` (the generation's --now), a destructive one expires 1 to
/// 29 days after it (from its name, so that the rest of the repository is the same with or without).
fn grant_document(grant: &Grant, server: &Server, team: &Team, time_bound: Option<jiff::Timestamp>, rng: &mut Rng) -> String {
    let destructive = grant.max_trust == "high" && grant.subject.human.is_some();
    let expires = time_bound.filter(|_| destructive).map(|now| {
        let spread = grant.name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        let at = now.checked_add(jiff::SignedDuration::from_hours(24 + (spread % (28 * 24)) as i64)).unwrap_or(now);
        format!("  annotations:\n    mcp-gitops.io/expires-at: \"{}\"\n", at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    });
    let mut text = format!(
        "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAccessGrant\nmetadata:\n  name: {}\n  namespace: {}\n  labels:\n    fernhill.io/owner: {}\n{}spec:\n  serverRef:\n    name: {}\n",
        grant.name,
        team.namespace,
        team.slug,
        expires.unwrap_or_default(),
        server.name
    );
    text.push_str(&subject_yaml(&grant.subject));
    let team_wide = grant.subject.human.is_none() && grant.subject.agent.is_none();
    // Rule-less grants cover every tool, so they list every side effect the server has.
    let rule_less = destructive && rng.chance(50);
    let effects: Vec<&str> = if team_wide {
        vec!["read"]
    } else if rule_less {
        server.effects()
    } else if destructive {
        vec!["read", "write", "destructive"]
    } else {
        vec!["read", "write"]
    };
    let _ = writeln!(
        text,
        "  maxTrust: {}\n  allowedSideEffects: [{}]\n  policyVersion: v1\n  disabled: {}",
        grant.max_trust,
        effects.join(", "),
        grant.disabled
    );
    if rule_less {
        return text;
    }
    text.push_str("  toolRules:\n");
    let rule = |text: &mut String, tool: &Tool, decision: &str| {
        let _ = writeln!(text, "    - name: {}\n      decision: {decision}", tool.name);
        if decision == "allow" {
            let _ = writeln!(text, "      requiredTrust: {}", tool.trust);
        }
    };
    for tool in server.tools.iter().filter(|t| effects.contains(&t.effect) && (t.trust != "high" || grant.max_trust == "high")) {
        if rng.chance(80) {
            rule(&mut text, tool, "allow");
        }
    }
    // Agents alone never delete: say so explicitly, as the platform team would.
    if !destructive {
        for tool in server.tools_of("destructive") {
            rule(&mut text, tool, "deny");
        }
    }
    if !text.ends_with("toolRules:\n") {
        return text;
    }
    // Every allow rule was skipped: allow the first read tool so the grant does something.
    if let Some(tool) = server.tools_of("read").first() {
        rule(&mut text, tool, "allow");
    }
    text
}

fn trust_rank(trust: &str) -> usize {
    ["low", "medium", "high"].iter().position(|t| *t == trust).unwrap_or(0)
}

/// X sessions, round robin over the servers; each binds the subject of one of its server's
/// enabled grants and consents to at most that grant's maxTrust (no `trust_capped`).
fn sessions(
    count: usize,
    servers: &[Server],
    teams: &[Team],
    grants: &[Grant],
    now: jiff::Timestamp,
    rng: &mut Rng,
) -> (Vec<(String, String)>, usize) {
    let mut by_server: Vec<Vec<&Grant>> = vec![Vec::new(); servers.len()];
    for grant in grants.iter().filter(|g| !g.disabled) {
        by_server[grant.server].push(grant);
    }
    let mut files: Vec<String> = vec![String::new(); servers.len()];
    let mut per_server = vec![0usize; servers.len()];
    let mut made = 0;
    let mut s = 0;
    let mut idle_rounds = 0;
    while made < count && idle_rounds < servers.len() {
        let server = &servers[s];
        let candidates = &by_server[s];
        s = (s + 1) % servers.len();
        let Some(grant) = (!candidates.is_empty()).then(|| *rng.pick(candidates)) else {
            idle_rounds += 1;
            continue;
        };
        idle_rounds = 0;
        let team = &teams[server.team];
        let n = per_server[grant.server];
        per_server[grant.server] += 1;
        let consented = ["low", "medium", "high"][rng.below(trust_rank(grant.max_trust) + 1)];
        let expires = now.checked_add(jiff::SignedDuration::from_hours(1 + rng.below(23) as i64)).unwrap_or(now);
        let text = &mut files[grant.server];
        if !text.is_empty() {
            text.push_str("---\n");
        }
        let _ = write!(
            text,
            "apiVersion: mcpruntime.org/v1alpha1\nkind: MCPAgentSession\nmetadata:\n  name: {}-session-{n:03}\n  namespace: {}\nspec:\n  serverRef:\n    name: {}\n{}  consentedTrust: {consented}\n  expiresAt: \"{}\"\n  policyVersion: v1\n",
            server.name,
            team.namespace,
            server.name,
            subject_yaml(&grant.subject),
            expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        );
        if rng.chance(20) {
            let _ = writeln!(text, "  upstreamTokenSecretRef:\n    name: {}-upstream\n    key: token", server.name);
        }
        made += 1;
    }
    let files = files
        .into_iter()
        .enumerate()
        .filter(|(_, text)| !text.is_empty())
        .map(|(s, text)| (format!("teams/{}/sessions/{}.yaml", teams[servers[s].team].slug, servers[s].name), text))
        .collect();
    (files, made)
}
