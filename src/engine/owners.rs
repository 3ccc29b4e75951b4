//! Who holds the objects a step is about to create. The live view holds only this
//! instance's objects; before a service creates one, the step asks [`Owners`] whether an
//! object of that name exists anyway (another tool's, another instance's, another
//! service's), and the plan marks it ([`crate::plan::claim`]).
//!
//! ```text
//! step: plan ──objects to create──▶ Owners::find ──objects of those names──▶ plan::claim
//!   ClusterOwners: a GET per object, or one LIST per kind and namespace with several
//!   the daemon: its watch cache first (another service of this instance), then the cluster
//!   Nobody: no cluster (tests, renders): nothing exists beyond the live view
//! ```
//!
//! Steady state costs nothing: only objects the plan creates are looked up.

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::cluster::{self, Kinds, RetryPolicy};
use crate::meta::ObjectKey;

/// An object a step would create: its key and the `apiVersion` it is written with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub key: ObjectKey,
    pub api_version: String,
}

/// Finds the live objects of given names, whoever holds them.
pub trait Owners: Sync {
    /// The objects of `wanted` that exist, as the cluster holds them (any labels).
    fn find<'a>(
        &'a self,
        wanted: &'a [Wanted],
    ) -> BoxFuture<'a, Result<Vec<Value>, cluster::Error>>;
}

/// No cluster beyond the live view: nothing else exists.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nobody;

impl Owners for Nobody {
    fn find<'a>(&'a self, _: &'a [Wanted]) -> BoxFuture<'a, Result<Vec<Value>, cluster::Error>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// A fixed set of objects that exist (tests).
impl Owners for Vec<Value> {
    fn find<'a>(
        &'a self,
        wanted: &'a [Wanted],
    ) -> BoxFuture<'a, Result<Vec<Value>, cluster::Error>> {
        Box::pin(async move {
            Ok(self
                .iter()
                .filter(|o| ObjectKey::of(o).is_some_and(|key| wanted.iter().any(|w| w.key == key)))
                .cloned()
                .collect())
        })
    }
}

/// The cluster's objects, read through the API ([`cluster::find_named`]).
pub struct ClusterOwners {
    client: kube::Client,
    kinds: Mutex<Kinds>,
    retry: RetryPolicy,
}

impl ClusterOwners {
    pub fn new(client: kube::Client, retry: RetryPolicy) -> Self {
        ClusterOwners {
            kinds: Mutex::new(Kinds::new(client.clone(), retry)),
            client,
            retry,
        }
    }
}

impl Owners for ClusterOwners {
    fn find<'a>(
        &'a self,
        wanted: &'a [Wanted],
    ) -> BoxFuture<'a, Result<Vec<Value>, cluster::Error>> {
        Box::pin(async move {
            if wanted.is_empty() {
                return Ok(Vec::new());
            }
            let keys: Vec<(&str, &ObjectKey)> = wanted
                .iter()
                .map(|w| (w.api_version.as_str(), &w.key))
                .collect();
            let mut kinds = self.kinds.lock().await;
            cluster::find_named(&self.client, &mut kinds, &keys, &self.retry).await
        })
    }
}

/// The objects a service plan creates, for [`Owners::find`].
pub fn wanted(plan: &crate::plan::ServicePlan) -> Vec<Wanted> {
    plan.objects
        .iter()
        .filter(|o| o.action == crate::plan::Action::Create)
        .map(|o| Wanted {
            key: o.key.clone(),
            api_version: o.api_version.clone(),
        })
        .collect()
}
