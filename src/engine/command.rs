//! Rollout commands sent from outside the rollout loop (a pull-request comment): the
//! annotation `modelship.dev/rollout-command` on the service's stable Deployment, which the
//! rollout engine reads, acts on and clears.
//!
//! The annotation is written with a merge patch ([`Writer::annotate`]), so none of the
//! fields modelship applies are touched.

use serde_json::{Map, Value};

use crate::cluster::{self, Writer};
use crate::meta::ObjectKey;
use crate::rollout::{ANNOTATION_COMMAND, CommandRequest};

/// Writes `request` on the stable Deployment `namespace/name` (the service's name).
/// A missing Deployment is an error (the service is not deployed).
pub async fn send_command(
    writer: &Writer,
    namespace: &str,
    name: &str,
    request: &CommandRequest,
) -> cluster::Result<Value> {
    let key = ObjectKey::new("apps", "Deployment", namespace, name);
    let mut annotations = Map::new();
    annotations.insert(
        ANNOTATION_COMMAND.to_string(),
        Value::String(request.to_string()),
    );
    writer.annotate(&key, "apps/v1", &annotations).await
}
