//! Command-line arguments. Flags and their names are a contract (DESIGN.md): scripts use them.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

mod operate;
pub use operate::*;

#[derive(Debug, Parser)]
#[command(
    name = "mcp-gitops",
    version,
    about = "GitOps for the MCP runtime platform: validate, plan and apply MCP servers, access grants and agent sessions.",
    long_about = "mcp-gitops reads a platform repository (.mcp/servers.yaml metadata, MCPAccessGrant and \
MCPAgentSession manifests), checks it against the CRD schemas and the gateway's own semantics, and shows \
what a change does to the cluster and to who may call which tool.",
    after_help = "Examples:\n  mcp-gitops validate examples/platform\n  mcp-gitops plan examples/pr-change --base examples/platform\n  mcp-gitops plan . --base origin/main --format markdown --out plan.json > comment.md\n  mcp-gitops access explain examples/platform --server mcp-team-support/ticketing-mcp --tool get_ticket --agent ticket-triage-agent --team c41b9e07-2a6d-4f35-8b90-d17e5a2c6f18\n\nExit codes: 0 success (no changes), 1 error, 2 changes present (plan --detailed-exitcode), 64 usage error.\nDocs: docs/cli.md, docs/diagnostics.md"
)]
pub struct Cli {
    /// When to colour output: auto (only on a terminal, and not when NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// A directory outside the repository that its mcp-gitops.yaml may name in policies.directories
    /// (repeatable); a repository alone never makes mcp-gitops read outside itself.
    #[arg(long, global = true, value_name = "DIR")]
    pub allow_policy_dir: Vec<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a repository: YAML, schemas, identity and the gateway's metadata. Reports every problem at once.
    #[command(
        after_help = "Exit codes: 0 no errors (warnings allowed), 1 errors found, 64 usage error.\nEvery diagnostic code is explained in docs/diagnostics.md."
    )]
    Validate(ValidateArgs),
    /// Show what a change does: object changes with field diffs, access changes, predicted policy revisions.
    #[command(
        after_help = "Without --base, the plan is made against the cluster (--kubeconfig, --context, KUBECONFIG or in-cluster).\n\nExamples:\n  mcp-gitops plan examples/pr-change --base examples/platform\n  mcp-gitops plan examples/platform --kubeconfig admin.kubeconfig --out plan.json\n  mcp-gitops plan . --base origin/main --format markdown --out plan.json > comment.md\n  mcp-gitops plan . --base HEAD~1 --format json --detailed-exitcode\n\nExit codes: 0 no changes, 1 error (including an invalid desired state), 2 changes present (only with --detailed-exitcode), 64 usage error."
    )]
    Plan(PlanArgs),
    /// Ask the gateway's decision model about access.
    #[command(subcommand)]
    Access(AccessCommand),
    /// Print the gateway policy document the operator will write for one server, with its revision.
    Render(RenderArgs),
    /// Apply the repository to the cluster with server-side apply: only what changed is written.
    #[command(
        after_help = "Examples:\n  mcp-gitops apply examples/platform --dry-run\n  mcp-gitops plan examples/platform --out plan.json && mcp-gitops apply examples/platform --plan plan.json\n  mcp-gitops apply . --prune --max-deletes 3 --wait --timeout 2m\n\nOwnership: every applied object carries app.kubernetes.io/managed-by=mcp-gitops and the ApplySet label\napplyset.kubernetes.io/part-of; the inventory ConfigMap mcp-gitops-inventory lists them. --prune deletes only\nobjects that carry the label AND are in the inventory. See docs/apply.md.\n\nExit codes: 0 applied (or nothing to do), 1 error (invalid repository, refused guard, stale plan, failed object), 64 usage error."
    )]
    Apply(ApplyArgs),
    /// Run in the cluster: follow a branch, apply every new commit, correct or report drift, serve status and metrics.
    #[command(
        after_help = "Examples:\n  mcp-gitops daemon --repo /srv/platform.git --branch main --webhook-secret-file /etc/mcp-gitops/webhook-secret\n  mcp-gitops daemon --repo ./platform --interval 30s --drift report --kubeconfig ~/.kube/config\n\nEndpoints on --listen: POST /hook (GitHub X-Hub-Signature-256 or GitLab X-Gitlab-Token), GET /status, /healthz, /readyz, /metrics.\nSee docs/daemon.md."
    )]
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Daemon(Box<DaemonArgs>),
    /// Check that every commit of a range is signed by an allowed signer (SSH: git's allowed_signers; OpenPGP: --pgp-keys).
    #[command(
        after_help = "Examples:\n  mcp-gitops verify . --allowed-signers .mcp-gitops/allowed_signers --from origin/main --to HEAD\n  mcp-gitops verify --allowed-signers allowed_signers --format json\n  mcp-gitops verify . --pgp-keys .mcp-gitops/keys/ --from origin/main\n\nEach failing commit is named with a reason: unsigned, unknown_key, bad_signature, key_not_valid,\nprincipal_mismatch, path_not_allowed, not_a_descendant. The signing rules (trust: in mcp-gitops.yaml:\nidentity binding, path-scoped signers) are read at --from, or at --to's parent. See docs/trust.md.\nExit codes: 0 every commit verified, 1 a commit failed (or the repository or file could not be read), 64 usage error."
    )]
    Verify(VerifyArgs),
    /// Check the approvals a JSON plan requires against who approved the change.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Open emergency access to one tool now: write a break-glass grant (and session) and commit it.
    #[command(
        after_help = "Example:\n  mcp-gitops break-glass --server mcp-team-payments/payments-mcp --tool issue_refund \\\n    --human dana.whitfield@fernhill.io --agent claude-code --reason INC-4711 --for 30m --requester dana.whitfield\n\nWithin owners.breakGlass of mcp-gitops.yaml (who may, longest lifetime, reason pattern), approvals check passes\nthe change without approvals; the grant expires by itself. See docs/access-lifecycle.md#break-glass.\nExit codes: 0 committed, 1 refused (not allowed, too long, no reason, unknown server or tool) or git failed, 64 usage error."
    )]
    BreakGlass(BreakGlassArgs),
    /// Start a platform repository: mcp-gitops.yaml with owner and trust stubs, and the CI recipe.
    #[command(
        after_help = "Never overwrites a file. Then: mcp-gitops import (what a cluster holds), validate, plan. See docs/getting-started.md."
    )]
    Init(InitArgs),
    /// Write what a cluster already holds (MCPServers, grants, sessions) as the repository's files.
    #[command(
        after_help = "Writes NAMESPACE/.mcp/servers.yaml, NAMESPACE/grants/NAME.yaml and NAMESPACE/sessions/NAME.yaml; never\noverwrites a file; names what the files cannot say. Then `mcp-gitops plan DIR` shows no access change."
    )]
    Import(ImportArgs),
    /// Install the daemon for one repository: the manifests of deploy/ with its source, Secrets and trust files.
    #[command(
        after_help = "Examples:\n  mcp-gitops install --repo https://git.example.com/platform/access.git \\\n    --git-token-file token --webhook-secret-file hook --verify-signatures --allowed-signers allowed_signers\n  mcp-gitops install --repo ssh://git@git.example.com/platform/access.git --export \\\n    --git-ssh-key-file id_ed25519 --git-known-hosts-file known_hosts > mcp-gitops.yaml\n\nWithout --export: server-side apply (field manager mcp-gitops-install), one line per object:\ncreated, configured or unchanged; then deletes (pruned) the Secrets and ConfigMap an earlier install\nwrote for flags no longer given, never an object install did not write. --export prints the manifests, Secrets included (base64), and\nrefuses to print Secrets to a terminal. See docs/cli.md and docs/daemon.md.\nExit codes: 0 installed (or printed), 1 a file or the cluster failed, 64 usage error."
    )]
    Install(Box<InstallArgs>),
    /// Where each cluster of a fleet stands: live revision, last result, drift, expiring grants, commits behind.
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Install, for example:\n  mcp-gitops completion bash > ~/.local/share/bash-completion/completions/mcp-gitops\n  mcp-gitops completion zsh > \"${fpath[1]}/_mcp-gitops\"\n  mcp-gitops completion fish > ~/.config/fish/completions/mcp-gitops.fish\n  mcp-gitops completion powershell >> $PROFILE"
    )]
    Completion(CompletionArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("trust_files").required(true).multiple(true).args(["allowed_signers", "pgp_keys"]))]
pub struct VerifyArgs {
    /// A directory inside the git repository.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// git's allowed_signers file, for SSH signatures: `principals [options] keytype key` per line.
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
    /// OpenPGP public keys, for OpenPGP signatures: a file (armored or binary, one or more keys) or a
    /// directory of *.asc, *.gpg, *.pgp, *.key files; repeatable.
    #[arg(long, value_name = "FILE|DIR")]
    pub pgp_keys: Vec<PathBuf>,
    /// Verify the commits after this one (not included), up to --to.
    #[arg(long, value_name = "REV")]
    pub from: Option<String>,
    /// The last commit to verify.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub to: String,
    /// Follow only first parents: trust the merger of a merge, not each commit it brings in.
    #[arg(long)]
    pub first_parent: bool,
    /// The time of verification (RFC 3339), at which every key must be valid; default: the clock.
    #[arg(long, value_name = "TIME", visible_alias = "now")]
    pub at: Option<String>,
    #[arg(long, value_enum, default_value_t = AnswerFormat::Text)]
    pub format: AnswerFormat,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Exit 0 when every approval the plan requires is given, 1 (saying what is missing) when not.
    #[command(
        after_help = "Example, in a pull request's CI:\n  mcp-gitops plan . --base origin/main --out plan.json --format markdown > comment.md\n  mcp-gitops approvals check plan.json --approved-by alice,payments-leads --author bob\n\nApprovers are matched as the forges match them: trimmed, a leading @ dropped, case-insensitive\n(Dana.Whitfield, @dana.whitfield and dana.whitfield are one person). Resolving a person's teams is the CI's job.\nThe author never counts as an approver of their own change.\nExit codes: 0 every requirement met, 1 not met (or unreadable plan), 64 usage error."
    )]
    Check(ApprovalsCheckArgs),
}

#[derive(Debug, Args)]
pub struct ApprovalsCheckArgs {
    /// The JSON plan (`plan --out FILE`).
    pub plan: PathBuf,
    /// Who approved the change: handles or teams, comma-separated ("" for nobody yet).
    #[arg(long, value_name = "A,B,...", value_delimiter = ',', required = true)]
    pub approved_by: Vec<String>,
    /// The change's author, who never counts as an approver.
    #[arg(long, value_name = "HANDLE")]
    pub author: Option<String>,
    #[arg(long, value_enum, default_value_t = AnswerFormat::Text)]
    pub format: AnswerFormat,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The directory to start the repository in (created when missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The CI recipe to add (examples/ci/).
    #[arg(long, value_enum, default_value = "github")]
    pub ci: crate::scaffold::Ci,
    /// A namespace the repository's objects may target (allowedNamespaces); repeatable.
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BreakGlassArgs {
    /// A directory inside the platform repository (a git work tree).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The server: NAMESPACE/NAME, or a NAME only one namespace has.
    #[arg(long, value_name = "NS/NAME")]
    pub server: String,
    /// The tool to open.
    #[arg(long, value_name = "TOOL")]
    pub tool: String,
    /// The human the access is for (the grant's subject.humanID).
    #[arg(long, value_name = "HUMAN")]
    pub human: String,
    /// The agent the access is for (the grant's subject.agentID).
    #[arg(long, value_name = "AGENT")]
    pub agent: String,
    /// Why: a ticket or incident id (owners.breakGlass.reasonPattern).
    #[arg(long, value_name = "REASON")]
    pub reason: String,
    /// How long, such as 30m or 1h (default 1h, or owners.breakGlass.maxDuration when shorter).
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<jiff::SignedDuration>,
    /// Also write an MCPAgentSession of this name, ending with the grant.
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// Who asks: a forge handle, as approvals check --author names people (default: git's user.email).
    #[arg(long, value_name = "WHO")]
    pub requester: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The directory to write the files in.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Import only this namespace; repeatable (default: every namespace).
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// The kubeconfig file (default: KUBECONFIG, ~/.kube/config, then the in-cluster service account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// How to reach the cluster and where the inventory lives.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The kubeconfig file (default: KUBECONFIG, ~/.kube/config, then the in-cluster service account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace of the inventory ConfigMap (created when missing).
    #[arg(long, value_name = "NS", default_value = crate::model::live::DEFAULT_INVENTORY_NAMESPACE)]
    pub inventory_namespace: String,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The repository with the desired state: its directory, or one in it (the nearest mcp-gitops.yaml above marks it).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Apply exactly this reviewed plan (from `plan --out`); refused as stale when the repository or any object moved.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Ask the API server to check every change without persisting it.
    #[arg(long)]
    pub dry_run: bool,
    /// Take fields another field manager owns (otherwise a conflict names the manager and the field).
    #[arg(long)]
    pub force_conflicts: bool,
    /// Delete objects mcp-gitops applied earlier that the repository no longer declares.
    #[arg(long)]
    pub prune: bool,
    /// Refuse to prune more than N objects.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_deletes: usize,
    /// Take over objects that exist but were not applied by mcp-gitops.
    #[arg(long)]
    pub adopt: bool,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,
    /// Wait until the operator has taken the change: each changed server Ready, its gateway policy holding the
    /// predicted tools, grants and sessions (in any order) under a revision that hashes what it holds.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (e.g. 30s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticsFormat {
    Text,
    Json,
    /// GitHub Actions workflow commands (annotations); the full report goes to $GITHUB_STEP_SUMMARY when set.
    Github,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
    /// GitLab Code Quality JSON.
    Gitlab,
    /// JUnit XML test report.
    Junit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    /// A pull-request comment (starts with the marker line <!-- mcp-gitops-plan -->).
    Markdown,
    /// The plan's diagnostics as GitHub Actions workflow commands.
    Github,
    /// The plan's diagnostics as SARIF 2.1.0.
    Sarif,
    /// The plan's diagnostics as GitLab Code Quality JSON.
    Gitlab,
    /// The plan's diagnostics as a JUnit XML report.
    Junit,
}

/// The formats of `access explain` and `access matrix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnswerFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The repository: its directory, or one in it (the nearest mcp-gitops.yaml above marks it).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    #[arg(long, value_enum, default_value_t = DiagnosticsFormat::Text)]
    pub format: DiagnosticsFormat,
    /// Judge what the repository adds to a directory or a git revision of the repository that holds PATH: a
    /// built-in policy's violation the base already has is a warning, a new one an error (the ratchet).
    #[arg(long, value_name = "REV|DIR")]
    pub base: Option<String>,
    /// The time sessions are checked against (RFC 3339), instead of the clock.
    #[arg(long, value_name = "TIME", visible_alias = "now")]
    pub at: Option<String>,
    /// Also compare a server's metadata with the tools its running instance lists (MCP over streamable HTTP).
    #[arg(long, value_name = "URL")]
    pub from_server: Option<String>,
    /// The server the URL runs (NAME or NAMESPACE/NAME); needed when the repository declares several.
    #[arg(long, value_name = "[NS/]NAME", requires = "from_server")]
    pub server: Option<String>,
    /// How long the tools/list exchange with --from-server may take.
    #[arg(long, value_name = "DURATION", default_value = "20s", requires = "from_server")]
    pub from_server_timeout: String,
    /// Check this cluster's slice only (`clusters:` in mcp-gitops.yaml; default: every cluster).
    #[arg(long = "cluster", value_name = "NAME")]
    pub only_cluster: Option<String>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Where the work of earlier runs is kept (docs/cli.md "The cache").
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Keep what parsing each file and checking each object made under DIR, and take it from there for files that
    /// have not changed since (default: $XDG_CACHE_HOME/mcp-gitops, else ~/.cache/mcp-gitops). In CI, point it
    /// into the workspace (e.g. .mcp-gitops-cache) and cache that directory between jobs.
    #[arg(long, value_name = "DIR", env = "MCP_GITOPS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Use no cache: parse and check everything, keep nothing.
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The repository with the desired state: its directory, or one in it (the nearest mcp-gitops.yaml above marks it).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Compare against a directory, or a git revision (branch, tag, commit) of the repository that holds PATH,
    /// instead of the cluster.
    #[arg(long, value_name = "REV|DIR")]
    pub base: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Also write the JSON plan to FILE (whatever --format prints).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when the plan has changes, 0 when it has none.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// The time access decisions are evaluated at (RFC 3339), instead of the clock.
    #[arg(long, value_name = "TIME", visible_alias = "now")]
    pub at: Option<String>,
    /// With --base, compute everything afresh: parse every file of the base (not only those that differ from
    /// PATH's) and render every server's policy (not only those the change can affect). The same plan, slower:
    /// the reference the incremental path is tested against. Implies --no-cache.
    #[arg(long)]
    pub no_incremental: bool,
    /// Plan this cluster's slice only (`clusters:` in mcp-gitops.yaml; with --base, default: every cluster).
    #[arg(long = "cluster", value_name = "NAME")]
    pub only_cluster: Option<String>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Explain one decision: the reason code, the matched grant and session, and the trust triple.
    #[command(
        after_help = "Examples:\n  mcp-gitops access explain examples/platform --server mcp-team-payments/payments-mcp --tool issue_refund --human marcus.oyelaran@fernhill.io --agent refund-copilot --team 7f3c2a10-5d4e-4b8a-9c21-3e6f0a7d4b52 --session refund-copilot-marcus\n  kubectl get cm payments-mcp-gateway-policy -o jsonpath='{.data.policy\\.json}' | mcp-gitops access explain --policy - --tool list_invoices --agent billing-assistant"
    )]
    Explain(ExplainArgs),
    /// Every identity x tool decision the repository implies, per server.
    Matrix(MatrixArgs),
    /// Who may call a tool: every subject the repository names whose call the gateway allows, with its session,
    /// effective trust and the grant that allows it.
    #[command(
        after_help = "Example:\n  mcp-gitops access who-can examples/platform --server mcp-team-payments/payments-mcp --tool issue_refund\n\nThe subjects are those the server's grants and sessions name (and the server's team); a caller named nowhere\nis listed apart when the server's observe mode or defaultDecision allow lets anyone call."
    )]
    WhoCan(WhoCanArgs),
    /// What a caller may call: every server and tool the gateway allows this identity, with trust.
    #[command(
        after_help = "Example:\n  mcp-gitops access what-can examples/platform --human marcus.oyelaran@fernhill.io --agent refund-copilot --team 7f3c2a10-5d4e-4b8a-9c21-3e6f0a7d4b52 --session refund-copilot-marcus"
    )]
    WhatCan(WhatCanArgs),
    /// Judge every grant by the gateway's audit records: used, unused, shadowed, too young or not judged, by owner.
    #[command(
        after_help = "Examples:\n  mcp-gitops access review . --audit jsonl:events.jsonl --unused-for 30d\n  mcp-gitops access review . --audit events.jsonl --format markdown > review.md\n\nUse is an allowed call that names the grant; denials and calls allowed with no grant are not. A grant added\ninside the window is too young; a server with no record before the window's start is not judged. Docs:\ndocs/access-lifecycle.md"
    )]
    Review(ReviewArgs),
}

/// The formats of `access review`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReviewFormat {
    Text,
    Json,
    /// A pull-request comment (starts with the marker line <!-- mcp-gitops-access-review -->).
    Markdown,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The repository: its directory, or one in it (the nearest mcp-gitops.yaml above marks it); in a git repository.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The gateway's audit records: jsonl:PATH (or PATH), a JSON Lines file of its event envelopes; or
    /// clickhouse:URL, the platform's `events` table over ClickHouse's HTTP interface (user in CLICKHOUSE_USER,
    /// password in CLICKHOUSE_PASSWORD or --audit-password-file).
    #[arg(long, value_name = "SOURCE")]
    pub audit: String,
    /// A file whose first line is ClickHouse's password (instead of CLICKHOUSE_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub audit_password_file: Option<PathBuf>,
    /// The window: a grant no allowed call named for this long is proposed for removal.
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    pub unused_for: String,
    /// The end of the window (RFC 3339), instead of the clock.
    #[arg(long, value_name = "TIME", visible_alias = "now")]
    pub at: Option<String>,
    #[arg(long, value_enum, default_value_t = ReviewFormat::Text)]
    pub format: ReviewFormat,
    /// Commit the proposals: a file of proposed grants removed, a proposed grant sharing its file set to
    /// spec.disabled: true; nothing else, and no commit when nothing is proposed.
    #[arg(long)]
    pub write: bool,
}

#[derive(Debug, Args)]
pub struct WhoCanArgs {
    /// The repository: its directory, or one in it (the nearest mcp-gitops.yaml above marks it).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The server: NAMESPACE/NAME, or NAME when only one server has it.
    #[arg(long, value_name = "[NS/]NAME")]
    pub server: String,
    #[arg(long)]
    pub tool: String,
    /// The time of the call (RFC 3339), instead of the clock.
    #[arg(long, value_name = "TIME", visible_alias = "now")]
    pub at: Option<String>,
    #[arg(long, value_enum, default_value_t = AnswerFormat::Text)]
    pub format: AnswerFormat,
}

/// Who is calling: the identity headers the gateway would resolve, and the session header.
#[derive(Debug, Args)]
pub struct CallerArgs {
    #[arg(long, default_value = "")]
    pub human: String,
    #[arg(long, default_value = "")]
    pub agent: String,
    #[arg(long, default_value = "")]
    pub team: String,
    /// The session id (the X-MCP-Agent-Session header).
    #[arg(long, default_value = "")]
    pub session: String,
}

impl CallerArgs {
    pub fn identity(self) -> crate::gateway::Identity {
        crate::gateway::Identity { human: self.human, agent: self.agent, team: self.team, session: self.session }
    }
}

#[derive(Debug, Args)]
pub struct WhatCanArgs {
    /// The repository: its directory, or one in it (the nearest mcp-gitops.yaml above marks it).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    #[command(flatten)]
    pub caller: CallerArgs,
    /// The time of the call (RFC 3339), instead of the clock.
    #[arg(long, value_name = "TIME", visible_alias = "now")]
    pub at: Option<String>,
    #[arg(long, value_enum, default_value_t = AnswerFormat::Text)]
    pub format: AnswerFormat,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The repository: its directory, or one in it (the nearest mcp-gitops.yaml above marks it); ignored with --policy.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// A rendered policy document (policy.json of a <server>-gateway-policy ConfigMap); - reads stdin.
    #[arg(long, value_name = "FILE|-")]
    pub policy: Option<String>,
    /// The server: NAMESPACE/NAME, or NAME when only one server has it (required without --policy).
    #[arg(long, value_name = "[NS/]NAME")]
    pub server: Option<String>,
    #[arg(long)]
    pub tool: String,
    /// The JSON-RPC method; only tools/call and call_tool are governed.
    #[arg(long, default_value = "tools/call")]
    pub method: String,
    #[command(flatten)]
    pub caller: CallerArgs,
    /// The time of the call (RFC 3339), instead of the clock.
    #[arg(long, value_name = "TIME", visible_alias = "now")]
    pub at: Option<String>,
    /// Read the repository at this git revision instead of the work tree, and show where the deciding grant and
    /// session come from: file:line and the commit that last changed each one's content.
    #[arg(long, value_name = "REV", conflicts_with = "policy")]
    pub revision: Option<String>,
    #[arg(long, value_enum, default_value_t = AnswerFormat::Text)]
    pub format: AnswerFormat,
}

#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// The repository: its directory, or one in it (the nearest mcp-gitops.yaml above marks it).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Only this server: NAMESPACE/NAME, or NAME when only one server has it.
    #[arg(long, value_name = "[NS/]NAME")]
    pub server: Option<String>,
    /// The time of the calls (RFC 3339), instead of the clock.
    #[arg(long, value_name = "TIME", visible_alias = "now")]
    pub at: Option<String>,
    #[arg(long, value_enum, default_value_t = AnswerFormat::Text)]
    pub format: AnswerFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderFormat {
    /// policy.json as the operator writes it (2-space JSON, Go's HTML-safe escaping), with generated_at left empty.
    Json,
    /// The <server>-gateway-policy ConfigMap manifest.
    Configmap,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The repository: its directory, or one in it (the nearest mcp-gitops.yaml above marks it).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The server: NAMESPACE/NAME, or NAME when only one server has it.
    #[arg(long, value_name = "[NS/]NAME")]
    pub server: String,
    #[arg(long, value_enum, default_value_t = RenderFormat::Json)]
    pub format: RenderFormat,
}
