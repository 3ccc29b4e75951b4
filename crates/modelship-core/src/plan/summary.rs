//! The short story of a service's change: model version, images, replicas, GPUs.

use serde::Serialize;
use serde_json::Value;

/// A value before (live) and after (desired); `None` where the object does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delta<T> {
    pub before: Option<T>,
    pub after: Option<T>,
}

/// An image change of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageChange {
    pub container: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// What changes in a service, in the terms a reviewer cares about. Only changing items
/// are set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// `app.kubernetes.io/version` of the Deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Delta<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageChange>,
    /// Replicas as `2`, or `1-10` when an HPA scales the Deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Delta<String>>,
    /// GPUs requested by the service at its minimum scale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus: Option<Delta<u64>>,
}

impl Summary {
    /// True when nothing a reviewer tracks changes.
    pub fn is_empty(&self) -> bool {
        *self == Summary::default()
    }
}

/// The tracked facts of one side (live or desired) of a service.
#[derive(Debug, Default)]
struct Side {
    version: Option<String>,
    images: Vec<(String, String)>,
    replicas: Option<String>,
    gpus: Option<u64>,
}

fn side<'a>(objects: impl Iterator<Item = &'a Value>) -> Side {
    let mut out = Side::default();
    let mut deployment_replicas: Option<u64> = None;
    let mut hpa: Option<(u64, u64)> = None;
    let mut gpus_per_pod: Option<u64> = None;
    for object in objects {
        match object.get("kind").and_then(Value::as_str) {
            Some("Deployment") => {
                out.version = object
                    .pointer("/metadata/labels/app.kubernetes.io~1version")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or(out.version.take());
                deployment_replicas = object.pointer("/spec/replicas").and_then(Value::as_u64);
                let containers = object
                    .pointer("/spec/template/spec/containers")
                    .and_then(Value::as_array);
                let mut gpus = 0;
                for container in containers.into_iter().flatten() {
                    let name = container.get("name").and_then(Value::as_str).unwrap_or("");
                    if let Some(image) = container.get("image").and_then(Value::as_str) {
                        out.images.push((name.to_string(), image.to_string()));
                    }
                    gpus += container_gpus(container);
                }
                gpus_per_pod = Some(gpus);
            }
            Some("HorizontalPodAutoscaler") => {
                let min = object.pointer("/spec/minReplicas").and_then(Value::as_u64);
                let max = object.pointer("/spec/maxReplicas").and_then(Value::as_u64);
                hpa = max.map(|max| (min.unwrap_or(1), max));
            }
            _ => {}
        }
    }
    let min_scale = match hpa {
        Some((min, max)) => {
            out.replicas = Some(format!("{min}-{max}"));
            Some(min)
        }
        None => {
            let replicas = gpus_per_pod.map(|_| deployment_replicas.unwrap_or(1));
            out.replicas = replicas.map(|r| r.to_string());
            replicas
        }
    };
    // A CPU-only service has no GPU line at all rather than "0".
    out.gpus = gpus_per_pod
        .filter(|per_pod| *per_pod > 0)
        .zip(min_scale)
        .map(|(per_pod, scale)| per_pod * scale);
    out
}

/// GPUs a container asks for: the sum of its `nvidia.com/*` limits (whole GPUs, MIG slices
/// and shared slots each count one).
fn container_gpus(container: &Value) -> u64 {
    let limits = container
        .pointer("/resources/limits")
        .and_then(Value::as_object);
    limits
        .into_iter()
        .flatten()
        .filter(|(name, _)| name.starts_with("nvidia.com/"))
        .map(|(_, v)| match v {
            Value::String(s) => s.parse().unwrap_or(0),
            other => other.as_u64().unwrap_or(0),
        })
        .sum()
}

fn delta<T: PartialEq>(before: Option<T>, after: Option<T>) -> Option<Delta<T>> {
    (before != after).then_some(Delta { before, after })
}

/// Summarises a service from its live objects (projected or whole) and its desired ones.
pub fn summarize<'a>(
    live: impl Iterator<Item = &'a Value>,
    desired: impl Iterator<Item = &'a Value>,
) -> Summary {
    let (before, after) = (side(live), side(desired));
    let mut images = Vec::new();
    for (container, image) in &after.images {
        let old = before.images.iter().find(|(c, _)| c == container);
        if old.map(|(_, i)| i) != Some(image) {
            images.push(ImageChange {
                container: container.clone(),
                before: old.map(|(_, i)| i.clone()),
                after: Some(image.clone()),
            });
        }
    }
    for (container, image) in &before.images {
        if !after.images.iter().any(|(c, _)| c == container) {
            images.push(ImageChange {
                container: container.clone(),
                before: Some(image.clone()),
                after: None,
            });
        }
    }
    Summary {
        version: delta(before.version, after.version),
        images,
        replicas: delta(before.replicas, after.replicas),
        gpus: delta(before.gpus, after.gpus),
    }
}
