//! An embedded Kubernetes API server for tests, demos and `--sandbox`.
//!
//! **This is a test double, not a Kubernetes.** It speaks enough of the kube-apiserver
//! REST protocol over loopback HTTP that the real `kube` client and `kubectl` work
//! against it unchanged, so integration tests exercise modelship's real cluster code.
//! Production code never depends on it.
//!
//! ```text
//!  kube::Client / kubectl
//!          |  HTTP/1.1 JSON (protobuf bodies for a few kinds) on 127.0.0.1:PORT
//!  server.rs   route by path -> count -> inject faults   protobuf.rs: body -> JSON
//!          |                                             table.rs: answer -> Table
//!          |
//!  ops.rs / patch.rs   verbs and bookkeeping (under one lock)   merge/: SSA, SMP, defaults
//!          |
//!  store.rs   objects + global resourceVersion + event history -> watch.rs streams
//!          ^
//!  controller.rs   simulated Deployment status
//! ```
//!
//! # Usage
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use modelship_sandbox::{Sandbox, Verb};
//! let sandbox = Sandbox::builder().controller_delay(std::time::Duration::from_millis(10)).start().await?;
//! let client = sandbox.client(); // or point kubectl at sandbox.kubeconfig_path()
//! // ... exercise code against `client` ...
//! assert_eq!(sandbox.requests().get(Verb::Apply, "deployments"), 0);
//! sandbox.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # What it models
//! - Discovery, legacy and aggregated (v2): `/version`, `/api`, `/apis`, `/api/v1`,
//!   `/apis/<group>/<version>` for namespaces, serviceaccounts, configmaps, secrets,
//!   services, pods (stored only), events, deployments (with `/status` and `/scale`),
//!   horizontalpodautoscalers (autoscaling/v2), poddisruptionbudgets, networkpolicies,
//!   leases, events.k8s.io events, validatingadmissionpolicies (and bindings) and
//!   customresourcedefinitions. CRDs created at run time are served, and unserved when
//!   deleted; HTTPRoute, VirtualService, DestinationRule and PodMonitor CRDs are preloaded unless
//!   disabled. `/openapi/v3` lists PATCH operations only, enough for kubectl to choose
//!   server-side field validation.
//! - Verbs: get, list (label selectors, `metadata.name`/`metadata.namespace` field
//!   selectors), create (with generateName), update (resourceVersion preconditions),
//!   delete and deletecollection, watch (resume from a resourceVersion, bookmarks,
//!   `timeoutSeconds`, `sendInitialEvents`, 410 once the history window is exceeded,
//!   objects entering or leaving a selection), and patch: JSON patch, merge patch,
//!   strategic merge patch (built-in kinds only; 415 for custom resources, like kube)
//!   and server-side apply (`fieldManager`, `force`, managedFields, conflicts).
//!   `dryRun=All` on every write. Get, list and watch also answer in the
//!   `PartialObjectMetadata` view, and as `meta.k8s.io/v1` Tables (`table.rs`: kubectl's
//!   columns for deployments, services, namespaces, configmaps, secrets,
//!   serviceaccounts and CRDs, NAME and AGE otherwise), when asked; watch events too.
//! - Request bodies in JSON, and in protobuf for Namespace, ConfigMap, Secret and
//!   ServiceAccount (`protobuf.rs`), which is what `kubectl create namespace|configmap|
//!   secret generic|serviceaccount` send. Answers are always JSON.
//! - Validation: built-in kinds must decode as their k8s-openapi types, names must be
//!   DNS names; a body whose kind, apiVersion, name or namespace disagrees with the URL is
//!   a 400 BadRequest, as kube-apiserver answers.
//! - Bookkeeping: uid, creationTimestamp, generation (for the kinds that have one,
//!   `ResourceType::has_generation`), one global resourceVersion,
//!   no-op writes keep the resourceVersion, namespaces must exist and take their contents
//!   with them when deleted, Service cluster IPs from 10.96.0.0/12, `Status` error bodies,
//!   server-side defaulting (`merge::defaults`).
//! - A simulated Deployment controller and fault injection (latency, 5xx/429 answers,
//!   forced 409s, dropped watches), deterministic from a seed.
//!
//! # What it does not model
//! Authentication and RBAC; admission webhooks and admission policies (stored, not
//! enforced); OpenAPI schemas, `/openapi/v2` and schema validation of custom resources;
//! dropping unknown fields (they are kept); pagination (`limit`/`continue` are ignored:
//! every list is complete); protobuf bodies of other kinds (a 415 naming the kind:
//! `kubectl create deployment` fails, `kubectl apply -f` works), server-owned ObjectMeta
//! fields in protobuf bodies (uid, timestamps, managedFields are dropped), CBOR bodies,
//! and protobuf or CBOR answers; Table columns of other kinds (they print NAME and AGE;
//! CRD `additionalPrinterColumns` are ignored); list `resourceVersion` semantics (lists
//! always show the latest state); version conversion (one stored copy is served in every
//! version of a kind); finalizers and graceful deletion (deletes are immediate); garbage
//! collection by ownerReferences; running pods (Pods are stored like any object, for
//! clients that read and label them; nothing creates, schedules or runs them),
//! ReplicaSets, Endpoints, and every controller except the Deployment status simulation.
//!
//! # Measured against a real API server
//! The real-cluster tier (`tests/real_*.rs`, kube-apiserver v1.37.2 from
//! `testenv/`) runs what the sandbox tests check against the real thing. Where the two
//! disagreed:
//! - CRDs of protected groups (`k8s.io`, `kubernetes.io` and subdomains) need the
//!   `api-approved.kubernetes.io` annotation; the sandbox accepted the preloaded HTTPRoute
//!   CRD without it. Fixed: the CRD carries it and the sandbox refuses such CRDs (422).
//! - Status writes by controllers (Deployment, HPA, disruption) change the resourceVersion
//!   of Deployments, HPAs and PDBs between two applies; only the Deployment controller is
//!   simulated here, so "a second apply keeps the resourceVersion" holds on the sandbox for
//!   every object but on a real server only apart from status. Out of scope (no HPA or PDB
//!   controller); the tests compare everything but the status.
//! - The preloaded route CRDs are trimmed (any `spec` is kept), so the sandbox checks
//!   HTTPRoute, VirtualService and DestinationRule bodies only at the top level. The real
//!   tier installs the Gateway API's own HTTPRoute CRD (v1.2.1), and modelship's HTTPRoutes
//!   pass its schema with `fieldValidation=Strict`; the Istio kinds stay trimmed there too.
//!   Out of scope: the upstream schemas are not modelled.
//! - `minReplicas: 0` (scale to zero) is stored as sent; kube-apiserver accepts it only
//!   with the `HPAScaleToZero` feature gate, on by default from 1.37 (beta) and off on
//!   1.33 to 1.36, so example-repo's transaction-anomaly HPA is refused by those.
//!   Out of scope: the sandbox models no feature gates.
//! - Pods need what they refer to: the scheduler places no pod whose PersistentVolumeClaim
//!   is missing or unbound, and the Priority and RuntimeClass admission plugins refuse pods
//!   naming a PriorityClass or RuntimeClass that does not exist. The sandbox schedules no pods.
//!
//! The sandbox integration tests that are about Kubernetes also run on the real cluster
//! (`tests/support/target.rs`); what they found:
//! - `metadata.generation` is kept only by kinds whose strategy sets it (workloads, HPAs,
//!   PDBs, network and admission policies, CRDs and custom resources); the sandbox gave
//!   every object one, ConfigMaps and Services included. Fixed:
//!   [`registry::ResourceType::has_generation`].
//! - No HPA controller: a Deployment an HPA owns keeps the defaulted 1 replica here, where
//!   a real HPA controller scales it to `minReplicas` within seconds, so policies that read
//!   live replicas (example-repo's gpu-increase-limit) see other figures. Out of scope
//!   (the tests wait for the autoscaler on a real cluster and expect what they find).
//! - The simulated Deployment controller writes status only; the real one also annotates
//!   `deployment.kubernetes.io/revision`. Out of scope: not modelship's field, and plans
//!   are quiet on both.
//! - A second server-side apply of a config that owns no field (`metadata.name` only)
//!   writes once on a real server, which drops the applier's empty managedFields entry;
//!   here it is a no-op. Out of scope (modelship's objects always own fields).
//! - `v1` and `events.k8s.io/v1` Events are one resource in kube-apiserver (an Event
//!   written in one version is read in the other); here they are two. Out of scope.
//! - Rules of a kind beyond its type are not checked: kube-apiserver refuses an Event whose
//!   `involvedObject` is in another namespace, an events.k8s.io Event without `type` and
//!   `regarding`, and a ValidatingAdmissionPolicy without `matchConstraints`. Out of scope,
//!   like schema validation.

pub mod controller;
pub mod counters;
pub mod discovery;
pub mod faults;
mod handle;
pub mod merge;
pub mod openapi;
pub mod ops;
pub mod partial;
pub mod patch;
pub mod path;
pub mod protobuf;
pub mod registry;
pub mod rng;
pub mod selector;
pub mod server;
pub mod services;
pub mod status;
pub mod store;
pub mod table;
pub mod typed;
pub mod watch;

pub use counters::{RequestCounts, Verb, Write};
pub use faults::{FaultCode, FaultFilter, Faults};
pub use handle::{CRD_FIXTURES, Sandbox, SandboxBuilder, SandboxError, kubeconfig, serve};
