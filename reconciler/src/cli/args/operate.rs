//! The arguments of running mcp-gitops in a cluster: the daemon and its controls (suspend, pin),
//! `install`, and `fleet status`.

use super::*;

/// Tell the running daemons of an inventory what to do, through the inventory they all read.
#[derive(Debug, Subcommand)]
pub enum DaemonControl {
    /// Stop applying: the daemons still fetch, verify, plan and report drift; revocations and expiries still apply unless --hard.
    #[command(
        after_help = "Takes effect at each daemon's next reconcile (poll, webhook or watch event) and holds across restarts.\nExit codes: 0 set, 1 the cluster could not be written, 64 usage error. See docs/daemon.md."
    )]
    Suspend(SuspendArgs),
    /// Apply again: the held changes are applied at the next reconcile.
    Resume(ControlArgs),
    /// Apply this revision of the branch instead of its tip (roll back); it must verify under today's trust files.
    #[command(
        after_help = "Examples:\n  mcp-gitops daemon pin HEAD~2 --kubeconfig admin.kubeconfig     # resolved in the repository at --repo-dir\n  mcp-gitops daemon pin 3f2c9e1d4b5a6978... --kubeconfig admin.kubeconfig\n\nThe rollback is applied like any revision: an expired grant comes back disabled. See docs/daemon.md."
    )]
    Pin(PinArgs),
    /// Follow the branch tip again.
    Unpin(ControlArgs),
}

#[derive(Debug, Args)]
pub struct PinArgs {
    /// The revision: a full commit id, or anything git names a commit by in the repository at --repo-dir.
    pub rev: String,
    /// A clone of the repository the daemons follow, to resolve REV in.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo_dir: PathBuf,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct SuspendArgs {
    /// Apply nothing at all, not even what only takes access away (deleted or disabled grants and sessions, expiries).
    #[arg(long)]
    pub hard: bool,
    /// Why: shown in /status, the Suspended Event and the inventory's annotation.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct ControlArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The git repository the daemon follows (https://, ssh:// or user@host:path).
    #[arg(long, value_name = "URL")]
    pub repo: String,
    /// The branch to follow.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// The directory inside the repository that holds the platform.
    #[arg(long, value_name = "SUBDIR", default_value = "")]
    pub path: String,
    /// The namespace of the daemon, its inventory, Lease and Secrets (created).
    #[arg(long, value_name = "NS", default_value = "mcp-gitops")]
    pub namespace: String,
    /// The daemon's image (default: deploy/daemon.yaml's, the release's own).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// The webhook's shared secret, stored in the Secret mcp-gitops-webhook (without it /hook is off).
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Apply nothing of a commit not signed by an allowed signer (docs/trust.md).
    #[arg(long, requires = "allowed_signers")]
    pub verify_signatures: bool,
    /// git's allowed_signers file for --verify-signatures, stored in the ConfigMap mcp-gitops-trust.
    #[arg(long, value_name = "FILE", requires = "verify_signatures")]
    pub allowed_signers: Option<PathBuf>,
    /// Print the manifests (YAML) instead of applying them; Secrets are not printed to a terminal.
    #[arg(long)]
    pub export: bool,
    // The credential files go into the Secret mcp-gitops-git, mounted for the daemon.
    #[command(flatten)]
    pub git: GitArgs,
    /// The kubeconfig file (default: KUBECONFIG, ~/.kube/config, then the in-cluster service account).
    #[arg(long, value_name = "FILE", conflicts_with = "export")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, conflicts_with = "export")]
    pub context: Option<String>,
}

impl InstallArgs {
    pub fn install(self) -> crate::install::Install {
        crate::install::Install {
            repo: self.repo,
            branch: self.branch,
            path: self.path,
            namespace: self.namespace,
            image: self.image,
            webhook_secret_file: self.webhook_secret_file,
            allowed_signers: self.allowed_signers,
            credentials: self.git.into(),
        }
    }
}

impl From<GitArgs> for crate::source::mirror::Credentials {
    fn from(git: GitArgs) -> Self {
        crate::source::mirror::Credentials {
            username: git.git_username,
            token_file: git.git_token_file,
            ssh_key_file: git.git_ssh_key_file,
            known_hosts_file: git.git_known_hosts_file,
            allow_insecure_http: git.allow_insecure_http,
        }
    }
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("trust_files").multiple(true).args(["allowed_signers", "pgp_keys"]))]
pub struct DaemonArgs {
    #[command(subcommand)]
    pub control: Option<DaemonControl>,
    /// The git repository to follow: https://, ssh:// or user@host:path, a local path or file:// URL
    /// (fetched into a cache, never checked out), or a plain directory.
    #[arg(long, value_name = "URL|PATH", required = true)]
    pub repo: Option<String>,
    /// The branch to follow.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// The directory inside the repository that holds the platform.
    #[arg(long, value_name = "SUBDIR", default_value = "")]
    pub path: String,
    /// How often to poll (a random +-10% is added).
    #[arg(long, value_name = "DURATION", default_value = "1m")]
    pub interval: String,
    /// How often the live state is read in full (one LIST per kind). In between, the daemon's watches
    /// say which objects changed, and a reconcile reads only those. 0s reads it all every time.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub resync_interval: String,
    /// Where to serve /hook, /status, /healthz, /readyz and /metrics.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub listen: std::net::SocketAddr,
    /// The shared secret of the webhook (GitHub HMAC-SHA256 or GitLab token); without it /hook is off.
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// What to do when someone edits a managed object outside git.
    #[arg(long, value_enum, default_value_t = crate::daemon::DriftMode::Correct)]
    pub drift: crate::daemon::DriftMode,
    /// Refuse to prune more than N objects in one reconcile.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_deletes: usize,
    /// Apply nothing of a revision that puts an object in (or points a grant at a server in) a namespace not
    /// listed here; the repository cannot widen this fence. Default: any namespace.
    #[arg(long, value_name = "NS,...", value_delimiter = ',')]
    pub allowed_namespaces: Vec<String>,
    #[arg(long, value_enum, default_value_t = crate::daemon::LogFormat::Text)]
    pub log_format: crate::daemon::LogFormat,
    /// Where the git repository is fetched to (a bare mirror). `--cache-dir`, its old name, still works.
    #[arg(long, value_name = "DIR", default_value = "/tmp/mcp-gitops-cache", alias = "cache-dir")]
    pub mirror_dir: PathBuf,
    /// Run as one of several replicas: only the holder of the Lease `mcp-gitops-leader` (in the
    /// inventory namespace) reconciles; the others wait as standby and are not ready.
    #[arg(long)]
    pub leader_elect: bool,
    /// How long a leader's Lease lasts without renewal: a standby takes over this long after the
    /// leader dies.
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    pub lease_duration: String,
    /// Apply nothing of a revision until every commit between the live revision and the new tip is signed by an
    /// allowed signer (SSH and OpenPGP signatures, docs/trust.md).
    #[arg(long, requires = "trust_files")]
    pub verify_signatures: bool,
    /// git's allowed_signers file for --verify-signatures; re-read on every reconcile.
    #[arg(long, value_name = "FILE", requires = "verify_signatures")]
    pub allowed_signers: Option<PathBuf>,
    /// OpenPGP public keys for --verify-signatures (a file, or a directory of *.asc, *.gpg, *.pgp, *.key);
    /// repeatable; re-read on every reconcile.
    #[arg(long, value_name = "FILE|DIR", requires = "verify_signatures")]
    pub pgp_keys: Vec<PathBuf>,
    /// With --verify-signatures, follow a new tip that does not descend from the live revision (verified from
    /// their merge base) instead of refusing it.
    #[arg(long, requires = "verify_signatures")]
    pub allow_non_fast_forward: bool,
    /// Also send every Event to the receivers this YAML file lists (CloudEvents, Slack, Teams webhooks;
    /// docs/daemon.md#notifications). Mount it from a Secret: it names the files of their URLs and keys.
    #[arg(long, value_name = "FILE")]
    pub notifications: Option<PathBuf>,
    /// Apply only this cluster's slice of the repository (`clusters:` in mcp-gitops.yaml, docs/fleet.md).
    #[arg(long = "cluster", value_name = "NAME")]
    pub fleet_cluster: Option<String>,
    #[command(flatten)]
    pub git: GitArgs,
}

/// Credentials for a remote repository. Files are read at every fetch, so a rotated Secret
/// needs no restart. For a private HTTPS certificate authority set SSL_CERT_FILE.
#[derive(Debug, Args)]
pub struct GitArgs {
    /// HTTPS: a file holding the access token or password (basic auth).
    #[arg(long, value_name = "FILE")]
    pub git_token_file: Option<PathBuf>,
    /// HTTPS: the user name sent with the token (default: the URL's, else `git`).
    #[arg(long, value_name = "NAME")]
    pub git_username: Option<String>,
    /// SSH: the private key file (no passphrase).
    #[arg(long, value_name = "FILE")]
    pub git_ssh_key_file: Option<PathBuf>,
    /// SSH: a known_hosts file that must list the server's host key (default: ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub git_known_hosts_file: Option<PathBuf>,
    /// Allow credentials (--git-token-file, or user-info in --repo) over plain http://, where anyone
    /// on the way can read them; refused by default. Only for a server on a network you trust.
    #[arg(long)]
    pub allow_insecure_http: bool,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Read each cluster's daemon state in parallel, one row per kubeconfig context.
    #[command(
        after_help = "Examples:\n  mcp-gitops fleet status\n  mcp-gitops fleet status --context staging --context prod --repo . --branch origin/main --format json\n\nA cluster that cannot be read is a row that says why; the others are still shown. See docs/fleet.md.\nExit codes: 0 every cluster read, 1 a cluster (or the kubeconfig) could not be read, 64 usage error."
    )]
    Status(FleetStatusArgs),
}

#[derive(Debug, Args)]
pub struct FleetStatusArgs {
    /// A kubeconfig context to read (repeatable); default: every context of the kubeconfig.
    #[arg(long, value_name = "NAME")]
    pub context: Vec<String>,
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of the inventory ConfigMap in every cluster.
    #[arg(long, value_name = "NS", default_value = crate::model::live::DEFAULT_INVENTORY_NAMESPACE)]
    pub inventory_namespace: String,
    /// A local clone of the repository the daemons follow: show how far each cluster is behind --branch.
    #[arg(long, value_name = "PATH")]
    pub repo: Option<PathBuf>,
    /// The branch (or tag, or origin/main) of --repo to compare with.
    #[arg(long, value_name = "REV", default_value = "main", requires = "repo")]
    pub branch: String,
    #[arg(long, value_enum, default_value_t = AnswerFormat::Text)]
    pub format: AnswerFormat,
}
