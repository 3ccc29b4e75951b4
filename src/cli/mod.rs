//! The command line: clap definitions (parse only) and the commands they run.
//!
//! `main.rs` parses a [`Cli`], sets up logging and calls [`run`], which returns the
//! process exit code. Commands print results on stdout and diagnostics on stderr.

mod advanced;
pub mod cluster;
mod commands;
pub mod logging;
pub mod output;
pub mod policies;
pub mod pr;
pub mod rollout;
pub mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit codes shared by every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything worked.
    Success = 0,
    /// Something other than the input failed (I/O, cluster, internal).
    Failure = 1,
    /// The repository is invalid: diagnostics were printed.
    Invalid = 2,
    /// The cluster could not be reached or read (`plan`, `apply`).
    Cluster = 3,
}

/// modelship: GitOps for ML model serving on Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "modelship", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Auto)]
    pub log_format: logging::LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every spec of a repository and report all problems with their location.
    Validate {
        /// Repository root (the directory holding modelship.yaml and services/).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// More policy directories, checked with the repository's policies/ (repeatable).
        #[arg(long = "policies", value_name = "DIR")]
        policies: Vec<PathBuf>,
    },
    /// Print the Kubernetes objects that the repository compiles to.
    Render {
        /// Repository root.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Only this service (metadata.name; `namespace/name` when ambiguous).
        #[arg(long)]
        service: Option<String>,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = RenderFormat::Yaml)]
        output: RenderFormat,
    },
    /// Follow a repository and keep the cluster in line with it (the GitOps daemon).
    Run(Box<run::RunArgs>),
    /// Run the embedded sandbox API server (a test double of a Kubernetes cluster).
    #[cfg(feature = "sandbox")]
    Sandbox {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: std::net::SocketAddr,
        /// Write a kubeconfig pointing at the sandbox to this file.
        #[arg(long)]
        write_kubeconfig: Option<PathBuf>,
    },
    /// Show what apply would change in the cluster, with the policies' verdicts (exit 0:
    /// none, 1: changes, 2: invalid repository or a policy denies a service, 3: cluster
    /// error).
    Plan(cluster::PlanArgs),
    /// Make the cluster match the repository with server-side apply; services a policy
    /// denies are left untouched.
    Apply(cluster::ApplyArgs),
    /// Policy commands (`policies export [DIR] [-o OUT]`).
    Policies {
        #[command(subcommand)]
        command: policies::PoliciesCommand,
    },
    /// Canary rollouts: `rollout status [NAMESPACE/NAME] [--watch]`, `rollout approve|abort|retry
    /// NAMESPACE/NAME`.
    Rollout {
        #[command(subcommand)]
        command: rollout::RolloutCommand,
    },
    /// Pull-request commands (`pr comment DIR --repo OWNER/NAME --pr N`), for CI jobs.
    Pr {
        #[command(subcommand)]
        command: pr::PrCommand,
    },
}

/// Output of `render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderFormat {
    /// A YAML stream, documents separated by `---`.
    Yaml,
    /// One JSON `List` object.
    Json,
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run::run(&args),
        #[cfg(feature = "sandbox")]
        Command::Sandbox {
            listen,
            write_kubeconfig,
        } => commands::sandbox(listen, write_kubeconfig.as_deref()),
        Command::Validate { dir, policies } => commands::validate(&dir, &policies),
        Command::Render {
            dir,
            service,
            output,
        } => commands::render(&dir, service.as_deref(), output),
        Command::Plan(args) => cluster::block_on(cluster::run_plan(&args)).into(),
        Command::Apply(args) => cluster::block_on(cluster::run_apply(&args)).into(),
        Command::Policies { command } => policies::run(command),
        Command::Pr { command } => cluster::block_on(pr::run(&command)).into(),
        Command::Rollout { command } => cluster::block_on(rollout::run(&command)).into(),
    }
}
