//! `modelship policies export`: the policies and their bindings as plain Kubernetes YAML,
//! ready for `kubectl apply`, so the cluster enforces at admission what modelship checks
//! before apply.
//!
//! One file per policy, `<policy>.yaml`, holding the policy and its bindings. A policy
//! without a binding gets one (`validationActions: [Deny]`), as modelship treats it,
//! scoped by its [`Scope`]: by default to the objects of one modelship instance (an
//! `objectSelector` on `app.kubernetes.io/managed-by: modelship` and
//! `modelship.dev/instance: <instance>`), so another team's workloads in the same cluster
//! are not judged by modelship's rules; with `modelship.dev/scope: cluster`, to every
//! object its rules match. A binding written in the policy files is exported as written
//! (its author chose its `matchResources`). Rules
//! on `modelship.dev` ModelServices are dropped (the cluster never sees specs); a policy
//! left with no rule is skipped and named in [`Export::skipped`]. Server-managed metadata
//! (`uid`, `resourceVersion`, ...) is not written.

use serde_json::{Map, Value, json};

use super::Error;
use super::document::{API_VERSION, BINDING_KIND, POLICY_KIND};
use super::load::{Policy, PolicySet};
use super::matching::MODELSHIP_GROUP;
use super::scope::Scope;
use crate::meta::{LABEL_MANAGED_BY, MANAGED_BY_VALUE};

use crate::ownership::LABEL_MODELSHIP_INSTANCE as LABEL_INSTANCE;

/// The instance `policies export` scopes bindings to unless told otherwise.
pub const DEFAULT_INSTANCE: &str = "modelship";

/// What `export` produces.
#[derive(Debug, Default, PartialEq)]
pub struct Export {
    /// (file name, YAML text), sorted by file name.
    pub files: Vec<(String, String)>,
    /// Notes on what was left out or changed, one line each.
    pub skipped: Vec<String>,
}

/// Renders every loaded policy with its bindings; the bindings modelship writes select
/// the objects of `instance` (a label value), unless a policy is cluster-wide.
pub fn export(set: &PolicySet, instance: &str) -> Result<Export, Error> {
    if let Some(reason) = label_value_problem(instance) {
        return Err(Error::Instance {
            instance: instance.to_string(),
            reason,
        });
    }
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
        documents.extend(bindings(set, policy, instance));
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

fn bindings(set: &PolicySet, policy: &Policy, instance: &str) -> Vec<Value> {
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
    let mut spec = json!({"policyName": policy.name, "validationActions": ["Deny"]});
    if policy.scope == Scope::Managed {
        spec["matchResources"] = json!({"objectSelector": managed_selector(instance)});
    }
    vec![json!({
        "apiVersion": API_VERSION,
        "kind": BINDING_KIND,
        "metadata": {"name": policy.name},
        "spec": spec,
    })]
}

/// The label selector of the objects `instance` manages.
fn managed_selector(instance: &str) -> Value {
    json!({"matchLabels": {LABEL_MANAGED_BY: MANAGED_BY_VALUE, LABEL_INSTANCE: instance}})
}

/// Why `value` is not a Kubernetes label value, if it is not: at most 63 characters,
/// alphanumerics, `-`, `_` and `.`, beginning and ending with an alphanumeric. An empty
/// value is refused too: an instance needs a name.
fn label_value_problem(value: &str) -> Option<&'static str> {
    let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if value.is_empty() {
        Some("it is empty")
    } else if value.len() > 63 {
        Some("it is longer than 63 characters")
    } else if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some("only letters, digits, `-`, `_` and `.` are allowed")
    } else if !alphanumeric(value.chars().next()) || !alphanumeric(value.chars().last()) {
        Some("it must begin and end with a letter or a digit")
    } else {
        None
    }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use super::*;
    use crate::spec::{Diagnostic, Severity};

    /// A policy on Deployments, with `annotations` (a YAML flow mapping) when given.
    fn policy(name: &str, annotations: Option<&str>) -> String {
        let annotations = annotations
            .map(|a| format!("  annotations:\n    {a}\n"))
            .unwrap_or_default();
        format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  name: {name}\n{annotations}spec:\n  matchConstraints:\n    resourceRules:\n      - {{apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE]}}\n  validations:\n    - expression: \"object.spec.replicas <= 2\"\n"
        )
    }

    fn load(files: &[(&str, String)]) -> (PolicySet, Vec<Diagnostic>) {
        let files: BTreeMap<String, Vec<u8>> = files
            .iter()
            .map(|(path, text)| (path.to_string(), text.as_bytes().to_vec()))
            .collect();
        PolicySet::load(&files)
    }

    /// The binding documents of the exported file of `policy`.
    fn exported_bindings(export: &Export, policy: &str) -> Vec<Value> {
        let (_, yaml) = export
            .files
            .iter()
            .find(|(name, _)| *name == format!("{policy}.yaml"))
            .unwrap_or_else(|| panic!("{policy} exported: {export:?}"));
        serde_saphyr::from_multiple::<Value>(yaml)
            .unwrap()
            .into_iter()
            .filter(|d| d["kind"] == BINDING_KIND)
            .collect()
    }

    #[test]
    fn bindings_select_the_instance_unless_cluster_wide() {
        let selector = |instance: &str| {
            json!({"objectSelector": {"matchLabels": {
                "app.kubernetes.io/managed-by": "modelship",
                "modelship.dev/instance": instance,
            }}})
        };
        for (annotation, instance, expected) in [
            (None, "modelship", Some(selector("modelship"))),
            (None, "team-a.prod", Some(selector("team-a.prod"))),
            (
                Some("modelship.dev/scope: managed"),
                "modelship",
                Some(selector("modelship")),
            ),
            (Some("modelship.dev/scope: cluster"), "modelship", None),
        ] {
            let (set, diagnostics) = load(&[("policies/p.yaml", policy("p", annotation))]);
            assert_eq!(diagnostics, Vec::new());
            let export = export(&set, instance).unwrap();
            let bindings = exported_bindings(&export, "p");
            assert_eq!(bindings.len(), 1, "{bindings:?}");
            let spec = &bindings[0]["spec"];
            assert_eq!(spec["validationActions"], json!(["Deny"]));
            assert_eq!(
                spec.get("matchResources").cloned(),
                expected,
                "{annotation:?} {instance}"
            );
        }
    }

    #[test]
    fn a_written_binding_is_kept_as_written() {
        let binding = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: p-warn\nspec:\n  policyName: p\n  validationActions: [Warn]\n  matchResources:\n    namespaceSelector: {matchLabels: {team: a}}\n";
        let (set, diagnostics) = load(&[
            ("policies/p.yaml", policy("p", None)),
            ("policies/b.yaml", binding.to_string()),
        ]);
        assert_eq!(diagnostics, Vec::new());
        let bindings = exported_bindings(&export(&set, "modelship").unwrap(), "p");
        assert_eq!(
            bindings,
            [json!({
                "apiVersion": API_VERSION,
                "kind": BINDING_KIND,
                "metadata": {"name": "p-warn"},
                "spec": {"policyName": "p", "validationActions": ["Warn"],
                    "matchResources": {"namespaceSelector": {"matchLabels": {"team": "a"}}}},
            })]
        );
    }

    #[test]
    fn an_unknown_scope_is_an_error_at_its_value_and_the_policy_is_left_out() {
        let (set, diagnostics) = load(&[(
            "policies/p.yaml",
            policy("p", Some("modelship.dev/scope: everywhere")),
        )]);
        let errors: Vec<String> = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "policies/p.yaml:6:26: error: metadata.annotations[modelship.dev/scope]: unknown scope `everywhere` (one of `managed`, the default: objects modelship manages; `cluster`: every object the rules match)"
            ]
        );
        assert!(set.is_empty());
    }

    #[test]
    fn an_instance_that_is_no_label_value_is_refused() {
        let (set, _) = load(&[("policies/p.yaml", policy("p", None))]);
        for (instance, reason) in [
            ("", "it is empty"),
            ("a/b", "only letters, digits, `-`, `_` and `.` are allowed"),
            ("-a", "it must begin and end with a letter or a digit"),
            (&"x".repeat(64), "it is longer than 63 characters"),
        ] {
            let err = export(&set, instance).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("cannot scope the exported policies to instance `{instance}`: {reason}")
            );
        }
    }
}
