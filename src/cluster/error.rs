//! Errors of the cluster edge.

use std::time::Duration;

use crate::meta::ObjectKey;

use super::health::DeploymentHealth;

/// Errors talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("cannot load the cluster configuration: {0}")]
    Config(String),
    /// The client could not be built from the configuration.
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// A kind modelship must write is not served by the cluster (its CRD is missing).
    #[error("{kind} ({api_version}) is not served by the cluster: {hint}")]
    KindNotServed {
        kind: String,
        api_version: String,
        hint: &'static str,
    },
    /// Discovery of a kind failed for another reason than the kind being absent.
    #[error("discovery of {kind} ({api_version}) failed: {source}")]
    Discovery {
        kind: String,
        api_version: String,
        #[source]
        source: kube::Error,
    },
    /// Listing the live objects of a kind in a namespace failed.
    #[error("listing {kind} failed: {source}")]
    List {
        kind: String,
        #[source]
        source: kube::Error,
    },
    /// Listing Namespaces for their labels (which policies see) failed.
    #[error("listing namespaces for their labels failed (policies need `list` on namespaces): {0}")]
    NamespaceLabels(#[source] kube::Error),
    /// Reading or creating a namespace failed.
    #[error("namespace {namespace}: {source}")]
    Namespace {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    /// The namespace of an object does not exist and was not to be created.
    #[error("namespace {0} does not exist: create it or pass --create-namespaces")]
    MissingNamespace(String),
    /// Server-side apply of an object failed.
    #[error("applying {key} failed: {source}")]
    Apply {
        key: ObjectKey,
        #[source]
        source: kube::Error,
    },
    /// Deleting an object failed.
    #[error("deleting {key} failed: {source}")]
    Delete {
        key: ObjectKey,
        #[source]
        source: kube::Error,
    },
    /// Reading one object failed.
    #[error("reading {key} failed: {source}")]
    Get {
        key: ObjectKey,
        #[source]
        source: kube::Error,
    },
    /// Writing or clearing an annotation (a rollout command) or a label (the leader's
    /// Pod) failed.
    #[error("patching the {field} of {key} failed: {source}")]
    Metadata {
        key: ObjectKey,
        /// `annotations` or `labels`.
        field: &'static str,
        #[source]
        source: kube::Error,
    },
    /// Creating an Event failed.
    #[error("recording an event in namespace {namespace} failed: {source}")]
    Event {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    /// Deployments did not become ready in time.
    #[error("deployments not ready after {}s: {}", .timeout.as_secs(), list(.deployments))]
    NotReady {
        timeout: Duration,
        deployments: Vec<DeploymentHealth>,
    },
    /// Reading Deployment status failed while waiting.
    #[error("reading deployments in namespace {namespace} failed: {source}")]
    Health {
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

fn list(deployments: &[DeploymentHealth]) -> String {
    let parts: Vec<String> = deployments.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

impl Error {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Config(_) => "cluster_config",
            Error::Client(_) => "cluster_client",
            Error::KindNotServed { .. } => "kind_not_served",
            Error::Discovery { .. } => "discovery",
            Error::List { .. } => "list",
            Error::NamespaceLabels(_) => "namespace_labels",
            Error::Namespace { .. } => "namespace",
            Error::MissingNamespace(_) => "missing_namespace",
            Error::Apply { .. } => "apply",
            Error::Delete { .. } => "delete",
            Error::Get { .. } => "get",
            Error::Metadata {
                field: "labels", ..
            } => "label",
            Error::Metadata { .. } => "annotate",
            Error::Event { .. } => "event",
            Error::NotReady { .. } => "not_ready",
            Error::Health { .. } => "health",
        }
    }
}

/// Result of cluster operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
