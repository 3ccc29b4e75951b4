//! Checking a whole repository: every ModelService (as resource `modelservices` of group
//! `modelship.dev`) and every object compiled from it, with the live objects and namespace
//! labels the caller knows ([`ClusterView`]; empty offline, as in `modelship validate`).
//! Each violation points at the spec file and line that produced the object.

use std::collections::BTreeMap;

use serde_json::Value;

use super::matching::{SourceRef, Subject};
use super::{Error, PolicySet, Violation};
use crate::compile::{DesiredSet, ObjectKey};
use crate::spec::{LoadedService, Repository, RepositoryConfig};

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
pub fn service_object(service: &LoadedService, config: &RepositoryConfig) -> Result<Value, Error> {
    let mut object = serde_json::to_value(&service.service).map_err(|source| Error::Service {
        name: service.name().to_string(),
        source,
    })?;
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert(
            "namespace".to_string(),
            Value::String(service.namespace(config).to_string()),
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
    let mut violations = Vec::new();
    let mut sources: BTreeMap<(&str, &str), SourceRef> = BTreeMap::new();
    for service in &repo.services {
        let object = service_object(service, &repo.config)?;
        let namespace = service.namespace(&repo.config);
        let source = SourceRef {
            file: service.file.clone(),
            line: service.line,
        };
        let subject = Subject::new(&object)
            .with_namespace_labels(cluster.namespace_labels.get(namespace))
            .with_source(&source);
        violations.extend(policies.evaluate(&subject));
        sources.insert((namespace, service.name()), source);
    }
    for service in &desired.services {
        let fallback = SourceRef {
            file: service.file.clone(),
            line: 0,
        };
        let source = sources
            .get(&(service.namespace.as_str(), service.name.as_str()))
            .unwrap_or(&fallback);
        for object in &service.objects {
            let json = object.to_json()?;
            let subject = Subject::new(&json)
                .with_old_object(cluster.live.get(&object.key()))
                .with_namespace_labels(cluster.namespace_labels.get(&service.namespace))
                .with_source(source);
            violations.extend(policies.evaluate(&subject));
        }
    }
    Ok(violations)
}
