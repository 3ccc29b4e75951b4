//! The GitHub operations modelship needs: the sticky comment, commit statuses, replies,
//! and the approval check. Each is a few REST calls through [`Transport`].

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::transport::{ForgeMetrics, Reply, Request, Retry, RetryPolicy, Transport, decode};
use super::{Credentials, Error, Repo, Result};

/// Comments per page when listing (GitHub's maximum).
const PER_PAGE: usize = 100;

/// Pages read at most (10,000 comments): a bound on a runaway listing.
const MAX_PAGES: usize = 100;

/// Times the sticky comment is read and written again after a failed write.
const UPSERT_ATTEMPTS: u32 = 4;

/// Which sticky comment: each kind is one comment per pull request, found by its hidden
/// marker at the start of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// The plan of the PR's head, edited on every push.
    Plan,
    /// The outcome of the rollouts of a merged PR.
    Outcome,
    /// The preview environment of the PR.
    Preview,
}

impl Marker {
    /// The HTML comment that marks it: invisible in the rendered comment.
    pub fn text(self) -> &'static str {
        match self {
            Marker::Plan => "<!-- modelship:plan -->",
            Marker::Outcome => "<!-- modelship:outcome -->",
            Marker::Preview => "<!-- modelship:preview -->",
        }
    }
}

/// What [`GitHub::upsert_comment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentWrite {
    /// A new comment with this id.
    Created(u64),
    /// The existing comment with this id was edited.
    Updated(u64),
    /// The existing comment already had this body: nothing written.
    Unchanged(u64),
}

impl CommentWrite {
    /// The comment's id.
    pub fn id(self) -> u64 {
        match self {
            CommentWrite::Created(id) | CommentWrite::Updated(id) | CommentWrite::Unchanged(id) => {
                id
            }
        }
    }
}

/// A commit status context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusContext {
    /// `modelship/plan`: on a PR's head.
    Plan,
    /// `modelship/apply`: on a merge commit.
    Apply,
}

impl StatusContext {
    pub fn name(self) -> &'static str {
        match self {
            StatusContext::Plan => "modelship/plan",
            StatusContext::Apply => "modelship/apply",
        }
    }
}

/// The state of a commit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    /// modelship itself failed (GitHub's `error`).
    Error,
}

impl StatusState {
    pub fn name(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

/// A user's permission on a repository, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Permission {
    fn parse(role: &str) -> Permission {
        match role {
            "admin" => Permission::Admin,
            "maintain" => Permission::Maintain,
            "write" | "push" => Permission::Write,
            "triage" => Permission::Triage,
            "read" | "pull" => Permission::Read,
            _ => Permission::None,
        }
    }
}

/// Whether a user may approve a rollout gate from a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    Allowed,
    /// Refused; the text says why, for the reply.
    Refused(String),
}

/// A GitHub API client for pull requests.
#[derive(Debug, Clone)]
pub struct GitHub {
    pub(super) transport: Transport,
}

impl GitHub {
    /// A client of the API at `api_url` (`https://api.github.com`, a GitHub Enterprise
    /// `https://HOST/api/v3`, or a test server). Counts its requests in `metrics`.
    pub fn new(
        api_url: &str,
        credentials: Credentials,
        retry: RetryPolicy,
        metrics: ForgeMetrics,
    ) -> Result<Self> {
        Ok(GitHub {
            transport: Transport::new(api_url, credentials, retry, metrics)?,
        })
    }

    /// The request counters.
    pub fn metrics(&self) -> &ForgeMetrics {
        &self.transport.metrics
    }

    /// Creates or edits in place the one comment of `marker` on pull request `pr`. A
    /// failed write is retried after reading the comments again, so a create that GitHub
    /// performed but answered with an error is edited, never duplicated.
    pub async fn upsert_comment(
        &self,
        repo: &Repo,
        pr: u64,
        marker: Marker,
        markdown: &str,
    ) -> Result<CommentWrite> {
        let body = format!("{}\n{markdown}", marker.text());
        let mut attempt = 1;
        loop {
            let result = self.upsert_once(repo, pr, marker, &body).await;
            match result {
                Err(error) if attempt < UPSERT_ATTEMPTS && retryable(&error) => {
                    tracing::debug!(%repo, pr, attempt, %error, "writing the comment failed; reading again");
                    tokio::time::sleep(self.transport.retry.delay(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn upsert_once(
        &self,
        repo: &Repo,
        pr: u64,
        marker: Marker,
        body: &str,
    ) -> Result<CommentWrite> {
        match self.find_comment(repo, pr, marker).await? {
            Some((id, existing)) if existing == body => Ok(CommentWrite::Unchanged(id)),
            Some((id, _)) => {
                let request = Request {
                    method: Method::PATCH,
                    path: format!("/repos/{}/{}/issues/comments/{id}", repo.owner, repo.name),
                    body: Some(json!({ "body": body })),
                    retry: Retry::Safe,
                };
                self.send_ok(repo, &request).await?;
                Ok(CommentWrite::Updated(id))
            }
            None => {
                let id = self.create_comment(repo, pr, body, Retry::Never).await?;
                Ok(CommentWrite::Created(id))
            }
        }
    }

    /// Publishes a finished plan: the sticky plan comment, then the `modelship/plan`
    /// status of `sha` (`state` with `description`). When the comment cannot be written
    /// the status becomes `error` (best effort) and the error is returned.
    pub async fn publish_plan(
        &self,
        repo: &Repo,
        pr: u64,
        sha: &str,
        markdown: &str,
        state: StatusState,
        description: &str,
    ) -> Result<CommentWrite> {
        let write = match self.upsert_comment(repo, pr, Marker::Plan, markdown).await {
            Ok(write) => write,
            Err(error) => {
                let text = "the plan comment could not be posted";
                let status = self.set_status(
                    repo,
                    sha,
                    StatusContext::Plan,
                    StatusState::Error,
                    text,
                    None,
                );
                if let Err(also) = status.await {
                    tracing::warn!(%repo, pr, error = %also, "setting the error status failed too");
                }
                return Err(error);
            }
        };
        self.set_status(repo, sha, StatusContext::Plan, state, description, None)
            .await?;
        Ok(write)
    }

    /// Posts a plain comment (a reply, such as a refused approval). Sent once: a reply
    /// that GitHub may have stored is not repeated.
    pub async fn reply(&self, repo: &Repo, pr: u64, markdown: &str) -> Result<u64> {
        self.create_comment(repo, pr, markdown, Retry::Never).await
    }

    async fn create_comment(&self, repo: &Repo, pr: u64, body: &str, retry: Retry) -> Result<u64> {
        let request = Request {
            method: Method::POST,
            path: format!("/repos/{}/{}/issues/{pr}/comments", repo.owner, repo.name),
            body: Some(json!({ "body": body })),
            retry,
        };
        let reply = self.send_ok(repo, &request).await?;
        reply
            .json(&request)?
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| decode(&request, "no comment id"))
    }

    /// The id and body of the comment that starts with `marker`, reading every page.
    pub async fn find_comment(
        &self,
        repo: &Repo,
        pr: u64,
        marker: Marker,
    ) -> Result<Option<(u64, String)>> {
        for page in 1..=MAX_PAGES {
            let request = Request {
                method: Method::GET,
                path: format!(
                    "/repos/{}/{}/issues/{pr}/comments?per_page={PER_PAGE}&page={page}",
                    repo.owner, repo.name
                ),
                body: None,
                retry: Retry::Safe,
            };
            let reply = self.send_ok(repo, &request).await?;
            let comments = reply.json(&request)?;
            let comments = comments
                .as_array()
                .ok_or_else(|| decode(&request, "not a list of comments"))?;
            for comment in comments {
                let body = comment.get("body").and_then(Value::as_str).unwrap_or("");
                if body.starts_with(marker.text())
                    && let Some(id) = comment.get("id").and_then(Value::as_u64)
                {
                    return Ok(Some((id, body.to_string())));
                }
            }
            if !has_next_page(&reply) {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// Sets a commit status. The description is cut to GitHub's 140 characters.
    pub async fn set_status(
        &self,
        repo: &Repo,
        sha: &str,
        context: StatusContext,
        state: StatusState,
        description: &str,
        target_url: Option<&str>,
    ) -> Result<()> {
        let description: String = description.chars().take(140).collect();
        let mut body = json!({
            "state": state.name(),
            "context": context.name(),
            "description": description,
        });
        if let Some(url) = target_url {
            body["target_url"] = json!(url);
        }
        let request = Request {
            method: Method::POST,
            path: format!("/repos/{}/{}/statuses/{sha}", repo.owner, repo.name),
            body: Some(body),
            // The latest status of a context wins: sending it twice is harmless.
            retry: Retry::Safe,
        };
        self.send_ok(repo, &request).await.map(|_| ())
    }

    /// The GitHub App installation on `repo` (`None` with a token): deliveries of another
    /// installation are not the followed repository's.
    pub async fn installation(&self, repo: &Repo) -> Result<Option<u64>> {
        self.transport.installation(repo).await
    }

    /// Whether `user` has write permission (or more) on `repo`; a text that is not a
    /// login (an empty sender) has none, and GitHub is not asked.
    pub async fn can_write(&self, repo: &Repo, user: &str) -> Result<bool> {
        if !valid_login(user) {
            return Ok(false);
        }
        Ok(self.permission(repo, user).await? >= Permission::Write)
    }

    /// A user's permission on the repository (`None` for a non-collaborator).
    pub async fn permission(&self, repo: &Repo, user: &str) -> Result<Permission> {
        let request = Request {
            method: Method::GET,
            path: format!(
                "/repos/{}/{}/collaborators/{user}/permission",
                repo.owner, repo.name
            ),
            body: None,
            retry: Retry::Safe,
        };
        let reply = self.transport.send(repo, &request).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(Permission::None);
        }
        let body = reply.json(&request)?;
        let role = body
            .get("role_name")
            .and_then(Value::as_str)
            .or_else(|| body.get("permission").and_then(Value::as_str))
            .ok_or_else(|| decode(&request, "no permission"))?;
        Ok(Permission::parse(role))
    }

    /// Whether `user` may approve a gate: with no `approvers` configured, anyone with
    /// write permission or above; otherwise the listed users and active members of the
    /// listed `org/team`s.
    pub async fn may_approve(
        &self,
        repo: &Repo,
        user: &str,
        approvers: &[String],
    ) -> Result<Approval> {
        if !valid_login(user) {
            return Ok(Approval::Refused(format!("`{user}` is not a GitHub login")));
        }
        if approvers.is_empty() {
            let permission = self.permission(repo, user).await?;
            return Ok(if permission >= Permission::Write {
                Approval::Allowed
            } else {
                Approval::Refused(format!(
                    "@{user} needs write permission on {repo} to approve a rollout gate"
                ))
            });
        }
        if approvers
            .iter()
            .any(|a| !a.contains('/') && a.eq_ignore_ascii_case(user))
        {
            return Ok(Approval::Allowed);
        }
        for team in approvers.iter().filter(|a| a.contains('/')) {
            if self.team_member(repo, team, user).await? {
                return Ok(Approval::Allowed);
            }
        }
        Ok(Approval::Refused(format!(
            "@{user} is not among the approvers of modelship.yaml (github.approvers: {})",
            approvers.join(", ")
        )))
    }

    async fn team_member(&self, repo: &Repo, team: &str, user: &str) -> Result<bool> {
        let Some((org, slug)) = team.split_once('/') else {
            return Ok(false);
        };
        let request = Request {
            method: Method::GET,
            path: format!("/orgs/{org}/teams/{slug}/memberships/{user}"),
            body: None,
            retry: Retry::Safe,
        };
        let reply = self.transport.send(repo, &request).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        Ok(reply.json(&request)?.get("state").and_then(Value::as_str) == Some("active"))
    }

    /// Sends a request whose 404 is an error too.
    async fn send_ok(&self, repo: &Repo, request: &Request) -> Result<Reply> {
        let reply = self.transport.send(repo, request).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(Error::Status {
                status: 404,
                method: request.method.to_string(),
                path: request.path.clone(),
                message: "Not Found (does the token see the repository?)".to_string(),
            });
        }
        Ok(reply)
    }
}

/// Whether a failed comment write is worth reading and writing again.
fn retryable(error: &Error) -> bool {
    match error {
        Error::Status { status, .. } => *status >= 500,
        Error::Transport { .. } | Error::Timeout { .. } => true,
        _ => false,
    }
}

fn has_next_page(reply: &Reply) -> bool {
    reply
        .headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|link| link.contains("rel=\"next\"")))
}

fn valid_login(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 39
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '[' || c == ']')
}
