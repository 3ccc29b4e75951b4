//! The plan: what applying the repository would change in the cluster, object by object.
//!
//! ```text
//! DesiredState (compiled services, invalid ones, repository verdict)
//!        x  LiveState (objects labelled managed-by=modelship)
//!        -> Plan { services: [ServicePlan { status, objects: [ObjectPlan], summary }] }
//! ```
//!
//! Policy violations are attached afterwards with [`enforce`], which blocks the services a
//! policy denies.
//!
//! Pure: no client, no clock. Each desired object is compared with its live counterpart
//! projected onto the fields modelship applies ([`project`]), so server defaults and fields
//! of other managers never show as changes. Secret values are redacted before anything is
//! compared, so no output of a plan can hold them. Renderers live in [`render`].

mod claim;
mod diff;
pub mod project;
mod prune;
pub mod render;
mod summary;
mod verdict;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Value, json};

pub use crate::meta::{ObjectKey, ServiceId, group_of, kind_order};
pub use crate::state::{DesiredService, DesiredState, LiveSet, LiveState, desired_state};
pub use claim::{Ownership, claim, conflict_message};
pub use diff::{
    ChangeKind, FieldChange, FieldPath, REDACTED, REDACTED_CHANGED, Segment, changes, to_yaml,
    unified_yaml,
};
pub use project::{FIELD_MANAGER, project, strip_server_fields};
pub use prune::{
    FOLDER_THRESHOLD, MassPrune, MassPruneReason, PruneMode, check_mass_prune, file_of_source,
};
pub use summary::{Delta, ImageChange, Summary};
pub use verdict::{ServiceViolations, block, enforce, enforce_service};

/// Errors of planning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A desired object has no `apiVersion`, `kind` or `metadata.name`: a compiler bug.
    #[error("object {index} of service {service} has no apiVersion, kind or name")]
    UnnamedObject { service: ServiceId, index: usize },
}

impl Error {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::UnnamedObject { .. } => "plan_unnamed_object",
        }
    }
}

/// Result of planning.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What happens to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The object does not exist and will be created.
    Create,
    /// The object exists and fields modelship owns will change.
    Update,
    /// The object is ours and no longer desired.
    Delete,
    /// The object is as desired: apply does not write it.
    Unchanged,
    /// The object must not be touched (its spec is invalid, a policy denies its service,
    /// or the repository has errors and it would be pruned).
    Blocked,
}

/// Why a service is left alone: the one cause of a blocked service, for the plan, the
/// engine's verdict, `/status` and metrics alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockReason {
    /// The service's spec failed to load or validate.
    InvalidSpec,
    /// The service's spec is valid but could not be compiled.
    Compile,
    /// The service's canary rollout could not be advanced (no compiled Deployment, a
    /// template that cannot be hashed): the stable template is kept as it is.
    Rollout,
    /// The service is gone from a repository that has errors: nothing is pruned then.
    RepositoryInvalid,
    /// A policy denies the service's spec or one of its objects: nothing of it is created,
    /// updated or deleted ([`enforce`]).
    PolicyDenied,
    /// A policy file of the repository has errors: no service can be checked, so none is
    /// written or pruned.
    PoliciesBroken,
    /// The service would be pruned, but the mass-prune guard tripped ([`check_mass_prune`]).
    MassPrune,
    /// An object the service would create exists and is not its own (another tool's,
    /// another instance's, another service's): modelship never adopts it silently
    /// ([`claim`]).
    Ownership,
}

impl BlockReason {
    /// The label of this cause in metrics (`modelship_errors_total{cause}`).
    pub fn metric_label(self) -> &'static str {
        match self {
            BlockReason::InvalidSpec => "invalid_spec",
            BlockReason::Compile => "compile",
            BlockReason::Rollout => "rollout",
            BlockReason::RepositoryInvalid => "repository_invalid",
            BlockReason::PolicyDenied => "policy_denied",
            BlockReason::PoliciesBroken => "policies_broken",
            BlockReason::MassPrune => "mass_prune",
            BlockReason::Ownership => "ownership",
        }
    }
}

/// The state of a service in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "reason")]
pub enum ServiceStatus {
    /// The service is in the repository.
    Present,
    /// The service is gone from a fully valid repository: its objects are pruned by
    /// `apply --prune`.
    Removed,
    /// The service's live objects are left untouched.
    Blocked(BlockReason),
}

/// The plan for one object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectPlan {
    pub key: ObjectKey,
    /// `apiVersion` the object is applied or deleted with.
    pub api_version: String,
    pub action: Action,
    /// UID of the live object, a precondition of its deletion.
    pub live_uid: Option<String>,
    /// Changed fields of an update (empty for other actions).
    pub changes: Vec<FieldChange>,
    /// RFC 6902 patch from the projected live object (or `{}`) to the desired one (or `{}`).
    pub patch: json_patch::Patch,
    /// Unified YAML diff, empty when nothing changes.
    pub diff: String,
    /// The object exists and is not this service's: a conflict, or adopted because a
    /// person annotated it ([`claim`]).
    pub ownership: Option<Ownership>,
}

/// The plan for one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    pub id: ServiceId,
    /// The repository file of the service: its spec's file, or for a service gone from the
    /// repository the file its live objects were compiled from (`modelship.dev/source`).
    pub file: Option<String>,
    pub status: ServiceStatus,
    /// Objects in apply order.
    pub objects: Vec<ObjectPlan>,
    pub summary: Summary,
    /// Policy violations of the spec and of its objects ([`enforce`]); empty until then.
    pub violations: Vec<crate::policy::Violation>,
}

impl ServicePlan {
    /// True when applying would write or delete something of this service.
    pub fn has_changes(&self) -> bool {
        self.objects
            .iter()
            .any(|o| matches!(o.action, Action::Create | Action::Update | Action::Delete))
    }

    /// How many objects take an action.
    pub fn count(&self, action: Action) -> usize {
        self.objects.iter().filter(|o| o.action == action).count()
    }

    /// The objects that exist and are not this service's, with who holds them.
    pub fn conflicts(&self) -> impl Iterator<Item = (&ObjectPlan, &crate::ownership::Occupant)> {
        self.objects.iter().filter_map(|o| match &o.ownership {
            Some(Ownership::Conflict(occupant)) => Some((o, occupant)),
            _ => None,
        })
    }
}

/// The plan of a whole repository against the cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Services sorted by id.
    pub services: Vec<ServicePlan>,
}

impl Plan {
    /// True when applying (with `--prune`) would write or delete anything.
    pub fn has_changes(&self) -> bool {
        self.services.iter().any(ServicePlan::has_changes)
    }

    /// How many objects take an action, over all services.
    pub fn count(&self, action: Action) -> usize {
        self.services.iter().map(|s| s.count(action)).sum()
    }

    /// Namespaces of the services in the plan.
    pub fn namespaces(&self) -> std::collections::BTreeSet<&str> {
        self.services.iter().map(|s| s.id.namespace()).collect()
    }
}

/// How much of a change a plan renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    /// Every changing object with its RFC 6902 patch and unified YAML diff: what people
    /// read (`plan`, `apply`, pull-request comments).
    #[default]
    Full,
    /// Actions, changed fields and summaries only, no patch and no diff: what a caller
    /// that acts without showing (the daemon) needs, at a fraction of the memory.
    Decisions,
}

/// Plans the desired state against the live state, with every patch and diff.
pub fn plan(desired: &DesiredState, live: &dyn LiveState) -> Result<Plan> {
    plan_with(desired, live, Detail::Full)
}

/// Plans the desired state against the live state, rendering changes as `detail` says.
pub fn plan_with(desired: &DesiredState, live: &dyn LiveState, detail: Detail) -> Result<Plan> {
    let mut services = Vec::new();
    for service in &desired.services {
        services.push(plan_present(service, live, detail)?);
    }
    for id in &desired.invalid {
        services.push(plan_left_alone(id, live, BlockReason::InvalidSpec, detail));
    }
    let known: std::collections::HashSet<&ServiceId> = desired
        .services
        .iter()
        .map(|s| &s.id)
        .chain(&desired.invalid)
        .collect();
    for id in live.services() {
        if known.contains(&id) {
            continue;
        }
        services.push(if desired.repository_valid {
            plan_removed(&id, live, detail)
        } else {
            plan_left_alone(&id, live, BlockReason::RepositoryInvalid, detail)
        });
    }
    services.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Plan { services })
}

/// The services gone from the repository: every service with live objects that `known`
/// does not name (the valid and invalid services of the repository), planned for removal
/// when the repository is fully valid and left alone otherwise. Sorted by id.
pub fn plan_gone(
    known: &dyn Fn(&ServiceId) -> bool,
    live: &dyn LiveState,
    repository_valid: bool,
    detail: Detail,
) -> Vec<ServicePlan> {
    let mut services: Vec<ServicePlan> = live
        .services()
        .into_iter()
        .filter(|id| !known(id))
        .map(|id| {
            if repository_valid {
                plan_removed(&id, live, detail)
            } else {
                plan_left_alone(&id, live, BlockReason::RepositoryInvalid, detail)
            }
        })
        .collect();
    services.sort_by(|a, b| a.id.cmp(&b.id));
    services
}

/// The plan of one service of the repository: its desired objects against the live ones.
pub fn plan_service(
    service: &DesiredService,
    live: &dyn LiveState,
    detail: Detail,
) -> Result<ServicePlan> {
    plan_present(service, live, detail)
}

/// The plan of a service whose live objects are left untouched, and why.
pub fn plan_blocked(
    id: &ServiceId,
    live: &dyn LiveState,
    reason: BlockReason,
    detail: Detail,
) -> ServicePlan {
    plan_left_alone(id, live, reason, detail)
}

fn plan_present(
    service: &DesiredService,
    live: &dyn LiveState,
    detail: Detail,
) -> Result<ServicePlan> {
    let mut objects = Vec::new();
    let mut keys = Vec::new();
    let mut projected = Vec::new();
    for (index, desired) in service.objects.iter().enumerate() {
        let key = ObjectKey::of(desired).ok_or_else(|| Error::UnnamedObject {
            service: service.id.clone(),
            index,
        })?;
        let live_object = live.get(&key);
        if let Some(occupant) = live_object.and_then(|o| claim::other_service(o, &service.id)) {
            objects.push(claim::conflict(key.clone(), desired, occupant, detail));
            keys.push(key);
            continue;
        }
        let (plan, before) = plan_object(key.clone(), desired, live_object, detail);
        projected.extend(before);
        objects.push(plan);
        keys.push(key);
    }
    for key in live.owned_by_service(&service.id) {
        if let Some(object) = live.get(key).filter(|_| !keys.contains(key)) {
            objects.push(plan_delete(key.clone(), object, Action::Delete, detail));
        }
    }
    objects.sort_by(|a, b| (a.key.order(), &a.key).cmp(&(b.key.order(), &b.key)));
    let summary = summary::summarize(projected.iter().map(AsRef::as_ref), service.objects.iter());
    let mut plan = ServicePlan {
        id: service.id.clone(),
        file: Some(service.file.clone()),
        status: ServiceStatus::Present,
        objects,
        summary,
        violations: Vec::new(),
    };
    if plan.conflicts().next().is_some() {
        block(&mut plan, BlockReason::Ownership);
    }
    Ok(plan)
}

/// Plans one desired object; returns the projected live object too (for the summary).
pub(crate) fn plan_object<'a>(
    key: ObjectKey,
    desired: &'a Value,
    live: Option<&Value>,
    detail: Detail,
) -> (ObjectPlan, Option<Cow<'a, Value>>) {
    let api_version = desired
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let secret = key.kind == "Secret";
    // Steady state: most objects are unchanged, which is decided without building the
    // projection. Secrets always take the full path (their values are redacted there).
    if let Some(l) = live
        .filter(|l| !secret && project::projects_to_desired(l, desired, &BOOKKEEPING_ANNOTATIONS))
    {
        let plan = ObjectPlan {
            live_uid: uid(l),
            key,
            api_version,
            action: Action::Unchanged,
            changes: Vec::new(),
            patch: json_patch::Patch::default(),
            diff: String::new(),
            ownership: None,
        };
        // The summary reads Deployments and HPAs only; for them live means desired here.
        let summarized = matches!(key_kind(desired), "Deployment" | "HorizontalPodAutoscaler");
        return (plan, summarized.then_some(Cow::Borrowed(desired)));
    }
    // The desired object is used as it is unless something must change in it.
    let mut after = if secret || project::has_server_fields(desired) {
        Cow::Owned(strip_server_fields(desired))
    } else {
        Cow::Borrowed(desired)
    };
    if secret {
        diff::fold_string_data(after.to_mut());
    }
    let mut before = live.map(|l| project(l, &after));
    if let Some(before) = before.as_mut() {
        ignore_bookkeeping(before, &after);
    }
    if secret {
        diff::redact_secret(before.as_mut(), Some(after.to_mut()));
    }
    let after = after.as_ref();
    let title = format!("{}/{}", key.kind, key.name);
    let (action, changes) = match &before {
        None => (Action::Create, Vec::new()),
        Some(before) if *before == *after => (Action::Unchanged, Vec::new()),
        Some(before) => {
            let changes = changes(before, after);
            let action = if changes.is_empty() {
                Action::Unchanged
            } else {
                Action::Update
            };
            (action, changes)
        }
    };
    // An unchanged object has no patch and no diff: skip rendering both (the bulk of a
    // steady-state plan).
    let (patch, diff) = if action == Action::Unchanged || detail == Detail::Decisions {
        (json_patch::Patch::default(), String::new())
    } else {
        let empty = json!({});
        (
            json_patch::diff(before.as_ref().unwrap_or(&empty), after),
            unified_yaml(before.as_ref(), Some(after), &title),
        )
    };
    let plan = ObjectPlan {
        live_uid: live.and_then(uid),
        key,
        api_version,
        action,
        changes,
        patch,
        diff,
        ownership: None,
    };
    (plan, before.map(Cow::Owned))
}

/// Bookkeeping annotations: the commit and file an object was compiled from, and the hash
/// of its spec. They change with every commit or spec edit while most objects of the
/// service do not: they are written along with real changes, but are never a change by
/// themselves (so a one-field edit plans one field, and an unchanged object keeps the
/// values of the last apply that changed it).
pub const BOOKKEEPING_ANNOTATIONS: [&str; 2] = ["modelship.dev/source", "modelship.dev/spec-hash"];

fn ignore_bookkeeping(before: &mut Value, after: &Value) {
    let path = "/metadata/annotations";
    let Some(desired) = after.pointer(path) else {
        return;
    };
    let Some(live) = before.pointer_mut(path).and_then(Value::as_object_mut) else {
        return;
    };
    for name in BOOKKEEPING_ANNOTATIONS {
        if let (Some(value), true) = (desired.get(name), live.contains_key(name)) {
            live.insert(name.to_string(), value.clone());
        }
    }
}

fn key_kind(object: &Value) -> &str {
    object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn uid(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// An object that is removed (or blocked): shown whole, server fields stripped.
fn plan_delete(key: ObjectKey, live: &Value, action: Action, detail: Detail) -> ObjectPlan {
    let mut before = strip_server_fields(live);
    if key.kind == "Secret" {
        diff::redact_secret(Some(&mut before), None);
    }
    let title = format!("{}/{}", key.kind, key.name);
    let (patch, diff) = if action == Action::Delete && detail == Detail::Full {
        (
            json_patch::diff(&before, &json!({})),
            unified_yaml(Some(&before), None, &title),
        )
    } else {
        (json_patch::Patch::default(), String::new())
    };
    ObjectPlan {
        api_version: live
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        live_uid: uid(live),
        key,
        action,
        changes: Vec::new(),
        patch,
        diff,
        ownership: None,
    }
}

fn live_objects(
    id: &ServiceId,
    live: &dyn LiveState,
    action: Action,
    detail: Detail,
) -> Vec<ObjectPlan> {
    let mut objects: Vec<ObjectPlan> = live
        .owned_by_service(id)
        .into_iter()
        .filter_map(|key| Some(plan_delete(key.clone(), live.get(key)?, action, detail)))
        .collect();
    objects.sort_by(|a, b| (a.key.order(), &a.key).cmp(&(b.key.order(), &b.key)));
    objects
}

/// The file the live objects of a service were compiled from.
fn live_file(id: &ServiceId, live: &dyn LiveState) -> Option<String> {
    live.owned_by_service(id)
        .into_iter()
        .filter_map(|key| live.get(key))
        .find_map(|object| {
            let source = object
                .pointer("/metadata/annotations")?
                .get(crate::meta::ANNOTATION_SOURCE)?
                .as_str()?;
            prune::file_of_source(source).map(str::to_string)
        })
}

fn plan_removed(id: &ServiceId, live: &dyn LiveState, detail: Detail) -> ServicePlan {
    let objects = live_objects(id, live, Action::Delete, detail);
    let stripped: Vec<Value> = live
        .owned_by_service(id)
        .into_iter()
        .filter_map(|key| live.get(key).map(strip_server_fields))
        .collect();
    ServicePlan {
        id: id.clone(),
        file: live_file(id, live),
        status: ServiceStatus::Removed,
        objects,
        summary: summary::summarize(stripped.iter(), std::iter::empty()),
        violations: Vec::new(),
    }
}

fn plan_left_alone(
    id: &ServiceId,
    live: &dyn LiveState,
    reason: BlockReason,
    detail: Detail,
) -> ServicePlan {
    ServicePlan {
        id: id.clone(),
        file: live_file(id, live),
        status: ServiceStatus::Blocked(reason),
        objects: live_objects(id, live, Action::Blocked, detail),
        summary: Summary::default(),
        violations: Vec::new(),
    }
}
