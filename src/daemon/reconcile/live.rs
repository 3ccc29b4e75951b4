//! An in-memory index of live objects by key and by service: what the watch cache holds.
//! The engine plans over a [`LiveSet`] view of it ([`LiveMap::view`]): of one service when
//! a watch event touched it, of everything once per revision.
//!
//! Objects are held as compact JSON bytes (without other managers' `managedFields`) and
//! parsed when a view is taken: a parsed `serde_json::Value` costs several times its text,
//! and the cache of a thousand services is mostly read one service at a time.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::compile::Kind;
use crate::meta::{FIELD_MANAGER, LABEL_PREVIEW, LABEL_SERVICE, ObjectKey, ServiceId};
use crate::ownership::Instance;
use crate::state::LiveSet;

/// The key of a live object, when it is of a kind modelship writes.
pub fn key_of(object: &Value) -> Option<ObjectKey> {
    let key = ObjectKey::of(object)?;
    let api_version = object.get("apiVersion")?.as_str()?;
    Kind::from_api(api_version, &key.kind).map(|_| key)
}

/// The service a live object belongs to, when it carries `instance`'s labels.
pub fn service_of(object: &Value, instance: &Instance) -> Option<ServiceId> {
    let labels = object.pointer("/metadata/labels")?;
    if !instance.owns(object) || labels.get(LABEL_PREVIEW).is_some() {
        return None;
    }
    // A namespace and label that make no valid id name no service modelship wrote.
    ServiceId::new(
        object.pointer("/metadata/namespace")?.as_str()?,
        labels.get(LABEL_SERVICE)?.as_str()?,
    )
    .ok()
}

/// One held object.
#[derive(Debug, Clone)]
struct Held {
    service: ServiceId,
    resource_version: Option<u64>,
    json: Box<[u8]>,
}

/// Live objects of one instance (labelled managed-by=modelship and its instance),
/// indexed by service.
#[derive(Debug, Clone, Default)]
pub struct LiveMap {
    instance: Instance,
    objects: BTreeMap<ObjectKey, Held>,
    by_service: BTreeMap<ServiceId, BTreeSet<ObjectKey>>,
}

impl LiveMap {
    /// An empty map of the default instance's objects.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map of `instance`'s objects.
    pub fn of(instance: Instance) -> Self {
        LiveMap {
            instance,
            ..Self::default()
        }
    }

    /// The object held under `key`, whichever service it belongs to.
    pub fn object(&self, key: &ObjectKey) -> Option<Value> {
        serde_json::from_slice(&self.objects.get(key)?.json).ok()
    }

    /// Adds or replaces an object; returns its service. Objects of other kinds or without
    /// our labels are ignored, so nothing foreign can ever be pruned.
    pub fn upsert(&mut self, mut object: Value) -> Option<ServiceId> {
        let key = key_of(&object)?;
        slim(&mut object);
        let Some(service) = service_of(&object, &self.instance) else {
            // It lost our labels: it is no longer ours.
            self.remove(&key);
            return None;
        };
        self.remove(&key);
        self.by_service
            .entry(service.clone())
            .or_default()
            .insert(key.clone());
        // Serializing a Value cannot fail.
        let json = serde_json::to_vec(&object)
            .unwrap_or_default()
            .into_boxed_slice();
        let held = Held {
            service: service.clone(),
            resource_version: resource_version(&object),
            json,
        };
        self.objects.insert(key, held);
        Some(service)
    }

    /// Like [`LiveMap::upsert`], unless the held copy has a higher resourceVersion (an
    /// event older than a write already recorded). Non-numeric versions always replace.
    pub fn upsert_if_newer(&mut self, object: Value) -> Option<ServiceId> {
        if let Some(key) = key_of(&object)
            && let (Some(held), Some(new)) = (
                self.objects.get(&key).and_then(|h| h.resource_version),
                resource_version(&object),
            )
            && held > new
        {
            return self.get_service(&key);
        }
        self.upsert(object)
    }

    /// Removes an object; returns the service it belonged to.
    pub fn remove(&mut self, key: &ObjectKey) -> Option<ServiceId> {
        let service = self.objects.remove(key)?.service;
        if let Some(keys) = self.by_service.get_mut(&service) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_service.remove(&service);
            }
        }
        Some(service)
    }

    /// Removes every object of `kind` (before a relist replaces them).
    pub fn clear_kind(&mut self, kind: Kind) {
        self.clear_kind_in(kind, None);
    }

    /// Removes every object of `kind` in `namespace` (every namespace: `None`), before the
    /// relist of that namespace's watch replaces them.
    pub fn clear_kind_in(&mut self, kind: Kind, namespace: Option<&str>) {
        let group = crate::meta::group_of(kind.api_version());
        let keys: Vec<ObjectKey> = self
            .objects
            .keys()
            .filter(|k| k.kind == kind.as_str() && k.group == group)
            .filter(|k| namespace.is_none_or(|n| k.namespace == n))
            .cloned()
            .collect();
        for key in keys {
            self.remove(&key);
        }
    }

    /// The service of the object held under `key`.
    pub fn get_service(&self, key: &ObjectKey) -> Option<ServiceId> {
        self.objects.get(key).map(|h| h.service.clone())
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// Drops what the decisions never read and what costs the most memory: the
/// `managedFields` entries of other managers (modelship's own entry tells the plan which
/// fields it applied before) and kubectl's last-applied annotation.
fn slim(object: &mut Value) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(entries) = metadata
            .get_mut("managedFields")
            .and_then(Value::as_array_mut)
        {
            entries.retain(|entry| {
                entry.get("manager").and_then(Value::as_str) == Some(FIELD_MANAGER)
                    && entry.get("operation").and_then(Value::as_str) == Some("Apply")
            });
        }
        if let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
}

fn resource_version(object: &Value) -> Option<u64> {
    object
        .pointer("/metadata/resourceVersion")?
        .as_str()?
        .parse()
        .ok()
}

impl LiveMap {
    /// Every service with at least one live object.
    pub fn services(&self) -> BTreeSet<ServiceId> {
        self.by_service.keys().cloned().collect()
    }

    /// A parsed view for the engine: the objects of `only`'s services, or of every service.
    pub fn view(&self, only: Option<&BTreeSet<ServiceId>>) -> LiveSet {
        let keys: Vec<&ObjectKey> = match only {
            None => self.objects.keys().collect(),
            Some(services) => services
                .iter()
                .filter_map(|id| self.by_service.get(id))
                .flatten()
                .collect(),
        };
        keys.into_iter()
            .filter_map(|key| serde_json::from_slice(&self.objects.get(key)?.json).ok())
            .collect()
    }
}
