//! Webhook deliveries of pull requests as typed events. Pure: the HTTP handler checks the
//! signature (`source::webhook`), then hands the `X-GitHub-Event` name and the body here.
//!
//! ```text
//! "pull_request",  body ─parse─▶ Event::PullRequest { action, repo, number, head, labels }
//!                                  action: opened | synchronize | reopened | labeled(l)
//!                                        | unlabeled(l) | closed { merged, merge_commit_sha }
//! "issue_comment", body ─parse─▶ Event::Command { repo, number, user, command }
//!                                  command: approve NAMESPACE/NAME | plan | unknown
//! anything else, bots' comments, comments on issues, other actions ─▶ Event::Ignored(why)
//! X-GitHub-Delivery ─Deliveries::first_time─▶ false for a delivery already handled
//! ```

use std::collections::{HashSet, VecDeque};

use serde::Deserialize;

use super::{Error, Repo};
use crate::meta::ServiceId;

/// A delivery modelship acts on, or why it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A pull request changed.
    PullRequest(PullRequestEvent),
    /// A `/modelship ...` command in a pull-request comment.
    Command(CommandEvent),
    /// Nothing to do, and why (for the debug log).
    Ignored(String),
}

/// What happened to a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrAction {
    Opened,
    /// New commits on the head.
    Synchronize,
    Reopened,
    Labeled(String),
    Unlabeled(String),
    /// Closed; merged or not. `merge_commit_sha` is set when merged.
    Closed {
        merged: bool,
        merge_commit_sha: Option<String>,
    },
}

/// The head of a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub sha: String,
    /// The branch in the head repository.
    pub branch: String,
    /// The head repository: a fork's, or the base repository itself.
    pub repo: Option<Repo>,
}

/// A `pull_request` delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestEvent {
    pub action: PrAction,
    /// The base repository (where comments and statuses go).
    pub repo: Repo,
    pub number: u64,
    pub head: Head,
    /// The branch the PR merges into.
    pub base_branch: String,
    /// The PR's labels after the action.
    pub labels: Vec<String>,
    /// The GitHub App installation that sent it, if any.
    pub installation: Option<u64>,
    /// The login of the pull request's author (empty when the payload has none).
    pub author: String,
    /// The login of who caused this delivery (`sender`): who added the label of
    /// `labeled`, who pushed for `synchronize`; empty when the payload has none.
    pub sender: String,
}

impl PullRequestEvent {
    /// True when the PR is from a fork.
    pub fn is_fork(&self) -> bool {
        self.head
            .repo
            .as_ref()
            .is_some_and(|r| !r.same_as(&self.repo))
    }

    /// The ref that holds the head in the base repository, forks included.
    pub fn head_ref(&self) -> String {
        format!("refs/pull/{}/head", self.number)
    }

    /// True when the head changed or the PR came back: plan it again.
    pub fn wants_plan(&self) -> bool {
        matches!(
            self.action,
            PrAction::Opened | PrAction::Synchronize | PrAction::Reopened
        )
    }

    /// True when the PR carries `label` after this action.
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l == label)
    }
}

/// A command in a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/modelship approve NAMESPACE/NAME`: approve the waiting gate of that rollout.
    Approve(ServiceId),
    /// `/modelship abort NAMESPACE/NAME`: roll that rollout back now.
    Abort(ServiceId),
    /// `/modelship retry NAMESPACE/NAME`: try a rolled-back rollout again, or resume it.
    Retry(ServiceId),
    /// `/modelship plan`: plan the PR's head again.
    Plan,
    /// `/modelship` followed by something else: answered with the usage.
    Unknown(String),
}

/// An `issue_comment` delivery holding a command, on a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandEvent {
    pub repo: Repo,
    /// The pull request's number.
    pub number: u64,
    /// The login of the comment's author.
    pub user: String,
    pub comment_id: u64,
    pub command: Command,
    pub installation: Option<u64>,
}

/// The usage of the comment commands, for replies.
pub const USAGE: &str = "`/modelship approve NAMESPACE/NAME` approves the waiting gate of a \
                         rollout, `/modelship abort NAMESPACE/NAME` rolls it back, \
                         `/modelship retry NAMESPACE/NAME` tries it again; `/modelship plan` \
                         plans the pull request again";

/// Parses a delivery. `Err` only for a body that is not the JSON GitHub sends for the
/// event; everything modelship does not act on is [`Event::Ignored`].
pub fn parse(event: &str, body: &[u8]) -> Result<Event, Error> {
    let malformed = |e: serde_json::Error| Error::Payload {
        event: event.to_string(),
        reason: e.to_string(),
    };
    match event {
        "pull_request" => pull_request(serde_json::from_slice(body).map_err(malformed)?, event),
        "issue_comment" => issue_comment(serde_json::from_slice(body).map_err(malformed)?, event),
        other => Ok(Event::Ignored(format!(
            "event `{other}` is not about pull requests"
        ))),
    }
}

#[derive(Deserialize)]
struct RepoPayload {
    full_name: String,
}

#[derive(Deserialize)]
struct Label {
    name: String,
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Deserialize)]
struct PrHead {
    sha: String,
    #[serde(rename = "ref")]
    branch: String,
    /// `null` when the fork was deleted.
    repo: Option<RepoPayload>,
}

#[derive(Deserialize)]
struct PrBase {
    #[serde(rename = "ref")]
    branch: String,
}

#[derive(Deserialize)]
struct Login {
    #[serde(default)]
    login: String,
}

#[derive(Deserialize)]
struct PrPayload {
    number: u64,
    user: Option<Login>,
    head: PrHead,
    base: PrBase,
    #[serde(default)]
    labels: Vec<Label>,
    #[serde(default)]
    merged: bool,
    merge_commit_sha: Option<String>,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    action: String,
    pull_request: PrPayload,
    repository: RepoPayload,
    label: Option<Label>,
    installation: Option<Installation>,
    sender: Option<Login>,
}

fn repo(payload: &RepoPayload, event: &str) -> Result<Repo, Error> {
    payload.full_name.parse().map_err(|_| Error::Payload {
        event: event.to_string(),
        reason: format!("repository `{}` is not OWNER/NAME", payload.full_name),
    })
}

fn pull_request(payload: PullRequestPayload, event: &str) -> Result<Event, Error> {
    let pr = payload.pull_request;
    let label = payload.label.map(|l| l.name);
    let missing_label = || Error::Payload {
        event: event.to_string(),
        reason: format!("a `{}` action without a label", payload.action),
    };
    let action = match payload.action.as_str() {
        "opened" => PrAction::Opened,
        "synchronize" => PrAction::Synchronize,
        "reopened" => PrAction::Reopened,
        "labeled" => PrAction::Labeled(label.ok_or_else(missing_label)?),
        "unlabeled" => PrAction::Unlabeled(label.ok_or_else(missing_label)?),
        "closed" => PrAction::Closed {
            merged: pr.merged,
            merge_commit_sha: pr.merge_commit_sha.filter(|_| pr.merged),
        },
        other => {
            return Ok(Event::Ignored(format!(
                "pull_request action `{other}` changes nothing modelship shows"
            )));
        }
    };
    Ok(Event::PullRequest(PullRequestEvent {
        action,
        repo: repo(&payload.repository, event)?,
        number: pr.number,
        head: Head {
            sha: pr.head.sha,
            branch: pr.head.branch,
            repo: pr.head.repo.and_then(|r| r.full_name.parse().ok()),
        },
        base_branch: pr.base.branch,
        labels: pr.labels.into_iter().map(|l| l.name).collect(),
        installation: payload.installation.map(|i| i.id),
        author: pr.user.map(|u| u.login).unwrap_or_default(),
        sender: payload.sender.map(|s| s.login).unwrap_or_default(),
    }))
}

#[derive(Deserialize)]
struct User {
    login: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct CommentPayload {
    id: u64,
    #[serde(default)]
    body: String,
    user: User,
}

#[derive(Deserialize)]
struct IssuePayload {
    number: u64,
    /// Present only when the issue is a pull request.
    pull_request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct IssueCommentPayload {
    action: String,
    issue: IssuePayload,
    comment: CommentPayload,
    repository: RepoPayload,
    installation: Option<Installation>,
}

fn issue_comment(payload: IssueCommentPayload, event: &str) -> Result<Event, Error> {
    if payload.action != "created" {
        return Ok(Event::Ignored(format!(
            "issue_comment action `{}`: only new comments are commands",
            payload.action
        )));
    }
    if payload.issue.pull_request.is_none() {
        return Ok(Event::Ignored(
            "a comment on an issue, not a pull request".into(),
        ));
    }
    if payload.comment.user.kind == "Bot" {
        return Ok(Event::Ignored(format!(
            "a comment by the bot {}",
            payload.comment.user.login
        )));
    }
    let Some(command) = command(&payload.comment.body) else {
        return Ok(Event::Ignored(
            "a comment without a /modelship command".into(),
        ));
    };
    Ok(Event::Command(CommandEvent {
        repo: repo(&payload.repository, event)?,
        number: payload.issue.number,
        user: payload.comment.user.login,
        comment_id: payload.comment.id,
        command,
        installation: payload.installation.map(|i| i.id),
    }))
}

/// The command of the first line that starts with `/modelship`.
pub fn command(body: &str) -> Option<Command> {
    let line = body
        .lines()
        .map(str::trim)
        .find(|l| l.split_whitespace().next() == Some("/modelship"))?;
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    Some(match words.as_slice() {
        ["plan"] => Command::Plan,
        [verb @ ("approve" | "abort" | "retry"), target] => match target.parse::<ServiceId>() {
            Ok(id) if is_label(id.namespace()) && is_label(id.name()) => match *verb {
                "approve" => Command::Approve(id),
                "abort" => Command::Abort(id),
                _ => Command::Retry(id),
            },
            _ => Command::Unknown(line.to_string()),
        },
        _ => Command::Unknown(line.to_string()),
    })
}

fn is_label(text: &str) -> bool {
    crate::spec::validate::names::rfc1123_label(text, 63).is_ok()
}

/// Delivery ids already handled, the most recent `capacity` of them: GitHub redelivers on
/// timeouts and by hand, and each delivery must act once.
#[derive(Debug, Clone)]
pub struct Deliveries {
    capacity: usize,
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl Deliveries {
    /// Remembers up to `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        Deliveries {
            capacity: capacity.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// True the first time an id is seen; the oldest id is forgotten when full. A
    /// delivery without an id (empty) is always handled.
    pub fn first_time(&mut self, id: &str) -> bool {
        if id.is_empty() {
            return true;
        }
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }

    /// Forgets an id taken for the first time but not acted on (refused with 503), so
    /// that its redelivery is.
    pub fn forget(&mut self, id: &str) {
        if self.seen.remove(id) {
            self.order.retain(|seen| seen != id);
        }
    }
}

impl Deliveries {
    /// True when `id` was seen (and is still remembered).
    pub fn contains(&self, id: &str) -> bool {
        self.seen.contains(id)
    }

    /// The remembered ids, oldest first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }
}

impl Default for Deliveries {
    /// 1,024 ids: hours of deliveries of a busy repository, a few tens of KiB.
    fn default() -> Self {
        Deliveries::new(1024)
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
