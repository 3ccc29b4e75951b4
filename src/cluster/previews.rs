//! Reads of the pull-request work: the namespaces of previews (one LIST of Namespaces
//! selected by the label `modelship.dev/preview`, whose value is the PR number; the
//! annotation `modelship.dev/preview-repository` names the repository), and the
//! ConfigMap of pending outcomes; whether the namespaces a preview wants exist.

use std::collections::BTreeSet;

use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};

use super::kinds::Kinds;
use super::retry::{RetryPolicy, retry};
use super::{Error, Result};
use crate::meta::{ANNOTATION_PREVIEW_REPO, LABEL_PREVIEW};

/// A namespace of a preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewNamespace {
    pub name: String,
    /// Its UID: deletes are conditioned on it.
    pub uid: Option<String>,
    /// The pull request's number.
    pub pr: u64,
    /// `OWNER/NAME` of the pull request's repository, when annotated.
    pub repository: Option<String>,
}

/// Every preview namespace that is not already being deleted, sorted by name. A
/// namespace whose label is not a number is not one of ours and is left out.
pub async fn read_preview_namespaces(
    client: &Client,
    kinds: &mut Kinds,
    policy: &RetryPolicy,
) -> Result<Vec<PreviewNamespace>> {
    let resource = kinds.resolve("v1", "Namespace").await?.resource;
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let params = ListParams::default().labels(LABEL_PREVIEW);
    let list = retry(policy, || api.list(&params))
        .await
        .map_err(|source| Error::List {
            kind: "Namespace".to_string(),
            source,
        })?;
    let mut namespaces: Vec<PreviewNamespace> = list
        .items
        .into_iter()
        .filter(|ns| ns.metadata.deletion_timestamp.is_none())
        .filter_map(|ns| {
            let pr = ns
                .metadata
                .labels
                .as_ref()?
                .get(LABEL_PREVIEW)?
                .parse()
                .ok()?;
            Some(PreviewNamespace {
                repository: ns
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ANNOTATION_PREVIEW_REPO))
                    .cloned(),
                uid: ns.metadata.uid,
                name: ns.metadata.name?,
                pr,
            })
        })
        .collect();
    namespaces.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(namespaces)
}

/// Which of the namespaces `names` exist (one GET each; one being deleted counts). The
/// preview writes only to namespaces that do not exist or are its own.
pub async fn existing_namespaces(
    client: &Client,
    kinds: &mut Kinds,
    names: &[String],
    policy: &RetryPolicy,
) -> Result<BTreeSet<String>> {
    let resource = kinds.resolve("v1", "Namespace").await?.resource;
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let mut found = BTreeSet::new();
    for name in names {
        let got = retry(policy, || api.get_opt(name))
            .await
            .map_err(|source| Error::Get {
                key: crate::meta::ObjectKey::new("", "Namespace", "", name),
                source,
            })?;
        if got.is_some() {
            found.insert(name.clone());
        }
    }
    Ok(found)
}

/// The data of ConfigMap `namespace/name`; empty when it does not exist.
pub async fn read_config_map(
    client: &Client,
    namespace: &str,
    name: &str,
    policy: &RetryPolicy,
) -> Result<std::collections::BTreeMap<String, String>> {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), namespace);
    let found = retry(policy, || api.get_opt(name))
        .await
        .map_err(|source| Error::List {
            kind: "ConfigMap".to_string(),
            source,
        })?;
    Ok(found.and_then(|c| c.data).unwrap_or_default())
}
