//! What a policy is checked against, and whether it applies: the [`Subject`] (an object,
//! its live version, its namespace's labels), its identity as an admission request would
//! carry it, and the `matchConstraints` / `matchResources` rules and label selectors.
//!
//! Namespace labels come from the caller (the live cluster when a plan has it). When they
//! are unknown, the namespace is matched as if it had no labels: a selector that requires
//! a label does not select it, one that excludes a label does, and `namespaceObject` is
//! null. Offline checks therefore never guess a namespace into a tier it may not be in.

use std::collections::BTreeMap;

use serde_json::Value;

use super::document::{LabelSelector, MatchResources, ResourceRule};

/// The group of ModelService documents as policies see them.
pub const MODELSHIP_GROUP: &str = "modelship.dev";
/// The version of ModelService documents as policies see them.
pub const MODELSHIP_VERSION: &str = "v1alpha1";
/// The resource name of ModelService documents as policies see them.
pub const MODELSERVICES: &str = "modelservices";

/// Where an object came from in the repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceRef {
    /// Spec file relative to the repository root.
    pub file: String,
    /// 1-based line of the document in that file; 0 when unknown.
    pub line: usize,
}

/// One object to check: the desired object, the live one when there is one, the labels of
/// its namespace when known, and the spec that produced it.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The full object with `apiVersion`, `kind` and `metadata`.
    pub object: &'a Value,
    /// The live object: the request is an UPDATE when set, a CREATE otherwise.
    pub old_object: Option<&'a Value>,
    /// Labels of the object's namespace; `None` when unknown.
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    /// The spec file and line that produced the object.
    pub source: Option<&'a SourceRef>,
}

impl<'a> Subject<'a> {
    /// A subject for `object`, to be created, with unknown namespace labels.
    pub fn new(object: &'a Value) -> Subject<'a> {
        Subject {
            object,
            old_object: None,
            namespace_labels: None,
            source: None,
        }
    }

    /// The live object this one replaces (an UPDATE).
    pub fn with_old_object(self, old_object: Option<&'a Value>) -> Subject<'a> {
        Subject { old_object, ..self }
    }

    /// The labels of the object's namespace.
    pub fn with_namespace_labels(
        self,
        labels: Option<&'a BTreeMap<String, String>>,
    ) -> Subject<'a> {
        Subject {
            namespace_labels: labels,
            ..self
        }
    }

    /// The spec file and line that produced the object.
    pub fn with_source(self, source: &'a SourceRef) -> Subject<'a> {
        Subject {
            source: Some(source),
            ..self
        }
    }

    /// The object's identity, as an admission request would describe it.
    pub fn identity(&self) -> Identity {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        let api_version = text(self.object.get("apiVersion"));
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group.to_string(), version.to_string()),
            None => (String::new(), api_version),
        };
        let kind = text(self.object.get("kind"));
        let metadata = self.object.get("metadata");
        let namespace = text(metadata.and_then(|m| m.get("namespace")));
        Identity {
            resource: resource_for_kind(&group, &kind),
            group,
            version,
            kind,
            namespace: (!namespace.is_empty()).then_some(namespace),
            name: text(metadata.and_then(|m| m.get("name"))),
            operation: if self.old_object.is_some() {
                Operation::Update
            } else {
                Operation::Create
            },
        }
    }

    /// The labels of the object itself.
    pub fn object_labels(&self) -> BTreeMap<String, String> {
        labels_of(self.object)
    }
}

/// The admission operation a subject stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
}

impl Operation {
    /// The name as in an admission request.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
        }
    }
}

/// Group, version, kind, resource, namespace and name of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The plural resource name (`deployments`).
    pub resource: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
    pub operation: Operation,
}

/// The plural resource of a kind: the kinds of [`crate::kinds::TABLE`] and ModelService
/// as they are declared, others by the Kubernetes pluralisation rules.
pub fn resource_for_kind(group: &str, kind: &str) -> String {
    if let Some(row) = crate::kinds::find_in_group(group, kind) {
        return row.plural.to_string();
    }
    match (group, kind) {
        (MODELSHIP_GROUP, "ModelService") => MODELSERVICES.to_string(),
        (_, "Endpoints") => "endpoints".to_string(),
        _ => {
            let lower = kind.to_ascii_lowercase();
            if let Some(stem) = lower.strip_suffix('y')
                && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
            {
                format!("{stem}ies")
            } else if lower.ends_with('s') || lower.ends_with("ch") || lower.ends_with('x') {
                format!("{lower}es")
            } else {
                format!("{lower}s")
            }
        }
    }
}

/// `metadata.labels` of a JSON object.
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `rules` (policy constraints or binding resources) select the subject.
/// `require_rules`: a policy's constraints match nothing without resource rules, a
/// binding's `matchResources` without rules does not narrow the policy.
pub fn matches(
    rules: &MatchResources,
    subject: &Subject<'_>,
    identity: &Identity,
    require_rules: bool,
) -> bool {
    let included = if rules.resource_rules.is_empty() {
        !require_rules
    } else {
        rules
            .resource_rules
            .iter()
            .any(|r| rule_matches(r, identity))
    };
    included
        && !rules
            .exclude_resource_rules
            .iter()
            .any(|r| rule_matches(r, identity))
        && namespace_selected(rules.namespace_selector.as_ref(), subject, identity)
        && rules
            .object_selector
            .as_ref()
            .is_none_or(|s| selector_matches(s, &subject.object_labels()))
}

fn rule_matches(rule: &ResourceRule, identity: &Identity) -> bool {
    let listed = |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
    let scope_ok = match rule.scope.as_deref() {
        Some("Namespaced") => identity.namespace.is_some(),
        Some("Cluster") => identity.namespace.is_none(),
        _ => true,
    };
    listed(&rule.operations, identity.operation.as_str())
        && listed(&rule.api_groups, &identity.group)
        && listed(&rule.api_versions, &identity.version)
        && rule
            .resources
            .iter()
            .any(|r| r == "*" || r == "*/*" || *r == identity.resource)
        && (rule.resource_names.is_empty() || rule.resource_names.contains(&identity.name))
        && scope_ok
}

/// Kubernetes semantics: cluster-scoped objects are never skipped by a namespace
/// selector, except Namespaces themselves, which are matched on their own labels.
fn namespace_selected(
    selector: Option<&LabelSelector>,
    subject: &Subject<'_>,
    identity: &Identity,
) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    if identity.namespace.is_none() {
        return identity.kind != "Namespace"
            || selector_matches(selector, &subject.object_labels());
    }
    let empty = BTreeMap::new();
    selector_matches(selector, subject.namespace_labels.unwrap_or(&empty))
}

/// Whether `labels` satisfy `selector` (an empty selector selects everything).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    selector
        .match_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
        && selector.match_expressions.iter().all(|e| {
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| e.values.contains(v)),
                "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

/// Problems with a selector's operators, for load-time diagnostics.
pub fn selector_problems(selector: &LabelSelector) -> Vec<String> {
    selector
        .match_expressions
        .iter()
        .filter_map(|e| match e.operator.as_str() {
            "In" | "NotIn" if e.values.is_empty() => Some(format!(
                "operator {} on `{}` needs values",
                e.operator, e.key
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => None,
            other => Some(format!(
                "unknown operator `{other}` on `{}` (In, NotIn, Exists or DoesNotExist)",
                e.key
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::document::LabelSelectorRequirement;
    use serde_json::json;

    fn rule(groups: &[&str], resources: &[&str], operations: &[&str]) -> ResourceRule {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        ResourceRule {
            api_groups: strings(groups),
            api_versions: vec!["*".to_string()],
            resources: strings(resources),
            operations: strings(operations),
            ..ResourceRule::default()
        }
    }

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "llm", "namespace": "genai", "labels": {"team": "genai"}}})
    }

    #[test]
    fn identity_of_objects() {
        let object = deployment();
        let old = deployment();
        let id = Subject::new(&object).with_old_object(Some(&old)).identity();
        assert_eq!(
            (id.group.as_str(), id.version.as_str(), id.resource.as_str()),
            ("apps", "v1", "deployments")
        );
        assert_eq!(id.namespace.as_deref(), Some("genai"));
        assert_eq!(id.operation, Operation::Update);
        let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}});
        let id = Subject::new(&service).identity();
        assert_eq!((id.group.as_str(), id.resource.as_str()), ("", "services"));
        assert_eq!(id.namespace, None);
        assert_eq!(
            resource_for_kind("networking.k8s.io", "NetworkPolicy"),
            "networkpolicies"
        );
        assert_eq!(
            resource_for_kind("networking.istio.io", "DestinationRule"),
            "destinationrules"
        );
        assert_eq!(
            resource_for_kind("modelship.dev", "ModelService"),
            "modelservices"
        );
    }

    #[test]
    fn resource_rules_with_wildcards_and_operations() {
        let object = deployment();
        let subject = Subject::new(&object);
        let id = subject.identity();
        let cases = [
            (rule(&["apps"], &["deployments"], &["CREATE"]), true),
            (rule(&["*"], &["*"], &["*"]), true),
            (rule(&["apps"], &["deployments"], &["UPDATE"]), false),
            (rule(&[""], &["deployments"], &["CREATE"]), false),
            (rule(&["apps"], &["statefulsets"], &["CREATE"]), false),
        ];
        for (r, expected) in cases {
            let m = MatchResources {
                resource_rules: vec![r.clone()],
                ..MatchResources::default()
            };
            assert_eq!(matches(&m, &subject, &id, true), expected, "{r:?}");
        }
        let excluded = MatchResources {
            resource_rules: vec![rule(&["*"], &["*"], &["*"])],
            exclude_resource_rules: vec![rule(&["apps"], &["deployments"], &["*"])],
            ..MatchResources::default()
        };
        assert!(!matches(&excluded, &subject, &id, true));
        assert!(!matches(&MatchResources::default(), &subject, &id, true));
        assert!(matches(&MatchResources::default(), &subject, &id, false));
    }

    #[test]
    fn namespace_selector_uses_known_labels_and_treats_unknown_as_empty() {
        let object = deployment();
        let production: BTreeMap<String, String> =
            [("modelship.dev/tier".to_string(), "production".to_string())].into();
        let selector = LabelSelector {
            match_labels: production.clone(),
            ..LabelSelector::default()
        };
        let m = MatchResources {
            resource_rules: vec![rule(&["*"], &["*"], &["*"])],
            namespace_selector: Some(selector),
            ..MatchResources::default()
        };
        let known = Subject::new(&object).with_namespace_labels(Some(&production));
        assert!(matches(&m, &known, &known.identity(), true));
        let unknown = Subject::new(&object);
        assert!(!matches(&m, &unknown, &unknown.identity(), true));
        let other: BTreeMap<String, String> =
            [("modelship.dev/tier".to_string(), "dev".to_string())].into();
        let dev = Subject::new(&object).with_namespace_labels(Some(&other));
        assert!(!matches(&m, &dev, &dev.identity(), true));
    }

    #[test]
    fn selector_operators() {
        let labels: BTreeMap<String, String> = [("tier".to_string(), "prod".to_string())].into();
        let req = |operator: &str, values: &[&str]| LabelSelector {
            match_expressions: vec![LabelSelectorRequirement {
                key: "tier".to_string(),
                operator: operator.to_string(),
                values: values.iter().map(|s| s.to_string()).collect(),
            }],
            ..LabelSelector::default()
        };
        assert!(selector_matches(&req("In", &["prod", "stage"]), &labels));
        assert!(!selector_matches(&req("NotIn", &["prod"]), &labels));
        assert!(selector_matches(&req("NotIn", &["prod"]), &BTreeMap::new()));
        assert!(selector_matches(&req("Exists", &[]), &labels));
        assert!(!selector_matches(&req("DoesNotExist", &[]), &labels));
        assert!(!selector_matches(&req("Sometimes", &[]), &labels));
        assert_eq!(selector_problems(&req("Sometimes", &[])).len(), 1);
        assert_eq!(selector_problems(&req("In", &[])).len(), 1);
        assert!(selector_matches(
            &LabelSelector::default(),
            &BTreeMap::new()
        ));
    }
}
