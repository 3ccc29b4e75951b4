//! Building the [`DesiredState`] from a loaded repository and its compiled objects.

use super::{DesiredService, DesiredState};
use crate::compile::{CompileError, DesiredSet, ServiceObjects};
use crate::service_id::ServiceId;
use crate::spec::Repository;

/// The desired state of a repository: compiled services as JSON; services that failed to
/// load, validate, compile or serialize as invalid (their live objects are left alone).
pub fn desired_state(repository: &Repository, compiled: &DesiredSet) -> DesiredState {
    let mut failed: Vec<ServiceId> = compiled.errors.iter().map(|e| e.id.clone()).collect();
    let mut services = Vec::new();
    for service in &compiled.services {
        match desired_service(service) {
            Ok(service) => services.push(service),
            Err(_) => failed.push(service.id.clone()),
        }
    }
    assemble(repository, services, failed)
}

/// The desired state of `repository` from its services as JSON and the services that
/// failed to compile or serialize (invalid, with those that failed to load or validate).
pub fn assemble(
    repository: &Repository,
    mut services: Vec<DesiredService>,
    failed: Vec<ServiceId>,
) -> DesiredState {
    // Sorted by id: callers look services up by binary search.
    services.sort_by(|a: &DesiredService, b: &DesiredService| a.id.cmp(&b.id));
    let mut invalid = repository.invalid.clone();
    invalid.extend(failed);
    invalid.sort();
    invalid.dedup();
    DesiredState {
        repository_valid: repository.is_valid() && invalid.is_empty(),
        services,
        invalid,
    }
}

/// One compiled service as JSON. An object that does not serialize makes the service
/// invalid ([`desired_state`] lists it so).
pub fn desired_service(service: &ServiceObjects) -> Result<DesiredService, CompileError> {
    Ok(DesiredService {
        id: service.id.clone(),
        file: service.file.clone(),
        objects: service
            .objects
            .iter()
            .map(|o| o.to_json())
            .collect::<Result<_, _>>()?,
    })
}
