//! Applying a plan: server-side apply (manager `modelship`, force) of what changes, in
//! dependency order; deletes of a service's orphans in reverse order; prune of removed
//! services last. Unchanged and blocked objects are never written.
//!
//! Namespaces created by `--create-namespaces` carry `app.kubernetes.io/created-by:
//! modelship` but not the managed-by label: they are never pruned, since deleting a
//! namespace deletes everything in it, ours or not.

use std::collections::{BTreeMap, BTreeSet};

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use serde_json::{Value, json};

use super::kinds::Kinds;
use super::retry::{RetryPolicy, retry};
use super::{Error, Result};
use crate::plan::{
    Action, DesiredState, FIELD_MANAGER, ObjectKey, ObjectPlan, Plan, ServiceStatus,
    check_mass_prune,
};

/// Whether apply persists anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApplyMode {
    /// Write for real.
    #[default]
    Apply,
    /// Send every request with `dryRun=All`: the server validates, nothing persists.
    DryRun,
}

/// What happens to the objects of services gone from the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PruneMode {
    /// They are left in place and reported.
    #[default]
    Keep,
    /// They are deleted, within the mass-prune guard.
    Prune,
    /// They are deleted even when more than half of a namespace's services go.
    PruneAllowMass,
}

/// How to apply.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    pub mode: ApplyMode,
    pub prune: PruneMode,
    /// Create the namespaces the plan uses when they are missing.
    pub create_namespaces: bool,
    pub retry: RetryPolicy,
}

/// What apply did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Namespaces created.
    pub namespaces_created: Vec<String>,
    /// Objects written with server-side apply.
    pub applied: Vec<ObjectKey>,
    /// Objects deleted (orphans and prunes).
    pub deleted: Vec<ObjectKey>,
    /// Objects of removed services left in place because pruning was off.
    pub not_pruned: Vec<ObjectKey>,
    /// Objects that failed; other objects and services went on.
    pub failures: Vec<Error>,
}

impl ApplyReport {
    /// True when every planned write and delete succeeded.
    pub fn is_success(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Applies a plan. Fails before writing anything when the mass-prune guard trips or a
/// namespace cannot be prepared; per-object failures are collected in the report.
pub async fn apply(
    client: &Client,
    kinds: &mut Kinds,
    plan: &Plan,
    desired: &DesiredState,
    options: &ApplyOptions,
) -> Result<ApplyReport> {
    if options.prune == PruneMode::Prune {
        let guards = check_mass_prune(plan);
        if !guards.is_empty() {
            return Err(Error::MassPrune(guards));
        }
    }
    let bodies: BTreeMap<ObjectKey, &Value> = desired
        .services
        .iter()
        .flat_map(|s| &s.objects)
        .filter_map(|o| Some((ObjectKey::of(o)?, o)))
        .collect();
    let mut report = ApplyReport::default();
    let mut writer = Writer {
        client,
        kinds,
        options,
    };
    writer.prepare_namespaces(plan, &mut report).await?;
    for service in plan
        .services
        .iter()
        .filter(|s| s.status == ServiceStatus::Present)
    {
        for object in service.objects.iter().filter(|o| writes(o.action)) {
            match bodies.get(&object.key) {
                Some(body) => writer.write(object, body, &mut report).await,
                None => report
                    .failures
                    .push(Error::MissingDesired(object.key.clone())),
            }
        }
        let deletes = service
            .objects
            .iter()
            .filter(|o| o.action == Action::Delete);
        for object in deletes.rev() {
            writer.delete(object, &mut report).await;
        }
    }
    for service in plan
        .services
        .iter()
        .filter(|s| s.status == ServiceStatus::Removed)
    {
        for object in service.objects.iter().rev() {
            if options.prune == PruneMode::Keep {
                report.not_pruned.push(object.key.clone());
            } else {
                writer.delete(object, &mut report).await;
            }
        }
    }
    Ok(report)
}

fn writes(action: Action) -> bool {
    matches!(action, Action::Create | Action::Update)
}

struct Writer<'a> {
    client: &'a Client,
    kinds: &'a mut Kinds,
    options: &'a ApplyOptions,
}

impl Writer<'_> {
    fn patch_params(&self) -> PatchParams {
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = self.options.mode == ApplyMode::DryRun;
        params
    }

    async fn api(&mut self, api_version: &str, key: &ObjectKey) -> Result<Api<DynamicObject>> {
        let resolved = self.kinds.resolve(api_version, &key.kind).await?;
        let client = self.client.clone();
        Ok(if resolved.namespaced {
            Api::namespaced_with(client, &key.namespace, &resolved.resource)
        } else {
            Api::all_with(client, &resolved.resource)
        })
    }

    /// Server-side applies one object.
    async fn write(&mut self, object: &ObjectPlan, body: &Value, report: &mut ApplyReport) {
        let api = match self.api(&object.api_version, &object.key).await {
            Ok(api) => api,
            Err(error) => return report.failures.push(error),
        };
        let params = self.patch_params();
        let patch = Patch::Apply(body);
        let result = retry(&self.options.retry, || {
            api.patch(&object.key.name, &params, &patch)
        })
        .await;
        match result {
            Ok(_) => report.applied.push(object.key.clone()),
            Err(kube::Error::Api(status))
                if status.code == 404 && !object.key.namespace.is_empty() =>
            {
                report
                    .failures
                    .push(Error::MissingNamespace(object.key.namespace.clone()))
            }
            Err(source) => report.failures.push(Error::Apply {
                key: object.key.clone(),
                source,
            }),
        }
    }

    /// Deletes one object, on the condition that it is still the one planned (same UID).
    async fn delete(&mut self, object: &ObjectPlan, report: &mut ApplyReport) {
        let api = match self.api(&object.api_version, &object.key).await {
            Ok(api) => api,
            Err(error) => return report.failures.push(error),
        };
        let params = DeleteParams {
            dry_run: self.options.mode == ApplyMode::DryRun,
            preconditions: object.live_uid.clone().map(|uid| Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        match retry(&self.options.retry, || {
            api.delete(&object.key.name, &params)
        })
        .await
        {
            Ok(_) => report.deleted.push(object.key.clone()),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                report.deleted.push(object.key.clone())
            }
            Err(source) => report.failures.push(Error::Delete {
                key: object.key.clone(),
                source,
            }),
        }
    }

    /// Creates missing namespaces of services that write something (with
    /// `--create-namespaces`); one GET per such namespace.
    async fn prepare_namespaces(&mut self, plan: &Plan, report: &mut ApplyReport) -> Result<()> {
        if !self.options.create_namespaces {
            return Ok(());
        }
        let namespaces: BTreeSet<&str> = plan
            .services
            .iter()
            .filter(|s| s.status == ServiceStatus::Present && s.has_changes())
            .map(|s| s.namespace.as_str())
            .collect();
        let api: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &self.kinds.resolve("v1", "Namespace").await?.resource,
        );
        for namespace in namespaces {
            let error = |source| Error::Namespace {
                namespace: namespace.to_string(),
                source,
            };
            let existing = retry(&self.options.retry, || api.get_opt(namespace))
                .await
                .map_err(error)?;
            if existing.is_some() {
                continue;
            }
            let body = json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace,
                             "labels": {"app.kubernetes.io/created-by": "modelship"}},
            });
            let params = self.patch_params();
            let patch = Patch::Apply(&body);
            retry(&self.options.retry, || {
                api.patch(namespace, &params, &patch)
            })
            .await
            .map_err(error)?;
            report.namespaces_created.push(namespace.to_string());
        }
        Ok(())
    }
}
