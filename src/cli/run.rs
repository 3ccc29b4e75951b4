//! `modelship run`: the daemon. Clap arguments (parse only), their resolution into a
//! [`DaemonConfig`], the cluster connection (`cluster::connect`: kubeconfig or in-cluster;
//! or `--sandbox`), and signal handling (SIGTERM and Ctrl-C stop it gracefully). Failures
//! are [`RunError`]s.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::Exit;
use crate::cluster::{self, ConnectOptions};
use crate::daemon::{Backoff, DaemonConfig, DriftMode, Election, GitHubConfig, PodRef};
use crate::forge::CredentialSources;
use crate::plan::PruneMode;
use crate::source::{
    GitAuth, GitConfig, GitSource, LocalSource, Secret, SecretSource, Source, git,
};

#[path = "run_error.rs"]
mod error;
pub use error::{RunError, SandboxStartError};

/// Arguments of `modelship run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The repository: a Git URL (https://, ssh://, file://), a local Git repository, or a
    /// plain directory (watched for changes).
    #[arg(long)]
    pub repo: String,
    /// Branch to follow (Git only).
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Sub-directory of the repository holding modelship.yaml and services/ (Git only).
    #[arg(long, default_value = ".")]
    pub path: String,
    /// Poll interval (e.g. 30s, 1m, 5m): the fallback when no webhook arrives.
    #[arg(long, default_value = "1m")]
    pub interval: crate::spec::Duration,
    /// Address of the HTTP server (/healthz, /readyz, /metrics, /status, /hooks/github).
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long)]
    pub context: Option<String>,
    /// File holding the GitHub webhook secret (env MODELSHIP_WEBHOOK_SECRET otherwise); at
    /// least 16 bytes after trimming.
    #[arg(long)]
    pub webhook_secret_file: Option<PathBuf>,
    /// Start the embedded sandbox API server and reconcile into it.
    #[arg(long)]
    pub sandbox: bool,
    /// Where `--sandbox` writes its kubeconfig.
    #[arg(long)]
    pub sandbox_kubeconfig: Option<PathBuf>,
    /// What to do when the cluster drifts from the repository.
    #[arg(long, value_enum, default_value_t = Drift::Heal)]
    pub drift: Drift,
    /// Create missing namespaces (implied by --sandbox).
    #[arg(long)]
    pub create_namespaces: bool,
    /// Only these namespaces, comma-separated (env MODELSHIP_NAMESPACES): live objects are
    /// listed and watched in each of them instead of cluster-wide, so RoleBindings of
    /// modelship's ClusterRole in each are enough; a service of another namespace is an
    /// error of that service. Default: every namespace.
    #[arg(long, env = "MODELSHIP_NAMESPACES", value_name = "NS,...")]
    pub namespaces: Option<cluster::Namespaces>,
    /// Prune even when the mass-prune guard would refuse (most of the repository, or a
    /// whole folder of three or more services, gone at once).
    #[arg(long)]
    pub allow_mass_prune: bool,
    /// Services reconciled at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// File holding a bearer token for Prometheus (canary analysis), read at every query.
    #[arg(long, conflicts_with = "prometheus_basic_auth_file")]
    pub prometheus_bearer_token_file: Option<PathBuf>,
    /// File holding `user:password` for Prometheus' basic authentication, read at every
    /// query.
    #[arg(long)]
    pub prometheus_basic_auth_file: Option<PathBuf>,
    /// File holding an HTTPS token, read again at every fetch (env MODELSHIP_GIT_TOKEN
    /// otherwise, read once).
    #[arg(long)]
    pub git_token_file: Option<PathBuf>,
    /// HTTPS user name (with --git-password-file, or for a token; default x-access-token).
    #[arg(long)]
    pub git_username: Option<String>,
    /// File holding the HTTPS password, read again at every fetch.
    #[arg(long)]
    pub git_password_file: Option<PathBuf>,
    /// PEM bundle of CA certificates trusted, besides the system's, for HTTPS remotes;
    /// read again at every fetch.
    #[arg(long)]
    pub git_ca_file: Option<PathBuf>,
    /// SSH private key file, read again at every fetch.
    #[arg(long, requires = "ssh_known_hosts_file")]
    pub ssh_key_file: Option<PathBuf>,
    /// known_hosts file with the remote's host key (`ssh-keyscan -p PORT HOST`; plain,
    /// `[host]:port` and hashed entries), read again at every fetch.
    #[arg(long, requires = "ssh_key_file")]
    pub ssh_known_hosts_file: Option<PathBuf>,
    /// Directory of the bare Git cache (default: a directory under the temp dir).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Elect a leader on a Lease so that only one replica writes.
    #[arg(long)]
    pub leader_elect: bool,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else `modelship`).
    #[arg(long)]
    pub lease_namespace: Option<String>,
    /// Name of the Lease (default: the instance's name, so instances never share one).
    #[arg(long)]
    pub lease_name: Option<String>,
    /// The modelship instance: its objects carry `modelship.dev/instance: NAME`, and it
    /// reads, heals and prunes only those (several instances can share a cluster).
    #[arg(long, env = "MODELSHIP_INSTANCE", default_value_t)]
    pub instance: crate::ownership::Instance,
    #[command(flatten)]
    pub github: GitHubArgs,
}

/// The GitHub flags of `modelship run`: with credentials, the daemon acts on pull-request
/// events (plans, previews, outcomes, approvals).
#[derive(Debug, Clone, Default, Args)]
pub struct GitHubArgs {
    /// File holding a GitHub token (env MODELSHIP_GITHUB_TOKEN otherwise).
    #[arg(long, conflicts_with_all = ["github_app_id", "github_app_key_file"])]
    pub github_token_file: Option<PathBuf>,
    /// GitHub App id (with --github-app-key-file): installation tokens per repository.
    #[arg(long, requires = "github_app_key_file")]
    pub github_app_id: Option<u64>,
    /// The GitHub App's private key (PEM).
    #[arg(long, requires = "github_app_id")]
    pub github_app_key_file: Option<PathBuf>,
    /// The GitHub API (GitHub Enterprise: https://HOST/api/v3).
    #[arg(long, default_value = crate::forge::DEFAULT_API_URL)]
    pub github_api_url: String,
    /// The repository pull requests are taken from, OWNER/NAME (default: the last two
    /// path segments of --repo); deliveries about any other are refused.
    #[arg(long, value_name = "OWNER/NAME")]
    pub github_repository: Option<crate::forge::Repo>,
}

/// `--drift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Drift {
    /// Re-apply the repository.
    Heal,
    /// Only report.
    Warn,
}

/// Environment values the resolution reads, passed in so tests set them by hand.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub git_token: Option<String>,
    pub github_token: Option<String>,
    pub webhook_secret: Option<String>,
    /// `POD_NAME` (the downward API).
    pub pod_name: Option<String>,
    /// `POD_NAMESPACE` (the downward API).
    pub pod_namespace: Option<String>,
    /// `HOSTNAME`: the replica's identity in the election when `POD_NAME` is unset.
    pub hostname: Option<String>,
    /// Test only: `MODELSHIP_TEST_STEP_INTERVAL`, every canary's stepInterval.
    pub test_step_interval: Option<String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Env {
            git_token: var("MODELSHIP_GIT_TOKEN"),
            github_token: var("MODELSHIP_GITHUB_TOKEN"),
            webhook_secret: var("MODELSHIP_WEBHOOK_SECRET"),
            pod_name: var("POD_NAME"),
            pod_namespace: var("POD_NAMESPACE"),
            hostname: var("HOSTNAME"),
            test_step_interval: var(crate::engine::rollout::TEST_STEP_INTERVAL_ENV),
        }
    }
}

/// The shortest webhook secret the daemon accepts, in bytes after trimming: a shorter one
/// can be guessed, and whoever knows it can make the daemon act on pushed content.
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 16;

/// Resolves arguments and environment into a daemon configuration.
pub fn resolve(args: &RunArgs, env: &Env) -> Result<DaemonConfig, RunError> {
    let source = resolve_source(args, env)?;
    let webhook_secret = match (&args.webhook_secret_file, &env.webhook_secret) {
        (Some(path), _) => Some(read_secret(path)?),
        (None, Some(value)) => Some(Secret::new(value)),
        (None, None) => None,
    };
    if let Some(secret) = &webhook_secret
        && secret.expose().len() < MIN_WEBHOOK_SECRET_BYTES
    {
        return Err(RunError::WeakWebhookSecret {
            bytes: secret.expose().len(),
        });
    }
    let election = args.leader_elect.then(|| Election {
        namespace: args
            .lease_namespace
            .clone()
            .or_else(|| env.pod_namespace.clone())
            .unwrap_or_else(|| "modelship".into()),
        lease_name: args
            .lease_name
            .clone()
            .unwrap_or_else(|| args.instance.to_string()),
        identity: env
            .pod_name
            .clone()
            .or_else(|| env.hostname.clone())
            .unwrap_or_else(|| format!("modelship-{}", std::process::id())),
        duration_seconds: 15,
    });
    // Only the downward API names the Pod for sure (a HOSTNAME may be anything).
    let pod = match (&env.pod_namespace, &env.pod_name) {
        (Some(namespace), Some(name)) => Some(PodRef {
            namespace: namespace.clone(),
            name: name.clone(),
        }),
        _ => None,
    };
    let rollout = match &env.test_step_interval {
        Some(text) => crate::engine::rollout::Settings::with_step_interval(text)?,
        None => crate::engine::rollout::Settings::default(),
    };
    Ok(DaemonConfig {
        rollout,
        repo_name: source.repo_name(),
        source,
        branch: args.branch.clone(),
        interval: args.interval.value().max(Duration::from_secs(1)),
        listen: args.listen,
        webhook_secret,
        drift: match args.drift {
            Drift::Heal => DriftMode::Heal,
            Drift::Warn => DriftMode::Warn,
        },
        create_namespaces: args.create_namespaces || args.sandbox,
        namespaces: args.namespaces.clone().unwrap_or_default(),
        prune: if args.allow_mass_prune {
            PruneMode::Unguarded
        } else {
            PruneMode::Guarded
        },
        concurrency: args.concurrency.max(1),
        prometheus_auth: match (
            &args.prometheus_bearer_token_file,
            &args.prometheus_basic_auth_file,
        ) {
            (Some(path), _) => crate::prometheus::Auth::BearerFile(path.clone()),
            (None, Some(path)) => crate::prometheus::Auth::BasicFile(path.clone()),
            (None, None) => crate::prometheus::Auth::None,
        },
        backoff: Backoff::default(),
        election,
        pod,
        github: resolve_github(&args.github, &args.repo, env)?,
        instance: args.instance.clone(),
    })
}

/// The GitHub client's configuration, when credentials are given: a token file, else
/// `MODELSHIP_GITHUB_TOKEN`, or an App. Without credentials pull requests are not acted on.
fn resolve_github(
    args: &GitHubArgs,
    repo_url: &str,
    env: &Env,
) -> Result<Option<GitHubConfig>, RunError> {
    let sources = CredentialSources {
        token_file: args.github_token_file.as_deref(),
        token_env: env.github_token.as_deref().map(crate::forge::Secret::new),
        app_id: args.github_app_id,
        app_key_file: args.github_app_key_file.as_deref(),
    };
    let Some(credentials) = sources.resolve()? else {
        return Ok(None);
    };
    let config = GitHubConfig {
        api_url: args.github_api_url.trim_end_matches('/').to_string(),
        credentials,
        retry: crate::forge::RetryPolicy::default(),
        state_namespace: env
            .pod_namespace
            .clone()
            .unwrap_or_else(|| "modelship".to_string()),
        repository: args
            .github_repository
            .clone()
            .or_else(|| crate::forge::Repo::from_git_url(repo_url)),
    };
    // octocrab takes any URI with a scheme and a host; the daemon builds its client later
    // (inside the runtime), so a bad URL is reported here, at start-up.
    let uri: Option<http::Uri> = config.api_url.parse().ok();
    let usable =
        uri.is_some_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
    if !usable {
        return Err(RunError::GitHubApiUrl(args.github_api_url.clone()));
    }
    Ok(Some(config))
}

fn resolve_source(args: &RunArgs, env: &Env) -> Result<Source, RunError> {
    let path = Path::new(&args.repo);
    if path.is_dir() && !git::is_repository(path) {
        return Ok(Source::Local(LocalSource::new(path)));
    }
    let auth =
        if let (Some(key), Some(known_hosts)) = (&args.ssh_key_file, &args.ssh_known_hosts_file) {
            check_readable(key)?;
            check_readable(known_hosts)?;
            GitAuth::Ssh {
                username: "git".into(),
                private_key: key.clone(),
                known_hosts: known_hosts.clone(),
            }
        } else if let Some(password_file) = &args.git_password_file {
            check_readable(password_file)?;
            GitAuth::Basic {
                username: args
                    .git_username
                    .clone()
                    .ok_or(RunError::PasswordWithoutUsername)?,
                password: SecretSource::File(password_file.clone()),
            }
        } else if let Some(token) = match &args.git_token_file {
            Some(path) => {
                check_readable(path)?;
                Some(SecretSource::File(path.clone()))
            }
            None => env
                .git_token
                .as_deref()
                .map(|value| SecretSource::Value(Secret::new(value))),
        } {
            GitAuth::Basic {
                username: args
                    .git_username
                    .clone()
                    .unwrap_or_else(|| "x-access-token".into()),
                password: token,
            }
        } else {
            GitAuth::Anonymous
        };
    if let Some(ca_file) = &args.git_ca_file {
        check_readable(ca_file)?;
    }
    let url = match path.canonicalize() {
        Ok(absolute) if path.exists() => absolute.display().to_string(),
        _ => args.repo.clone(),
    };
    let cache_dir = args.cache_dir.clone().unwrap_or_else(|| {
        let digest = Sha256::digest(format!("{url}#{}", args.branch).as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        std::env::temp_dir().join(format!("modelship-git-{hex}"))
    });
    Ok(Source::Git(GitSource::new(GitConfig {
        url,
        branch: args.branch.clone(),
        path: args.path.clone(),
        cache_dir,
        auth,
        ca_file: args.git_ca_file.clone(),
    })))
}

/// Credential files are read again at every fetch; at start-up a missing one is a typo
/// to report at once rather than at the first fetch.
fn check_readable(path: &Path) -> Result<(), RunError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|source| file_error(path, source))
}

fn read_secret(path: &Path) -> Result<Secret, RunError> {
    std::fs::read_to_string(path)
        .map(|text| Secret::new(&text))
        .map_err(|source| file_error(path, source))
}

fn file_error(path: &Path, source: std::io::Error) -> RunError {
    RunError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs the daemon until SIGTERM or Ctrl-C.
pub fn run(args: &RunArgs) -> Exit {
    let ran = resolve(args, &Env::from_process()).and_then(|config| {
        let runtime = tokio::runtime::Runtime::new().map_err(RunError::Runtime)?;
        runtime.block_on(run_async(args, config))
    });
    match ran {
        Ok(()) => Exit::Ok,
        Err(error) => {
            eprintln!("error: {error}");
            Exit::Failure
        }
    }
}

async fn run_async(args: &RunArgs, config: DaemonConfig) -> Result<(), RunError> {
    let (shutdown_tx, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        let _ = shutdown_tx.send(true);
    });
    if args.sandbox {
        return run_in_sandbox(args, config, shutdown).await;
    }
    let options = ConnectOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    };
    let client = cluster::connect(&options).await?;
    Ok(crate::daemon::run(config, client, shutdown, None).await?)
}

/// `--sandbox`: the daemon against an embedded API server of its own.
#[cfg(feature = "sandbox")]
async fn run_in_sandbox(
    args: &RunArgs,
    config: DaemonConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let sandbox = crate::sandbox::Sandbox::start()
        .await
        .map_err(RunError::Sandbox)?;
    let path = args
        .sandbox_kubeconfig
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("modelship-sandbox.kubeconfig"));
    std::fs::copy(sandbox.kubeconfig_path(), &path).map_err(|source| file_error(&path, source))?;
    eprintln!(
        "sandbox API server at {}; watch it with: kubectl --kubeconfig {} get deploy,svc -A",
        sandbox.url(),
        path.display()
    );
    let result = crate::daemon::run(config, sandbox.client(), shutdown, None).await;
    let _ = sandbox.shutdown().await;
    Ok(result?)
}

/// `--sandbox` in a build without the embedded API server.
#[cfg(not(feature = "sandbox"))]
async fn run_in_sandbox(
    _: &RunArgs,
    _: DaemonConfig,
    _: watch::Receiver<bool>,
) -> Result<(), RunError> {
    Err(RunError::NoSandbox)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
