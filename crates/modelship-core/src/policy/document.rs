//! The policy documents as written: `admissionregistration.k8s.io/v1`
//! ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding, parsed from YAML with
//! the location of every expression, and the raw JSON of each document (what `export`
//! writes back out).
//!
//! Fields follow the Kubernetes API names. Unknown fields are errors, as everywhere in a
//! modelship repository: a misspelt `validationActions` must not silently become "Deny".

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// The API version of both document kinds.
pub const API_VERSION: &str = "admissionregistration.k8s.io/v1";
/// `kind` of a policy.
pub const POLICY_KIND: &str = "ValidatingAdmissionPolicy";
/// `kind` of a binding.
pub const BINDING_KIND: &str = "ValidatingAdmissionPolicyBinding";

/// An expression and where it was written (1-based line and column within its document).
pub type Located = Spanned<String>;

/// `metadata` of a policy or a binding; fields the API server manages are accepted and
/// ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub resource_version: Option<String>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub generation: Option<i64>,
    #[serde(default)]
    pub creation_timestamp: Option<String>,
}

/// `kind: ValidatingAdmissionPolicy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyDocument {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: PolicySpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    /// Parameter resources are not supported (reported at load).
    #[serde(default)]
    pub param_kind: Option<serde_json::Value>,
    #[serde(default)]
    pub match_constraints: Option<MatchResources>,
    #[serde(default)]
    pub validations: Vec<Validation>,
    /// `Fail` (the default) or `Ignore`.
    #[serde(default)]
    pub failure_policy: Option<FailurePolicy>,
    /// Accepted for the cluster's sake; modelship does not evaluate them.
    #[serde(default)]
    pub audit_annotations: Vec<AuditAnnotation>,
    #[serde(default)]
    pub match_conditions: Vec<NamedExpression>,
    #[serde(default)]
    pub variables: Vec<NamedExpression>,
}

/// What to do when an expression cannot be evaluated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum FailurePolicy {
    /// The failure is a violation (the Kubernetes default).
    #[default]
    Fail,
    /// The failure is ignored.
    Ignore,
}

/// One `spec.validations[]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Validation {
    pub expression: Located,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub message_expression: Option<Located>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub field_path: Option<String>,
}

/// A `matchConditions[]` or `variables[]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedExpression {
    pub name: String,
    pub expression: Located,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditAnnotation {
    pub key: String,
    pub value_expression: String,
}

/// `matchConstraints` of a policy and `matchResources` of a binding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchResources {
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    pub object_selector: Option<LabelSelector>,
    #[serde(default)]
    pub resource_rules: Vec<ResourceRule>,
    #[serde(default)]
    pub exclude_resource_rules: Vec<ResourceRule>,
    /// `Equivalent` or `Exact`; modelship knows each object's exact version, so both
    /// behave as `Exact`.
    #[serde(default)]
    pub match_policy: Option<String>,
}

/// A `NamedRuleWithOperations`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRule {
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub api_versions: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub operations: Vec<String>,
    #[serde(default)]
    pub resource_names: Vec<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// `kind: ValidatingAdmissionPolicyBinding`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BindingDocument {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: BindingSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BindingSpec {
    pub policy_name: String,
    /// Parameter resources are not supported (reported at load).
    #[serde(default)]
    pub param_ref: Option<serde_json::Value>,
    #[serde(default)]
    pub match_resources: Option<MatchResources>,
    #[serde(default)]
    pub validation_actions: Vec<Action>,
}

/// What a failed validation does, from the binding's `validationActions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum Action {
    /// Blocks the plan (and, in a cluster, the request).
    Deny,
    /// Reported as a warning.
    Warn,
    /// Reported for information (in a cluster, written to the audit log).
    Audit,
}

impl Action {
    /// The name as written in a binding.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "Deny",
            Action::Warn => "Warn",
            Action::Audit => "Audit",
        }
    }
}

/// One YAML document of a file: its text and the 0-based index of its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentText<'a> {
    pub text: &'a str,
    pub first_line: usize,
}

/// Splits a YAML stream into documents at `---` / `...` marker lines. A marker at column 0
/// can only be a document boundary in YAML (it is forbidden inside scalars), so a line
/// split is exact. Documents holding only comments or blanks are dropped.
pub fn split_documents(text: &str) -> Vec<DocumentText<'_>> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut first_line = 0;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_start = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        let is_end = bare == "..." || bare.starts_with("... ");
        if is_start || is_end {
            push_document(&mut documents, &text[start..offset], first_line);
            // A `--- content` line belongs to the document it starts.
            (start, first_line) = if is_start && bare.len() > 3 {
                (offset, index)
            } else {
                (offset + line.len(), index + 1)
            };
        }
        offset += line.len();
    }
    push_document(&mut documents, &text[start..], first_line);
    documents
}

fn push_document<'a>(documents: &mut Vec<DocumentText<'a>>, text: &'a str, first_line: usize) {
    let has_content = text.lines().any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with('#') && !line.starts_with('%')
    });
    if has_content {
        documents.push(DocumentText { text, first_line });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_markers_and_keeps_line_numbers() {
        let text =
            "# header\na: 1\n---\n# only a comment\n---\nb: 2\nc: |\n  ---x\n...\n--- {d: 3}\n";
        let docs = split_documents(text);
        assert_eq!(
            docs,
            vec![
                DocumentText {
                    text: "# header\na: 1\n",
                    first_line: 0
                },
                DocumentText {
                    text: "b: 2\nc: |\n  ---x\n",
                    first_line: 5
                },
                DocumentText {
                    text: "--- {d: 3}\n",
                    first_line: 9
                },
            ]
        );
    }

    #[test]
    fn parses_a_policy_with_expression_locations() {
        let yaml = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\n\
metadata: {name: p}\nspec:\n  validations:\n    - expression: \"object.x > 1\"\n";
        let doc: PolicyDocument = serde_saphyr::from_str(yaml).unwrap();
        let expression = &doc.spec.validations[0].expression;
        assert_eq!(expression.value, "object.x > 1");
        assert_eq!(expression.referenced.line(), 6);
    }

    #[test]
    fn unknown_fields_are_errors() {
        let yaml = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\n\
metadata: {name: b}\nspec:\n  policyName: p\n  validationAction: [Warn]\n";
        let err = serde_saphyr::from_str::<BindingDocument>(yaml).unwrap_err();
        assert!(err.to_string().contains("validationAction"), "{err}");
    }
}
