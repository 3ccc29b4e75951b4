//! Checking a whole repository: every ModelService (as resource `modelservices` of group
//! `modelship.dev`) and every object compiled from it, with the live objects and namespace
//! labels the caller knows. [`check_repository`] takes compiled objects and a
//! [`ClusterView`] (empty offline, as in `modelship validate`); [`check_desired`] and
//! [`check_desired_by_service`] take a plan's desired state and live state. Each violation
//! points at the spec file and line that produced the object.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::matching::{SourceRef, Subject};
use super::{Error, PolicySet, Violation};
use crate::compile::DesiredSet;
use crate::meta::{ObjectKey, ServiceId};
use crate::spec::{LoadedService, Repository};
use crate::state::{DesiredService, DesiredState, LiveState};

/// Policy violations of each service, keyed by service.
pub type ServiceViolations = BTreeMap<ServiceId, Vec<Violation>>;

/// What the caller knows of the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    /// Labels of each namespace (by name); a namespace missing here has unknown labels.
    pub namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// The live object of each key that exists (the `oldObject` of an UPDATE).
    pub live: BTreeMap<ObjectKey, Value>,
}

/// The ModelService as a policy sees it: the document with `metadata.namespace` resolved
/// to the namespace it lands in.
pub fn service_object(service: &LoadedService) -> Result<Value, Error> {
    let mut object = serde_json::to_value(&service.service).map_err(|source| Error::Service {
        name: service.name().to_string(),
        source,
    })?;
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert(
            "namespace".to_string(),
            Value::String(service.namespace().to_string()),
        );
    }
    Ok(object)
}

/// Every violation of `policies` in the repository: services first, then their compiled
/// objects, in the order of `desired`. A service's spec is a CREATE (the cluster never
/// holds specs); an object is an UPDATE when `cluster.live` has it.
pub fn check_repository(
    repo: &Repository,
    desired: &DesiredSet,
    policies: &PolicySet,
    cluster: &ClusterView,
) -> Result<Vec<Violation>, Error> {
    let (services, sources) = check_services(repo, &cluster.namespace_labels, policies, None)?;
    let mut violations: Vec<Violation> = services.into_iter().flat_map(|(_, v)| v).collect();
    for service in &desired.services {
        let source = source_of(&sources, &service.id, &service.file);
        for object in &service.objects {
            let json = object.to_json()?;
            let subject = Subject::new(&json)
                .with_old_object(cluster.live.get(&object.key()))
                .with_namespace_labels(cluster.namespace_labels.get(service.id.namespace()))
                .with_source(&source);
            violations.extend(policies.evaluate(&subject));
        }
    }
    Ok(violations)
}

/// The policy check of a plan: every ModelService, and every desired object with its live
/// version from `live` as `oldObject`. A Deny violation blocks the plan.
pub fn check_desired(
    repo: &Repository,
    desired: &DesiredState,
    live: &dyn LiveState,
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
    policies: &PolicySet,
) -> Result<Vec<Violation>, Error> {
    let by_service = check_desired_by_service(repo, desired, live, namespace_labels, policies)?;
    Ok(by_service.into_values().flatten().collect())
}

/// [`check_desired`], with the violations of each service (its spec and its objects) kept
/// apart, keyed by service, for [`crate::plan::enforce`]. Services without
/// violations are left out.
pub fn check_desired_by_service(
    repo: &Repository,
    desired: &DesiredState,
    live: &dyn LiveState,
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
    policies: &PolicySet,
) -> Result<ServiceViolations, Error> {
    check_desired_of(repo, desired, live, namespace_labels, policies, None)
}

/// [`check_desired_by_service`] restricted to the services of `only` (every service when
/// `None`): what the daemon asks when it re-plans one service.
pub fn check_desired_of(
    repo: &Repository,
    desired: &DesiredState,
    live: &dyn LiveState,
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
    policies: &PolicySet,
    only: Option<&BTreeSet<ServiceId>>,
) -> Result<ServiceViolations, Error> {
    let (services, sources) = check_services(repo, namespace_labels, policies, only)?;
    let mut out = ServiceViolations::new();
    for (key, violations) in services {
        out.entry(key).or_default().extend(violations);
    }
    for service in &desired.services {
        let id = &service.id;
        if only.is_some_and(|only| !only.contains(id)) {
            continue;
        }
        let source = source_of(&sources, id, &service.file);
        let mut violations = Vec::new();
        for object in &service.objects {
            let old = ObjectKey::of(object).and_then(|key| live.get(&key));
            let subject = Subject::new(object)
                .with_old_object(old)
                .with_namespace_labels(namespace_labels.get(id.namespace()))
                .with_source(&source);
            violations.extend(policies.evaluate(&subject));
        }
        out.entry(id.clone()).or_default().extend(violations);
    }
    out.retain(|_, violations| !violations.is_empty());
    Ok(out)
}

/// The violations of one service: its spec (`loaded`) and then its desired objects (the
/// live object of each as `oldObject`), as [`check_desired_of`] finds them for that
/// service alone, without walking the repository: what the engine's step asks.
pub fn check_service(
    loaded: &LoadedService,
    desired: &DesiredService,
    live: &dyn LiveState,
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
    policies: &PolicySet,
) -> Result<Vec<Violation>, Error> {
    let source = SourceRef {
        file: loaded.file.clone(),
        line: loaded.line,
    };
    let labels = namespace_labels.get(loaded.namespace());
    let object = service_object(loaded)?;
    let subject = Subject::new(&object)
        .with_namespace_labels(labels)
        .with_source(&source);
    let mut violations = policies.evaluate(&subject);
    for object in &desired.objects {
        let old = ObjectKey::of(object).and_then(|key| live.get(&key));
        let subject = Subject::new(object)
            .with_old_object(old)
            .with_namespace_labels(labels)
            .with_source(&source);
        violations.extend(policies.evaluate(&subject));
    }
    Ok(violations)
}

type Sources = BTreeMap<ServiceId, SourceRef>;

/// The violations of each service, in the order of the repository.
type InRepositoryOrder = Vec<(ServiceId, Vec<Violation>)>;

/// Checks every valid service of the repository; returns the violations of each service
/// in repository order, and where each service was written.
fn check_services(
    repo: &Repository,
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
    policies: &PolicySet,
    only: Option<&BTreeSet<ServiceId>>,
) -> Result<(InRepositoryOrder, Sources), Error> {
    let mut violations = Vec::new();
    let mut sources = Sources::new();
    for service in &repo.services {
        if only.is_some_and(|only| !only.contains(service.id())) {
            continue;
        }
        let object = service_object(service)?;
        let source = SourceRef {
            file: service.file.clone(),
            line: service.line,
        };
        let subject = Subject::new(&object)
            .with_namespace_labels(namespace_labels.get(service.namespace()))
            .with_source(&source);
        violations.push((service.id().clone(), policies.evaluate(&subject)));
        sources.insert(service.id().clone(), source);
    }
    Ok((violations, sources))
}

/// Where a service was written; its file alone when the repository does not list it.
fn source_of(sources: &Sources, id: &ServiceId, file: &str) -> SourceRef {
    sources.get(id).cloned().unwrap_or_else(|| SourceRef {
        file: file.to_string(),
        line: 0,
    })
}
