//! The world of the daemon's pull-request tests: a cluster ([`Target`], the sandbox or a
//! real one), a bare remote, the GitHub double, and a daemon following the remote with
//! GitHub pointed at the double. Its services are in the test's namespace `ml`
//! ([`World::ml`]), its pending outcomes in the test's namespace `modelship`, its previews
//! in `<ml>-pr-<n>`; every wait lasts as long as the cluster needs ([`Target::patience`]).
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use modelship::daemon::DaemonConfig;
use modelship::forge::Marker;

use super::{AUTHOR, deliver_ok, pull_request, pulls_config, statuses_of};
use crate::support::daemon::{NS, Place, Remote, Running, commit_to};
use crate::support::forge::{Comment, Double};
use crate::support::poll::{LIMIT, eventually_within};
use crate::support::target::Target;

/// The daemon's poll interval in these tests: webhooks drive every reconcile.
pub const HOUR: Duration = Duration::from_secs(3600);

/// A daemon with pull requests on, and what it talks to.
pub struct World {
    pub cluster: Target,
    pub remote: Remote,
    pub double: Double,
    pub daemon: Running,
    config: DaemonConfig,
    _cache: tempfile::TempDir,
}

impl World {
    /// A daemon on `cluster` following a remote whose main holds `main`, once ready;
    /// [`AUTHOR`] has write permission.
    pub async fn start(cluster: Target, main: &[(&str, String)]) -> World {
        let double = Double::start().await;
        double.grant(AUTHOR, "write");
        World::start_with(cluster, main, double, |_| {}).await
    }

    /// [`World::start`] with `double` as GitHub and the configuration edited by `edit`.
    pub async fn start_with(
        cluster: Target,
        main: &[(&str, String)],
        double: Double,
        edit: impl FnOnce(&mut DaemonConfig),
    ) -> World {
        let remote = Remote::new();
        commit_to(&remote.path(), "refs/heads/main", main);
        let cache = tempfile::tempdir().expect("a cache directory");
        let mut config = pulls_config(&remote.path(), cache.path(), &double, HOUR);
        let github = config.github.as_mut().expect("pulls_config sets GitHub");
        github.state_namespace = cluster.ns("modelship");
        edit(&mut config);
        let daemon = start_daemon(&cluster, &config).await;
        World {
            cluster,
            remote,
            double,
            daemon,
            config,
            _cache: cache,
        }
    }

    /// Stops the daemon and starts another with the same configuration and cache, once
    /// ready.
    pub async fn restart(mut self) -> World {
        self.daemon.stop().await;
        self.daemon = start_daemon(&self.cluster, &self.config).await;
        self
    }

    /// Stops the daemon (the cluster's namespaces of the test go when the world drops).
    pub async fn stop(self) {
        self.daemon.stop().await;
    }

    /// The test's namespace `ml`.
    pub fn ml(&self) -> String {
        self.cluster.ns(NS)
    }

    /// The test's namespace `ml`, waited on as long as the cluster needs.
    pub fn place(&self) -> Place {
        self.place_in(&self.ml())
    }

    /// Namespace `namespace`, waited on as long as the cluster needs.
    pub fn place_in(&self, namespace: &str) -> Place {
        Place {
            client: self.cluster.client(),
            namespace: namespace.to_string(),
            patience: self.cluster.patience(),
        }
    }

    /// The preview namespace of PR `pr` (`<ml>-pr-<pr>`), waited on as the cluster needs.
    pub fn preview(&self, pr: u64) -> Place {
        self.place_in(&format!("{}-pr-{pr}", self.ml()))
    }

    /// Polls `check` until it returns `Some`, for as long as the cluster needs.
    pub async fn eventually<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        eventually_within(self.cluster.patience(), what, check).await
    }

    /// The commit at the tip of the remote's main.
    pub fn main_head(&self) -> String {
        let repo = git2::Repository::open_bare(self.remote.path()).expect("the remote");
        let main = repo.refname_to_id("refs/heads/main").expect("main");
        main.to_string()
    }

    /// Pushes `files` as the head of PR `number`; returns the head.
    pub fn push_pr(&self, number: u64, files: &[(&str, String)]) -> String {
        let reference = format!("refs/pull/{number}/head");
        commit_to(&self.remote.path(), &reference, files).to_string()
    }

    /// Pushes `files` as the head of PR `pr` and delivers `opened`; returns the head.
    pub async fn open_pr(&self, pr: u64, files: &[(&str, String)], delivery: &str) -> String {
        let sha = self.push_pr(pr, files);
        let event = pull_request("opened", pr, &sha, &[]);
        deliver_ok(self.daemon.addr(), "pull_request", &event, delivery).await;
        sha
    }

    /// Waits for the plan status of `sha` to leave pending; returns its final state.
    pub async fn plan_status(&self, sha: &str) -> String {
        let double = &self.double;
        self.eventually(&format!("a final plan status on {sha}"), || async move {
            statuses_of(double, sha)
                .into_iter()
                .rev()
                .find(|(c, s)| c == "modelship/plan" && s != "pending")
                .map(|(_, s)| s)
        })
        .await
    }

    /// Waits for the latest plan status of `sha` to be `state`.
    pub async fn wait_plan_status(&self, sha: &str, state: &str) {
        let double = &self.double;
        self.eventually(&format!("plan status {state} on {sha}"), || async move {
            let last = statuses_of(double, sha)
                .into_iter()
                .rev()
                .find(|(c, _)| c == "modelship/plan");
            last.is_some_and(|(_, s)| s == state).then_some(())
        })
        .await
    }

    /// The plan comments of modelship on PR `pr`.
    pub fn plan_comments(&self, pr: u64) -> Vec<Comment> {
        self.comments_with(pr, Marker::Plan)
    }

    /// The comments of modelship on PR `pr` that carry `marker`.
    pub fn comments_with(&self, pr: u64, marker: Marker) -> Vec<Comment> {
        self.double
            .own_comments(pr)
            .into_iter()
            .filter(|c| c.body.starts_with(marker.text()))
            .collect()
    }

    /// Waits for a comment of modelship on PR `pr` that contains `text`.
    pub async fn reply_containing(&self, pr: u64, text: &str) -> Comment {
        self.eventually(&format!("a comment with {text}"), || async {
            self.double
                .own_comments(pr)
                .into_iter()
                .find(|c| c.body.contains(text))
        })
        .await
    }

    /// Deployment `namespace/name`, if it exists.
    pub async fn deployment(&self, namespace: &str, name: &str) -> Option<Deployment> {
        let api: Api<Deployment> = Api::namespaced(self.cluster.client(), namespace);
        tokio::time::timeout(LIMIT, api.get_opt(name))
            .await
            .expect("GET in time")
            .expect("Deployment read")
    }

    /// Namespace `name`, if it exists (being deleted or not).
    pub async fn namespace(&self, name: &str) -> Option<Namespace> {
        let api: Api<Namespace> = Api::all(self.cluster.client());
        tokio::time::timeout(LIMIT, api.get_opt(name))
            .await
            .expect("GET in time")
            .expect("Namespace read")
    }

    /// True when namespace `name` exists and is not being deleted.
    pub async fn namespace_live(&self, name: &str) -> bool {
        self.namespace(name)
            .await
            .is_some_and(|ns| ns.metadata.deletion_timestamp.is_none())
    }

    /// Waits until namespace `name` is deleted: gone, or being deleted (a real cluster's
    /// namespace controller removes its objects first, on its own time; the sandbox
    /// deletes at once).
    pub async fn wait_namespace_deleted(&self, name: &str) {
        self.eventually(&format!("namespace {name} deleted"), || async move {
            (!self.namespace_live(name).await).then_some(())
        })
        .await;
    }
}

async fn start_daemon(cluster: &Target, config: &DaemonConfig) -> Running {
    let daemon = Running::start(config.clone(), cluster.client()).await;
    daemon.wait_ready_within(cluster.patience()).await;
    daemon
}
