//! The watch cache: one `kube::runtime::watcher` per managed kind the cluster serves
//! ([`served_kinds`], from [`crate::kinds::TABLE`]), cluster-wide (or, with
//! `--namespaces`, one per kind and namespace), selected by
//! `app.kubernetes.io/managed-by=modelship` without `modelship.dev/preview` and by the
//! instance ([`Instance::selector`]: previews are not the main reconcile's, other
//! instances' objects are not this one's), feeding one [`LiveMap`].
//!
//! ```text
//! watcher(kind) ──Init/InitApply/InitDone──▶ replace that kind's objects, mark kind ready
//!               ──Apply/Delete────────────▶ update the map, send the service to `touched`
//! ```
//!
//! After warm-up (every kind listed once) the reconcile loop reads live state from here, so
//! a steady state costs no LIST calls; each watch event on one of our objects names its
//! service, which the loop re-plans (drift detection).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, TypeMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{Notify, RwLock, mpsc};
use tokio::task::JoinHandle;

use super::live::{LiveMap, key_of};
use crate::cluster::{Kinds, Namespaces, RetryPolicy, api_resource};
use crate::compile::Kind;
use crate::meta::{ObjectKey, ServiceId};
use crate::ownership::Instance;

/// The kinds to watch: every managed kind of [`crate::kinds::TABLE`], the built-ins
/// always, a custom kind (Gateway API, Istio, Prometheus Operator) only when discovery
/// says the cluster serves it. A kind discovery cannot answer for is not watched either.
pub async fn served_kinds(client: &Client) -> Vec<Kind> {
    let mut resolver = Kinds::new(client.clone(), RetryPolicy::default());
    let mut kinds = Vec::new();
    for kind in Kind::ALL {
        match resolver.lookup(kind.api_version(), kind.as_str()).await {
            Ok(Some(_)) => kinds.push(kind),
            Ok(None) => tracing::info!(%kind, "kind not served by the cluster: not watched"),
            Err(error) => tracing::warn!(%kind, %error, "discovery failed: kind not watched"),
        }
    }
    kinds
}

/// The live objects of every watched kind.
#[derive(Clone)]
pub struct LiveCache {
    map: Arc<RwLock<LiveMap>>,
    selector: Arc<str>,
    kinds: usize,
    ready_kinds: Arc<AtomicUsize>,
    ready: Arc<Notify>,
}

impl std::fmt::Debug for LiveCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCache")
            .field("kinds", &self.kinds)
            .finish()
    }
}

impl LiveCache {
    /// Starts one watcher per kind (per kind and namespace with [`Namespaces::Only`]);
    /// `touched` receives the service of every changed object.
    pub fn start(
        client: &Client,
        kinds: &[Kind],
        instance: &Instance,
        namespaces: &Namespaces,
        touched: mpsc::UnboundedSender<ServiceId>,
    ) -> (LiveCache, Vec<JoinHandle<()>>) {
        let targets: Vec<Option<String>> = namespaces
            .targets()
            .into_iter()
            .map(|n| n.map(str::to_string))
            .collect();
        let cache = LiveCache {
            map: Arc::new(RwLock::new(LiveMap::of(instance.clone()))),
            selector: instance.selector().into(),
            kinds: kinds.len() * targets.len(),
            ready_kinds: Arc::new(AtomicUsize::new(0)),
            ready: Arc::new(Notify::new()),
        };
        let tasks = kinds
            .iter()
            .flat_map(|&kind| {
                targets
                    .iter()
                    .map(move |namespace| (kind, namespace.clone()))
            })
            .map(|(kind, namespace)| {
                let cache = cache.clone();
                let client = client.clone();
                let touched = touched.clone();
                tokio::spawn(async move { cache.watch(client, kind, namespace, touched).await })
            })
            .collect();
        (cache, tasks)
    }

    /// True once every kind has been listed.
    pub fn is_ready(&self) -> bool {
        self.ready_kinds.load(Ordering::Acquire) >= self.kinds
    }

    /// Waits until every kind has been listed, at most `timeout`; returns readiness.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_ready() {
            let notified = self.ready.notified();
            if self.is_ready() {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.is_ready();
            }
        }
        true
    }

    /// Records an object as a write returned it (ahead of its watch event).
    pub async fn record(&self, object: serde_json::Value) {
        self.map.write().await.upsert_if_newer(object);
    }

    /// Forgets a deleted object (ahead of its watch event).
    pub async fn forget(&self, key: &ObjectKey) {
        self.map.write().await.remove(key);
    }

    /// Read access to the live objects.
    pub async fn read(&self) -> tokio::sync::RwLockReadGuard<'_, LiveMap> {
        self.map.read().await
    }

    /// Watches `kind` cluster-wide (`namespace` `None`) or in one namespace.
    async fn watch(
        self,
        client: Client,
        kind: Kind,
        namespace: Option<String>,
        touched: mpsc::UnboundedSender<ServiceId>,
    ) {
        let resource = api_resource(kind.info());
        let api: Api<DynamicObject> = match &namespace {
            None => Api::all_with(client, &resource),
            Some(namespace) => Api::namespaced_with(client, namespace, &resource),
        };
        // Previews are the pull-request worker's: never cached, planned or pruned here.
        let config = watcher::Config::default().labels(&self.selector);
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut buffer = Vec::new();
        let mut counted = false;
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    tracing::debug!(%kind, %error, "watch error, retrying with backoff");
                    continue;
                }
            };
            match event {
                Event::Init => buffer.clear(),
                Event::InitApply(object) => buffer.push(to_value(object, &resource)),
                Event::InitDone => {
                    let mut map = self.map.write().await;
                    let before = map.services();
                    map.clear_kind_in(kind, namespace.as_deref());
                    for object in buffer.drain(..) {
                        map.upsert(object);
                    }
                    let after = map.services();
                    drop(map);
                    for service in before.union(&after) {
                        let _ = touched.send(service.clone());
                    }
                    if !counted {
                        counted = true;
                        self.ready_kinds.fetch_add(1, Ordering::AcqRel);
                        self.ready.notify_waiters();
                    }
                }
                Event::Apply(object) => {
                    let object = to_value(object, &resource);
                    let mut map = self.map.write().await;
                    let old = key_of(&object).and_then(|k| map.get_service(&k));
                    let new = map.upsert_if_newer(object);
                    drop(map);
                    for service in old.into_iter().chain(new) {
                        let _ = touched.send(service);
                    }
                }
                Event::Delete(object) => {
                    let object = to_value(object, &resource);
                    if let Some(key) = key_of(&object)
                        && let Some(service) = self.map.write().await.remove(&key)
                    {
                        let _ = touched.send(service);
                    }
                }
            }
        }
    }
}

fn to_value(mut object: DynamicObject, resource: &ApiResource) -> serde_json::Value {
    object.types.get_or_insert_with(|| TypeMeta {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
    });
    // A DynamicObject is metadata plus a JSON map: serializing it cannot fail.
    serde_json::to_value(&object).unwrap_or(serde_json::Value::Null)
}
