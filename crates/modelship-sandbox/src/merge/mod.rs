//! The object algebra of the sandbox API server: server-side apply with managedFields,
//! strategic merge patch, the schema of associative lists, and server-side defaulting.
//!
//! Everything here is pure (no I/O, no clock: the caller hands in the time). The sandbox's
//! HTTP verbs call into it in kube-apiserver's order:
//!
//! ```text
//!  PATCH application/apply-patch+yaml ─▶ server_side_apply ─▶ apply_defaults ─▶ (bookkeeping)
//!  PATCH application/strategic-merge-patch+json ─▶ strategic_merge ─┐
//!  PUT / POST / merge & JSON patch (done by the caller) ─────────────┴▶ apply_defaults
//!                                                        ─▶ record_update ─▶ (bookkeeping)
//!  PUT / PATCH on /status ─────────────────────────────────▶ record_status_update
//!  apply on /status ───────────────────────────────────────▶ server_side_apply_status
//! ```
//!
//! Defaulting comes before `record_update`, so an updater owns the fields defaulting added
//! to its write (as `kubectl create` does in kube), and after `server_side_apply`, so an
//! applier never owns defaulted fields. An apply that changes nothing returns the live
//! object unchanged (managedFields times included): the caller can compare and skip the
//! write, keeping `resourceVersion`.
//!
//! - [`schema`] knows which lists are associative (and their keys) per kind and path;
//! - [`fieldset`] is the `FieldsV1` set algebra;
//! - [`apply`] merges applied configurations and tracks ownership, like kube-apiserver's
//!   structured-merge-diff;
//! - [`strategic`] is strategic merge patch for built-in kinds;
//! - [`defaults`] is the documented subset of defaulting (Service `clusterIP` allocation is
//!   left to the caller).
//!
//! Known differences from kube-apiserver (a test double, not a re-implementation):
//! - no version conversion: an apply must use the live object's apiVersion;
//! - merged associative lists keep the live order and append new items (what
//!   structured-merge-diff's merge walker does); strategic merge patch ignores
//!   `$setElementOrder` the same way;
//! - an empty map below the top level of an applied configuration is owned as a leaf, so an
//!   applier switching `emptyDir: {}` to `configMap` drops the old source;
//! - maps and lists emptied by pruning are dropped (a typed server omits them);
//! - no cap on the number of `Update` managers (kube folds the oldest into
//!   `ancient-changes` beyond ten);
//! - unknown kinds (CRD objects) have atomic lists and no status subresource: their
//!   `status` is applied like any field.

pub mod apply;
pub mod defaults;
pub mod fieldset;
pub mod schema;
pub mod strategic;

mod compare;
mod managed;
mod tree;

#[cfg(test)]
mod robustness_tests;
#[cfg(test)]
mod test_support;

use std::fmt;

pub use apply::{record_status_update, record_update, server_side_apply, server_side_apply_status};
pub use defaults::apply_defaults;
pub use strategic::strategic_merge;

/// Options of one server-side apply request.
#[derive(Clone, Copy, Debug)]
pub struct ApplyOptions<'a> {
    /// The `fieldManager` of the request.
    pub manager: &'a str,
    /// `force=true`: take ownership of conflicting fields instead of failing.
    pub force: bool,
    /// The request time (RFC 3339), written into the manager's managedFields entry.
    pub now: &'a str,
}

/// One field another manager owns with a different value. `Display` gives the message of
/// its `StatusCause` in the 409 response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// The field, like `.spec.replicas` or `.spec.template.spec.containers[name="x"].image`.
    pub field: String,
    /// For a manager of operation `Update`: its apiVersion (and time, when recorded), which
    /// kube-apiserver prints in the conflict message. `None` for appliers.
    pub update: Option<UpdateManager>,
}

/// The apiVersion and time of an `Update` manager, as shown in conflict messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateManager {
    /// The apiVersion of the manager's entry.
    pub api_version: String,
    /// The time of the manager's entry, if any.
    pub time: Option<String>,
}

impl Conflict {
    /// The manager as kube-apiserver prints it: `"name"` for appliers, `"name" using
    /// apps/v1 at <time>` for updaters.
    fn manager_display(&self) -> String {
        match &self.update {
            None => format!("{:?}", self.manager),
            Some(UpdateManager {
                api_version,
                time: None,
            }) => format!("{:?} using {api_version}", self.manager),
            Some(UpdateManager {
                api_version,
                time: Some(time),
            }) => format!("{:?} using {api_version} at {time}", self.manager),
        }
    }
}

/// The errors of the object algebra.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    /// 409: apply conflicts with other managers' fields (message like kube-apiserver's).
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// 422/400: the patch or object is malformed (the message says where).
    #[error("{0}")]
    Invalid(String),
}

impl MergeError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            MergeError::Conflicts(_) => "merge_conflicts",
            MergeError::Invalid(_) => "merge_invalid",
        }
    }
}

/// kube-apiserver's conflict message (`getConflictMessage` in its fieldmanager).
fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager_display(),
            only.field
        );
    }
    let mut by_manager: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for conflict in conflicts {
        by_manager
            .entry(conflict.manager_display())
            .or_default()
            .push(&conflict.field);
    }
    let mut lines = Vec::new();
    for (manager, fields) in by_manager {
        lines.push(format!("conflicts with {manager}:"));
        lines.extend(fields.iter().map(|f| format!("- {f}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// The message of the conflict's `StatusCause` (type `FieldManagerConflict`, whose
/// `field` is [`Conflict::field`]), as kube-apiserver words it:
/// `conflict with "kubectl-edit" using apps/v1 at 2026-01-01T00:00:00Z`.
impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conflict with {}", self.manager_display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_cause_messages_name_the_manager_like_kube() {
        let cases = [
            (None, r#"conflict with "ci""#),
            (
                Some(UpdateManager {
                    api_version: "apps/v1".into(),
                    time: None,
                }),
                r#"conflict with "ci" using apps/v1"#,
            ),
            (
                Some(UpdateManager {
                    api_version: "apps/v1".into(),
                    time: Some("2026-01-01T00:00:00Z".into()),
                }),
                r#"conflict with "ci" using apps/v1 at 2026-01-01T00:00:00Z"#,
            ),
        ];
        for (update, want) in cases {
            let conflict = Conflict {
                manager: "ci".into(),
                field: ".spec.replicas".into(),
                update,
            };
            assert_eq!(conflict.to_string(), want);
        }
    }
}
