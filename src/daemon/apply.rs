//! Writes: server-side apply of one object (field manager `modelship`, force), deletion of
//! an orphan, creation of a missing namespace. Nothing here decides what to write.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::cache::api_resource;
use crate::compile::ObjectKey;

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "modelship";

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Server-side apply of an object was refused or failed.
    #[error("applying {key}: {source}")]
    Apply {
        key: ObjectKey,
        #[source]
        source: kube::Error,
    },
    /// Deleting an orphan failed.
    #[error("deleting {key}: {source}")]
    Delete {
        key: ObjectKey,
        #[source]
        source: kube::Error,
    },
    /// A namespace could not be read or created.
    #[error("namespace {namespace}: {source}")]
    Namespace {
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

impl ApplyError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ApplyError::Apply { .. } => "apply",
            ApplyError::Delete { .. } => "delete",
            ApplyError::Namespace { .. } => "namespace",
        }
    }
}

/// The one writer of the daemon.
pub struct Writer {
    client: Client,
    create_namespaces: bool,
    known_namespaces: Mutex<BTreeSet<String>>,
}

impl Writer {
    pub fn new(client: Client, create_namespaces: bool) -> Self {
        Writer {
            client,
            create_namespaces,
            known_namespaces: Mutex::new(BTreeSet::new()),
        }
    }

    fn api(&self, key: &ObjectKey) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &key.namespace, &api_resource(key.kind))
    }

    /// Applies one object; returns the object as the server stored it.
    pub async fn apply(&self, key: &ObjectKey, object: &Value) -> Result<Value, ApplyError> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let stored = self
            .api(key)
            .patch(&key.name, &params, &Patch::Apply(object))
            .await
            .map_err(|source| ApplyError::Apply {
                key: key.clone(),
                source,
            })?;
        let mut stored = serde_json::to_value(&stored).unwrap_or(Value::Null);
        if stored.get("apiVersion").is_none() {
            stored["apiVersion"] = json!(key.kind.api_version());
            stored["kind"] = json!(key.kind.as_str());
        }
        Ok(stored)
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, key: &ObjectKey) -> Result<(), ApplyError> {
        match self
            .api(key)
            .delete(&key.name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(ApplyError::Delete {
                key: key.clone(),
                source,
            }),
        }
    }

    /// With `--create-namespaces`, creates `namespace` when it does not exist (checked once
    /// per process); returns whether it was created. Without the flag, does nothing.
    pub async fn ensure_namespace(&self, namespace: &str) -> Result<bool, ApplyError> {
        if !self.create_namespaces {
            return Ok(false);
        }
        let mut known = self.known_namespaces.lock().await;
        if known.contains(namespace) {
            return Ok(false);
        }
        let error = |source| ApplyError::Namespace {
            namespace: namespace.to_string(),
            source,
        };
        let api: Api<Namespace> = Api::all(self.client.clone());
        let created = match api.get_opt(namespace).await.map_err(error)? {
            Some(_) => false,
            None => {
                let body: Namespace = serde_json::from_value(json!({
                    "metadata": {
                        "name": namespace,
                        "labels": {"app.kubernetes.io/created-by": "modelship"}
                    }
                }))
                .unwrap_or_default();
                match api.create(&PostParams::default(), &body).await {
                    Ok(_) => true,
                    Err(kube::Error::Api(status)) if status.code == 409 => false,
                    Err(source) => return Err(error(source)),
                }
            }
        };
        known.insert(namespace.to_string());
        Ok(created)
    }
}
