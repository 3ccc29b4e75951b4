//! GitHub, the forge: sticky pull-request comments, commit statuses, and who may approve,
//! over octocrab's HTTP stack; and the typed webhook events of pull requests ([`events`]).
//!
//! ```text
//!                    ┌──────────── GitHub (api_url) ────────────┐
//! engine/daemon/CLI ─▶ GitHub::upsert_comment(repo, pr, Marker::Plan, markdown)
//!                    │   GET  /repos/O/R/issues/N/comments (every page) ─▶ the one with the marker
//!                    │   PATCH /repos/O/R/issues/comments/ID  or  POST /repos/O/R/issues/N/comments
//!                    ├ GitHub::set_status(repo, sha, StatusContext::Plan, Pending|Success|Failure, text)
//!                    │   POST /repos/O/R/statuses/SHA
//!                    ├ GitHub::may_approve(repo, user, approvers)
//!                    │   GET  /repos/O/R/collaborators/U/permission  (or team memberships)
//!                    ├ GitHub::reply(repo, pr, text)       POST /repos/O/R/issues/N/comments
//!                    └ GitHub::pull_request(repo, pr)      GET  /repos/O/R/pulls/N (open? merged?)
//! ```
//!
//! Every request goes through [`transport`]: token or GitHub App authentication
//! ([`auth`]), a timeout, retries with backoff on 5xx and on rate limits (honouring
//! `Retry-After` and `x-ratelimit-reset`), and the counter
//! `modelship_forge_requests_total{result}` ([`ForgeMetrics`]). Credentials never appear
//! in logs, errors or `Debug` output.
//!
//! The flows of a pull request are a few calls each:
//! - plan comment: `set_status(Plan, Pending)`, plan, render
//!   [`crate::plan::render::comment`] and [`crate::plan::render::verdict`], then
//!   [`GitHub::publish_plan`] (the sticky comment, then `Success` or `Failure`);
//!   `cli::pr::comment_command` is the whole flow;
//! - outcome of a merged PR: `set_status(Apply, Pending)` on the merge commit, then once
//!   the rollouts finished `upsert_comment(Marker::Outcome, ...)` and `set_status(Apply,
//!   Success|Failure)`;
//! - approval: on [`events::Event::Command`] with [`events::Command::Approve`], call
//!   `may_approve(repo, user, &config.github.approvers)`; `Allowed` approves the gate,
//!   `Refused(why)` becomes `reply(repo, pr, why)`;
//! - preview: `upsert_comment(Marker::Preview, ...)` listing its objects and URLs.

pub mod auth;
mod client;
pub mod events;
mod pulls;
pub mod transport;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use auth::{AppKey, CredentialSources, Credentials, Secret};
pub use client::{Approval, CommentWrite, GitHub, Marker, Permission, StatusContext, StatusState};
pub use pulls::PullState;
pub use transport::{ForgeMetrics, RetryPolicy};

/// The public API of github.com; GitHub Enterprise uses `https://HOST/api/v3`.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// Errors of talking to GitHub.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--github-api-url` is not a URL.
    #[error("GitHub API URL `{0}` is not a valid URL")]
    ApiUrl(String),
    /// A token or App key file cannot be read or used.
    #[error("GitHub credentials {}: {reason}", path.display())]
    Credentials { path: PathBuf, reason: String },
    /// Credentials given in a combination that does not work.
    #[error("GitHub credentials: {0}")]
    CredentialChoice(String),
    /// The App's JWT could not be signed.
    #[error("cannot sign the GitHub App token")]
    Signing,
    /// The App is not installed on the repository.
    #[error("the GitHub App is not installed on {0}")]
    NotInstalled(String),
    /// A repository that is not `OWNER/NAME`.
    #[error("`{0}` is not a repository (OWNER/NAME)")]
    RepoName(String),
    /// The request could not be sent or its answer read.
    #[error("GitHub {method} {path}: {reason}")]
    Transport {
        method: String,
        path: String,
        reason: String,
    },
    /// An attempt took longer than its timeout.
    #[error("GitHub {method} {path}: no answer within {secs}s")]
    Timeout {
        method: String,
        path: String,
        secs: u64,
    },
    /// GitHub refused the request (after the retries its status allows).
    #[error("GitHub {method} {path} answered {status}: {message}")]
    Status {
        status: u16,
        method: String,
        path: String,
        message: String,
    },
    /// Rate limited for longer than [`RetryPolicy::max_wait`].
    #[error("GitHub {method} {path}: rate limited for {wait_secs}s more; not waiting")]
    RateLimited {
        method: String,
        path: String,
        wait_secs: u64,
    },
    /// A webhook body that is not the JSON GitHub sends for its event.
    #[error("`{event}` delivery is not valid: {reason}")]
    Payload { event: String, reason: String },
    /// An answer that is not the JSON GitHub documents.
    #[error("GitHub {method} {path}: unexpected answer: {reason}")]
    Decode {
        method: String,
        path: String,
        reason: String,
    },
}

impl Error {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::ApiUrl(_) => "forge_api_url",
            Error::Credentials { .. } | Error::CredentialChoice(_) => "forge_credentials",
            Error::Signing => "forge_signing",
            Error::NotInstalled(_) => "forge_not_installed",
            Error::RepoName(_) => "forge_repo_name",
            Error::Transport { .. } => "forge_transport",
            Error::Timeout { .. } => "forge_timeout",
            Error::Status { .. } => "forge_status",
            Error::RateLimited { .. } => "forge_rate_limited",
            Error::Decode { .. } => "forge_decode",
            Error::Payload { .. } => "forge_payload",
        }
    }
}

/// Result of forge calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A repository on GitHub, `OWNER/NAME`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repo {
    pub owner: String,
    pub name: String,
}

impl FromStr for Repo {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || Error::RepoName(text.to_string());
        let (owner, name) = text.split_once('/').ok_or_else(bad)?;
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.len() <= 100
                && p != "."
                && p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !part_ok(owner) || !part_ok(name) {
            return Err(bad());
        }
        Ok(Repo {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }
}

impl Repo {
    /// True when both name the same repository: GitHub compares owners and names without
    /// regard to case (`Acme/Models` is `acme/models`).
    pub fn same_as(&self, other: &Repo) -> bool {
        self.owner.eq_ignore_ascii_case(&other.owner) && self.name.eq_ignore_ascii_case(&other.name)
    }

    /// The repository a Git URL names, from its last two path segments (`.git` dropped):
    /// `https://github.com/acme/models.git`, `git@github.com:acme/models.git`,
    /// `ssh://git@host:2222/acme/models`. `None` when they are not `OWNER/NAME`.
    pub fn from_git_url(url: &str) -> Option<Repo> {
        let path = url.trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let mut parts = path.rsplit(['/', ':']);
        let name = parts.next()?;
        let owner = parts.next()?;
        format!("{owner}/{name}").parse().ok()
    }
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// The web address of a repository for an API URL: `https://github.com/O/R` for the public
/// API, `https://HOST/O/R` for GitHub Enterprise (`https://HOST/api/v3`), and
/// `API_URL/O/R` otherwise (a test server).
pub fn repository_url(api_url: &str, repo: &Repo) -> String {
    let api = api_url.trim_end_matches('/');
    let web = if api == DEFAULT_API_URL {
        "https://github.com"
    } else {
        api.strip_suffix("/api/v3").unwrap_or(api)
    };
    format!("{web}/{repo}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_owner_slash_name() {
        let repo: Repo = "acme/ml-models".parse().unwrap();
        assert_eq!(
            (repo.owner.as_str(), repo.name.as_str()),
            ("acme", "ml-models")
        );
        assert_eq!(repo.to_string(), "acme/ml-models");
        for bad in ["acme", "/x", "acme/", "a/b/c", "a/..", "a b/c"] {
            assert!(bad.parse::<Repo>().is_err(), "{bad}");
        }
    }

    #[test]
    fn web_urls_follow_the_api_url() {
        let repo: Repo = "acme/models".parse().unwrap();
        assert_eq!(
            repository_url("https://api.github.com/", &repo),
            "https://github.com/acme/models"
        );
        assert_eq!(
            repository_url("https://git.acme.com/api/v3", &repo),
            "https://git.acme.com/acme/models"
        );
        assert_eq!(
            repository_url("http://127.0.0.1:9", &repo),
            "http://127.0.0.1:9/acme/models"
        );
    }
}
