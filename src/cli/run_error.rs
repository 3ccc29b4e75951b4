//! Why `modelship run` could not start or stopped: [`RunError`], printed as `error: <text>`
//! before the process exits 1.

use std::path::PathBuf;

use crate::cluster;
use crate::daemon::DaemonError;
use crate::engine::rollout::SettingsError;

/// Why the daemon could not start, or stopped on an error. Printed as `error: <text>`.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A file named by a flag (credentials, CA bundle, webhook secret, the sandbox's
    /// kubeconfig) cannot be read or written.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The webhook secret is shorter than [`crate::cli::run::MIN_WEBHOOK_SECRET_BYTES`].
    #[error(
        "the webhook secret (--webhook-secret-file or MODELSHIP_WEBHOOK_SECRET) has {bytes} bytes; at least {} are needed: generate one with `openssl rand -hex 32`",
        crate::cli::run::MIN_WEBHOOK_SECRET_BYTES
    )]
    WeakWebhookSecret { bytes: usize },
    /// `--git-password-file` without `--git-username`.
    #[error("--git-password-file needs --git-username")]
    PasswordWithoutUsername,
    /// The GitHub credentials cannot be read, or are given in a combination that does not
    /// work.
    #[error(transparent)]
    GitHub(#[from] crate::forge::Error),
    /// `--github-api-url` is not an http(s) URL.
    #[error("--github-api-url `{0}` is not an http(s) URL")]
    GitHubApiUrl(String),
    /// `MODELSHIP_TEST_STEP_INTERVAL` is not a duration.
    #[error(transparent)]
    Rollout(#[from] SettingsError),
    /// The async runtime could not start.
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// No cluster configuration, or no client from it.
    #[error(transparent)]
    Cluster(Box<cluster::Error>),
    /// The embedded sandbox could not start.
    #[error("starting the sandbox: {0}")]
    Sandbox(#[source] SandboxStartError),
    /// `--sandbox` in a build without the embedded API server.
    #[error("this build has no embedded sandbox (built without the `sandbox` feature)")]
    NoSandbox,
    /// The daemon could not start or stopped on an error.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

impl RunError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            RunError::File { .. } => "run_file",
            RunError::PasswordWithoutUsername
            | RunError::GitHubApiUrl(_)
            | RunError::NoSandbox
            | RunError::WeakWebhookSecret { .. } => "run_flags",
            RunError::GitHub(e) => e.metric_label(),
            RunError::Rollout(e) => e.metric_label(),
            RunError::Runtime(_) => "run_runtime",
            RunError::Cluster(e) => e.metric_label(),
            RunError::Sandbox(_) => "run_sandbox",
            RunError::Daemon(e) => e.metric_label(),
        }
    }
}

impl From<cluster::Error> for RunError {
    fn from(error: cluster::Error) -> Self {
        RunError::Cluster(Box::new(error))
    }
}

/// What starting the embedded sandbox can fail with (nothing in a build without it).
#[cfg(feature = "sandbox")]
pub type SandboxStartError = crate::sandbox::SandboxError;
/// What starting the embedded sandbox can fail with (nothing in a build without it).
#[cfg(not(feature = "sandbox"))]
pub type SandboxStartError = std::convert::Infallible;
