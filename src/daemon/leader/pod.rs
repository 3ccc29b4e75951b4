//! The daemon's mark of leadership on its own Pod: the label `modelship.dev/leader: "true"`
//! while it leads, which the Service `modelship-webhooks` of `deploy/` selects, so GitHub's
//! deliveries reach the leader only (the daemon's `leader/label.rs` decides when). Like
//! every write of modelship, it goes through the cluster's writer: a read, then, only when
//! the label differs, a merge patch of just that label.

use crate::cluster::{self, Writer};
use crate::meta::{FIELD_MANAGER, ObjectKey};

/// The label of the leader's Pod.
pub const LABEL: &str = "modelship.dev/leader";

/// Makes Pod `namespace/name` carry the leader label (`leading`) or not; true when it was
/// written, false when it already said so. A missing Pod is an error.
pub async fn mark_pod(
    writer: &Writer,
    namespace: &str,
    name: &str,
    leading: bool,
) -> cluster::Result<bool> {
    let key = ObjectKey::new("", "Pod", namespace, name);
    let value = leading.then_some("true");
    if let Some(pod) = writer.get(&key, "v1").await? {
        let present = pod
            .pointer("/metadata/labels")
            .and_then(|labels| labels.get(LABEL))
            .and_then(serde_json::Value::as_str);
        if present == value {
            return Ok(false);
        }
    }
    // A Pod that is not there fails here, with the API server's answer.
    writer
        .label(&key, "v1", FIELD_MANAGER, LABEL, value)
        .await?;
    Ok(true)
}
