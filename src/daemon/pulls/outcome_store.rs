//! Where the daemon keeps the merged pull requests still waiting for their outcome: one
//! ConfigMap, `modelship-pull-outcomes`, in the daemon's own namespace, a key per pull
//! request (`OWNER.NAME.N`), beside two keys of `trust.rs`: [`DELIVERIES`], the delivery
//! ids acted on (the last `trust::DELIVERY_MEMORY`, one a line), and [`ARMED`], the pull
//! requests a writer labelled for a preview. Written whole with server-side apply, so a
//! key no longer sent is removed; read once when the pull-request worker starts, so a
//! restart loses no pending outcome, acts on no delivery twice and arms no preview anew.

use std::collections::BTreeMap;

use serde_json::json;

use crate::cluster::{self, Writer};
use crate::meta::{LABEL_CREATED_BY, MANAGED_BY_VALUE, ObjectKey};

/// The ConfigMap's name.
pub const CONFIG_MAP: &str = "modelship-pull-outcomes";

/// The key of the delivery ids acted on (a pull request's key always holds dots).
pub const DELIVERIES: &str = "deliveries";

/// The key of the pull requests armed for a preview.
pub const ARMED: &str = "previews-armed";

/// Replaces the stored entries with `entries` (the namespace is created when missing).
pub async fn save(
    writer: &Writer,
    namespace: &str,
    entries: &BTreeMap<String, String>,
) -> cluster::Result<()> {
    writer.ensure_namespace(namespace).await?;
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIG_MAP,
            "namespace": namespace,
            // Not managed-by: it is no service's object and is never planned or pruned.
            "labels": {LABEL_CREATED_BY: MANAGED_BY_VALUE},
        },
        "data": entries,
    });
    let key = ObjectKey::new("", "ConfigMap", namespace, CONFIG_MAP);
    writer.apply(&key, "v1", &body).await.map(drop)
}
