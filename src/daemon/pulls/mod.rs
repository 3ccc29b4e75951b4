//! Pull requests: the work that `pull_request` and `issue_comment` webhooks queue, done by
//! one worker beside the reconcile loop, so that GitHub being slow or down never delays
//! the main branch.
//!
//! ```text
//! /hooks/github (signed, first delivery) ──PullQueue──▶ Worker (one map: WorkKey → Work)
//!   (a delivery id handled before, restarts included, is dropped: trust.rs)
//!   Pull(opened|synchronize|reopened|labeled|unlabeled) ─ trust.rs: trusted?
//!       status modelship/plan pending ─ fetch refs/pull/N/head ─ engine::prepare
//!       ─ engine::plan over the watch cache (read-only) ─ sticky plan comment ─ status
//!       ─ trust.rs: preview_step ─ previews.rs: deploy, suspend, refuse or tear down
//!   Pull(closed) ─ previews.rs: tear down
//!   Comment(/modelship approve|abort|retry NS/NAME) ─ the PR trusted ─ may_approve
//!       ─ engine::rollout::send_command_for(the PR's merge commit)
//!   Comment(/modelship plan) ─ author or writer? ─ the PR trusted ─ GitHub's view of the PR
//!       ─ planned again
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
//! - Who may do what is `trust.rs`'s: only the followed repository's deliveries are
//!   taken; untrusted pull requests (forks, authors without write permission) get the
//!   plan only; labels and commands count when a writer sent them.

mod commands;
pub mod outcome;
mod outcome_store;
mod previews;
mod queue;
mod settle;
pub mod trust;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::backoff::{Backoff, Jitter};
use crate::cluster::{self, RetryPolicy as ClusterRetry};
use crate::compile;
use crate::daemon::reconcile::Shared;
use crate::engine::{self, Keep, Revision, Run};
use crate::forge::events::{CommandEvent, Deliveries, PrAction, PullRequestEvent};
use crate::forge::{
    self, Credentials, ForgeMetrics, GitHub, Repo, RetryPolicy, StatusContext, StatusState,
};
use crate::meta::ServiceId;
use crate::plan::Detail;
use crate::plan::render::{self, Links};
use crate::source::{GitError, Snapshot, Source};
use crate::spec::{LoadOptions, RepositoryConfig};
use queue::Queued;
pub use queue::{PullQueue, QUEUE_CAPACITY, QueueFull};
pub use trust::Followed;
use trust::{PreviewInput, PreviewStep, Trust};

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
    /// The followed repository (from `--repo`): deliveries of any other are refused;
    /// `None` when `--repo` does not end in `OWNER/NAME` (every delivery is refused).
    pub repository: Option<Repo>,
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
    /// The deliveries this work stands for (a newer event replaces an older one):
    /// remembered once it is done.
    deliveries: Vec<String>,
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
    /// The repository deliveries must be about.
    followed: Followed,
    /// Pull requests a writer labelled for a preview (and nobody else pushed to since).
    pub(super) armed: std::collections::BTreeSet<(Repo, u64)>,
    /// Delivery ids already acted on, kept with the pending outcomes.
    pub(super) delivered: Deliveries,
}

impl Worker {
    pub(super) fn new(
        shared: Arc<Shared>,
        github: GitHub,
        api_url: String,
        snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
        followed: Followed,
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
            followed,
            armed: Default::default(),
            delivered: Deliveries::new(trust::DELIVERY_MEMORY),
        }
    }

    /// Runs until `stop`: a resync at once and every interval, and the queued work, one
    /// piece at a time.
    pub(super) async fn run(mut self, queue: PullQueue, mut stop: watch::Receiver<bool>) {
        let mut rx = queue.rx.lock().await;
        self.load_outcomes().await;
        self.learn_installation().await;
        let mut resync = tokio::time::interval(self.shared.config.interval);
        let mut outcomes = tokio::time::interval(OUTCOME_CHECK);
        loop {
            while let Ok(queued) = rx.try_recv() {
                self.enqueue_delivery(queued).await;
            }
            queue
                .held
                .store(self.work.len(), std::sync::atomic::Ordering::Relaxed);
            if *stop.borrow() {
                break;
            }
            if let Some(key) = self.next_queued() {
                self.execute(key).await;
                continue;
            }
            let next_retry = self.next_retry();
            tokio::select! {
                queued = rx.recv() => match queued {
                    Some(queued) => self.enqueue_delivery(queued).await,
                    None => break,
                },
                _ = resync.tick() => self.enqueue(Job::Resync).await,
                _ = crate::time::sleep_until(next_retry), if next_retry.is_some() => {}
                _ = outcomes.tick(), if !self.outcomes.is_empty() => self.check_outcomes().await,
                _ = stop.changed() => break,
            }
        }
    }

    /// Queues a delivery's job, unless the delivery was acted on before (a replay, after
    /// a restart too) or is not the followed repository's.
    async fn enqueue_delivery(&mut self, queued: Queued) {
        if !queued.delivery.is_empty() && self.delivered.contains(&queued.delivery) {
            tracing::info!(delivery = %queued.delivery, "delivery already acted on: ignored");
            self.shared.metrics.webhook("duplicate");
            return;
        }
        let about = match &queued.job {
            Job::Pull(event) => Some((&event.repo, event.installation)),
            Job::Command(event) => Some((&event.repo, event.installation)),
            Job::Resync => None,
        };
        if let Some((repo, installation)) = about
            && let Err(foreign) = self.followed.check(repo, installation)
        {
            tracing::warn!(%foreign, "delivery refused");
            self.shared.metrics.webhook(foreign.metric_label());
            return;
        }
        let mut deliveries = Vec::new();
        if !queued.delivery.is_empty() {
            deliveries.push(queued.delivery);
        }
        self.enqueue_with(queued.job, deliveries).await;
    }

    async fn enqueue(&mut self, job: Job) {
        self.enqueue_with(job, Vec::new()).await;
    }

    async fn enqueue_with(&mut self, job: Job, mut deliveries: Vec<String>) {
        let key = WorkKey::of(&job);
        if let Some(board_key) = key.board_key() {
            let mut board = self.shared.board.write().await;
            board.pulls.entry(board_key).or_default().state = "queued".to_string();
        }
        // A newer event of a pull request replaces the older one, retries included; the
        // deliveries it replaces are done with it.
        if let Some(older) = self.work.remove(&key) {
            deliveries.extend(older.deliveries);
        }
        self.work.insert(
            key,
            Work {
                job,
                phase: Phase::Queued,
                deliveries,
            },
        );
    }

    /// Asks GitHub for the App's installation on the followed repository, so deliveries of
    /// another installation are refused; a failure leaves the check to the repository.
    async fn learn_installation(&self) {
        let Some(repo) = self.followed.repo() else {
            return;
        };
        match self.github.installation(repo).await {
            Ok(id) => self.followed.learn_installation(id),
            Err(error) => {
                tracing::warn!(%error, "the App's installation could not be read");
                self.shared.metrics.error(error.metric_label());
            }
        }
    }

    /// Remembers the deliveries of finished work, durably.
    async fn remember(&mut self, deliveries: &[String]) {
        if deliveries.is_empty() {
            return;
        }
        for id in deliveries {
            self.delivered.first_time(id);
        }
        self.save_outcomes().await;
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
                self.remember(&work.deliveries).await;
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
                    self.remember(&work.deliveries).await;
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
            self.arm(&event.repo, event.number, false).await;
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
        self.plan(event, false).await
    }

    /// Plans the head of a pull request (`replan`: asked for in a comment, not a delivery
    /// of GitHub's), publishes the comment and the status, then does what
    /// [`trust::preview_step`] decides with its preview.
    async fn plan(&mut self, event: &PullRequestEvent, replan: bool) -> Result<(), PullError> {
        let (repo, number) = (&event.repo, event.number);
        let branch = self.branch_config().ok_or(PullError::BranchUnread)?;
        let trust =
            trust::pull_trust(&self.github, repo, trust::own_head(event), &event.author).await?;
        if let Trust::Untrusted(why) = &trust
            && !branch.spec.github.plan_untrusted
        {
            tracing::info!(%repo, number, %why, "untrusted pull request: not planned (github.planUntrusted is false)");
            return previews::tear_down(self, repo, number).await;
        }
        let previews = &branch.spec.previews;
        let sender_writes = !replan
            && event.has_label(&previews.label)
            && self.github.can_write(repo, &event.sender).await?;
        let (step, armed) = trust::preview_step(&PreviewInput {
            trust: &trust,
            forks: previews.forks,
            label: &previews.label,
            event,
            sender_writes,
            armed: self.armed.contains(&(repo.clone(), number)),
            replan,
        });
        self.arm(repo, number, armed).await;
        if step == PreviewStep::Suspend {
            // Before planning: a plan that fails must not leave a push by someone who
            // cannot write running.
            previews::suspend(self, event).await?;
        }
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
        let planned = self.plan_head(event, &branch, &step).await;
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

    /// Fetches, prepares and plans the head; publishes; then the preview's `step`.
    async fn plan_head(
        &self,
        event: &PullRequestEvent,
        branch: &RepositoryConfig,
        step: &PreviewStep,
    ) -> Result<(), PullError> {
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
        let load = LoadOptions {
            own_namespace: self.shared.config.own_namespace(),
            governing: Some(branch),
        };
        let mut prepared = engine::prepare_with(
            &snapshot.files,
            &BTreeMap::new(),
            &source,
            Keep::Objects,
            load,
        );
        // The rules it is judged by are the branch's too: its own policies count once merged.
        let branch_files = self
            .snapshots
            .borrow()
            .clone()
            .ok_or(PullError::BranchUnread)?;
        prepared.judge_by(&branch_files.files, &BTreeMap::new(), &snapshot.files);
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
        // Planned as a proposal: the step of every service, read-only; a canary shows the
        // rollout a merge starts, and a live rollout is neither analysed nor advanced.
        let run = Run {
            revision: &revision,
            now: jiff::Timestamp::now(),
            analyst: &self.shared.analyst,
            settings: self.shared.config.rollout,
            detail: Detail::Full,
            owners: &self.shared.owners,
        };
        let mut sweep = run.plan_proposal(&live).await;
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
        match step {
            PreviewStep::Deploy => previews::deploy(self, event, prepared, &plan, &source).await,
            PreviewStep::TearDown => previews::tear_down(self, repo, number).await,
            PreviewStep::Refuse(why) => previews::refuse(self, repo, number, why).await,
            PreviewStep::Suspend | PreviewStep::Leave => Ok(()),
        }
    }

    /// Records whether a writer armed the preview of a pull request; stored when it
    /// changes (a failure is reported, and it stays in memory).
    async fn arm(&mut self, repo: &Repo, number: u64, armed: bool) {
        let key = (repo.clone(), number);
        let changed = if armed {
            self.armed.insert(key)
        } else {
            self.armed.remove(&key)
        };
        if changed {
            self.save_outcomes().await;
        }
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
