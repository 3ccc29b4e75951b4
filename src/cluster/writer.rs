//! The one writer to the cluster: server-side apply of one object (field manager
//! `modelship`, force), deletion of one object on the condition that it is still the one
//! planned (same UID), and creation of a missing namespace. Every request is retried
//! ([`super::retry`]). Nothing here decides what to write: that is the engine's plan.
//!
//! Two small writes serve rollouts: [`Writer::annotate`] sets or clears one annotation
//! with a JSON merge patch under a field manager of its own (the rollout command people
//! send; a merge patch never creates a missing object), and [`Writer::record_event`]
//! creates a core/v1 Event. [`Writer::get`] reads one object.
//!
//! Namespaces created here carry `app.kubernetes.io/created-by: modelship` but not the
//! managed-by label: they are never pruned, since deleting a namespace deletes everything
//! in it, ours or not.

use std::collections::BTreeSet;

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::kinds::Kinds;
use super::retry::{RetryPolicy, retry};
use super::{Error, Result};
use crate::meta::{FIELD_MANAGER, LABEL_CREATED_BY, MANAGED_BY_VALUE, ObjectKey};

/// Whether writes persist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Write for real.
    #[default]
    Persist,
    /// Send every request with `dryRun=All`: the server validates, nothing persists.
    DryRun,
}

/// Writes objects; shared by concurrent reconciles (kinds and known namespaces are held
/// behind locks).
pub struct Writer {
    client: Client,
    kinds: Mutex<Kinds>,
    retry: RetryPolicy,
    mode: WriteMode,
    /// Namespaces known to exist: one GET per namespace per writer at most.
    namespaces: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Writer {
    pub fn new(client: Client, retry: RetryPolicy, mode: WriteMode) -> Self {
        Writer {
            kinds: Mutex::new(Kinds::new(client.clone(), retry)),
            client,
            retry,
            mode,
            namespaces: Mutex::new(BTreeSet::new()),
        }
    }

    /// The write mode.
    pub fn mode(&self) -> WriteMode {
        self.mode
    }

    async fn api(&self, api_version: &str, key: &ObjectKey) -> Result<Api<DynamicObject>> {
        let resolved = self
            .kinds
            .lock()
            .await
            .resolve(api_version, &key.kind)
            .await?;
        let client = self.client.clone();
        Ok(if resolved.namespaced {
            Api::namespaced_with(client, &key.namespace, &resolved.resource)
        } else {
            Api::all_with(client, &resolved.resource)
        })
    }

    fn patch_params(&self) -> PatchParams {
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = self.mode == WriteMode::DryRun;
        params
    }

    /// Server-side applies one object; returns the object the server stored.
    pub async fn apply(&self, key: &ObjectKey, api_version: &str, body: &Value) -> Result<Value> {
        let api = self.api(api_version, key).await?;
        let params = self.patch_params();
        let patch = Patch::Apply(body);
        match retry(&self.retry, || api.patch(&key.name, &params, &patch)).await {
            // A DynamicObject is a map of JSON values: serializing it cannot fail.
            Ok(stored) => Ok(serde_json::to_value(&stored).unwrap_or(Value::Null)),
            Err(kube::Error::Api(status)) if status.code == 404 && !key.namespace.is_empty() => {
                Err(Error::MissingNamespace(key.namespace.clone()))
            }
            Err(source) => Err(Error::Apply {
                key: key.clone(),
                source,
            }),
        }
    }

    /// Deletes one object, on the condition that it still has `uid` (when given); an
    /// object already gone counts as deleted.
    pub async fn delete(
        &self,
        key: &ObjectKey,
        api_version: &str,
        uid: Option<&str>,
    ) -> Result<()> {
        let api = self.api(api_version, key).await?;
        let params = DeleteParams {
            dry_run: self.mode == WriteMode::DryRun,
            preconditions: uid.map(|uid| Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        match retry(&self.retry, || api.delete(&key.name, &params)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(Error::Delete {
                key: key.clone(),
                source,
            }),
        }
    }

    /// Replaces an existing object with `body` (a PUT at its current resourceVersion): how
    /// an adopted object becomes exactly the service's. Server-side apply alone would keep
    /// every field its previous owner set (a second port, a selector key); the API server
    /// keeps what it allocated (a Service's cluster IPs). A missing object is created by
    /// the apply that follows; returns whether one was replaced.
    pub async fn replace(&self, key: &ObjectKey, api_version: &str, body: &Value) -> Result<bool> {
        let api = self.api(api_version, key).await?;
        let params = PostParams {
            dry_run: self.mode == WriteMode::DryRun,
            field_manager: Some(FIELD_MANAGER.to_string()),
        };
        let failed = |source| Error::Apply {
            key: key.clone(),
            source,
        };
        // Read and written together: a conflict reads the object again.
        let replaced = retry(&self.retry, || async {
            let Some(live) = api.get_opt(&key.name).await? else {
                return Ok(false);
            };
            let mut object: DynamicObject =
                serde_json::from_value(body.clone()).map_err(kube::Error::SerdeError)?;
            object.metadata.resource_version = live.metadata.resource_version;
            api.replace(&key.name, &params, &object).await.map(|_| true)
        })
        .await;
        replaced.map_err(failed)
    }

    /// Reads one object; `None` when it does not exist.
    pub async fn get(&self, key: &ObjectKey, api_version: &str) -> Result<Option<Value>> {
        let api = self.api(api_version, key).await?;
        match retry(&self.retry, || api.get_opt(&key.name)).await {
            // A DynamicObject is a map of JSON values: serializing it cannot fail.
            Ok(found) => Ok(found.map(|o| serde_json::to_value(&o).unwrap_or(Value::Null))),
            Err(source) => Err(Error::Get {
                key: key.clone(),
                source,
            }),
        }
    }

    /// Sets (`Some`) or removes (`None`) one annotation of an existing object with a JSON
    /// merge patch under `manager`; a missing object is an error, never created.
    pub async fn annotate(
        &self,
        key: &ObjectKey,
        api_version: &str,
        manager: &str,
        annotation: &str,
        value: Option<&str>,
    ) -> Result<()> {
        self.patch_metadata(
            key,
            api_version,
            manager,
            Metadata::Annotations,
            annotation,
            value,
        )
        .await
    }

    /// Sets (`Some`) or removes (`None`) one label of an existing object, as
    /// [`Writer::annotate`] does an annotation.
    pub async fn label(
        &self,
        key: &ObjectKey,
        api_version: &str,
        manager: &str,
        label: &str,
        value: Option<&str>,
    ) -> Result<()> {
        self.patch_metadata(key, api_version, manager, Metadata::Labels, label, value)
            .await
    }

    /// Scales every Deployment of `namespace` matching `selector` to zero replicas (a
    /// JSON merge patch under `manager`); returns how many were scaled.
    pub async fn scale_to_zero(
        &self,
        namespace: &str,
        selector: &str,
        manager: &str,
    ) -> Result<usize> {
        use k8s_openapi::api::apps::v1::Deployment;
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let list_params = kube::api::ListParams::default().labels(selector);
        let listed = retry(&self.retry, || api.list(&list_params))
            .await
            .map_err(|source| Error::List {
                kind: "Deployment".to_string(),
                source,
            })?;
        let mut params = PatchParams {
            field_manager: Some(manager.to_string()),
            ..PatchParams::default()
        };
        params.dry_run = self.mode == WriteMode::DryRun;
        let zero: Patch<Value> = Patch::Merge(json!({"spec": {"replicas": 0}}));
        let mut scaled = 0;
        for deployment in listed {
            let name = deployment.metadata.name.unwrap_or_default();
            retry(&self.retry, || api.patch(&name, &params, &zero))
                .await
                .map_err(|source| Error::Apply {
                    key: ObjectKey::new("apps", "Deployment", namespace, &name),
                    source,
                })?;
            scaled += 1;
        }
        Ok(scaled)
    }

    async fn patch_metadata(
        &self,
        key: &ObjectKey,
        api_version: &str,
        manager: &str,
        field: Metadata,
        name: &str,
        value: Option<&str>,
    ) -> Result<()> {
        let api = self.api(api_version, key).await?;
        let mut params = PatchParams {
            field_manager: Some(manager.to_string()),
            ..PatchParams::default()
        };
        params.dry_run = self.mode == WriteMode::DryRun;
        let body = json!({"metadata": {field.as_str(): {name: value}}});
        let patch: Patch<Value> = Patch::Merge(body);
        match retry(&self.retry, || api.patch(&key.name, &params, &patch)).await {
            Ok(_) => Ok(()),
            Err(source) => Err(Error::Metadata {
                key: key.clone(),
                field: field.as_str(),
                source,
            }),
        }
    }

    /// Creates a core/v1 Event (`body` is the whole Event) in `namespace`.
    pub async fn record_event(&self, namespace: &str, body: &Value) -> Result<()> {
        let key = ObjectKey::new("", "Event", namespace, "");
        let api = self.api("v1", &key).await?;
        let error = |source| Error::Event {
            namespace: namespace.to_string(),
            source,
        };
        let event: DynamicObject =
            serde_json::from_value(body.clone()).map_err(|e| error(kube::Error::SerdeError(e)))?;
        let params = PostParams {
            dry_run: self.mode == WriteMode::DryRun,
            field_manager: Some(FIELD_MANAGER.to_string()),
        };
        match retry(&self.retry, || api.create(&params, &event)).await {
            Ok(_) => Ok(()),
            Err(source) => Err(error(source)),
        }
    }

    /// Creates `namespace` when it does not exist; `true` when it was created. Concurrent
    /// callers for one namespace wait for each other, so it is read and created once.
    pub async fn ensure_namespace(&self, namespace: &str) -> Result<bool> {
        let mut known = self.namespaces.lock().await;
        if known.contains(namespace) {
            return Ok(false);
        }
        let resource = self
            .kinds
            .lock()
            .await
            .resolve("v1", "Namespace")
            .await?
            .resource;
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let error = |source| Error::Namespace {
            namespace: namespace.to_string(),
            source,
        };
        let existing = retry(&self.retry, || api.get_opt(namespace))
            .await
            .map_err(error)?;
        let created = if existing.is_some() {
            false
        } else {
            // A plain create: it needs only the `create` verb, and another writer that got
            // there first (409) is as good.
            let body: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {LABEL_CREATED_BY: MANAGED_BY_VALUE}},
            }))
            .map_err(|source| Error::Namespace {
                namespace: namespace.to_string(),
                source: kube::Error::SerdeError(source),
            })?;
            let params = PostParams {
                dry_run: self.mode == WriteMode::DryRun,
                field_manager: Some(FIELD_MANAGER.to_string()),
            };
            match retry(&self.retry, || api.create(&params, &body)).await {
                Ok(_) => true,
                Err(kube::Error::Api(status)) if status.code == 409 => false,
                Err(source) => return Err(error(source)),
            }
        };
        if self.mode == WriteMode::Persist {
            known.insert(namespace.to_string());
        }
        Ok(created)
    }
}

/// The metadata map [`Writer::annotate`] and [`Writer::label`] patch.
#[derive(Debug, Clone, Copy)]
enum Metadata {
    Annotations,
    Labels,
}

impl Metadata {
    fn as_str(self) -> &'static str {
        match self {
            Metadata::Annotations => "annotations",
            Metadata::Labels => "labels",
        }
    }
}
