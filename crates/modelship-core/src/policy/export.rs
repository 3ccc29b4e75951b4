//! `modelship policies export`: the policies and their bindings as plain Kubernetes YAML,
//! ready for `kubectl apply`, so the cluster enforces at admission what modelship checks
//! before apply.
//!
//! One file per policy, `<policy>.yaml`, holding the policy and its bindings. A policy
//! without a binding gets one (`validationActions: [Deny]`), as modelship treats it. Rules
//! on `modelship.dev` ModelServices are dropped (the cluster never sees specs); a policy
//! left with no rule is skipped and named in [`Export::skipped`]. Server-managed metadata
//! (`uid`, `resourceVersion`, ...) is not written.

use serde_json::{Map, Value, json};

use super::Error;
use super::document::{API_VERSION, BINDING_KIND, POLICY_KIND};
use super::load::{Policy, PolicySet};
use super::matching::MODELSHIP_GROUP;

/// What `export` produces.
#[derive(Debug, Default, PartialEq)]
pub struct Export {
    /// (file name, YAML text), sorted by file name.
    pub files: Vec<(String, String)>,
    /// Notes on what was left out or changed, one line each.
    pub skipped: Vec<String>,
}

/// Renders every loaded policy with its bindings.
pub fn export(set: &PolicySet) -> Result<Export, Error> {
    let mut out = Export::default();
    for policy in set.policies() {
        let Some(document) = set
            .documents()
            .iter()
            .find(|d| d.kind == POLICY_KIND && d.name == policy.name)
        else {
            continue;
        };
        let mut json = clean(&document.json);
        let dropped = drop_modelservice_rules(&mut json);
        if policy.is_modelservice_only() || !has_rules(&json) {
            out.skipped.push(format!(
                "{}: skipped policy {}: it only checks ModelService specs, which the cluster never sees",
                document.file, policy.name
            ));
            continue;
        }
        if dropped {
            out.skipped.push(format!(
                "{}: policy {}: rules on {MODELSHIP_GROUP} dropped, the cluster never sees specs",
                document.file, policy.name
            ));
        }
        let mut documents = vec![json];
        documents.extend(bindings(set, policy));
        let yaml = documents
            .iter()
            .map(|d| to_yaml(d, &policy.name))
            .collect::<Result<Vec<_>, _>>()?
            .join("---\n");
        out.files.push((format!("{}.yaml", policy.name), yaml));
    }
    out.files.sort();
    Ok(out)
}

fn bindings(set: &PolicySet, policy: &Policy) -> Vec<Value> {
    let written: Vec<Value> = set
        .documents()
        .iter()
        .filter(|d| d.kind == BINDING_KIND)
        .filter(|d| {
            d.json.pointer("/spec/policyName").and_then(Value::as_str) == Some(&policy.name)
        })
        .map(|d| clean(&d.json))
        .collect();
    if !written.is_empty() {
        return written;
    }
    vec![json!({
        "apiVersion": API_VERSION,
        "kind": BINDING_KIND,
        "metadata": {"name": policy.name},
        "spec": {"policyName": policy.name, "validationActions": ["Deny"]},
    })]
}

/// The document with only the metadata a user writes.
fn clean(document: &Value) -> Value {
    let mut document = document.clone();
    if let Some(metadata) = document.get_mut("metadata").and_then(Value::as_object_mut) {
        let kept: Map<String, Value> = metadata
            .iter()
            .filter(|(k, _)| matches!(k.as_str(), "name" | "labels" | "annotations"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        *metadata = kept;
    }
    document
}

/// Removes resource rules that only name the `modelship.dev` group; true when any was.
fn drop_modelservice_rules(document: &mut Value) -> bool {
    let Some(rules) = document
        .pointer_mut("/spec/matchConstraints/resourceRules")
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = rules.len();
    rules.retain(|rule| {
        let groups: Vec<&str> = rule
            .get("apiGroups")
            .and_then(Value::as_array)
            .map(|g| g.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        groups.is_empty() || groups.iter().any(|g| *g != MODELSHIP_GROUP)
    });
    rules.len() != before
}

fn has_rules(document: &Value) -> bool {
    document
        .pointer("/spec/matchConstraints/resourceRules")
        .and_then(Value::as_array)
        .is_some_and(|rules| !rules.is_empty())
}

fn to_yaml(document: &Value, policy: &str) -> Result<String, Error> {
    serde_saphyr::to_string(document).map_err(|e| Error::Serialize {
        what: format!("policy {policy}"),
        message: e.to_string(),
    })
}
