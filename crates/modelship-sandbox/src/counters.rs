//! Request counters per (verb, resource), so tests can assert how many API calls a
//! piece of code makes (e.g. "an unchanged repository causes zero writes").

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// The verb of a resource request, as kube-apiserver's audit log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    /// GET of one object.
    Get,
    /// GET of a collection.
    List,
    /// GET with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH other than server-side apply.
    Patch,
    /// PATCH with `application/apply-patch+yaml`.
    Apply,
    /// DELETE.
    Delete,
}

impl Verb {
    /// Whether the verb writes.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::Create | Self::Update | Self::Patch | Self::Apply | Self::Delete
        )
    }

    /// Lower-case name (`get`, `apply`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Watch => "watch",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Apply => "apply",
            Self::Delete => "delete",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of request counts. Resources are plural names, with `/status` or `/scale`
/// appended for subresources (`deployments/scale`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts(BTreeMap<(Verb, String), u64>);

impl RequestCounts {
    /// Requests with this verb on this resource.
    pub fn get(&self, verb: Verb, resource: &str) -> u64 {
        self.0
            .get(&(verb, resource.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Requests with this verb on any resource.
    pub fn verb_total(&self, verb: Verb) -> u64 {
        self.0
            .iter()
            .filter(|((v, _), _)| *v == verb)
            .map(|(_, n)| n)
            .sum()
    }

    /// All writes (create, update, patch, apply, delete) on any resource.
    pub fn total_writes(&self) -> u64 {
        self.0
            .iter()
            .filter(|((v, _), _)| v.is_write())
            .map(|(_, n)| n)
            .sum()
    }

    /// All counted requests.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Every non-zero count.
    pub fn iter(&self) -> impl Iterator<Item = (Verb, &str, u64)> {
        self.0.iter().map(|((v, r), n)| (*v, r.as_str(), *n))
    }
}

/// One write request, in the order the sandbox received them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub verb: Verb,
    /// Plural resource name (with a subresource appended, as counted).
    pub resource: String,
    /// Namespace, empty for cluster-scoped requests.
    pub namespace: String,
    /// Object name, empty for collection requests.
    pub name: String,
}

/// How many writes [`Counters`] keeps in order (the oldest are dropped beyond).
const WRITE_LOG: usize = 100_000;

/// Shared, thread-safe counters, and the ordered log of writes.
#[derive(Debug, Clone, Default)]
pub struct Counters(Arc<Mutex<RequestCounts>>, Arc<Mutex<Vec<Write>>>);

impl Counters {
    /// Counts one request.
    pub fn record(&self, verb: Verb, resource: &str) {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.0.entry((verb, resource.to_string())).or_insert(0) += 1;
    }

    /// Logs one write request, in order.
    pub fn record_write(&self, write: Write) {
        let mut log = self.1.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() >= WRITE_LOG {
            log.remove(0);
        }
        log.push(write);
    }

    /// The writes so far, oldest first.
    pub fn writes(&self) -> Vec<Write> {
        self.1
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The counts so far.
    pub fn snapshot(&self) -> RequestCounts {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sets every count back to zero and empties the write log.
    pub fn reset(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clear();
        self.1
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_totalled_across_resources() {
        let c = Counters::default();
        c.record(Verb::Apply, "deployments");
        c.record(Verb::Apply, "services");
        c.record(Verb::Get, "deployments");
        c.record(Verb::Delete, "configmaps");
        let s = c.snapshot();
        assert_eq!(s.total_writes(), 3);
        assert_eq!(s.get(Verb::Apply, "deployments"), 1);
        assert_eq!(s.verb_total(Verb::Apply), 2);
        c.reset();
        assert_eq!(c.snapshot().total(), 0);
    }
}
