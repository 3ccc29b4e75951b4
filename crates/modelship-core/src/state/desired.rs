//! Building the [`DesiredState`] from a loaded repository and its compiled objects.

use super::{DesiredService, DesiredState};
use crate::compile::DesiredSet;
use crate::spec::Repository;

/// The desired state of a repository: compiled services as JSON; services that failed to
/// load, validate, compile or serialize as invalid (their live objects are left alone).
pub fn desired_state(repository: &Repository, compiled: &DesiredSet) -> DesiredState {
    let mut invalid = repository.invalid.clone();
    invalid.extend(
        compiled
            .errors
            .iter()
            .map(|e| (e.namespace.clone(), e.name.clone())),
    );
    let mut services = Vec::new();
    for service in &compiled.services {
        let objects: Result<Vec<_>, _> = service.objects.iter().map(|o| o.to_json()).collect();
        match objects {
            Ok(objects) => services.push(DesiredService {
                namespace: service.namespace.clone(),
                name: service.name.clone(),
                file: service.file.clone(),
                objects,
            }),
            Err(_) => invalid.push((service.namespace.clone(), service.name.clone())),
        }
    }
    // Sorted by (namespace, name): callers look services up by binary search.
    services.sort_by(|a: &DesiredService, b: &DesiredService| {
        (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name))
    });
    invalid.sort();
    invalid.dedup();
    DesiredState {
        repository_valid: repository.is_valid() && invalid.is_empty(),
        services,
        invalid,
    }
}
