//! Reading live state: one cluster-wide LIST per kind, selected by our managed-by label
//! and instance, so every namespace holding objects of ours is seen (the daemon's watch
//! cache sees the same); for policies, the labels of namespaces (one LIST of Namespaces);
//! and, before objects are created, whatever holds their names ([`find_named`]).
//! Confined to `--namespaces` ([`Namespaces::Only`]), one LIST per kind and namespace,
//! and one GET per namespace for its labels.

use std::collections::{BTreeMap, BTreeSet};

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, TypeMeta};

use super::kinds::Kinds;
use super::retry::{RetryPolicy, retry};
use super::scope::Namespaces;
use super::{Error, Result};
use crate::meta::{ObjectKey, group_of};
use crate::ownership::Instance;
use crate::state::{DesiredState, LiveSet};

/// Reads the live objects `instance` manages, in every namespace (previews excepted).
///
/// Kinds read: every kind of the desired state (which must be served:
/// [`Error::KindNotServed`] otherwise), and the managed kinds of [`crate::kinds::TABLE`]:
/// the built-ins always, the custom kinds when the cluster serves them.
pub async fn read_live(
    client: &Client,
    kinds: &mut Kinds,
    desired: &DesiredState,
    policy: &RetryPolicy,
    instance: &Instance,
) -> Result<LiveSet> {
    read_live_in(client, kinds, desired, policy, instance, &Namespaces::All).await
}

/// [`read_live`] in `namespaces` only: one LIST per kind and namespace.
pub async fn read_live_in(
    client: &Client,
    kinds: &mut Kinds,
    desired: &DesiredState,
    policy: &RetryPolicy,
    instance: &Instance,
    namespaces: &Namespaces,
) -> Result<LiveSet> {
    let selector = instance.selector();
    read_live_selected(
        client, kinds, desired, policy, instance, &selector, namespaces,
    )
    .await
}

/// The live objects of the preview of pull request `pr` (label `modelship.dev/preview`).
pub async fn read_preview_live(
    client: &Client,
    kinds: &mut Kinds,
    desired: &DesiredState,
    policy: &RetryPolicy,
    instance: &Instance,
    pr: u64,
) -> Result<LiveSet> {
    let selector = instance.preview_selector(pr);
    read_live_selected(
        client,
        kinds,
        desired,
        policy,
        instance,
        &selector,
        &Namespaces::All,
    )
    .await
}

async fn read_live_selected(
    client: &Client,
    kinds: &mut Kinds,
    desired: &DesiredState,
    policy: &RetryPolicy,
    instance: &Instance,
    selector: &str,
    namespaces: &Namespaces,
) -> Result<LiveSet> {
    let resolved = kinds_to_read(kinds, desired).await?;
    let params = ListParams::default().labels(selector);
    // The set keeps only the instance's objects (the default instance's selector also
    // matches other instances').
    let mut live = LiveSet::of(instance.clone());
    let targets = namespaces.targets();
    // Collected: an iterator of closures held across the awaits would not be `Send`.
    let mut lists = Vec::new();
    for resolved in resolved.values().filter(|r| r.namespaced) {
        lists.extend(targets.iter().map(|namespace| (resolved, *namespace)));
    }
    for (resolved, namespace) in lists {
        let resource = &resolved.resource;
        let api: Api<DynamicObject> = match namespace {
            None => Api::all_with(client.clone(), resource),
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
        };
        let list = retry(policy, || api.list(&params))
            .await
            .map_err(|source| Error::List {
                kind: resource.kind.clone(),
                source,
            })?;
        for object in list.items {
            if let Some(value) = typed_value(object, resource) {
                live.insert(value);
            }
        }
    }
    Ok(live)
}

/// Labels of the namespaces in `namespaces` that exist, for the `namespaceObject` and
/// `namespaceSelector` of policies. Costs one LIST of Namespaces (cluster-scoped, so it
/// needs `list` on namespaces). A namespace that does not exist yet is left out: its
/// labels are unknown to policies.
pub async fn read_namespace_labels(
    client: &Client,
    kinds: &mut Kinds,
    namespaces: &BTreeSet<String>,
    policy: &RetryPolicy,
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let resource = kinds.resolve("v1", "Namespace").await?.resource;
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let params = ListParams::default();
    let list = retry(policy, || api.list(&params))
        .await
        .map_err(Error::NamespaceLabels)?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|namespace| {
            let name = namespace.metadata.name?;
            namespaces
                .contains(&name)
                .then(|| (name, namespace.metadata.labels.unwrap_or_default()))
        })
        .collect())
}

/// [`read_namespace_labels`] confined to `scope`: with [`Namespaces::Only`], one GET per
/// namespace of `namespaces` in the scope (a RoleBinding in a namespace grants `get` on
/// that namespace; a LIST of Namespaces needs a cluster-wide grant). A namespace outside
/// the scope is left out, as one that does not exist.
pub async fn read_namespace_labels_in(
    client: &Client,
    kinds: &mut Kinds,
    namespaces: &BTreeSet<String>,
    policy: &RetryPolicy,
    scope: &Namespaces,
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    if *scope == Namespaces::All {
        return read_namespace_labels(client, kinds, namespaces, policy).await;
    }
    let resource = kinds.resolve("v1", "Namespace").await?.resource;
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let mut labels = BTreeMap::new();
    for name in namespaces.iter().filter(|n| scope.contains(n)) {
        let found = retry(policy, || api.get_opt(name))
            .await
            .map_err(Error::NamespaceLabels)?;
        if let Some(namespace) = found {
            labels.insert(name.clone(), namespace.metadata.labels.unwrap_or_default());
        }
    }
    Ok(labels)
}

/// The kinds to list, one per (group, kind), the desired state's version first.
async fn kinds_to_read(
    kinds: &mut Kinds,
    desired: &DesiredState,
) -> Result<BTreeMap<(String, String), super::Resolved>> {
    let mut out = BTreeMap::new();
    let desired_kinds: BTreeSet<(&str, &str)> = desired
        .services
        .iter()
        .flat_map(|s| &s.objects)
        .filter_map(|o| Some((o.get("apiVersion")?.as_str()?, o.get("kind")?.as_str()?)))
        .collect();
    for (api_version, kind) in desired_kinds {
        let key = (group_of(api_version).to_string(), kind.to_string());
        if let std::collections::btree_map::Entry::Vacant(entry) = out.entry(key) {
            entry.insert(kinds.resolve(api_version, kind).await?);
        }
    }
    for row in crate::kinds::managed() {
        let key = (row.group.to_string(), row.kind.to_string());
        if out.contains_key(&key) {
            continue;
        }
        // A built-in is always there; a custom kind the cluster does not serve is skipped.
        let resolved = if row.is_builtin() {
            Some(kinds.resolve(row.api_version, row.kind).await?)
        } else {
            kinds.lookup(row.api_version, row.kind).await?
        };
        if let Some(resolved) = resolved {
            out.insert(key, resolved);
        }
    }
    Ok(out)
}

/// Objects named like several of one kind in one namespace are found with one LIST there;
/// fewer with a GET each.
const LIST_FROM: usize = 3;

/// The live objects, whoever holds them, of the given `(apiVersion, key)`s that exist:
/// a GET each, or one LIST of the kind in a namespace holding [`LIST_FROM`] or more of
/// them. A kind the cluster does not serve holds nothing.
pub async fn find_named(
    client: &Client,
    kinds: &mut Kinds,
    wanted: &[(&str, &ObjectKey)],
    policy: &RetryPolicy,
) -> Result<Vec<serde_json::Value>> {
    let mut groups: BTreeMap<(&str, &str, &str), Vec<&ObjectKey>> = BTreeMap::new();
    for (api_version, key) in wanted {
        groups
            .entry((api_version, &key.kind, &key.namespace))
            .or_default()
            .push(key);
    }
    let mut found = Vec::new();
    for ((api_version, kind, namespace), keys) in groups {
        let Some(resolved) = kinds.lookup(api_version, kind).await? else {
            continue;
        };
        let resource = &resolved.resource;
        let api: Api<DynamicObject> = if resolved.namespaced {
            Api::namespaced_with(client.clone(), namespace, resource)
        } else {
            Api::all_with(client.clone(), resource)
        };
        let mut objects = Vec::new();
        if keys.len() >= LIST_FROM {
            let params = ListParams::default();
            let list = retry(policy, || api.list(&params))
                .await
                .map_err(|source| Error::List {
                    kind: resource.kind.clone(),
                    source,
                })?;
            let names: BTreeSet<&str> = keys.iter().map(|k| k.name.as_str()).collect();
            objects.extend(list.items.into_iter().filter(|o| {
                o.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| names.contains(n))
            }));
        } else {
            for key in keys {
                let object = retry(policy, || api.get_opt(&key.name))
                    .await
                    .map_err(|source| Error::Get {
                        key: key.clone(),
                        source,
                    })?;
                objects.extend(object);
            }
        }
        found.extend(objects.into_iter().filter_map(|o| typed_value(o, resource)));
    }
    Ok(found)
}

/// A listed object as JSON, with the `apiVersion` and `kind` a LIST leaves out of its
/// items. A DynamicObject is a map of JSON values: serializing it cannot fail (`None`
/// would only drop the object).
fn typed_value(mut object: DynamicObject, resource: &ApiResource) -> Option<serde_json::Value> {
    object.types.get_or_insert_with(|| TypeMeta {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
    });
    serde_json::to_value(&object).ok()
}
