//! Comment commands (`/modelship approve|abort|retry NAMESPACE/NAME`, `/modelship plan`)
//! as the pull-request worker carries them out. Every refusal is a reply saying why.
//!
//! ```text
//! Command ─ GitHub's view of the PR
//!         ─ plan or unknown from neither the author nor a writer: ignored, no reply
//!         ─ unknown: the usage
//!         ─ untrusted (fork, author cannot write): refused
//!         ─ plan: planned again, as a push would be
//!         ─ approve|abort|retry: may_approve(commenter) ─ the PR merged ─ the rollout
//!           started by its merge commit (engine::rollout::send_command_for), else refused
//! ```
//!
//! A rollout command is bound to what the person saw: the pull request it is written on
//! must be merged, and the service's rollout must be the one its merge commit started
//! (the revision the rollout state records); the command then carries that rollout's
//! template hash, so it cannot reach a later one.

use super::trust::{self, Trust};
use super::{PullError, Worker};
use crate::engine;
use crate::forge::events::{Command, CommandEvent, Head, PrAction, PullRequestEvent, USAGE};
use crate::forge::{Approval, PullState};
use crate::meta::ServiceId;
use crate::rollout;

impl Worker {
    /// Carries out one comment command.
    pub(super) async fn command(&mut self, event: &CommandEvent) -> Result<(), PullError> {
        let (repo, number) = (&event.repo, event.number);
        let state = self.github.pull_request(repo, number).await?;
        // Only the PR's author and people with write permission make the daemon plan or
        // reply: anyone else's comment costs nothing and gets no answer.
        if matches!(event.command, Command::Plan | Command::Unknown(_))
            && !self.may_ask(&event.user, &state, repo).await?
        {
            tracing::info!(%repo, number, user = %event.user, "pull-request command from neither the author nor a writer: ignored");
            return Ok(());
        }
        let (rollout_command, id) = match &event.command {
            Command::Unknown(line) => {
                let text = format!("`{}` is not a modelship command. {USAGE}.", line.trim());
                self.github.reply(repo, number, &text).await?;
                return Ok(());
            }
            Command::Plan => (None, None),
            Command::Approve(id) => (Some(rollout::Command::Approve), Some(id)),
            Command::Abort(id) => (Some(rollout::Command::Abort), Some(id)),
            Command::Retry(id) => (Some(rollout::Command::Retry), Some(id)),
        };
        let trust = trust::pull_trust(&self.github, repo, !state.fork, &state.author).await?;
        if let Trust::Untrusted(why) = &trust {
            tracing::info!(%repo, number, user = %event.user, %why, "command on an untrusted pull request: refused");
            let text = format!(
                "Not done: commands are taken only on pull requests from a branch of {repo} by an author with write permission, and {why}."
            );
            self.github.reply(repo, number, &text).await?;
            return Ok(());
        }
        match (rollout_command, id) {
            (Some(command), Some(id)) => self.rollout_command(event, &state, command, id).await,
            _ => self.replan(event, state).await,
        }
    }

    /// Whether `user` may have the daemon plan a pull request or reply to it: its author,
    /// or someone with write permission on the repository.
    async fn may_ask(
        &self,
        user: &str,
        state: &PullState,
        repo: &crate::forge::Repo,
    ) -> Result<bool, PullError> {
        if !state.author.is_empty() && state.author == user {
            return Ok(true);
        }
        let permission = self.github.permission(repo, user).await?;
        Ok(permission >= crate::forge::Permission::Write)
    }

    /// A rollout command: the commenter may approve, and the rollout is the one this pull
    /// request's merge started.
    async fn rollout_command(
        &self,
        event: &CommandEvent,
        state: &PullState,
        command: rollout::Command,
        id: &ServiceId,
    ) -> Result<(), PullError> {
        let (repo, number) = (&event.repo, event.number);
        let approvers = self
            .branch_config()
            .map(|config| config.spec.github.approvers)
            .unwrap_or_default();
        if let Approval::Refused(why) = self
            .github
            .may_approve(repo, &event.user, &approvers)
            .await?
        {
            let text = format!("Not done: {why}.");
            self.github.reply(repo, number, &text).await?;
            return Ok(());
        }
        let verb = rollout_verb(command);
        let Some(merge) = state.merge_commit_sha.as_deref().filter(|_| state.merged) else {
            let text = format!(
                "Not done: this pull request is not merged, so it started no rollout; `/modelship {verb}` acts on the rollout of `{id}` started by the merge of the pull request it is written on."
            );
            self.github.reply(repo, number, &text).await?;
            return Ok(());
        };
        let sent =
            engine::rollout::send_command_for(&self.shared.writer, id, command, Some(merge)).await;
        let text = match sent {
            Ok((request, rollout_state)) => {
                tracing::info!(namespace = %id.namespace(), service = %id.name(), user = %event.user, command = %request, revision = %rollout_state.revision, "rollout command from a pull-request comment");
                format!(
                    "@{} asked to {verb} the rollout of `{id}`: sent (`{}: {request}`), to the rollout this pull request's merge commit {merge} started (template {}).",
                    event.user,
                    rollout::ANNOTATION_COMMAND,
                    rollout_state.template_hash,
                )
            }
            Err(engine::rollout::Error::NoDeployment(_)) => {
                format!("Not done: `{id}` has no Deployment in the cluster.")
            }
            Err(engine::rollout::Error::NoRollout(_)) => {
                format!(
                    "Not done: `{id}` has no rollout (it is not a canary service, or it has not been applied since it became one)."
                )
            }
            Err(engine::rollout::Error::OtherRevision { found, .. }) => {
                let found = if found.is_empty() {
                    "no known revision".to_string()
                } else {
                    format!("revision {found}")
                };
                format!(
                    "Not done: the rollout of `{id}` is for {found}, not for this pull request's merge commit {merge}; a command acts only on the rollout its pull request started."
                )
            }
            Err(error) => return Err(error.into()),
        };
        self.github.reply(repo, number, &text).await?;
        Ok(())
    }

    /// `/modelship plan`: what GitHub says of the PR now, planned as a push would be.
    async fn replan(&mut self, event: &CommandEvent, state: PullState) -> Result<(), PullError> {
        let Some(sha) = state.head_sha.filter(|_| state.open) else {
            let text = "Not planned: the pull request is not open.";
            self.github.reply(&event.repo, event.number, text).await?;
            return Ok(());
        };
        let pull = PullRequestEvent {
            action: PrAction::Synchronize,
            repo: event.repo.clone(),
            number: event.number,
            head: Head {
                sha,
                branch: String::new(),
                // Trusted above: a branch of the repository itself.
                repo: Some(event.repo.clone()),
            },
            base_branch: self.shared.config.branch.clone(),
            labels: state.labels,
            installation: event.installation,
            author: state.author,
            sender: event.user.clone(),
        };
        self.plan(&pull, true).await
    }
}

fn rollout_verb(command: rollout::Command) -> &'static str {
    match command {
        rollout::Command::Approve => "approve",
        rollout::Command::Abort => "abort",
        rollout::Command::Retry => "retry",
    }
}
