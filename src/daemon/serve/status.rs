//! What the daemon knows about each service: the last revision applied, the last result
//! and the last error. Served as JSON on `/status`; read by `/readyz`.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::meta::ServiceId;

use crate::engine::Verdict;

/// One service on `/status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStatus {
    /// Shown as `"namespace"` and `"name"`.
    #[serde(flatten, serialize_with = "id_parts")]
    pub id: ServiceId,
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

    pub fn new(id: ServiceId) -> Self {
        ServiceStatus {
            id,
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
    /// Services, shown by "namespace/name" (in the order of that text).
    #[serde(serialize_with = "by_text")]
    pub services: BTreeMap<ServiceId, ServiceStatus>,
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
    pub fn service(&mut self, id: &ServiceId) -> &mut ServiceStatus {
        self.services
            .entry(id.clone())
            .or_insert_with(|| ServiceStatus::new(id.clone()))
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

/// A service's id as the `namespace` and `name` fields of its entry.
fn id_parts<S: Serializer>(id: &ServiceId, serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Parts<'a> {
        namespace: &'a str,
        name: &'a str,
    }
    Parts {
        namespace: id.namespace(),
        name: id.name(),
    }
    .serialize(serializer)
}

/// The services keyed by `namespace/name`, sorted as that text (`a-b/x` before `a/x`, where
/// ids sort `a` first): the order `/status` has always shown.
fn by_text<S: Serializer>(
    services: &BTreeMap<ServiceId, ServiceStatus>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let by_text: BTreeMap<String, &ServiceStatus> = services
        .iter()
        .map(|(id, status)| (id.to_string(), status))
        .collect();
    by_text.serialize(serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(namespace: &str, name: &str) -> ServiceId {
        ServiceId::new(namespace, name).unwrap()
    }

    #[test]
    fn the_status_document_names_each_service_with_its_state() {
        let mut board = Board::default();
        board.service(&id("ml", "a")).verdict = Some(Verdict::InSync);
        let b = board.service(&id("ml", "b"));
        b.verdict = Some(Verdict::Blocked {
            reason: crate::plan::BlockReason::InvalidSpec,
            message: "services/b.yaml:3:1: error".into(),
        });
        b.last_error = Some("services/b.yaml:3:1: error".into());
        board.service(&id("ml", "a")).objects = 3;

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

    #[test]
    fn services_show_as_namespace_and_name_in_the_order_of_their_text() {
        let mut board = Board::default();
        board.service(&id("a", "x"));
        board.service(&id("a-b", "y"));
        let text = serde_json::to_string(&board).unwrap();
        let services = text.split_once(r#""services":"#).unwrap().1;
        assert!(
            services.starts_with(r#"{"a-b/y":{"namespace":"a-b","name":"y","state":"pending","#),
            "{services}"
        );
        assert!(services.contains(r#""a/x":{"namespace":"a","name":"x","state":"pending","#));
    }
}
