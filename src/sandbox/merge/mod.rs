//! The object algebra of the sandbox API server: server-side apply with managedFields,
//! strategic merge patch, the schema of associative lists, and server-side defaulting.
//!
//! Everything here is pure (no I/O, no clock: the caller hands in the time). The sandbox's
//! HTTP verbs call into it:
//!
//! ```text
//!  PATCH application/apply-patch+yaml ─▶ server_side_apply ─▶ (bookkeeping) ─▶ apply_defaults
//!  PATCH application/strategic-merge-patch+json ─▶ strategic_merge ─┐
//!  PUT / POST / merge & JSON patch (done by the caller) ─────────────┴▶ apply_defaults
//!                                                                       ─▶ record_update
//! ```
//!
//! - [`schema`] knows which lists are associative (and their keys) per kind and path;
//! - [`fieldset`] is the `FieldsV1` set algebra;
//! - [`apply`] merges applied configurations and tracks ownership, like kube-apiserver's
//!   structured-merge-diff;
//! - [`strategic`] is strategic merge patch for built-in kinds;
//! - [`defaults`] is the documented subset of defaulting.

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

use std::fmt;

pub use apply::{record_status_update, record_update, server_side_apply};
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

/// One field another manager owns with a different value.
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

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conflict with {}: {}",
            self.manager_display(),
            self.field
        )
    }
}
