//! The object store: every object, the global resourceVersion and the event history.
//!
//! Objects are kept per resource (`group`, `plural`) and keyed by `(namespace, name)`
//! (namespace "" for cluster-scoped kinds), one copy whatever the served version. Every
//! write takes the next value of one global, monotonic resourceVersion, stamps it on the
//! object and appends a watch [`Event`] to a bounded history; watches replay from that
//! history and get `410 Gone` once their starting point has fallen out of it. The store
//! does no validation or bookkeeping beyond resourceVersion: that is `ops.rs`'s job.

use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Identifies a resource independently of version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceKey {
    /// API group ("" for core).
    pub group: String,
    /// Plural resource name.
    pub plural: String,
}

/// The kind of change a watch event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was deleted (the event carries its last state).
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`, `MODIFIED`, `DELETED`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change in the history.
#[derive(Debug, Clone)]
pub struct Event {
    /// resourceVersion of this change.
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// Which resource the object belongs to.
    pub resource: ResourceKey,
    /// The object after the change (before it, for deletions).
    pub object: Arc<Value>,
    /// For modifications, the object before the change (filtered watches need it to
    /// turn an object leaving or entering their selection into DELETED or ADDED).
    pub previous: Option<Arc<Value>>,
}

/// A watch asked for history that is no longer kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The requested resourceVersion is older than the oldest kept event.
    #[error("too old resource version: {requested} ({oldest})")]
    Expired {
        /// resourceVersion the watch started from.
        requested: u64,
        /// Oldest resourceVersion still replayable.
        oldest: u64,
    },
}

impl StoreError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            StoreError::Expired { .. } => "store_expired",
        }
    }
}

type Objects = BTreeMap<(String, String), Value>;

/// All objects plus the bounded event history.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    objects: BTreeMap<ResourceKey, Objects>,
    history: VecDeque<Event>,
    window: usize,
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

impl Store {
    /// An empty store keeping the last `window` events for watches.
    pub fn new(window: usize) -> Self {
        Self {
            rv: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            window: window.max(1),
        }
    }

    /// The latest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// One object.
    pub fn get(&self, res: &ResourceKey, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(res)?
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// Objects of a resource, in one namespace or all (`None`), ordered by namespace/name.
    pub fn list<'a>(
        &'a self,
        res: &ResourceKey,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .get(res)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, v)| v)
    }

    /// Writes an object (creating or replacing), stamping the next resourceVersion.
    pub fn put(&mut self, res: &ResourceKey, namespace: &str, name: &str, mut obj: Value) -> Value {
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        let key = (namespace.to_string(), name.to_string());
        let previous = self
            .objects
            .entry(res.clone())
            .or_default()
            .insert(key, obj.clone());
        let kind = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(kind, res, obj.clone(), previous);
        obj
    }

    /// Removes an object, stamping the deletion's resourceVersion on the returned copy.
    pub fn remove(&mut self, res: &ResourceKey, namespace: &str, name: &str) -> Option<Value> {
        let mut obj = self
            .objects
            .get_mut(res)?
            .remove(&(namespace.to_string(), name.to_string()))?;
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        self.record(EventType::Deleted, res, obj.clone(), None);
        Some(obj)
    }

    /// Removes every object in a namespace (all resources); returns how many.
    pub fn remove_namespace_contents(&mut self, namespace: &str) -> usize {
        let doomed: Vec<(ResourceKey, String)> = self
            .objects
            .iter()
            .flat_map(|(res, objs)| {
                objs.keys()
                    .filter(|(ns, _)| ns == namespace)
                    .map(|(_, name)| (res.clone(), name.clone()))
            })
            .collect();
        for (res, name) in &doomed {
            self.remove(res, namespace, name);
        }
        doomed.len()
    }

    /// Removes every object of a resource (when its CRD goes away); returns how many.
    pub fn remove_resource(&mut self, res: &ResourceKey) -> usize {
        let keys: Vec<(String, String)> = self
            .objects
            .get(res)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for (ns, name) in &keys {
            self.remove(res, ns, name);
        }
        keys.len()
    }

    fn record(&mut self, kind: EventType, res: &ResourceKey, obj: Value, previous: Option<Value>) {
        self.history.push_back(Event {
            rv: self.rv,
            kind,
            resource: res.clone(),
            object: Arc::new(obj),
            previous: previous.map(Arc::new),
        });
        while self.history.len() > self.window {
            self.history.pop_front();
        }
    }

    /// Events of `res` after resourceVersion `since`, oldest first.
    ///
    /// Fails with [`StoreError::Expired`] when events after `since` were already dropped.
    pub fn events_since(&self, res: &ResourceKey, since: u64) -> Result<Vec<Event>, StoreError> {
        let oldest_kept = self.history.front().map_or(self.rv + 1, |e| e.rv);
        if since + 1 < oldest_kept && since < self.rv {
            return Err(StoreError::Expired {
                requested: since,
                oldest: oldest_kept,
            });
        }
        Ok(self
            .history
            .iter()
            .filter(|e| e.rv > since && e.resource == *res)
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm() -> ResourceKey {
        ResourceKey {
            group: String::new(),
            plural: "configmaps".into(),
        }
    }

    fn obj(name: &str) -> Value {
        json!({ "metadata": { "name": name, "namespace": "default" } })
    }

    #[test]
    fn writes_bump_one_global_resource_version() {
        let mut s = Store::new(10);
        let a = s.put(&cm(), "default", "a", obj("a"));
        let b = s.put(&cm(), "default", "b", obj("b"));
        let rv = |v: &Value| v["metadata"]["resourceVersion"].as_str().map(String::from);
        assert_eq!(rv(&a), Some("2".into()));
        assert_eq!(rv(&b), Some("3".into()));
        let gone = s.remove(&cm(), "default", "a");
        assert_eq!(gone.as_ref().and_then(rv), Some("4".into()));
        assert!(s.get(&cm(), "default", "a").is_none());
    }

    #[test]
    fn history_replays_in_order_and_expires() {
        let mut s = Store::new(2);
        s.put(&cm(), "default", "a", obj("a")); // rv 2
        s.put(&cm(), "default", "a", obj("a")); // rv 3
        s.remove(&cm(), "default", "a"); // rv 4
        let kinds: Vec<EventType> = s
            .events_since(&cm(), 2)
            .map(|es| es.into_iter().map(|e| e.kind).collect())
            .unwrap_or_default();
        assert_eq!(kinds, vec![EventType::Modified, EventType::Deleted]);
        assert_eq!(
            s.events_since(&cm(), 1).err(),
            Some(StoreError::Expired {
                requested: 1,
                oldest: 3
            })
        );
        assert!(s.events_since(&cm(), 4).is_ok_and(|e| e.is_empty()));
    }

    #[test]
    fn namespace_contents_are_removed_together() {
        let mut s = Store::new(10);
        s.put(&cm(), "default", "a", obj("a"));
        s.put(&cm(), "other", "b", obj("b"));
        assert_eq!(s.remove_namespace_contents("default"), 1);
        assert_eq!(s.list(&cm(), None).count(), 1);
    }
}
