//! Who may make a pull request do what. Untrusted authors propose, trusted people act:
//!
//! ```text
//! delivery ─Followed::check─▶ another repository or installation: refused (403)
//! pull request ─pull_trust─▶ Trusted (the repository's own branch, author can write)
//!                          | Untrusted(Fork | Author)  → the plan only
//! preview label ─preview_step(trust, forks, action, sender can write, armed)─▶
//!     Deploy | Suspend (a push by a non-writer) | Refuse(why) | TearDown | Leave
//! command ─ the PR trusted, else a reply saying why ─ bound to its merge commit's rollout
//! ```
//!
//! A preview runs the PR's code in the cluster, so a label counts only when the person
//! who added it (the `labeled` delivery's `sender`) can write: the PR is then *armed*. A
//! push by someone who cannot write disarms it and suspends the preview (its Deployments
//! at zero replicas) until a writer labels again. The armed PRs and the delivery ids
//! handled are kept with the pending outcomes (`outcome_store.rs`), so a restart forgets
//! neither. Pure but for [`pull_trust`], which asks GitHub for the author's permission.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use crate::forge::events::{PrAction, PullRequestEvent};
use crate::forge::{self, GitHub, Repo};

/// Delivery ids remembered across restarts (about 40 KiB of the state ConfigMap).
pub const DELIVERY_MEMORY: usize = 1000;

/// The repository the daemon follows, and the GitHub App installation on it once known:
/// deliveries of anything else are refused.
#[derive(Debug, Clone, Default)]
pub struct Followed {
    repo: Option<Repo>,
    installation: Arc<RwLock<Option<u64>>>,
}

/// Why a delivery is not the followed repository's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Foreign {
    /// The followed repository is unknown (`--repo` does not end in `OWNER/NAME`).
    #[error("the followed repository is unknown: --repo does not name OWNER/NAME")]
    Unknown,
    /// The delivery is about another repository.
    #[error("repository {0} is not the one this daemon follows")]
    Repository(Repo),
    /// The delivery comes from another GitHub App installation.
    #[error("installation {0} is not the one on the repository this daemon follows")]
    Installation(u64),
}

impl Foreign {
    /// The label of this refusal in `modelship_webhooks_total{outcome}`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Foreign::Unknown => "repository_unknown",
            Foreign::Repository(_) => "foreign_repository",
            Foreign::Installation(_) => "foreign_installation",
        }
    }
}

impl Followed {
    /// The followed repository (`None`: unknown, every delivery is refused).
    pub fn new(repo: Option<Repo>) -> Self {
        Followed {
            repo,
            installation: Arc::default(),
        }
    }

    /// The followed repository.
    pub fn repo(&self) -> Option<&Repo> {
        self.repo.as_ref()
    }

    /// Remembers the App's installation on the followed repository.
    pub fn learn_installation(&self, id: Option<u64>) {
        if let Ok(mut known) = self.installation.write() {
            *known = id;
        }
    }

    /// Ok when a delivery about `repo` (from `installation`, for an App) is the followed
    /// repository's: owners and names compared without regard to case; an installation
    /// is compared once the worker has learnt the followed one's.
    pub fn check(&self, repo: &Repo, installation: Option<u64>) -> Result<(), Foreign> {
        let followed = self.repo.as_ref().ok_or(Foreign::Unknown)?;
        if !followed.same_as(repo) {
            return Err(Foreign::Repository(repo.clone()));
        }
        let known = self.installation.read().ok().and_then(|k| *k);
        match (installation, known) {
            (Some(id), Some(known)) if id != known => Err(Foreign::Installation(id)),
            _ => Ok(()),
        }
    }
}

/// How far a pull request is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// From a branch of the repository itself, by an author with write permission.
    Trusted,
    /// Planned only, and why.
    Untrusted(Untrusted),
}

/// Why a pull request is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untrusted {
    /// Its head is in another repository (or a deleted fork).
    Fork,
    /// Its author cannot write to the repository.
    Author(String),
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untrusted::Fork => f.write_str("it comes from a fork"),
            Untrusted::Author(author) if author.is_empty() => f.write_str("its author is unknown"),
            Untrusted::Author(author) => {
                write!(f, "its author @{author} has no write permission")
            }
        }
    }
}

impl Trust {
    pub fn is_trusted(&self) -> bool {
        *self == Trust::Trusted
    }
}

/// The trust of a pull request: `own` when its head is a branch of `repo` itself, and
/// its `author`'s permission on `repo` (asked only when not a fork).
pub async fn pull_trust(
    github: &GitHub,
    repo: &Repo,
    own: bool,
    author: &str,
) -> forge::Result<Trust> {
    if !own {
        return Ok(Trust::Untrusted(Untrusted::Fork));
    }
    Ok(if github.can_write(repo, author).await? {
        Trust::Trusted
    } else {
        Trust::Untrusted(Untrusted::Author(author.to_string()))
    })
}

/// True when the head of `event` is a branch of its own repository (a deleted fork's
/// head, `repo: null`, is not).
pub fn own_head(event: &PullRequestEvent) -> bool {
    event
        .head
        .repo
        .as_ref()
        .is_some_and(|head| head.same_as(&event.repo))
}

/// What to do with the preview of a pull request after planning it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewStep {
    /// Deploy (or update) it: the label is there and a writer armed the PR.
    Deploy,
    /// Scale it to zero and say so: someone without write permission pushed.
    Suspend,
    /// No preview, and the preview comment says why (when the label is there).
    Refuse(String),
    /// The label is gone (or the PR may not be previewed): delete it.
    TearDown,
    /// Leave it as it is (suspended, or none): the label is there, the PR is not armed.
    Leave,
}

/// What the worker knows when it decides a preview.
#[derive(Debug, Clone)]
pub struct PreviewInput<'a> {
    pub trust: &'a Trust,
    /// `previews.forks` of the followed branch.
    pub forks: bool,
    /// The preview label (`previews.label` of the followed branch).
    pub label: &'a str,
    pub event: &'a PullRequestEvent,
    /// Whether the event's sender can write to the repository.
    pub sender_writes: bool,
    /// Whether a writer labelled it (and nobody else pushed since).
    pub armed: bool,
    /// A re-plan asked for in a comment: not a push, not a label.
    pub replan: bool,
}

/// The preview step and whether the PR is armed afterwards.
pub fn preview_step(input: &PreviewInput<'_>) -> (PreviewStep, bool) {
    let event = input.event;
    if !event.has_label(input.label) {
        return (PreviewStep::TearDown, false);
    }
    let may_preview = match input.trust {
        Trust::Trusted => true,
        Trust::Untrusted(Untrusted::Fork) => input.forks,
        Trust::Untrusted(Untrusted::Author(_)) => false,
    };
    if !may_preview {
        let why = match input.trust {
            Trust::Untrusted(Untrusted::Fork) => {
                "pull requests from forks are not previewed (`previews.forks` of the followed branch is false)".to_string()
            }
            other => format!("the pull request is not trusted: {}", untrusted_reason(other)),
        };
        return (PreviewStep::Refuse(why), false);
    }
    if input.replan {
        return if input.armed {
            (PreviewStep::Deploy, true)
        } else {
            (PreviewStep::Leave, false)
        };
    }
    let labelled_now = match &event.action {
        PrAction::Labeled(label) => label == input.label,
        PrAction::Opened | PrAction::Reopened => true,
        _ => false,
    };
    match (&event.action, input.sender_writes) {
        (PrAction::Synchronize, false) => (PreviewStep::Suspend, false),
        (_, true) if labelled_now => (PreviewStep::Deploy, true),
        (_, false) if labelled_now && !input.armed => (
            PreviewStep::Refuse(format!(
                "the label `{}` counts only when someone with write permission adds it{}",
                input.label,
                sender_note(&event.sender)
            )),
            false,
        ),
        _ if input.armed => (PreviewStep::Deploy, true),
        _ => (PreviewStep::Leave, false),
    }
}

fn sender_note(sender: &str) -> String {
    if sender.is_empty() {
        String::new()
    } else {
        format!(" (@{sender} has none)")
    }
}

fn untrusted_reason(trust: &Trust) -> String {
    match trust {
        Trust::Trusted => "it is trusted".into(),
        Trust::Untrusted(why) => why.to_string(),
    }
}

/// The armed pull requests as stored: `OWNER/NAME#N` a line.
pub fn encode_armed(armed: &BTreeSet<(Repo, u64)>) -> String {
    armed
        .iter()
        .map(|(repo, pr)| format!("{repo}#{pr}\n"))
        .collect()
}

/// The armed pull requests of [`encode_armed`]; lines not understood are dropped.
pub fn decode_armed(text: &str) -> BTreeSet<(Repo, u64)> {
    text.lines()
        .filter_map(|line| {
            let (repo, pr) = line.trim().split_once('#')?;
            Some((repo.parse().ok()?, pr.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
