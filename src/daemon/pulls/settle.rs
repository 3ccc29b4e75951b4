//! The outcome side of the pull-request worker: remembering merged pull requests (in
//! memory and in the ConfigMap of `pulls/outcome_store.rs`), checking them against the board
//! and the rollout states, and posting the outcome comment and `modelship/apply` status.
//! What an outcome is, and its comment, are `outcome.rs`'s (pure).

use std::collections::{BTreeMap, BTreeSet};

use tokio::time::Instant;

use super::outcome;
use super::{PullError, Worker};
use crate::cluster::{self, RetryPolicy as ClusterRetry};
use crate::forge::events::PullRequestEvent;
use crate::forge::{self, Repo, StatusContext, StatusState};
use crate::meta::{ObjectKey, ServiceId};
use crate::plan::LiveState as _;
use crate::rollout;
use crate::source::Source;

impl Worker {
    /// Remembers a merged pull request until its outcome is posted, and marks its merge
    /// commit `modelship/apply` pending.
    pub(super) async fn await_outcome(
        &mut self,
        event: &PullRequestEvent,
        key: &str,
        merge_sha: &str,
    ) -> Result<(), PullError> {
        let services = self
            .shared
            .board
            .read()
            .await
            .pulls
            .get(key)
            .map(|s| s.changed.iter().cloned().collect())
            .unwrap_or_default();
        let pending = outcome::Pending {
            repo: event.repo.clone(),
            pr: event.number,
            merge_sha: merge_sha.to_string(),
            services,
        };
        self.outcomes.insert(
            (event.repo.clone(), event.number),
            (pending, Instant::now()),
        );
        self.save_outcomes().await;
        self.github
            .set_status(
                &event.repo,
                merge_sha,
                StatusContext::Apply,
                StatusState::Pending,
                "waiting for the daemon to reconcile the merge",
                None,
            )
            .await?;
        Ok(())
    }

    /// The namespace of the ConfigMap of pending outcomes.
    fn state_namespace(&self) -> &str {
        self.shared
            .config
            .github
            .as_ref()
            .map_or("modelship", |g| g.state_namespace.as_str())
    }

    /// Reads the pending outcomes a previous run left.
    pub(super) async fn load_outcomes(&mut self) {
        let read = cluster::read_config_map(
            &self.shared.client,
            self.state_namespace(),
            super::outcome_store::CONFIG_MAP,
            &ClusterRetry::default(),
        )
        .await;
        let entries = match read {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(%error, "pending outcomes could not be read");
                self.shared.metrics.error(error.metric_label());
                return;
            }
        };
        for (key, text) in &entries {
            match key.as_str() {
                super::outcome_store::DELIVERIES => {
                    for id in text.lines().filter(|l| !l.is_empty()) {
                        self.delivered.first_time(id);
                    }
                    continue;
                }
                super::outcome_store::ARMED => {
                    self.armed = super::trust::decode_armed(text);
                    continue;
                }
                _ => {}
            }
            match outcome::Pending::decode(text) {
                Some(pending) => {
                    let key = (pending.repo.clone(), pending.pr);
                    self.outcomes.insert(key, (pending, Instant::now()));
                }
                None => tracing::warn!(entry = %text, "pending outcome not understood: dropped"),
            }
        }
    }

    /// Stores the pending outcomes, the armed previews and the delivery ids acted on; a
    /// failure is reported and they stay in memory.
    pub(super) async fn save_outcomes(&self) {
        let mut entries: BTreeMap<String, String> = self
            .outcomes
            .values()
            .map(|(pending, _)| (pending.key(), pending.encode()))
            .collect();
        let delivered: String = self.delivered.ids().map(|id| format!("{id}\n")).collect();
        if !delivered.is_empty() {
            entries.insert(super::outcome_store::DELIVERIES.to_string(), delivered);
        }
        if !self.armed.is_empty() {
            let armed = super::trust::encode_armed(&self.armed);
            entries.insert(super::outcome_store::ARMED.to_string(), armed);
        }
        let saved =
            super::outcome_store::save(&self.shared.writer, self.state_namespace(), &entries).await;
        if let Err(error) = saved {
            tracing::warn!(%error, "pending outcomes could not be stored");
            self.shared.metrics.error(error.metric_label());
        }
    }

    /// Posts the outcome of every merged pull request whose services have finished.
    pub(super) async fn check_outcomes(&mut self) {
        let Source::Git(git) = &self.shared.config.source else {
            return;
        };
        let board = self.shared.board.read().await.clone();
        let Some(revision) = board.revision.clone() else {
            return;
        };
        let now = Instant::now();
        let keys: Vec<(Repo, u64)> = self.outcomes.keys().cloned().collect();
        for key in keys {
            let Some((pending, at)) = self.outcomes.get(&key).cloned() else {
                continue;
            };
            if at > now || !git.contains(&revision, &pending.merge_sha).unwrap_or(false) {
                continue;
            }
            let rollouts = self.rollouts(&pending.services).await;
            let Some(results) = outcome::settle(&pending, &board, &|id| rollouts.get(id).cloned())
            else {
                continue;
            };
            match self.post_outcome(&pending, &revision, &results).await {
                Ok(()) => {
                    self.outcomes.remove(&key);
                    self.save_outcomes().await;
                }
                Err(error) => {
                    tracing::warn!(pr = pending.pr, %error, "posting the outcome failed; trying again");
                    self.shared.metrics.error(error.metric_label());
                    let retry = now + self.backoff.delay(3, self.jitter.unit());
                    self.outcomes.insert(key, (pending, retry));
                }
            }
        }
    }

    /// The rollout state recorded on the stable Deployment of each service.
    async fn rollouts(
        &self,
        services: &BTreeSet<ServiceId>,
    ) -> BTreeMap<ServiceId, rollout::RolloutState> {
        let live = self.shared.cache.read().await.view(Some(services));
        services
            .iter()
            .filter_map(|id| {
                let key = ObjectKey::new("apps", "Deployment", id.namespace(), id.name());
                let text = live
                    .get(&key)?
                    .pointer("/metadata/annotations")?
                    .get(rollout::ANNOTATION_ROLLOUT)?
                    .as_str()?;
                let state = serde_json::from_str(text).ok()?;
                Some((id.clone(), state))
            })
            .collect()
    }

    async fn post_outcome(
        &self,
        pending: &outcome::Pending,
        revision: &str,
        results: &[(ServiceId, outcome::Settled)],
    ) -> Result<(), forge::Error> {
        let markdown = outcome::comment(pending, revision, results);
        self.github
            .upsert_comment(&pending.repo, pending.pr, forge::Marker::Outcome, &markdown)
            .await?;
        let (state, text) = if outcome::passed(results) {
            (
                StatusState::Success,
                "every service changed by the merge is in sync",
            )
        } else {
            (
                StatusState::Failure,
                "a service changed by the merge failed or rolled back",
            )
        };
        self.github
            .set_status(
                &pending.repo,
                &pending.merge_sha,
                StatusContext::Apply,
                state,
                text,
                None,
            )
            .await?;
        let key = format!("{}#{}", pending.repo, pending.pr);
        self.shared.board.write().await.pulls.remove(&key);
        Ok(())
    }
}
