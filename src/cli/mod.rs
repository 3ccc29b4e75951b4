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

/// The exit codes of every command (README's "Commands" table says which each returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything worked; `plan`: nothing to change.
    Ok = 0,
    /// `plan`: there are changes to apply. Otherwise something other than the input
    /// failed: a file or GitHub could not be read or written, an object did not apply or
    /// become ready, the mass-prune guard refused, a rollout rolled back or paused, the
    /// Deployment of a rollout command does not exist.
    Failure = 1,
    /// The input is invalid (diagnostics were printed): the repository has errors, a
    /// policy is broken or denies a service, a target is not NAMESPACE/NAME.
    Invalid = 2,
    /// The cluster could not be reached or read.
    Cluster = 3,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
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
pub fn run(cli: Cli) -> Exit {
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
        Command::Plan(args) => cluster::block_on(cluster::run_plan(&args)),
        Command::Apply(args) => cluster::block_on(cluster::run_apply(&args)),
        Command::Policies { command } => policies::run(command),
        Command::Pr { command } => cluster::block_on(pr::run(&command)),
        Command::Rollout { command } => cluster::block_on(rollout::run(&command)),
    }
}
