//! The JSON rendering. Its schema is stable; additions bump nothing, any change in the
//! meaning or shape of an existing field bumps [`SCHEMA_VERSION`].
//!
//! ```text
//! {
//!   "version": 1,
//!   "hasChanges": bool,
//!   "counts": {"create": n, "update": n, "delete": n, "unchanged": n, "blocked": n},
//!   "services": [{
//!     "namespace": str, "name": str,
//!     "status": "present" | "removed" | "blocked",
//!     "reason": "invalid-spec" | "compile" | "rollout" | "repository-invalid"
//!             | "policy-denied" | "policies-broken" | "mass-prune",          (blocked only)
//!     "summary": {"version"?: {"before", "after"}, "images"?: [{"container", "before", "after"}],
//!                 "replicas"?: {"before", "after"}, "gpus"?: {"before", "after"}},
//!     "objects": [{
//!       "apiVersion": str, "kind": str, "namespace": str, "name": str,
//!       "action": "create" | "update" | "delete" | "unchanged" | "blocked",
//!       "changes": [{"path": str, "kind": "add" | "remove" | "replace", "before"?, "after"?}],
//!       "patch": [RFC 6902 operations from projected live to desired],
//!       "diff": str (unified YAML diff)
//!     }],
//!     "violations": [{
//!       "policy": str, "binding": str | null,
//!       "action": "deny" | "warn" | "audit",
//!       "kind": str, "namespace": str | null, "name": str,   (the object or ModelService)
//!       "message": str, "reason": str,
//!       "source": {"file": str, "line": n (0 when unknown)} | null,   (the spec)
//!       "policyFile": str, "policyLine": n
//!     }]
//!   }],
//!   "violations": {"deny": n, "warn": n, "audit": n},
//!   "rollouts": [{                              (added by `modelship plan`: canary services
//!     "namespace": str, "name": str,             whose rollout the plan starts or moves)
//!     "steps": [n], "gates": [n], "stepIntervalSeconds": n, "loadTimeoutSeconds": n,
//!     "failureLimit": n, "inconclusiveLimit": n,
//!     "status": {as `modelship rollout status -o json`'s "rollout"},
//!     "footprint": {"gpusPerPod": n, "peakGpus": n, "peakHourlyCost": n | null,
//!                   "steps": [{"weight", "stablePods", "canaryPods", "gpus"}],
//!                   "promotion": {"weight", "stablePods", "canaryPods", "gpus"}}
//!   }]
//! }
//! ```
//!
//! Policy verdicts are additions to version 1: the per-service and top-level
//! `violations` and the block reason `policy-denied` (a service with a Deny violation,
//! whose would-be changes appear as `blocked` objects). Every violation is listed,
//! Audit included.
//!
//! `before`/`after` sides are `null` where the object does not exist. Secret values appear
//! only as `(redacted)` or `(redacted, changed)`.

use serde::Serialize;

use crate::plan::{Action, FieldChange, Plan, ServiceStatus, Summary};
use crate::policy::{Action as PolicyAction, Violation};

/// Version of the JSON schema.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    version: u32,
    has_changes: bool,
    counts: Counts,
    services: Vec<Service<'a>>,
    violations: ViolationCounts,
}

#[derive(Serialize)]
struct ViolationCounts {
    deny: usize,
    warn: usize,
    audit: usize,
}

#[derive(Serialize)]
struct Counts {
    create: usize,
    update: usize,
    delete: usize,
    unchanged: usize,
    blocked: usize,
}

#[derive(Serialize)]
struct Service<'a> {
    namespace: &'a str,
    name: &'a str,
    #[serde(flatten)]
    status: ServiceStatus,
    summary: &'a Summary,
    objects: Vec<Object<'a>>,
    violations: Vec<JsonViolation<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonViolation<'a> {
    policy: &'a str,
    binding: Option<&'a str>,
    action: &'static str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    message: &'a str,
    reason: &'a str,
    source: Option<Source<'a>>,
    policy_file: &'a str,
    policy_line: usize,
}

#[derive(Serialize)]
struct Source<'a> {
    file: &'a str,
    line: usize,
}

impl<'a> From<&'a Violation> for JsonViolation<'a> {
    fn from(v: &'a Violation) -> Self {
        JsonViolation {
            policy: &v.policy,
            binding: v.binding.as_deref(),
            action: action_name(v.action),
            kind: &v.kind,
            namespace: v.namespace.as_deref(),
            name: &v.name,
            message: &v.message,
            reason: &v.reason,
            source: v.source.as_ref().map(|s| Source {
                file: &s.file,
                line: s.line,
            }),
            policy_file: &v.policy_file,
            policy_line: v.policy_line,
        }
    }
}

fn action_name(action: PolicyAction) -> &'static str {
    match action {
        PolicyAction::Deny => "deny",
        PolicyAction::Warn => "warn",
        PolicyAction::Audit => "audit",
    }
}

fn count_violations(plan: &Plan, action: PolicyAction) -> usize {
    plan.violations().filter(|v| v.action == action).count()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Object<'a> {
    api_version: &'a str,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    action: Action,
    changes: &'a [FieldChange],
    patch: &'a json_patch::Patch,
    diff: &'a str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    ownership: Option<&'a crate::plan::Ownership>,
}

/// Renders a plan as pretty-printed JSON.
pub fn json(plan: &Plan) -> String {
    pretty(&document(plan))
}

/// Pretty-printed JSON of a document, with the final newline.
pub fn pretty(document: &serde_json::Value) -> String {
    // Serializing a JSON value cannot fail.
    serde_json::to_string_pretty(document).unwrap_or_default() + "\n"
}

/// The JSON document of a plan, for callers that add their own top-level fields
/// (`modelship plan` adds `rollouts`).
pub fn document(plan: &Plan) -> serde_json::Value {
    let document = Document {
        version: SCHEMA_VERSION,
        has_changes: plan.has_changes(),
        counts: Counts {
            create: plan.count(Action::Create),
            update: plan.count(Action::Update),
            delete: plan.count(Action::Delete),
            unchanged: plan.count(Action::Unchanged),
            blocked: plan.count(Action::Blocked),
        },
        services: plan
            .services
            .iter()
            .map(|s| Service {
                namespace: s.id.namespace(),
                name: s.id.name(),
                status: s.status,
                summary: &s.summary,
                objects: s
                    .objects
                    .iter()
                    .map(|o| Object {
                        api_version: &o.api_version,
                        kind: &o.key.kind,
                        namespace: &o.key.namespace,
                        name: &o.key.name,
                        action: o.action,
                        changes: &o.changes,
                        patch: &o.patch,
                        diff: &o.diff,
                        ownership: o.ownership.as_ref(),
                    })
                    .collect(),
                violations: s.violations.iter().map(JsonViolation::from).collect(),
            })
            .collect(),
        violations: ViolationCounts {
            deny: count_violations(plan, PolicyAction::Deny),
            warn: count_violations(plan, PolicyAction::Warn),
            audit: count_violations(plan, PolicyAction::Audit),
        },
    };
    // Plain structs of strings, numbers and JSON values: serializing them cannot fail.
    serde_json::to_value(&document).unwrap_or_default()
}
