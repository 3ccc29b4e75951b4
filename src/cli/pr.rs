//! `modelship pr comment`: the plan of a pull request as its sticky comment and its
//! `modelship/plan` commit status, from a CI job.
//!
//! ```text
//! GITHUB_TOKEN, --github-api-url ──▶ forge::GitHub
//! status modelship/plan: pending
//! DIR (+ --branch-config: the followed branch's governing settings)
//!     ──cluster::prepare_and_plan (the engine's planning, read-only)──▶ Planned
//!     ──capacity::estimate + CommentContext (diagnostics, merges, links to SHA)──▶ comment()
//! upsert_comment(Marker::Plan) ; status success | failure (invalid, denied) | error
//! ```
//!
//! Exit codes: 0 posted and the plan is clean, 2 posted and the repository is invalid or a
//! policy denies a service, 1 GitHub could not be told, 3 cluster error (an `error`
//! status is still posted).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::Exit;
use super::cluster::{self, ClusterArgs};
use crate::cluster::RetryPolicy as ClusterRetry;
use crate::forge::{
    self, CredentialSources, Credentials, ForgeMetrics, GitHub, Repo, RetryPolicy, Secret,
    StatusContext, StatusState,
};
use crate::plan::render::{self, Links};
use crate::spec::{self, RepositoryConfig};

/// The followed branch's modelship.yaml (`--branch-config`), as the daemon reads it: its
/// defaults where it has errors.
fn branch_config(path: &Path) -> Result<RepositoryConfig, std::io::Error> {
    let bytes = std::fs::read(path).map_err(|error| {
        std::io::Error::new(
            error.kind(),
            format!("reading --branch-config {}: {error}", path.display()),
        )
    })?;
    let files = std::collections::BTreeMap::from([(spec::CONFIG_FILE.to_string(), bytes)]);
    Ok(spec::load(&files).config)
}

/// `modelship pr ...`.
#[derive(Debug, clap::Subcommand)]
pub enum PrCommand {
    /// Plan DIR against the cluster (read-only) and post the result as the pull request's
    /// sticky comment and `modelship/plan` status (token from GITHUB_TOKEN).
    Comment(PrCommentArgs),
}

/// `modelship pr comment [DIR] --repo OWNER/NAME --pr N [--sha SHA]`.
#[derive(Debug, Clone, clap::Args)]
pub struct PrCommentArgs {
    /// The repository directory (the PR's head checked out).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The GitHub repository, OWNER/NAME.
    #[arg(long, value_parser = parse_repo)]
    pub repo: Repo,
    /// The pull request's number.
    #[arg(long)]
    pub pr: u64,
    /// The PR's head commit (statuses and links); default: HEAD of DIR's Git repository.
    /// In GitHub Actions pass `${{ github.event.pull_request.head.sha }}`: HEAD is a
    /// merge commit there.
    #[arg(long)]
    pub sha: Option<String>,
    /// The GitHub API (GitHub Enterprise: https://HOST/api/v3).
    #[arg(long, env = "MODELSHIP_GITHUB_API_URL", default_value = forge::DEFAULT_API_URL)]
    pub github_api_url: String,
    /// A file holding the token; default: the GITHUB_TOKEN environment variable.
    #[arg(long)]
    pub github_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// More policy directories, checked with the repository's policies/ (repeatable).
    #[arg(long = "policies", value_name = "DIR")]
    pub policies: Vec<PathBuf>,
    /// The followed branch's modelship.yaml (`git show origin/main:modelship.yaml`): its
    /// tenants, protectedNamespaces, previews, github, prometheus and analysis apply
    /// instead of the head's, as when the daemon plans the pull request. Without it the
    /// head's own settings are used.
    #[arg(long, value_name = "FILE")]
    pub branch_config: Option<PathBuf>,
}

fn parse_repo(text: &str) -> Result<Repo, forge::Error> {
    text.parse()
}

/// Why the head commit of the pull request is not known.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// `--sha` is not a (possibly abbreviated) hexadecimal commit id.
    #[error("--sha `{0}` is not a commit id")]
    NotACommit(String),
    /// No `--sha`, and DIR is not inside a Git repository.
    #[error("{} is not in a Git repository: pass --sha", .0.display())]
    NotInRepository(PathBuf),
    /// HEAD of DIR's repository cannot be read (unborn, broken).
    #[error("cannot read HEAD of {}: {}", .dir.display(), .source.message())]
    Head { dir: PathBuf, source: git2::Error },
}

impl CommitError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            CommitError::NotACommit(_) => "sha",
            CommitError::NotInRepository(_) | CommitError::Head { .. } => "git_head",
        }
    }
}

/// Runs a `pr` subcommand.
pub async fn run(command: &PrCommand) -> Exit {
    match command {
        PrCommand::Comment(args) => {
            let sources = CredentialSources {
                token_file: args.github_token_file.as_deref(),
                token_env: std::env::var("GITHUB_TOKEN").ok().map(Secret::new),
                ..CredentialSources::default()
            };
            match sources.resolve() {
                Ok(Some(credentials)) => {
                    comment_command(args, credentials, RetryPolicy::default()).await
                }
                Ok(None) => {
                    eprintln!("error: set GITHUB_TOKEN (or pass --github-token-file)");
                    Exit::Failure
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    Exit::Failure
                }
            }
        }
    }
}

/// `pr comment` with its credentials and retry policy (tests pass fast retries).
pub async fn comment_command(
    args: &PrCommentArgs,
    credentials: Credentials,
    retry: RetryPolicy,
) -> Exit {
    let mut stderr = std::io::stderr();
    let github = match GitHub::new(
        &args.github_api_url,
        credentials,
        retry,
        ForgeMetrics::default(),
    ) {
        Ok(github) => github,
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Failure;
        }
    };
    let (sha, root) = match head_commit(&args.dir, args.sha.as_deref()) {
        Ok(found) => found,
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Failure;
        }
    };
    let repo = &args.repo;
    let status = |state, text: String| {
        let github = &github;
        let sha = &sha;
        async move {
            github
                .set_status(repo, sha, StatusContext::Plan, state, &text, None)
                .await
        }
    };
    if let Err(error) = status(StatusState::Pending, "planning".to_string()).await {
        eprintln!("error: {error}");
        return Exit::Failure;
    }
    // Diagnostics go to stderr as with `plan`, and into the comment when nothing could be
    // planned.
    let mut report = Vec::new();
    let branch = match args.branch_config.as_deref().map(branch_config).transpose() {
        Ok(branch) => branch,
        Err(error) => {
            eprintln!("error: {error}");
            let _ = status(StatusState::Error, error.to_string()).await;
            return Exit::Failure;
        }
    };
    let load = spec::LoadOptions {
        governing: branch.as_ref(),
        ..spec::LoadOptions::default()
    };
    let prepared = cluster::prepare_and_plan_with(
        &args.dir,
        &args.policies,
        &args.cluster,
        &ClusterRetry::default(),
        &mut report,
        load,
    )
    .await;
    let _ = stderr.write_all(&report);
    let (markdown, state, description, exit) = match &prepared {
        Ok(planned) => {
            let loaded = &planned.revision.prepared;
            let links = Links {
                repository_url: forge::repository_url(&args.github_api_url, repo),
                sha: sha.clone(),
                root,
            };
            let exit = cluster::plan_exit(loaded, &planned.plan);
            let verdict = render::verdict(
                &loaded.repository.diagnostics,
                loaded.desired.repository_valid,
                &planned.plan,
            );
            let state = if verdict.passed {
                StatusState::Success
            } else {
                StatusState::Failure
            };
            let description = verdict.description;
            (
                crate::engine::comment::markdown(
                    loaded,
                    &planned.plan,
                    &planned.live,
                    &planned.rollouts,
                    Some(links),
                ),
                state,
                description,
                exit,
            )
        }
        Err(exit) => {
            let text = String::from_utf8_lossy(&report);
            let (state, description) = match exit {
                Exit::Cluster => (StatusState::Error, "the cluster could not be read"),
                _ => (StatusState::Failure, "the repository could not be planned"),
            };
            let markdown = format!(
                "### modelship plan\n\n**Nothing was planned**: {description}.\n\n```text\n{}\n```\n",
                text.trim_end().replace("```", "'''")
            );
            (markdown, state, description.to_string(), *exit)
        }
    };
    let posted = github
        .publish_plan(repo, args.pr, &sha, &markdown, state, &description)
        .await;
    let posted = match posted {
        Ok(write) => write,
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Failure;
        }
    };
    eprintln!(
        "{repo}#{}: comment {} ({posted:?}); modelship/plan {}: {description}",
        args.pr,
        posted.id(),
        state.name()
    );
    match exit {
        Exit::Failure => Exit::Ok,
        other => other,
    }
}

/// The head commit and where DIR lies in its Git repository (for links): `--sha` when
/// given, else HEAD.
fn head_commit(dir: &Path, sha: Option<&str>) -> Result<(String, String), CommitError> {
    let repository = git2::Repository::discover(dir).ok();
    let root = repository
        .as_ref()
        .and_then(|r| r.workdir())
        .and_then(|top| {
            let top = top.canonicalize().ok()?;
            let dir = dir.canonicalize().ok()?;
            let inner = dir.strip_prefix(top).ok()?.to_string_lossy().into_owned();
            Some(inner.replace('\\', "/"))
        })
        .unwrap_or_default();
    if let Some(sha) = sha {
        if sha.len() < 7 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(CommitError::NotACommit(sha.to_string()));
        }
        return Ok((sha.to_string(), root));
    }
    let repository = repository.ok_or_else(|| CommitError::NotInRepository(dir.to_path_buf()))?;
    let head = repository
        .head()
        .and_then(|h| h.peel_to_commit())
        .map_err(|source| CommitError::Head {
            dir: dir.to_path_buf(),
            source,
        })?;
    Ok((head.id().to_string(), root))
}
