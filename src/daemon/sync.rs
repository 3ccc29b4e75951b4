//! The pure reconcile decisions: what one service needs written, which objects are its
//! orphans, which services may be pruned. No client, no clock.
//!
//! ```text
//! DesiredSet ──work_items──▶ [ServiceWork { key, spec_hash, objects }]
//! ServiceWork x Live ──diff_service──▶ ServiceDiff { apply, orphans }
//! repository verdict x Live ──prune_candidates──▶ services to delete | MassPrune
//! ```
//!
//! An object is in sync when the plan's projection of the live object onto the fields
//! modelship applies equals the desired object ([`diff_service`] runs `plan::plan` for one
//! service); fields the server or other controllers add are not ours and never count. The bookkeeping annotations (`modelship.dev/source`,
//! `modelship.dev/spec-hash`) are written with real changes but are never a change alone,
//! so a new commit that does not change a service writes nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::compile::{DesiredSet, Kind, ObjectKey};
use crate::plan;

/// The label every object modelship writes carries, with value [`MANAGED_BY_VALUE`].
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY`] on our objects.
pub const MANAGED_BY_VALUE: &str = "modelship";
/// The label naming the service an object was compiled from.
pub const SERVICE_LABEL: &str = "modelship.dev/service";

/// (namespace, service name).
pub type ServiceId = (String, String);

/// Read access to the live objects labelled managed-by=modelship.
pub trait Live {
    /// The live object with this key.
    fn get(&self, key: &ObjectKey) -> Option<Value>;
    /// Keys of the live objects labelled for this service.
    fn owned_by(&self, namespace: &str, service: &str) -> Vec<ObjectKey>;
    /// Every service with at least one live object.
    fn services(&self) -> BTreeSet<ServiceId>;
}

/// The key of a live or desired object, when it is of a kind modelship writes.
pub fn key_of(object: &Value) -> Option<ObjectKey> {
    let kind = Kind::from_api(
        object.get("apiVersion")?.as_str()?,
        object.get("kind")?.as_str()?,
    )?;
    Some(ObjectKey {
        namespace: object.pointer("/metadata/namespace")?.as_str()?.to_string(),
        kind,
        name: object.pointer("/metadata/name")?.as_str()?.to_string(),
    })
}

/// The service a live object belongs to, when it carries our labels.
pub fn service_of(object: &Value) -> Option<ServiceId> {
    let labels = object.pointer("/metadata/labels")?;
    if labels.get(MANAGED_BY)?.as_str()? != MANAGED_BY_VALUE {
        return None;
    }
    Some((
        object.pointer("/metadata/namespace")?.as_str()?.to_string(),
        labels.get(SERVICE_LABEL)?.as_str()?.to_string(),
    ))
}

/// One valid service to reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceWork {
    pub namespace: String,
    pub name: String,
    pub spec_hash: String,
    pub file: String,
    /// Objects in apply order, as compact JSON text (a parsed `Value` costs several times
    /// as much memory, and a thousand services are held between revisions).
    pub objects: Vec<(ObjectKey, Box<[u8]>)>,
}

impl ServiceWork {
    pub fn id(&self) -> ServiceId {
        (self.namespace.clone(), self.name.clone())
    }

    /// The desired objects, parsed, in apply order.
    pub fn parsed(&self) -> impl Iterator<Item = (&ObjectKey, Value)> {
        self.objects
            .iter()
            .filter_map(|(key, json)| Some((key, serde_json::from_slice(json).ok()?)))
    }

    /// The desired object with this key, parsed.
    pub fn object(&self, key: &ObjectKey) -> Option<Value> {
        let (_, json) = self.objects.iter().find(|(k, _)| k == key)?;
        serde_json::from_slice(json).ok()
    }
}

/// A service that cannot be reconciled at this revision: its live objects stay untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidService {
    pub namespace: String,
    pub name: String,
    pub error: String,
    /// The metric label of the cause (`invalid_spec`, `compile`, `policy_denied`).
    pub cause: &'static str,
}

/// The valid services of a compiled repository as work items; services whose objects
/// cannot be serialized join the invalid ones.
pub fn work_items(desired: &DesiredSet) -> (Vec<ServiceWork>, Vec<InvalidService>) {
    let mut work = Vec::new();
    let mut invalid: Vec<InvalidService> = desired
        .errors
        .iter()
        .map(|e| InvalidService {
            namespace: e.namespace.clone(),
            name: e.name.clone(),
            error: format!("{}: {}", e.file, e.error),
            cause: "compile",
        })
        .collect();
    for service in &desired.services {
        let objects: Result<Vec<_>, _> = service
            .objects
            .iter()
            .map(|o| {
                o.to_json().map(|json| {
                    // Serializing a Value cannot fail.
                    let bytes = serde_json::to_vec(&json).unwrap_or_default();
                    (o.key(), bytes.into_boxed_slice())
                })
            })
            .collect();
        match objects {
            Ok(objects) => work.push(ServiceWork {
                namespace: service.namespace.clone(),
                name: service.name.clone(),
                spec_hash: service.spec_hash.clone(),
                file: service.file.clone(),
                objects,
            }),
            Err(error) => invalid.push(InvalidService {
                namespace: service.namespace.clone(),
                name: service.name.clone(),
                error: format!("{}: {error}", service.file),
                cause: "compile",
            }),
        }
    }
    (work, invalid)
}

/// What one service needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceDiff {
    /// Desired objects missing or differing in the cluster, in apply order.
    pub apply: Vec<ObjectKey>,
    /// Live objects of the service that the repository no longer asks for.
    pub orphans: Vec<ObjectKey>,
}

impl ServiceDiff {
    pub fn is_empty(&self) -> bool {
        self.apply.is_empty() && self.orphans.is_empty()
    }
}

/// Compares one service with the live objects through the plan (`plan::plan` over a
/// [`plan::LiveSet`] of this service's live objects): Create and Update objects are
/// applied, Delete objects (no longer compiled) are orphans. A desired object the plan
/// cannot name is a compiler bug, reported as [`plan::Error`].
pub fn diff_service(work: &ServiceWork, live: &dyn Live) -> Result<ServiceDiff, plan::Error> {
    let owned = live.owned_by(&work.namespace, &work.name);
    let view: plan::LiveSet = owned.iter().filter_map(|k| live.get(k)).collect();
    let desired = plan::DesiredState {
        services: vec![plan::DesiredService {
            namespace: work.namespace.clone(),
            name: work.name.clone(),
            file: work.file.clone(),
            objects: work.parsed().map(|(_, object)| object).collect(),
        }],
        invalid: Vec::new(),
        // Only this service is in view: nothing else may ever be pruned from here.
        repository_valid: false,
    };
    let planned = plan::plan(&desired, &view)?;
    let same = |key: &ObjectKey, planned: &plan::ObjectKey| {
        key.kind.as_str() == planned.kind
            && key.name == planned.name
            && key.namespace == planned.namespace
    };
    let mut diff = ServiceDiff::default();
    let objects = planned
        .services
        .iter()
        .filter(|s| s.namespace == work.namespace && s.name == work.name)
        .flat_map(|s| &s.objects);
    for object in objects {
        match object.action {
            plan::Action::Create | plan::Action::Update => {
                if let Some((key, _)) = work.objects.iter().find(|(k, _)| same(k, &object.key)) {
                    diff.apply.push(key.clone());
                }
            }
            plan::Action::Delete => {
                if let Some(key) = owned.iter().find(|k| same(k, &object.key)) {
                    diff.orphans.push(key.clone());
                }
            }
            plan::Action::Unchanged | plan::Action::Blocked => {}
        }
    }
    // Apply in the service's order; delete in reverse.
    diff.apply
        .sort_by_key(|key| work.objects.iter().position(|(k, _)| k == key));
    diff.orphans.sort_by(|a, b| b.cmp(a));
    Ok(diff)
}

/// Too many services would be pruned at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to prune {would_prune} of {live} services in namespace {namespace} (more than half); allow with --allow-mass-prune"
)]
pub struct MassPrune {
    pub namespace: String,
    pub would_prune: usize,
    pub live: usize,
}

/// Services to prune: live services gone from a fully valid repository. Nothing is pruned
/// when the repository has any error, or when a namespace would lose more than half of
/// its services (unless `allow_mass`).
pub fn prune_candidates(
    present: &BTreeSet<ServiceId>,
    repository_valid: bool,
    allow_mass: bool,
    live: &dyn Live,
) -> Result<Vec<ServiceId>, MassPrune> {
    if !repository_valid {
        return Ok(Vec::new());
    }
    let live_services = live.services();
    let gone: Vec<ServiceId> = live_services
        .iter()
        .filter(|s| !present.contains(*s))
        .cloned()
        .collect();
    if !allow_mass {
        let mut per_namespace: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (namespace, _) in &live_services {
            per_namespace.entry(namespace).or_default().1 += 1;
        }
        for (namespace, _) in &gone {
            per_namespace.entry(namespace).or_default().0 += 1;
        }
        for (namespace, (would_prune, total)) in per_namespace {
            if would_prune > 1 && would_prune * 2 > total {
                return Err(MassPrune {
                    namespace: namespace.to_string(),
                    would_prune,
                    live: total,
                });
            }
        }
    }
    Ok(gone)
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;
