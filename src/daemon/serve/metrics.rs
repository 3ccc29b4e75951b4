//! The daemon's own `/metrics` (Prometheus text format, prometheus-client).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `modelship_reconciles_total` | counter | `result` (in-sync, failed, invalid, drifted, pruned) |
//! | `modelship_reconcile_duration_seconds` | histogram | |
//! | `modelship_errors_total` | counter | `cause` (an error's metric label) |
//! | `modelship_drift_corrections_total` | counter | |
//! | `modelship_writes_total` | counter | |
//! | `modelship_source_fetches_total` | counter | `result` (ok, error, refused: over a limit) |
//! | `modelship_source_fetch_duration_seconds` | histogram | |
//! | `modelship_webhooks_total` | counter | `outcome` |
//! | `modelship_revision_info` | gauge (1) | `revision` |
//! | `modelship_services` | gauge | `state` |
//! | `modelship_leader` | gauge | |
//!
//! and the rollout series of [`super::rollout_metrics`].

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabel {
    pub cause: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevisionLabel {
    pub revision: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

/// Every metric of the daemon, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ResultLabel, Counter>,
    pub reconcile_duration: Histogram,
    pub errors: Family<CauseLabel, Counter>,
    pub drift_corrections: Counter,
    pub writes: Counter,
    pub fetches: Family<ResultLabel, Counter>,
    pub fetch_duration: Histogram,
    pub webhooks: Family<OutcomeLabel, Counter>,
    pub revision: Family<RevisionLabel, Gauge>,
    pub services: Family<StateLabel, Gauge>,
    pub leader: Gauge,
    /// `modelship_forge_requests_total{result}`: every GitHub request attempt.
    pub forge: crate::forge::ForgeMetrics,
    pub rollouts: super::rollout_metrics::RolloutMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("modelship");
        let metrics = Metrics {
            reconciles: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            errors: Family::default(),
            drift_corrections: Counter::default(),
            writes: Counter::default(),
            fetches: Family::default(),
            fetch_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            webhooks: Family::default(),
            revision: Family::default(),
            services: Family::default(),
            leader: Gauge::default(),
            forge: crate::forge::ForgeMetrics::default(),
            rollouts: Default::default(),
            registry: Registry::default(),
        };
        registry.register(
            "reconciles",
            "Service reconciles by result",
            metrics.reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one service reconcile",
            metrics.reconcile_duration.clone(),
        );
        registry.register("errors", "Errors by cause", metrics.errors.clone());
        registry.register(
            "drift_corrections",
            "Services re-applied after the cluster drifted from the repository",
            metrics.drift_corrections.clone(),
        );
        registry.register(
            "writes",
            "Objects written or deleted in the cluster",
            metrics.writes.clone(),
        );
        registry.register(
            "source_fetches",
            "Fetches of the repository by result",
            metrics.fetches.clone(),
        );
        registry.register(
            "source_fetch_duration_seconds",
            "Duration of one fetch of the repository",
            metrics.fetch_duration.clone(),
        );
        registry.register(
            "webhooks",
            "Webhook deliveries by outcome",
            metrics.webhooks.clone(),
        );
        registry.register(
            "revision_info",
            "The revision last read from the repository (value 1)",
            metrics.revision.clone(),
        );
        registry.register("services", "Services by state", metrics.services.clone());
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            metrics.leader.clone(),
        );
        metrics.forge.register(&mut registry);
        let rollouts = super::rollout_metrics::RolloutMetrics::register(&mut registry);
        Metrics {
            registry,
            rollouts,
            ..metrics
        }
    }

    /// Counts an error by its metric label.
    pub fn error(&self, cause: &str) {
        self.errors
            .get_or_create(&CauseLabel {
                cause: cause.to_string(),
            })
            .inc();
    }

    /// Counts one reconcile with its result.
    pub fn reconciled(&self, result: &str, seconds: f64) {
        self.reconciles
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
        self.reconcile_duration.observe(seconds);
    }

    /// Counts one fetch: `result` is `ok`, `error` or `refused` (a revision over a limit).
    pub fn fetched(&self, result: &str, seconds: f64) {
        self.fetches
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
        self.fetch_duration.observe(seconds);
    }

    /// Counts one webhook delivery.
    pub fn webhook(&self, outcome: &str) {
        self.webhooks
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Makes `revision` the only series of `modelship_revision_info`.
    pub fn set_revision(&self, revision: &str) {
        self.revision.clear();
        self.revision
            .get_or_create(&RevisionLabel {
                revision: revision.to_string(),
            })
            .set(1);
    }

    /// Sets the per-state service counts.
    pub fn set_services<'a>(&self, counts: impl IntoIterator<Item = (&'a str, usize)>) {
        self.services.clear();
        for (state, count) in counts {
            self.services
                .get_or_create(&StateLabel {
                    state: state.to_string(),
                })
                .set(count as i64);
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_carries_counts_labels_and_the_revision() {
        let metrics = Metrics::new();
        metrics.reconciled("in-sync", 0.01);
        metrics.reconciled("in-sync", 0.02);
        metrics.error("git_fetch");
        metrics.set_revision("abc");
        metrics.set_revision("def");
        let text = metrics.encode();
        assert!(
            text.contains(r#"modelship_reconciles_total{result="in-sync"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"modelship_errors_total{cause="git_fetch"} 1"#));
        assert!(text.contains(r#"modelship_revision_info{revision="def"} 1"#));
        assert!(!text.contains(r#"revision="abc""#));
        assert!(text.contains("modelship_reconcile_duration_seconds_count 2"));
    }
}
