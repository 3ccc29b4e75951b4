//! Labels, annotations and the spec-hash that every compiled object carries.
//!
//! ```text
//! ModelService ──object_meta──▶ ObjectMeta { labels: user + modelship, annotations: user + hash + source }
//!              ──pod_meta────▶ pod template labels (+ track) and annotations (user + scrape)
//!              ──selector────▶ instance + track: the labels that never change for a service
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use sha2::{Digest, Sha256};

use super::{Ctx, Track};
use crate::spec::{Metadata, ModelService, ModelServiceSpec};

pub use crate::meta::{
    ANNOTATION_SOURCE, ANNOTATION_SPEC_HASH, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY,
    LABEL_NAME, LABEL_OWNER, LABEL_SERVICE, LABEL_TRACK, LABEL_VERSION, MANAGED_BY_VALUE,
};
const COMPONENT: &str = "model-server";
const MAX_LABEL_VALUE: usize = 63;

/// Makes arbitrary text a valid label value: `@` becomes `_at_`, other characters outside
/// `[A-Za-z0-9._-]` become `_`, the result is cut to 63 characters and trimmed so it starts
/// and ends alphanumeric. `None` when nothing is left.
pub fn label_value(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '@' => out.push_str("_at_"),
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') => out.push(c),
            _ => out.push('_'),
        }
    }
    // Every character pushed is ASCII, so byte truncation cuts on a char boundary.
    out.truncate(MAX_LABEL_VALUE);
    let trimmed = out.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// sha256 (lowercase hex) of the compact JSON of the service with its namespace resolved.
/// Formatting of the YAML (key order, quotes, comments) never changes it.
pub fn spec_hash(svc: &ModelService, namespace: &str) -> String {
    /// The service as serialized, with only the metadata copied (to resolve the
    /// namespace) instead of the whole spec.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Normalized<'a> {
        api_version: &'a str,
        kind: &'a str,
        metadata: &'a Metadata,
        spec: &'a ModelServiceSpec,
    }
    let metadata = Metadata {
        namespace: Some(namespace.to_string()),
        ..svc.metadata.clone()
    };
    let normalized = Normalized {
        api_version: &svc.api_version,
        kind: &svc.kind,
        metadata: &metadata,
        spec: &svc.spec,
    };
    let mut hasher = Sha256::new();
    // Writing JSON into a hasher cannot fail: the types have string keys only and the
    // writer never errors. Should that ever change, the hash still covers the bytes
    // written so far and stays deterministic.
    let _ = serde_json::to_writer(HashWriter(&mut hasher), &normalized);
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        // Writing to a String never fails.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Adapts a hasher to `io::Write` so JSON streams into it without a buffer.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Labels of every object of the service: the user's, then modelship's (which win).
/// Computed once per service (see `Ctx::new`); objects clone them.
pub(crate) fn service_labels(
    svc: &ModelService,
    instance: &crate::ownership::Instance,
) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone();
    // The track belongs to Deployments and pods only; a user value would mislead selectors.
    labels.remove(LABEL_TRACK);
    // Previews are labelled by their transform only: a spec carrying the label would
    // hide its objects from the main reconcile.
    labels.remove(crate::meta::LABEL_PREVIEW);
    let spec = &svc.spec;
    let name = &svc.metadata.name;
    let mut put = |key: &str, value: Option<String>| match value {
        Some(v) => {
            labels.insert(key.to_string(), v);
        }
        None => {
            labels.remove(key);
        }
    };
    put(LABEL_NAME, label_value(&spec.model.name));
    put(LABEL_INSTANCE, Some(name.clone()));
    put(LABEL_VERSION, label_value(&spec.model.version));
    put(LABEL_COMPONENT, Some(COMPONENT.to_string()));
    put(LABEL_MANAGED_BY, Some(MANAGED_BY_VALUE.to_string()));
    put(
        crate::ownership::LABEL_MODELSHIP_INSTANCE,
        Some(instance.as_str().to_string()),
    );
    put(LABEL_SERVICE, Some(name.clone()));
    put(LABEL_OWNER, spec.owner.as_deref().and_then(label_value));
    labels
}

/// Annotations of every object: the user's, then spec-hash and source.
pub(crate) fn service_annotations(
    svc: &ModelService,
    spec_hash: &str,
    source: &str,
) -> BTreeMap<String, String> {
    let mut annotations = svc.metadata.annotations.clone();
    annotations.insert(ANNOTATION_SPEC_HASH.to_string(), spec_hash.to_string());
    annotations.insert(ANNOTATION_SOURCE.to_string(), source.to_string());
    annotations
}

/// The metadata of a top-level object named `name` in the service's namespace.
pub(crate) fn object_meta(ctx: &Ctx, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(ctx.namespace.to_string()),
        labels: Some(ctx.labels.clone()),
        annotations: Some(ctx.annotations.clone()),
        ..ObjectMeta::default()
    }
}

/// Like [`object_meta`], with the track label added (Deployments, per-track Services).
pub(crate) fn track_object_meta(ctx: &Ctx, name: String, track: Track) -> ObjectMeta {
    let mut meta = object_meta(ctx, name);
    if let Some(labels) = meta.labels.as_mut() {
        labels.insert(LABEL_TRACK.to_string(), track.as_str().to_string());
    }
    meta
}

/// Labels of the pods of a track: object labels plus `modelship.dev/track`, without the
/// instance label: pods are owned through their Deployment, and a label added to the pod
/// template would restart every model server (as it would when an existing installation
/// starts labelling its objects with their instance).
pub(crate) fn pod_labels(ctx: &Ctx, track: Track) -> BTreeMap<String, String> {
    let mut labels = ctx.labels.clone();
    labels.remove(crate::ownership::LABEL_MODELSHIP_INSTANCE);
    labels.insert(LABEL_TRACK.to_string(), track.as_str().to_string());
    labels
}

/// The labels that select every pod of the service, whatever the track.
pub(crate) fn instance_labels(ctx: &Ctx) -> BTreeMap<String, String> {
    BTreeMap::from([(LABEL_INSTANCE.to_string(), ctx.name.to_string())])
}

/// The labels that select the pods of one track (never the version: selectors of
/// Deployments are immutable).
pub(crate) fn track_labels(ctx: &Ctx, track: Track) -> BTreeMap<String, String> {
    let mut labels = instance_labels(ctx);
    labels.insert(LABEL_TRACK.to_string(), track.as_str().to_string());
    labels
}

/// A `matchLabels` selector.
pub(crate) fn selector(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels),
        match_expressions: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::testutil::{cpu_service, ctx_for, loaded};
    use crate::spec::RepositoryConfig;

    #[test]
    fn label_values_are_made_safe() {
        let cases = [
            ("risk-ml@example.com", Some("risk-ml_at_example.com")),
            ("1.4.2", Some("1.4.2")),
            ("1.0+build.7", Some("1.0_build.7")),
            ("-team-", Some("team")),
            ("Fraud Detector", Some("Fraud_Detector")),
            ("@", Some("at")),
            ("///", None),
            ("", None),
        ];
        for (input, expected) in cases {
            assert_eq!(label_value(input).as_deref(), expected, "{input:?}");
        }
    }

    #[test]
    fn long_label_values_are_cut_to_63_alphanumeric_ended() {
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        let value = label_value(&long).unwrap();
        assert!(value.len() <= 63);
        assert_eq!(value, "a".repeat(62));
    }

    #[test]
    fn object_labels_carry_spec_labels_and_user_labels_lose_clashes() {
        let mut svc = cpu_service("fraud");
        svc.metadata.labels.insert("team".into(), "risk".into());
        svc.metadata
            .labels
            .insert(LABEL_MANAGED_BY.into(), "someone-else".into());
        svc.metadata
            .labels
            .insert(LABEL_TRACK.into(), "canary".into());
        svc.spec.owner = Some("risk-ml@example.com".into());
        let loaded = loaded(svc);
        let config = RepositoryConfig::default();
        let ctx = ctx_for(&loaded, &config);
        let labels = &ctx.labels;
        let expected = [
            ("app.kubernetes.io/name", "fraud-model"),
            ("app.kubernetes.io/instance", "fraud"),
            ("app.kubernetes.io/version", "1.0.0"),
            ("app.kubernetes.io/component", "model-server"),
            ("app.kubernetes.io/managed-by", "modelship"),
            ("modelship.dev/instance", "modelship"),
            ("modelship.dev/service", "fraud"),
            ("modelship.dev/owner", "risk-ml_at_example.com"),
            ("team", "risk"),
        ];
        assert_eq!(labels.len(), expected.len(), "{labels:?}");
        for (k, v) in expected {
            assert_eq!(labels.get(k).map(String::as_str), Some(v), "{k}");
        }
    }

    #[test]
    fn spec_hash_covers_the_whole_service_with_namespace_resolved() {
        let mut svc = cpu_service("m");
        svc.metadata.labels.insert("team".into(), "a".into());
        svc.spec.owner = Some("o@example.com".into());
        let mut resolved = svc.clone();
        resolved.metadata.namespace = Some("ns".into());
        let json = serde_json::to_vec(&resolved).unwrap();
        let expected: String = Sha256::digest(&json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(spec_hash(&svc, "ns"), expected);
    }

    #[test]
    fn spec_hash_ignores_yaml_formatting_but_sees_changes() {
        let a = "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {name: m}\n\
                 spec:\n  model: {name: m, version: '1'}\n  runtime: {image: 'r/i:1', port: 8080}\n\
                 \x20 resources: {cpu: 2, memory: 1Gi}\n";
        let b = "# a comment\nkind: ModelService\napiVersion: \"modelship.dev/v1alpha1\"\n\
                 spec:\n  resources:\n    memory: \"1Gi\"\n    cpu: \"2\"\n  runtime:\n    port: 8080\n\
                 \x20   image: r/i:1\n  model:\n    version: \"1\"\n    name: m\nmetadata:\n  name: m\n";
        let c = a.replace("cpu: 2", "cpu: 3");
        let parse = |text: &str| -> ModelService { serde_saphyr::from_str(text).unwrap() };
        let (ha, hb, hc) = (
            spec_hash(&parse(a), "ns"),
            spec_hash(&parse(b), "ns"),
            spec_hash(&parse(&c), "ns"),
        );
        assert_eq!(ha, hb);
        assert_ne!(ha, hc);
        assert_ne!(ha, spec_hash(&parse(a), "other"));
        assert_eq!(ha.len(), 64);
        assert!(
            ha.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}
