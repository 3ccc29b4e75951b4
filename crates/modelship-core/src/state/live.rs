//! What the plan reads about the cluster: the live objects this modelship instance
//! manages ([`Instance::owns`]).
//!
//! The CLI fills a [`LiveSet`] from one cluster-wide LIST per kind; the daemon backs
//! [`LiveState`] with its watch cache. Either way the plan itself never makes a request.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::meta::{LABEL_SERVICE, ObjectKey, ServiceId};
use crate::ownership::Instance;

/// Read access to the live objects of one modelship instance (labelled
/// `app.kubernetes.io/managed-by=modelship` and `modelship.dev/instance`).
pub trait LiveState {
    /// The live object with this key, as the API server returned it.
    fn get(&self, key: &ObjectKey) -> Option<&Value>;
    /// Keys of the live objects labelled for this service, in key order.
    fn owned_by_service(&self, service: &ServiceId) -> Vec<&ObjectKey>;
    /// Every service that has at least one live object.
    fn services(&self) -> BTreeSet<ServiceId>;
}

/// An in-memory [`LiveState`]: a snapshot of live objects indexed by service.
#[derive(Debug, Clone, Default)]
pub struct LiveSet {
    instance: Instance,
    objects: BTreeMap<ObjectKey, Value>,
    by_service: BTreeMap<ServiceId, BTreeSet<ObjectKey>>,
}

impl LiveSet {
    /// An empty set of the default instance's objects.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set of `instance`'s objects.
    pub fn of(instance: Instance) -> Self {
        LiveSet {
            instance,
            ..Self::default()
        }
    }

    /// Adds a live object; objects without a key or without this instance's labels are
    /// ignored, so a careless caller can never make the plan delete something that is
    /// not ours. An
    /// object whose namespace and service label make no valid id (cluster-scoped, or a
    /// label modelship never writes) is held but belongs to no service.
    pub fn insert(&mut self, object: Value) {
        let Some(key) = ObjectKey::of(&object) else {
            return;
        };
        if !self.instance.owns(&object) {
            return;
        }
        let service = object
            .pointer("/metadata/labels")
            .and_then(|l| l.get(LABEL_SERVICE))
            .and_then(Value::as_str);
        if let Some(service) = service
            && let Ok(id) = ServiceId::new(key.namespace.as_str(), service)
        {
            self.by_service.entry(id).or_default().insert(key.clone());
        }
        self.objects.insert(key, object);
    }

    /// Number of objects held.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True when no object is held.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

impl FromIterator<Value> for LiveSet {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Self {
        let mut set = LiveSet::new();
        for object in iter {
            set.insert(object);
        }
        set
    }
}

impl LiveState for LiveSet {
    fn get(&self, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(key)
    }

    fn owned_by_service(&self, service: &ServiceId) -> Vec<&ObjectKey> {
        self.by_service
            .get(service)
            .map(|keys| keys.iter().collect())
            .unwrap_or_default()
    }

    fn services(&self) -> BTreeSet<ServiceId> {
        self.by_service.keys().cloned().collect()
    }
}
