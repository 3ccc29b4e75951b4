//! PATCH in its four flavours, and the `/status` and `/scale` subresources.
//!
//! The Content-Type picks the [`PatchKind`]: RFC 6902 JSON patch, RFC 7386 merge patch
//! (both with the `json-patch` crate), strategic merge patch and server-side apply (both
//! from `sandbox::merge`). The patched object then goes through the common write path
//! ([`Cluster::commit`]), so patches get the same bookkeeping as PUT.

use super::merge;
use super::ops::{
    Cluster, Result, WriteCtx, WriteMode, check_rv, meta_mut, replace_status, target,
};
use super::registry::ResourceType;
use super::status::ApiError;
use serde_json::{Value, json};

/// The patch formats, by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply)
    Apply,
}

/// Media types accepted for patches of custom resources (no strategic merge).
pub const CUSTOM_PATCH_TYPES: &str =
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

impl PatchKind {
    /// The kind for a Content-Type header value (parameters ignored).
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or_default().trim() {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Which part of the object a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The object itself.
    Main,
    /// `/status`
    Status,
    /// `/scale` (autoscaling/v1 Scale view of `spec.replicas`)
    Scale,
}

impl Part {
    /// The part a subresource segment names; `None` for unknown subresources.
    pub fn of(rt: &ResourceType, sub: Option<&str>) -> Option<Self> {
        match sub {
            None => Some(Self::Main),
            Some("status") if rt.status_subresource => Some(Self::Status),
            Some("scale") if rt.scale_subresource => Some(Self::Scale),
            Some(_) => None,
        }
    }
}

/// A PATCH request after parsing its query and headers.
#[derive(Debug, Clone, Copy)]
pub struct PatchRequest<'a> {
    /// Patch format.
    pub kind: PatchKind,
    /// Raw body.
    pub body: &'a [u8],
    /// `force=true` (apply only).
    pub force: bool,
    /// Which part is patched.
    pub part: Part,
}

fn parse_json(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))
}

/// Parses an apply body: YAML (which includes JSON).
pub fn parse_apply_body(body: &[u8]) -> Result<Value> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("error decoding YAML: body is not UTF-8".into()))?;
    let value: Value = serde_saphyr::from_str(text)
        .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "error decoding YAML: the object must be a mapping".into(),
        ));
    }
    Ok(value)
}

fn merge_error(rt: &ResourceType, name: &str, e: merge::MergeError) -> ApiError {
    let message = e.to_string();
    match e {
        merge::MergeError::Conflicts(conflicts) => ApiError::ApplyConflict {
            target: target(rt, name),
            message,
            causes: conflicts
                .iter()
                .map(|c| {
                    let text = c.to_string();
                    let who = text
                        .strip_suffix(&format!(": {}", c.field))
                        .unwrap_or(&text)
                        .to_string();
                    (c.field.clone(), who)
                })
                .collect(),
        },
        merge::MergeError::Invalid(_) => ApiError::UnprocessablePatch(message),
    }
}

/// Applies a non-apply patch document to `live`.
fn apply_patch(
    rt: &ResourceType,
    name: &str,
    live: &Value,
    kind: PatchKind,
    body: &[u8],
) -> Result<Value> {
    match kind {
        PatchKind::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
            let mut doc = live.clone();
            json_patch::patch(&mut doc, &patch.0).map_err(|e| {
                ApiError::UnprocessablePatch(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            Ok(doc)
        }
        PatchKind::Merge => {
            let patch = parse_json(body)?;
            let mut doc = live.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        PatchKind::Strategic if rt.custom => {
            Err(ApiError::UnsupportedMediaType(CUSTOM_PATCH_TYPES.into()))
        }
        PatchKind::Strategic => {
            merge::strategic_merge(live, &parse_json(body)?).map_err(|e| merge_error(rt, name, e))
        }
        PatchKind::Apply => Err(ApiError::BadRequest("apply is not a plain patch".into())),
    }
}

/// The autoscaling/v1 Scale view of an object with a `/scale` subresource.
pub fn scale_of(obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    let pick = |k: &str| meta.get(k).cloned().unwrap_or(Value::Null);
    let selector: Vec<String> = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": pick("name"), "namespace": pick("namespace"), "uid": pick("uid"),
            "resourceVersion": pick("resourceVersion"), "creationTimestamp": pick("creationTimestamp"),
        },
        "spec": { "replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1) },
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector.join(","),
        },
    })
}

/// `live` with `spec.replicas` taken from a Scale object.
fn with_scale(rt: &ResourceType, name: &str, live: &Value, scale: &Value) -> Result<Value> {
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            ApiError::invalid(
                "Scale.autoscaling".into(),
                name,
                "spec.replicas",
                "Invalid value: must be a non-negative integer".into(),
                target(rt, name),
            )
        })?;
    let mut new = live.clone();
    match new.get_mut("spec").and_then(Value::as_object_mut) {
        Some(spec) => {
            spec.insert("replicas".into(), json!(replicas));
        }
        None => {
            if let Some(obj) = new.as_object_mut() {
                obj.insert("spec".into(), json!({ "replicas": replicas }));
            }
        }
    }
    Ok(new)
}

impl Cluster {
    /// PUT on `/scale`.
    pub fn update_scale(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        scale: &Value,
        ctx: WriteCtx<'_>,
    ) -> Result<Value> {
        let live = self.get(rt, ns, name)?;
        check_rv(rt, name, scale, &live)?;
        let new = with_scale(rt, name, &live, scale)?;
        let ns = live
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(String::from);
        let stored = self.commit(
            rt,
            ns.as_deref().unwrap_or_default(),
            name,
            Some(live),
            new,
            ctx,
            WriteMode::Main { record: true },
        )?;
        Ok(scale_of(&stored))
    }

    /// PATCH of any kind on the object or a subresource. Returns the answer body and
    /// whether the object was created (apply to a missing object).
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        name: &str,
        req: PatchRequest<'_>,
        ctx: WriteCtx<'_>,
    ) -> Result<(Value, bool)> {
        let live = match self.get(rt, ns, name) {
            Ok(live) => live,
            Err(ApiError::NotFound(_))
                if req.kind == PatchKind::Apply && req.part == Part::Main =>
            {
                return self
                    .apply_create(rt, version, ns, name, req, ctx)
                    .map(|v| (v, true));
            }
            Err(e) => return Err(e),
        };
        let ns_owned = live
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let commit = |c: &mut Self, new: Value, mode| {
            c.commit(rt, &ns_owned, name, Some(live.clone()), new, ctx, mode)
        };
        match (req.part, req.kind) {
            (Part::Scale, kind) => {
                let scale = scale_of(&live);
                let patched = match kind {
                    PatchKind::Apply => {
                        let mut s = scale.clone();
                        json_patch::merge(&mut s, &parse_apply_body(req.body)?);
                        s
                    }
                    _ => apply_patch(
                        rt,
                        name,
                        &scale,
                        if kind == PatchKind::Strategic {
                            PatchKind::Merge
                        } else {
                            kind
                        },
                        req.body,
                    )?,
                };
                check_rv(rt, name, &patched, &live)?;
                let new = with_scale(rt, name, &live, &patched)?;
                commit(self, new, WriteMode::Main { record: true }).map(|v| (scale_of(&v), false))
            }
            (part, PatchKind::Apply) => {
                let manager = ctx.manager;
                let config = parse_apply_body(req.body)?;
                Cluster::check_identity(rt, version, &config, ns, Some(name))?;
                check_rv(rt, name, &config, &live)?;
                let opts = merge::ApplyOptions {
                    manager,
                    force: req.force,
                    now: ctx.now,
                };
                let merged = merge::server_side_apply(Some(&live), &config, &opts)
                    .map_err(|e| merge_error(rt, name, e))?;
                match part {
                    Part::Status => commit(self, replace_status(&live, &merged), WriteMode::Status),
                    _ => commit(self, merged, WriteMode::Main { record: false }),
                }
                .map(|v| (v, false))
            }
            (part, kind) => {
                let patched = apply_patch(rt, name, &live, kind, req.body)?;
                check_rv(rt, name, &patched, &live)?;
                Cluster::check_identity(rt, version, &patched, ns, Some(name))?;
                match part {
                    Part::Status => {
                        commit(self, replace_status(&live, &patched), WriteMode::Status)
                    }
                    _ => commit(self, patched, WriteMode::Main { record: true }),
                }
                .map(|v| (v, false))
            }
        }
    }

    fn apply_create(
        &mut self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        name: &str,
        req: PatchRequest<'_>,
        ctx: WriteCtx<'_>,
    ) -> Result<Value> {
        let config = parse_apply_body(req.body)?;
        Cluster::check_identity(rt, version, &config, ns, Some(name))?;
        let opts = merge::ApplyOptions {
            manager: ctx.manager,
            force: req.force,
            now: ctx.now,
        };
        let mut merged =
            merge::server_side_apply(None, &config, &opts).map_err(|e| merge_error(rt, name, e))?;
        meta_mut(&mut merged).insert("name".into(), json!(name));
        self.create_applied(rt, ns, merged, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_pick_the_patch_kind() {
        assert_eq!(
            PatchKind::from_content_type("application/apply-patch+yaml; charset=utf-8"),
            Some(PatchKind::Apply)
        );
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json"),
            Some(PatchKind::Merge)
        );
        assert_eq!(PatchKind::from_content_type("application/json"), None);
    }

    #[test]
    fn scale_view_reads_replicas_and_selector() {
        let d = json!({
            "metadata": { "name": "web", "namespace": "ns" },
            "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "web" } } },
            "status": { "replicas": 2 }
        });
        let s = scale_of(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web");
    }

    #[test]
    fn apply_body_accepts_yaml_and_json() {
        let y = parse_apply_body(b"kind: ConfigMap\ndata:\n  a: '1'\n").expect("yaml");
        assert_eq!(y["data"]["a"], "1");
        let j = parse_apply_body(br#"{"kind":"ConfigMap"}"#).expect("json");
        assert_eq!(j["kind"], "ConfigMap");
        assert!(parse_apply_body(b"- a\n- b\n").is_err());
    }
}
