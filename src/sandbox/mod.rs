//! An embedded Kubernetes API server for tests, demos and `--sandbox`.
//!
//! **This is a test double, not a Kubernetes.** It speaks enough of the kube-apiserver
//! REST protocol over loopback HTTP that the real `kube` client and `kubectl` work
//! against it unchanged, so integration tests exercise modelship's real cluster code.
//! Production code never depends on it.
//!
//! ```text
//!  kube::Client / kubectl
//!          |  HTTP/1.1 JSON on 127.0.0.1:PORT
//!  server.rs   route by path -> count -> inject faults
//!          |
//!  ops.rs / patch.rs   verbs and bookkeeping (under one lock)   merge/: SSA, SMP, defaults
//!          |
//!  store.rs   objects + global resourceVersion + event history -> watch.rs streams
//!          ^
//!  controller.rs   simulated Deployment status
//! ```
//!
//! # What it models
//! - Discovery: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>` for
//!   namespaces, serviceaccounts, configmaps, secrets, services, events, deployments
//!   (with `/status` and `/scale`), horizontalpodautoscalers (autoscaling/v2),
//!   poddisruptionbudgets, networkpolicies, leases, events.k8s.io events,
//!   validatingadmissionpolicies(+bindings) and customresourcedefinitions; CRDs created at
//!   run time are served (and unserved when deleted). HTTPRoute, VirtualService and
//!   DestinationRule CRDs are preloaded unless disabled.
//! - Verbs: get, list (label and `metadata.name`/`metadata.namespace` field selectors),
//!   create (with generateName), update (resourceVersion preconditions), delete,
//!   watch (resume from a resourceVersion, bookmarks, `timeoutSeconds`, 410 once the
//!   history window is exceeded, `sendInitialEvents`), and patch: JSON patch, merge patch,
//!   strategic merge patch (built-in kinds only; 415 for custom resources, like kube) and
//!   server-side apply (`fieldManager`, `force`, managedFields, conflicts), `dryRun=All`.
//! - Built-in kinds must decode as their k8s-openapi types (400 otherwise).
//! - Bookkeeping: uid, creationTimestamp, generation, one global resourceVersion,
//!   no-op writes keep the resourceVersion, namespaces must exist and take their contents
//!   with them when deleted, Service cluster IPs from 10.96.0.0/12, `Status` error bodies.
//! - A simulated Deployment controller and fault injection (latency, 5xx/429 answers,
//!   forced 409s, dropped watches), deterministic from a seed.
//!
//! # What it does not model
//! Authentication and RBAC, admission webhooks and admission policies (they are stored,
//! not enforced), OpenAPI schemas and validation beyond names (`/openapi/v3` lists only PATCH
//! operations, enough for kubectl to choose server-side field validation; no
//! `/openapi/v2`),
//! pagination (`limit`/`continue` are ignored: every list is complete), protobuf and
//! Table output (JSON only; kubectl prints its default columns), aggregated discovery
//! (clients fall back to the legacy documents), list `resourceVersion` semantics (lists
//! are always served from the latest state), version conversion (one stored copy is
//! served in every version of a kind), finalizers and graceful deletion (deletes are
//! immediate), garbage collection by ownerReferences, pods, ReplicaSets, scheduling,
//! Endpoints, and every controller except the Deployment status simulation.

pub mod controller;
pub mod counters;
pub mod discovery;
pub mod faults;
mod handle;
pub mod merge;
pub mod openapi;
pub mod ops;
pub mod patch;
pub mod path;
pub mod registry;
pub mod rng;
pub mod selector;
pub mod server;
pub mod services;
pub mod status;
pub mod store;
pub mod typed;
pub mod watch;

pub use counters::{RequestCounts, Verb};
pub use faults::{FaultCode, FaultFilter, Faults};
pub use handle::{CRD_FIXTURES, Sandbox, SandboxBuilder, SandboxError, kubeconfig, serve};
