//! Pull requests: the work that `pull_request` and `issue_comment` webhooks queue, done by
//! one worker beside the reconcile loop, so that GitHub being slow or down never delays
//! the main branch.
//!
//! ```text
//! /hooks/github (signed, first delivery) ──PullQueue──▶ Worker (one map: WorkKey → Work)
//!   Pull(opened|synchronize|reopened|labeled|unlabeled)
//!       status modelship/plan pending ─ fetch refs/pull/N/head ─ engine::prepare
//!       ─ engine::plan over the watch cache (read-only) ─ sticky plan comment ─ status
//!       ─ previews.rs: deploy (label present) or tear down (label gone)
//!   Pull(closed) ─ previews.rs: tear down
//!   Comment(/modelship approve|abort|retry NS/NAME) ─ may_approve ─ engine::rollout::send_command
//!   Comment(/modelship plan) ─ GitHub's view of the PR ─ as Pull(synchronize)
//!   Resync (start-up, every --interval) ─ previews of PRs no longer open torn down
//! failure ─ RetryAt(backoff) while retryable; shown on /status (`pulls`), counted in
//!           modelship_errors_total{cause} and modelship_forge_requests_total{result}
//! head over a revision limit ─ plan comment naming the limit, status failure, no retry
//! ```
//!
//! Decisions:
//! - Work for one pull request is coalesced: a push that arrives while an older one is
//!   queued replaces it (only the newest head is planned).
//! - A PR is planned against the daemon's live view (its watch cache): the comment shows
//!   what merging would change now. Planning never writes; only a preview writes, into
//!   its own namespaces, through the engine.
//! - What a PR may do is read from the followed branch's modelship.yaml, never from the
//!   PR's head (a PR must not name its own approvers, nor widen its own tenant): who may
//!   approve, and the settings its head is planned with (`spec::tenants::GOVERNING`:
//!   tenants, protectedNamespaces, previews, github, prometheus, analysis). The comment
//!   says which of them the head edits; they take effect when merged.
//! - Only the leader acts. Webhooks reach it alone: it labels its Pod
//!   `modelship.dev/leader: "true"` (`leader/label.rs`) and the Service
//!   `modelship-webhooks` of `deploy/` selects that label. A standby that gets a PR event
//!   anyway (in the moment of a failover, before the endpoints follow the label, or when
//!   routing is unavailable and GitHub points at the Service `modelship`) refuses it with
//!   503 (`serve/hooks.rs`): GitHub shows the delivery as failed and it can be redelivered;
//!   the leader's resync still tears down stale previews.

pub mod outcome;
mod outcome_store;
mod previews;
mod settle;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::time::Instant;

use crate::backoff::{Backoff, Jitter};
use crate::cluster::{self, RetryPolicy as ClusterRetry};
use crate::compile;
use crate::daemon::reconcile::Shared;
use crate::engine::{self, Keep, Revision, Run};
use crate::forge::events::{Command, CommandEvent, Head, PrAction, PullRequestEvent, USAGE};
use crate::forge::{
    self, Approval, Credentials, ForgeMetrics, GitHub, Repo, RetryPolicy, StatusContext,
    StatusState,
};
use crate::meta::ServiceId;
use crate::plan::Detail;
use crate::plan::render::{self, Links};
use crate::rollout;
use crate::source::{GitError, Snapshot, Source};
use crate::spec::{LoadOptions, RepositoryConfig};

/// Attempts of one piece of work before it is given up (and shown failed).
const MAX_ATTEMPTS: u32 = 8;

/// How often merged pull requests are checked for their outcome (a read of the board).
const OUTCOME_CHECK: std::time::Duration = std::time::Duration::from_millis(500);

/// GitHub as the daemon uses it.
#[derive(Debug, Clone)]
pub struct GitHubConfig {
    /// `https://api.github.com`, `https://HOST/api/v3`, or a test server.
    pub api_url: String,
    pub credentials: Credentials,
    pub retry: RetryPolicy,
    /// The daemon's own namespace: where pending outcomes are kept
    /// (`outcome_store::CONFIG_MAP`).
    pub state_namespace: String,
}

impl GitHubConfig {
    /// A client counting its requests in `metrics`.
    pub fn client(&self, metrics: ForgeMetrics) -> forge::Result<GitHub> {
        GitHub::new(&self.api_url, self.credentials.clone(), self.retry, metrics)
    }
}

/// One piece of pull-request work.
#[derive(Debug, Clone)]
pub enum Job {
    Pull(PullRequestEvent),
    Command(CommandEvent),
    /// Tear down previews of pull requests that are no longer open.
    Resync,
}

/// The queue from the webhook handler to the worker. The receiving end is taken by the
/// worker of whichever term of leadership runs.
#[derive(Clone)]
pub struct PullQueue {
    tx: mpsc::UnboundedSender<Job>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>,
}

impl Default for PullQueue {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        PullQueue {
            tx,
            rx: Arc::new(Mutex::new(rx)),
        }
    }
}

impl PullQueue {
    /// Queues a job (never blocks: the HTTP handler only queues).
    pub fn push(&self, job: Job) {
        // The receiver lives as long as the queue: sending cannot fail.
        let _ = self.tx.send(job);
    }

    /// The jobs queued and not taken yet (for tests of the handler).
    #[cfg(test)]
    pub(super) fn drain(&self) -> Vec<Job> {
        let mut jobs = Vec::new();
        if let Ok(mut rx) = self.rx.try_lock() {
            while let Ok(job) = rx.try_recv() {
                jobs.push(job);
            }
        }
        jobs
    }
}

/// One pull request on `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PullStatus {
    /// `queued`, `running`, `planned`, `merged` (waiting for the outcome), `retrying` or
    /// `failed`. Closed PRs leave the board, and merged ones once their outcome is posted.
    pub state: String,
    /// The head commit last planned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The plan's verdict (`2 services change`, `invalid: 1 error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The services the last plan changes, `namespace/name` (the outcome waits for them
    /// once the PR is merged).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<ServiceId>,
    /// The preview's namespaces.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preview: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Failed attempts of the current work.
    pub failures: u32,
}

/// Why a piece of pull-request work failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// GitHub failed (after the client's own retries).
    #[error(transparent)]
    Forge(#[from] forge::Error),
    /// `refs/pull/N/head` could not be fetched.
    #[error("fetching the pull request: {0}")]
    Fetch(#[from] GitError),
    /// The cluster could not be read or written.
    #[error(transparent)]
    Cluster(#[from] cluster::Error),
    /// The preview could not be deployed.
    #[error(transparent)]
    Preview(#[from] engine::preview::PreviewError),
    /// The head could not be planned.
    #[error(transparent)]
    Plan(#[from] engine::Error),
    /// A service of the head could not be planned.
    #[error(transparent)]
    Step(#[from] engine::step::Error),
    /// A rollout command could not be sent.
    #[error(transparent)]
    Rollout(#[from] engine::rollout::Error),
    /// The followed branch has not been read yet: what a change may do is unknown.
    #[error(
        "the followed branch has not been read yet: its modelship.yaml decides what a pull request may do"
    )]
    BranchUnread,
    /// The daemon follows a directory: there are no pull requests to fetch.
    #[error(
        "the daemon follows a directory, not a Git repository: pull requests cannot be fetched"
    )]
    NotGit,
}

impl PullError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            PullError::Forge(e) => e.metric_label(),
            PullError::Fetch(e) => e.metric_label(),
            PullError::Cluster(e) => e.metric_label(),
            PullError::Preview(e) => e.metric_label(),
            PullError::Plan(e) => e.metric_label(),
            PullError::Step(e) => e.metric_label(),
            PullError::Rollout(e) => e.metric_label(),
            PullError::NotGit => "pulls_not_git",
            PullError::BranchUnread => "pulls_branch_unread",
        }
    }

    /// Whether trying again later may succeed.
    fn retryable(&self) -> bool {
        match self {
            PullError::Forge(e) => !matches!(
                e,
                forge::Error::ApiUrl(_)
                    | forge::Error::Credentials { .. }
                    | forge::Error::CredentialChoice(_)
                    | forge::Error::RepoName(_)
                    | forge::Error::Payload { .. }
            ),
            PullError::Plan(_) | PullError::Step(_) | PullError::NotGit => false,
            // The same head is refused again.
            PullError::Fetch(e) => e.refused().is_none(),
            PullError::Cluster(_) | PullError::Preview(_) | PullError::BranchUnread => true,
            PullError::Rollout(e) => matches!(e, engine::rollout::Error::Cluster(_)),
        }
    }
}

/// What a piece of work is about; one entry each in the worker's map.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum WorkKey {
    Resync,
    Pull(Repo, u64),
    Comment(Repo, u64, u64),
}

impl WorkKey {
    fn of(job: &Job) -> WorkKey {
        match job {
            Job::Resync => WorkKey::Resync,
            Job::Pull(event) => WorkKey::Pull(event.repo.clone(), event.number),
            Job::Command(event) => {
                WorkKey::Comment(event.repo.clone(), event.number, event.comment_id)
            }
        }
    }

    /// The `/status` key of its pull request; `None` for work whose failures show as
    /// `pulls_error` (the resync, comment commands, which answer in a reply).
    fn board_key(&self) -> Option<String> {
        match self {
            WorkKey::Resync | WorkKey::Comment(..) => None,
            WorkKey::Pull(repo, number) => Some(format!("{repo}#{number}")),
        }
    }
}

/// Where one piece of work stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the worker.
    Queued,
    /// Failed `attempt` times; tried again at `at`.
    RetryAt { at: Instant, attempt: u32 },
}

#[derive(Debug, Clone)]
struct Work {
    job: Job,
    phase: Phase,
}

impl Work {
    /// Failed attempts so far.
    fn failures(&self) -> u32 {
        match self.phase {
            Phase::Queued => 0,
            Phase::RetryAt { attempt, .. } => attempt,
        }
    }
}

/// The pull-request worker of one term of leadership.
pub(super) struct Worker {
    pub(super) shared: Arc<Shared>,
    pub(super) github: GitHub,
    pub(super) api_url: String,
    /// The followed branch's snapshots (for the approvers of modelship.yaml).
    snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    work: BTreeMap<WorkKey, Work>,
    /// Merged pull requests waiting for their outcome, with when to check next.
    pub(super) outcomes: BTreeMap<(Repo, u64), (outcome::Pending, Instant)>,
    pub(super) backoff: Backoff,
    pub(super) jitter: Jitter,
}

impl Worker {
    pub(super) fn new(
        shared: Arc<Shared>,
        github: GitHub,
        api_url: String,
        snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    ) -> Self {
        let backoff = shared.config.backoff;
        Worker {
            shared,
            github,
            api_url,
            snapshots,
            work: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            backoff,
            jitter: Jitter::from_clock(),
        }
    }

    /// Runs until `stop`: a resync at once and every interval, and the queued work, one
    /// piece at a time.
    pub(super) async fn run(mut self, queue: PullQueue, mut stop: watch::Receiver<bool>) {
        let mut rx = queue.rx.lock().await;
        self.load_outcomes().await;
        let mut resync = tokio::time::interval(self.shared.config.interval);
        let mut outcomes = tokio::time::interval(OUTCOME_CHECK);
        loop {
            while let Ok(job) = rx.try_recv() {
                self.enqueue(job).await;
            }
            if *stop.borrow() {
                break;
            }
            if let Some(key) = self.next_queued() {
                self.execute(key).await;
                continue;
            }
            let next_retry = self.next_retry();
            tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => self.enqueue(job).await,
                    None => break,
                },
                _ = resync.tick() => self.enqueue(Job::Resync).await,
                _ = crate::time::sleep_until(next_retry), if next_retry.is_some() => {}
                _ = outcomes.tick(), if !self.outcomes.is_empty() => self.check_outcomes().await,
                _ = stop.changed() => break,
            }
        }
    }

    async fn enqueue(&mut self, job: Job) {
        let key = WorkKey::of(&job);
        if let Some(board_key) = key.board_key() {
            let mut board = self.shared.board.write().await;
            board.pulls.entry(board_key).or_default().state = "queued".to_string();
        }
        // A newer event of a pull request replaces the older one, retries included.
        self.work.insert(
            key,
            Work {
                job,
                phase: Phase::Queued,
            },
        );
    }

    /// The first piece of work that may run now: queued, or a retry that is due.
    fn next_queued(&self) -> Option<WorkKey> {
        let now = Instant::now();
        self.work
            .iter()
            .find(|(_, w)| match w.phase {
                Phase::Queued => true,
                Phase::RetryAt { at, .. } => at <= now,
            })
            .map(|(k, _)| k.clone())
    }

    fn next_retry(&self) -> Option<Instant> {
        self.work
            .values()
            .filter_map(|w| match w.phase {
                Phase::RetryAt { at, .. } => Some(at),
                Phase::Queued => None,
            })
            .min()
    }

    async fn execute(&mut self, key: WorkKey) {
        let Some(work) = self.work.get(&key).cloned() else {
            return;
        };
        let board_key = key.board_key();
        self.set_state(board_key.as_deref(), |s| s.state = "running".into())
            .await;
        let result = match &work.job {
            Job::Pull(event) => self.pull(event).await,
            Job::Command(event) => self.command(event).await,
            Job::Resync => previews::resync(self).await,
        };
        match result {
            Ok(()) => {
                self.work.remove(&key);
                if let Some(board_key) = &board_key
                    && let Some(status) = self.shared.board.write().await.pulls.get_mut(board_key)
                {
                    status.failures = 0;
                    status.last_error = None;
                }
                if board_key.is_none() {
                    self.shared.board.write().await.pulls_error = None;
                }
            }
            Err(error) => {
                tracing::warn!(?key, %error, "pull-request work failed");
                self.shared.metrics.error(error.metric_label());
                let attempt = work.failures() + 1;
                let give_up = !error.retryable() || attempt >= MAX_ATTEMPTS;
                let text = error.to_string();
                if board_key.is_none() {
                    self.shared.board.write().await.pulls_error = Some(text.clone());
                }
                self.set_state(board_key.as_deref(), |s| {
                    s.state = if give_up { "failed" } else { "retrying" }.into();
                    s.failures = attempt;
                    s.last_error = Some(text);
                })
                .await;
                if give_up {
                    self.work.remove(&key);
                } else if let Some(work) = self.work.get_mut(&key) {
                    let delay = self.backoff.delay(attempt, self.jitter.unit());
                    work.phase = Phase::RetryAt {
                        at: Instant::now() + delay,
                        attempt,
                    };
                }
            }
        }
    }

    pub(super) async fn set_state(&self, key: Option<&str>, f: impl FnOnce(&mut PullStatus)) {
        if let Some(key) = key {
            let mut board = self.shared.board.write().await;
            f(board.pulls.entry(key.to_string()).or_default());
        }
    }

    async fn pull(&mut self, event: &PullRequestEvent) -> Result<(), PullError> {
        if let PrAction::Closed {
            merge_commit_sha, ..
        } = &event.action
        {
            previews::tear_down(self, &event.repo, event.number).await?;
            let key = format!("{}#{}", event.repo, event.number);
            if let Some(merge_sha) = merge_commit_sha {
                self.await_outcome(event, &key, merge_sha).await?;
            }
            // The board keeps open PRs and merged ones waiting for their outcome.
            let mut board = self.shared.board.write().await;
            match merge_commit_sha {
                Some(_) => {
                    let status = board.pulls.entry(key).or_default();
                    status.state = "merged".into();
                    status.preview.clear();
                }
                None => {
                    board.pulls.remove(&key);
                }
            }
            return Ok(());
        }
        self.plan(event).await
    }

    /// Plans the head of a pull request, publishes the comment and the status, then
    /// deploys or tears down its preview.
    async fn plan(&self, event: &PullRequestEvent) -> Result<(), PullError> {
        let (repo, number) = (&event.repo, event.number);
        self.github
            .set_status(
                repo,
                &event.head.sha,
                StatusContext::Plan,
                StatusState::Pending,
                "planning",
                None,
            )
            .await?;
        let planned = self.plan_head(event).await;
        if let Err(PullError::Fetch(error)) = &planned
            && let Some(refused) = error.refused()
        {
            // Not a failure of modelship's: the comment says which limit the head broke.
            let markdown = format!(
                "### modelship plan\n\n:no_entry: Commit `{}` was not planned: its YAML files \
                 are over a limit of the revision.\n\n{refused}\n",
                event.head.sha
            );
            let description = format!("refused: {}", refused.limit.metric_label());
            self.github
                .publish_plan(
                    repo,
                    number,
                    &event.head.sha,
                    &markdown,
                    StatusState::Failure,
                    &description,
                )
                .await?;
            return planned;
        }
        if let Err(error) = &planned
            && !matches!(error, PullError::Forge(_))
        {
            // The status says why it stays unplanned (a retry sets it again).
            let text = format!("could not plan: {error}");
            let status = self.github.set_status(
                repo,
                &event.head.sha,
                StatusContext::Plan,
                StatusState::Error,
                &text,
                None,
            );
            if let Err(also) = status.await {
                tracing::warn!(%repo, number, error = %also, "setting the error status failed too");
            }
        }
        planned
    }

    /// Fetches, prepares and plans the head; publishes; then the preview.
    async fn plan_head(&self, event: &PullRequestEvent) -> Result<(), PullError> {
        let (repo, number) = (&event.repo, event.number);
        let Source::Git(git) = &self.shared.config.source else {
            return Err(PullError::NotGit);
        };
        let snapshot = git.fetch_pull_request(number).await?;
        let source = compile::Source {
            repo: self.shared.config.repo_name.clone(),
            commit: snapshot.revision.commit().map(str::to_string),
            instance: self.shared.config.instance.clone(),
        };
        // What the change may do is the followed branch's to decide: its tenants,
        // protected namespaces, previews, github, prometheus and analysis apply.
        let branch = self.branch_config().ok_or(PullError::BranchUnread)?;
        let load = LoadOptions {
            own_namespace: self.shared.config.own_namespace(),
            governing: Some(&branch),
        };
        let mut prepared = engine::prepare_with(
            &snapshot.files,
            &BTreeMap::new(),
            &source,
            Keep::Objects,
            load,
        );
        // As the daemon will after the merge: a service outside --namespaces is refused.
        prepared.confine(&self.shared.config.namespaces);
        let live = self.shared.cache.read().await.view(None);
        let live_services = crate::plan::LiveState::services(&live);
        // The namespaces policies see are those of the head's services and of every live
        // service, as the daemon sees them after the merge.
        let labels = engine::namespace_labels_in(
            &self.shared.client,
            &prepared,
            live_services.iter().cloned(),
            &ClusterRetry::default(),
            &self.shared.config.namespaces,
        )
        .await?;
        let revision = Revision::new(prepared, labels, &live_services);
        // Planned as `modelship plan` plans: the step of every service, read-only, canary
        // services advanced, so the comment shows the canary a merge starts.
        let run = Run {
            revision: &revision,
            now: jiff::Timestamp::now(),
            analyst: &self.shared.analyst,
            settings: self.shared.config.rollout,
            detail: Detail::Full,
            owners: &self.shared.owners,
        };
        let mut sweep = run.plan_all(&live).await;
        if let Some(error) = sweep.outcomes.iter_mut().find_map(|o| o.error.take()) {
            return Err(error.into());
        }
        let (plan, rollouts) = (sweep.plan, sweep.rollouts);
        let prepared = &revision.prepared;
        let verdict = render::verdict(
            &prepared.repository.diagnostics,
            prepared.desired.repository_valid,
            &plan,
        );
        let root = git.config().path.trim_matches('/').trim_start_matches("./");
        let links = Links {
            repository_url: forge::repository_url(&self.api_url, repo),
            sha: snapshot.revision.to_string(),
            root: if root == "." {
                String::new()
            } else {
                root.to_string()
            },
        };
        let markdown = engine::comment::markdown(prepared, &plan, &live, &rollouts, Some(links));
        let state = if verdict.passed {
            StatusState::Success
        } else {
            StatusState::Failure
        };
        self.github
            .publish_plan(
                repo,
                number,
                snapshot.revision.as_str(),
                &markdown,
                state,
                &verdict.description,
            )
            .await?;
        let key = format!("{repo}#{number}");
        let changed: Vec<ServiceId> = plan
            .services
            .iter()
            .filter(|s| s.has_changes())
            .map(|s| s.id.clone())
            .collect();
        self.set_state(Some(&key), |s| {
            s.state = "planned".into();
            s.head = Some(snapshot.revision.to_string());
            s.plan = Some(verdict.description.clone());
            s.changed = changed;
        })
        .await;
        let label = &prepared.repository.config.spec.previews.label;
        if event.has_label(label) {
            previews::deploy(self, event, prepared, &plan, &source).await
        } else {
            previews::tear_down(self, repo, number).await
        }
    }

    async fn command(&self, event: &CommandEvent) -> Result<(), PullError> {
        let (repo, number) = (&event.repo, event.number);
        let (rollout_command, id) = match &event.command {
            Command::Plan => return self.replan(event).await,
            Command::Unknown(line) => {
                let text = format!("`{}` is not a modelship command. {USAGE}.", line.trim());
                self.github.reply(repo, number, &text).await?;
                return Ok(());
            }
            Command::Approve(id) => (rollout::Command::Approve, id),
            Command::Abort(id) => (rollout::Command::Abort, id),
            Command::Retry(id) => (rollout::Command::Retry, id),
        };
        let approvers = self.approvers();
        let verb = rollout_verb(rollout_command);
        match self
            .github
            .may_approve(repo, &event.user, &approvers)
            .await?
        {
            Approval::Refused(why) => {
                let text = format!("Not done: {why}.");
                self.github.reply(repo, number, &text).await?;
            }
            Approval::Allowed => {
                let sent =
                    engine::rollout::send_command(&self.shared.writer, id, rollout_command).await;
                let text = match sent {
                    Ok((request, _)) => {
                        tracing::info!(namespace = %id.namespace(), service = %id.name(), user = %event.user, command = %request, "rollout command from a pull-request comment");
                        format!(
                            "@{} asked to {verb} the rollout of `{id}`: sent (`{}: {request}`).",
                            event.user,
                            rollout::ANNOTATION_COMMAND
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
                    Err(error) => return Err(error.into()),
                };
                self.github.reply(repo, number, &text).await?;
            }
        }
        Ok(())
    }

    /// `/modelship plan`: what GitHub says of the PR now, planned as a push would be.
    async fn replan(&self, event: &CommandEvent) -> Result<(), PullError> {
        let state = self.github.pull_request(&event.repo, event.number).await?;
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
                repo: None,
            },
            base_branch: self.shared.config.branch.clone(),
            labels: state.labels,
            installation: event.installation,
        };
        self.plan(&pull).await
    }

    /// `github.approvers` of the followed branch's modelship.yaml.
    fn approvers(&self) -> Vec<String> {
        self.branch_config()
            .map(|config| config.spec.github.approvers)
            .unwrap_or_default()
    }

    /// The followed branch's modelship.yaml as its tip has it (the defaults when it has
    /// none, or when it has errors: the branch's services are all blocked then); `None`
    /// until the branch has been read.
    fn branch_config(&self) -> Option<RepositoryConfig> {
        let snapshot = self.snapshots.borrow().clone()?;
        let config: BTreeMap<String, Vec<u8>> = snapshot
            .files
            .iter()
            .filter(|(path, _)| path.as_str() == crate::spec::CONFIG_FILE)
            .map(|(p, c)| (p.clone(), c.clone()))
            .collect();
        Some(crate::spec::load(&config).config)
    }
}

fn rollout_verb(command: rollout::Command) -> &'static str {
    match command {
        rollout::Command::Approve => "approve",
        rollout::Command::Abort => "abort",
        rollout::Command::Retry => "retry",
    }
}
