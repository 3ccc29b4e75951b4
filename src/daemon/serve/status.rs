//! What the daemon knows about each service: the last revision applied, the last result
//! and the last error. Served as JSON on `/status`; read by `/readyz`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::Verdict;

/// One service on `/status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStatus {
    pub namespace: String,
    pub name: String,
    /// The engine's verdict of the last step; `None` (shown `pending`) until the first.
    #[serde(rename = "state", serialize_with = "state_text")]
    pub verdict: Option<Verdict>,
    /// Revision of the last successful apply (or check) of this service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// spec-hash of the spec last applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    /// The last error, until a later success clears it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Objects the service compiles to.
    pub objects: usize,
    /// Objects written by the last reconcile.
    pub last_writes: usize,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// Where its canary rollout stands (canary services only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::rollout::RolloutStatus>,
}

impl ServiceStatus {
    /// The state shown: the verdict's (`in-sync`, `invalid`, `failed`, `drifted`,
    /// `pruned`), or `pending` before the first step.
    pub fn state(&self) -> &'static str {
        self.verdict.as_ref().map_or("pending", Verdict::as_str)
    }

    pub fn new(namespace: &str, name: &str) -> Self {
        ServiceStatus {
            namespace: namespace.to_string(),
            name: name.to_string(),
            verdict: None,
            revision: None,
            spec_hash: None,
            last_error: None,
            objects: 0,
            last_writes: 0,
            failures: 0,
            rollout: None,
        }
    }
}

fn state_text<S: serde::Serializer>(
    verdict: &Option<Verdict>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(verdict.as_ref().map_or("pending", Verdict::as_str))
}

/// The whole `/status` document.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Board {
    /// The latest revision read from the source.
    pub revision: Option<String>,
    /// The last source error, until a later fetch succeeds.
    pub source_error: Option<String>,
    /// Problems of the repository at `revision` (file:line:col: message).
    pub diagnostics: Vec<String>,
    /// True once the first revision has been reconciled or failed cleanly.
    pub ready: bool,
    /// True while this replica holds the leader lease (always true without election).
    pub leader: bool,
    /// Whether webhooks are routed to the leader by the label on its Pod
    /// (`leader/label.rs`): `"leader-label"`, `"pending"`, `"unavailable: REASON"` or
    /// `"off: no POD_NAME or POD_NAMESPACE"`.
    pub webhook_routing: crate::daemon::leader::label::Routing,
    /// Set while the mass-prune guard refuses to prune: what it kept and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mass_prune: Option<String>,
    /// Services by "namespace/name".
    pub services: BTreeMap<String, ServiceStatus>,
    /// Pull requests the daemon acted on, by "OWNER/NAME#N".
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pulls: BTreeMap<String, crate::daemon::pulls::PullStatus>,
    /// The last error of the pull-request work not shown per pull request (the resync of
    /// previews, comment commands), until such work succeeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pulls_error: Option<String>,
}

impl Board {
    /// The entry of a service, created as pending when missing.
    pub fn service(&mut self, namespace: &str, name: &str) -> &mut ServiceStatus {
        self.services
            .entry(format!("{namespace}/{name}"))
            .or_insert_with(|| ServiceStatus::new(namespace, name))
    }

    /// Number of services in each state.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for status in self.services.values() {
            *counts.entry(status.state()).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_document_names_each_service_with_its_state() {
        let mut board = Board::default();
        board.service("ml", "a").verdict = Some(Verdict::InSync);
        let b = board.service("ml", "b");
        b.verdict = Some(Verdict::Blocked {
            reason: crate::plan::BlockReason::InvalidSpec,
            message: "services/b.yaml:3:1: error".into(),
        });
        b.last_error = Some("services/b.yaml:3:1: error".into());
        board.service("ml", "a").objects = 3;

        let json = serde_json::to_value(&board).unwrap();
        assert_eq!(json["services"]["ml/a"]["state"], "in-sync");
        assert_eq!(json["services"]["ml/a"]["objects"], 3);
        assert_eq!(json["services"]["ml/b"]["state"], "invalid");
        assert_eq!(
            json["services"]["ml/b"]["last_error"],
            "services/b.yaml:3:1: error"
        );
        assert_eq!(board.counts()["invalid"], 1);
        assert_eq!(board.counts()["in-sync"], 1);
    }
}
