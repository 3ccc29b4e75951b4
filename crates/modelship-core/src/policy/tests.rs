//! Behaviour of loading and evaluating policies: located load errors, failurePolicy,
//! bindings and their actions, matchConditions, variables and oldObject.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::spec::{Diagnostic, Severity};

const HEADER: &str =
    "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\n";

fn load(files: &[(&str, &str)]) -> (PolicySet, Vec<Diagnostic>) {
    let files: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(path, text)| (path.to_string(), text.as_bytes().to_vec()))
        .collect();
    PolicySet::load(&files)
}

/// A policy on Deployments with the given spec lines after `matchConstraints`.
fn policy(name: &str, rest: &str) -> String {
    format!(
        "{HEADER}metadata:\n  name: {name}\nspec:\n  matchConstraints:\n    resourceRules:\n      - apiGroups: [apps]\n        apiVersions: [v1]\n        resources: [deployments]\n        operations: [CREATE, UPDATE]\n{rest}"
    )
}

fn binding(name: &str, policy: &str, actions: &str, extra: &str) -> String {
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: {name}\nspec:\n  policyName: {policy}\n  validationActions: {actions}\n{extra}"
    )
}

fn deployment(namespace: &str, gpus: i64, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "llm", "namespace": namespace, "labels": {"team": "genai"}},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [
            {"name": "server", "image": "nvcr.io/x:1", "resources": {"limits": {"nvidia.com/gpu": gpus.to_string()}}}
        ]}}}
    })
}

fn errors(diagnostics: &[Diagnostic]) -> Vec<String> {
    diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(ToString::to_string)
        .collect()
}

const REPLICAS_AT_MOST_2: &str = "  validations:\n    - expression: object.spec.replicas <= 2\n      message: too many replicas\n";

#[test]
fn a_passing_and_a_failing_object() {
    let (set, diagnostics) = load(&[("policies/r.yaml", &policy("replicas", REPLICAS_AT_MOST_2))]);
    assert_eq!(errors(&diagnostics), Vec::<String>::new());
    assert!(
        set.evaluate(&Subject::new(&deployment("ml", 1, 2)))
            .is_empty()
    );
    let source = SourceRef {
        file: "services/llm.yaml".to_string(),
        line: 3,
    };
    let object = deployment("ml", 1, 3);
    let violations = set.evaluate(&Subject::new(&object).with_source(&source));
    assert_eq!(violations.len(), 1);
    let v = &violations[0];
    assert_eq!(
        (
            v.policy.as_str(),
            v.action,
            v.kind.as_str(),
            v.namespace.as_deref(),
            v.name.as_str()
        ),
        ("replicas", Action::Deny, "Deployment", Some("ml"), "llm")
    );
    assert_eq!(
        (v.message.as_str(), v.reason.as_str()),
        ("too many replicas", "Invalid")
    );
    assert_eq!(
        (v.policy_file.as_str(), v.policy_line),
        ("policies/r.yaml", 13)
    );
    assert_eq!(
        v.to_string(),
        "services/llm.yaml:3: error: Deployment ml/llm: too many replicas [policy replicas, policies/r.yaml:13]"
    );
}

#[test]
fn objects_outside_the_rules_are_not_checked() {
    let (set, _) = load(&[("policies/r.yaml", &policy("replicas", REPLICAS_AT_MOST_2))]);
    let mut statefulset = deployment("ml", 1, 9);
    statefulset["kind"] = json!("StatefulSet");
    assert!(set.evaluate(&Subject::new(&statefulset)).is_empty());
}

#[test]
fn message_expression_then_message_then_expression() {
    let rest = "  validations:\n    - expression: object.spec.replicas <= 2\n      messageExpression: \"'replicas: ' + string(object.spec.replicas)\"\n      message: fallback\n    - expression: object.spec.replicas <= 1\n      messageExpression: object.nothing\n      message: fallback\n    - expression: object.spec.replicas <= 0\n";
    let (set, diagnostics) = load(&[("policies/m.yaml", &policy("m", rest))]);
    assert_eq!(errors(&diagnostics), Vec::<String>::new());
    let messages: Vec<String> = set
        .evaluate(&Subject::new(&deployment("ml", 1, 3)))
        .into_iter()
        .map(|v| v.message)
        .collect();
    assert_eq!(
        messages,
        [
            "replicas: 3",
            "fallback",
            "failed expression: object.spec.replicas <= 0"
        ]
    );
}

#[test]
fn syntax_errors_name_file_line_and_expression() {
    let rest = "  validations:\n    - expression: \"object.spec.replicas <= \"\n";
    let (set, diagnostics) = load(&[(
        "policies/bad.yaml",
        &format!("# comment\n---\n{}", policy("bad", rest)),
    )]);
    assert!(set.is_empty());
    let found = errors(&diagnostics);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("policies/bad.yaml:15:19: error: spec.validations[0].expression: syntax error in `object.spec.replicas <=`"),
        "{}",
        found[0]
    );
}

#[test]
fn block_scalar_errors_point_at_the_line_inside_the_block() {
    let rest = "  validations:\n    - expression: |\n        object.spec.replicas <= 2 &&\n        object.spec.replicas > > 1 &&\n        true\n";
    let (_, diagnostics) = load(&[("policies/block.yaml", &policy("block", rest))]);
    let found = errors(&diagnostics);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("policies/block.yaml:15:9: "),
        "{}",
        found[0]
    );
    let rest = "  validations:\n    - expression: |\n        object.spec.replicas <=\n";
    let (_, diagnostics) = load(&[("policies/end.yaml", &policy("end", rest))]);
    let found = errors(&diagnostics);
    assert!(
        found[0].starts_with("policies/end.yaml:14:9: "),
        "{}",
        found[0]
    );
}

#[test]
fn unknown_functions_and_type_errors_are_load_errors() {
    let cases = [
        (
            "object.metadata.name.isSemver()",
            "unknown function `isSemver` in `object.metadata.name.isSemver()`",
        ),
        (
            "quantity(object.x).isLessThan(4)",
            "type error: no overload of `isLessThan` for kubernetes.Quantity.(int)",
        ),
        (
            "'replicas: ' + 2 == ''",
            "type error: operator `+` cannot take (string, int)",
        ),
        (
            "object.spec.replicas + 1",
            "type error: `object.spec.replicas + 1` evaluates to int but must evaluate to bool",
        ),
        ("variables.nope", "undeclared variable `variables.nope`"),
        ("params.max > 1", "`params` is not supported"),
    ];
    for (expression, expected) in cases {
        let rest = format!("  validations:\n    - expression: \"{expression}\"\n");
        let (set, diagnostics) = load(&[("policies/p.yaml", &policy("p", &rest))]);
        assert!(set.is_empty(), "{expression} loaded");
        let found = errors(&diagnostics);
        assert!(
            found.iter().any(|d| d
                .starts_with("policies/p.yaml:13:19: error: spec.validations[0].expression: ")
                && d.contains(expected)),
            "{expression}: expected {expected:?} in {found:?}"
        );
    }
}

#[test]
fn document_problems_are_located() {
    let typo = policy("typo", "  validation:\n    - expression: 'true'\n");
    let (_, diagnostics) = load(&[
        ("policies/typo.yaml", typo.as_str()),
        (
            "policies/other.yaml",
            "a: 1\n---\napiVersion: v1\nkind: ConfigMap\n",
        ),
        ("policies/yaml.yaml", "a: [\n"),
    ]);
    let found = errors(&diagnostics);
    assert_eq!(found.len(), 4, "{found:?}");
    assert!(
        found[0].starts_with("policies/other.yaml:1: error: expected apiVersion"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("policies/other.yaml:3: error: expected apiVersion"),
        "{found:?}"
    );
    assert!(
        found[2].starts_with("policies/typo.yaml:12:") && found[2].contains("validation"),
        "{found:?}"
    );
    assert!(found[3].starts_with("policies/yaml.yaml:"), "{found:?}");
}

#[test]
fn variable_names_are_identifiers_and_unique() {
    let rest = "  variables:\n    - name: gpu-count\n      expression: '1'\n    - name: a\n      expression: '1'\n    - name: a\n      expression: '2'\n  validations:\n    - expression: 'true'\n";
    let (set, diagnostics) = load(&[("policies/v.yaml", &policy("v", rest))]);
    assert!(set.is_empty());
    let found = errors(&diagnostics);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with(
            "policies/v.yaml:1: error: spec.variables[0].name: `gpu-count` is not a CEL identifier"
        ),
        "{found:?}"
    );
    assert!(
        found[1]
            .starts_with("policies/v.yaml:1: error: spec.variables[2].name: `a` is defined twice"),
        "{found:?}"
    );
}

#[test]
fn failure_policy_fail_reports_and_ignore_skips() {
    let rest = |policy: &str| {
        format!(
            "  failurePolicy: {policy}\n  validations:\n    - expression: object.spec.nothing == 1\n"
        )
    };
    let (fail, _) = load(&[("policies/f.yaml", &policy("f", &rest("Fail")))]);
    let violations = fail.evaluate(&Subject::new(&deployment("ml", 1, 1)));
    assert_eq!(violations.len(), 1);
    assert!(
        violations[0]
            .message
            .starts_with("expression `object.spec.nothing == 1` failed: "),
        "{}",
        violations[0].message
    );
    assert_eq!(violations[0].reason, "InternalError");
    let (ignore, _) = load(&[("policies/i.yaml", &policy("i", &rest("Ignore")))]);
    assert!(
        ignore
            .evaluate(&Subject::new(&deployment("ml", 1, 1)))
            .is_empty()
    );
    let (default, _) = load(&[(
        "policies/d.yaml",
        &policy(
            "d",
            "  validations:\n    - expression: object.spec.nothing == 1\n",
        ),
    )]);
    assert_eq!(
        default
            .evaluate(&Subject::new(&deployment("ml", 1, 1)))
            .len(),
        1,
        "Fail is the default"
    );
}

#[test]
fn non_boolean_results_follow_the_failure_policy() {
    let (set, diagnostics) = load(&[(
        "policies/n.yaml",
        &policy(
            "n",
            "  validations:\n    - expression: object.spec.replicas\n",
        ),
    )]);
    assert_eq!(errors(&diagnostics), Vec::<String>::new());
    let violations = set.evaluate(&Subject::new(&deployment("ml", 1, 1)));
    assert_eq!(violations.len(), 1);
    assert!(
        violations[0]
            .message
            .contains("evaluated to int instead of bool"),
        "{}",
        violations[0].message
    );
}

#[test]
fn binding_actions_decide_what_a_failure_does() {
    let cases: &[(&str, &[Action])] = &[
        ("[Warn]", &[Action::Warn]),
        ("[Audit]", &[Action::Audit]),
        ("[Deny, Audit]", &[Action::Deny, Action::Audit]),
        ("[Warn, Audit]", &[Action::Warn, Action::Audit]),
    ];
    for (actions, expected) in cases {
        let (set, diagnostics) = load(&[
            ("policies/r.yaml", &policy("replicas", REPLICAS_AT_MOST_2)),
            (
                "policies/b.yaml",
                &binding("replicas-binding", "replicas", actions, ""),
            ),
        ]);
        assert_eq!(errors(&diagnostics), Vec::<String>::new());
        let violations = set.evaluate(&Subject::new(&deployment("ml", 1, 3)));
        let found: Vec<Action> = violations.iter().map(|v| v.action).collect();
        assert_eq!(found, *expected, "{actions}");
        assert!(
            violations
                .iter()
                .all(|v| v.binding.as_deref() == Some("replicas-binding"))
        );
        assert_eq!(
            violations.iter().any(Violation::is_deny),
            expected.contains(&Action::Deny)
        );
    }
    let (set, _) = load(&[("policies/r.yaml", &policy("replicas", REPLICAS_AT_MOST_2))]);
    let violations = set.evaluate(&Subject::new(&deployment("ml", 1, 3)));
    assert_eq!(
        (violations[0].action, violations[0].binding.clone()),
        (Action::Deny, None)
    );
}

#[test]
fn binding_match_resources_narrow_the_policy() {
    let narrow = "  matchResources:\n    objectSelector:\n      matchLabels: {team: risk}\n";
    let (set, diagnostics) = load(&[
        ("policies/r.yaml", &policy("replicas", REPLICAS_AT_MOST_2)),
        (
            "policies/b.yaml",
            &binding("risk-only", "replicas", "[Deny]", narrow),
        ),
    ]);
    assert_eq!(errors(&diagnostics), Vec::<String>::new());
    assert!(
        set.evaluate(&Subject::new(&deployment("ml", 1, 3)))
            .is_empty(),
        "team genai is not selected"
    );
    let mut risk = deployment("ml", 1, 3);
    risk["metadata"]["labels"]["team"] = json!("risk");
    assert_eq!(set.evaluate(&Subject::new(&risk)).len(), 1);
}

#[test]
fn broken_bindings_are_reported() {
    let (set, diagnostics) = load(&[
        ("policies/r.yaml", &policy("replicas", REPLICAS_AT_MOST_2)),
        (
            "policies/b.yaml",
            &format!(
                "{}---\n{}---\n{}",
                binding("both", "replicas", "[Deny, Warn]", ""),
                binding("none", "replicas", "[]", ""),
                binding("lost", "gone", "[Warn]", "")
            ),
        ),
    ]);
    let found = errors(&diagnostics);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found
            .iter()
            .any(|d| d
                .starts_with("policies/b.yaml:1: error: spec.validationActions: Deny and Warn"))
    );
    assert!(
        found.iter().any(
            |d| d.starts_with("policies/b.yaml:9: error: spec.validationActions: at least one")
        )
    );
    assert!(found.iter().any(|d| d.starts_with("policies/b.yaml:17: error: spec.policyName: binding `lost` refers to no loaded policy `gone`")));
    let violations = set.evaluate(&Subject::new(&deployment("ml", 1, 3)));
    assert_eq!(
        violations.iter().map(|v| v.action).collect::<Vec<_>>(),
        [Action::Deny],
        "implicit binding only"
    );
}

#[test]
fn match_conditions_gate_the_policy() {
    let rest = "  matchConditions:\n    - name: big\n      expression: object.spec.replicas > 5\n    - name: broken\n      expression: object.nothing == 1\n  validations:\n    - expression: 'false'\n      message: checked\n";
    let (set, diagnostics) = load(&[("policies/c.yaml", &policy("c", rest))]);
    assert_eq!(errors(&diagnostics), Vec::<String>::new());
    assert!(
        set.evaluate(&Subject::new(&deployment("ml", 1, 3)))
            .is_empty(),
        "a false condition wins over an error"
    );
    let violations = set.evaluate(&Subject::new(&deployment("ml", 1, 6)));
    assert_eq!(violations.len(), 1);
    assert!(
        violations[0].message.contains("matchCondition broken"),
        "{}",
        violations[0].message
    );
}

#[test]
fn a_failing_variable_only_fails_the_validations_reading_it() {
    let rest = "  failurePolicy: Fail\n  variables:\n    - name: broken\n      expression: object.nothing\n    - name: replicas\n      expression: object.spec.replicas\n    - name: twice\n      expression: variables.broken + 1\n  validations:\n    - expression: variables.replicas <= 2\n      message: too many\n    - expression: variables.twice > 0\n";
    let (set, diagnostics) = load(&[("policies/v.yaml", &policy("v", rest))]);
    assert_eq!(errors(&diagnostics), Vec::<String>::new());
    let messages: Vec<String> = set
        .evaluate(&Subject::new(&deployment("ml", 1, 1)))
        .into_iter()
        .map(|v| v.message)
        .collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("variables.twice"), "{messages:?}");
    let messages: Vec<String> = set
        .evaluate(&Subject::new(&deployment("ml", 1, 3)))
        .into_iter()
        .map(|v| v.message)
        .collect();
    assert_eq!(messages[0], "too many");
}

#[test]
fn old_object_and_request_describe_the_change() {
    let rest = "  validations:\n    - expression: oldObject == null || object.spec.replicas <= 2 * oldObject.spec.replicas\n      messageExpression: \"request.operation + ' ' + request.kind.kind + ' ' + request.namespace + '/' + request.name\"\n";
    let (set, diagnostics) = load(&[("policies/o.yaml", &policy("o", rest))]);
    assert_eq!(errors(&diagnostics), Vec::<String>::new());
    let new = deployment("ml", 1, 6);
    assert!(
        set.evaluate(&Subject::new(&new)).is_empty(),
        "CREATE has no oldObject"
    );
    let old = deployment("ml", 1, 3);
    assert!(
        set.evaluate(&Subject::new(&new).with_old_object(Some(&old)))
            .is_empty()
    );
    let old = deployment("ml", 1, 2);
    let violations = set.evaluate(&Subject::new(&new).with_old_object(Some(&old)));
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].message, "UPDATE Deployment ml/llm");
}

#[test]
fn namespace_object_carries_known_labels() {
    let rest = "  validations:\n    - expression: namespaceObject == null || namespaceObject.metadata.labels['tier'] != 'prod'\n";
    let (set, _) = load(&[("policies/n.yaml", &policy("n", rest))]);
    let object = deployment("ml", 1, 1);
    assert!(set.evaluate(&Subject::new(&object)).is_empty());
    let prod: BTreeMap<String, String> = [("tier".to_string(), "prod".to_string())].into();
    assert_eq!(
        set.evaluate(&Subject::new(&object).with_namespace_labels(Some(&prod)))
            .len(),
        1
    );
}

#[test]
fn hostile_objects_never_panic() {
    let rest = "  validations:\n    - expression: object.spec.template.spec.containers.all(c, quantity(c.resources.limits['nvidia.com/gpu']).asInteger() < 9)\n";
    let (set, _) = load(&[("policies/h.yaml", &policy("h", rest))]);
    for object in [
        json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": 3}, "spec": []}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": "99999999999999999999Ei"}}}]}}}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"containers": "x"}}}}),
    ] {
        let violations = set.evaluate(&Subject::new(&object));
        assert_eq!(violations.len(), 1, "{object}");
        assert_eq!(violations[0].reason, "InternalError");
    }
}

#[test]
fn expensive_expressions_are_stopped_at_the_budget_with_a_located_error() {
    let object = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "llm", "namespace": "ml"},
        "spec": {"l": (0..2000).collect::<Vec<i64>>(), "small": [1, 2, 3]}
    });
    let expensive = [
        // Nested loops over a list read from the object.
        "object.spec.l.all(x, object.spec.l.all(y, x <= y || x > y))",
        // The same through an iteration variable, with exists (whose errors CEL may drop).
        "[object.spec.l].all(l, l.exists(x, l.exists(y, x < 0)))",
        // A body that copies the list at every step.
        "size(object.spec.l.map(x, object.spec.l)) > 0",
    ];
    for expression in expensive {
        let rest = format!("  validations:\n    - expression: \"{expression}\"\n");
        let (set, diagnostics) = load(&[("policies/cost.yaml", &policy("cost", &rest))]);
        assert_eq!(errors(&diagnostics), Vec::<String>::new());
        let violations = set.evaluate(&Subject::new(&object));
        assert_eq!(violations.len(), 1, "{expression}");
        let v = &violations[0];
        assert_eq!(
            (v.policy_file.as_str(), v.policy_line, v.reason.as_str()),
            ("policies/cost.yaml", 13, "InternalError")
        );
        assert_eq!(
            v.message,
            format!(
                "expression `{expression}` failed: stopped: the evaluation went over its cost \
                 budget of 1000000 (reads of values, and elements of the lists and maps read)"
            )
        );
    }
    // Within the budget, the same shapes evaluate as before.
    let rest = "  validations:\n    - expression: object.spec.small.all(x, object.spec.small.exists(y, y == x)) && size(object.spec.l.map(x, x)) == 2000\n";
    let (set, _) = load(&[("policies/ok.yaml", &policy("ok", rest))]);
    assert!(set.evaluate(&Subject::new(&object)).is_empty());
}

#[test]
fn overlong_expressions_are_load_errors() {
    let long = format!("object.spec.replicas < 3{}", " && true".repeat(800));
    let rest = format!("  validations:\n    - expression: {long}\n");
    let (_, diagnostics) = load(&[("policies/long.yaml", &policy("long", &rest))]);
    assert_eq!(
        errors(&diagnostics),
        vec![format!(
            "policies/long.yaml:13:19: error: spec.validations[0].expression: expression is {} bytes, longer than the limit of 5120",
            long.len()
        )]
    );
}

mod no_panics {
    use super::*;
    use proptest::prelude::*;

    /// Expressions assembled from CEL's tokens and the library's names: mostly broken,
    /// sometimes valid, never a panic at load or evaluation.
    fn expression() -> impl Strategy<Value = String> {
        let token = prop::sample::select(vec![
            "object",
            "oldObject",
            "request",
            "variables.v",
            ".",
            "spec",
            "replicas",
            "metadata",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            ",",
            ":",
            "?",
            "'a'",
            "\"1Gi\"",
            "1",
            "-1",
            "2.5",
            "0u",
            "true",
            "null",
            "+",
            "-",
            "*",
            "/",
            "%",
            "<",
            "<=",
            "==",
            "!=",
            "!",
            "&&",
            "||",
            " in ",
            "has(",
            "size(",
            ".all(x, ",
            ".exists(x, ",
            ".map(x, ",
            ".filter(x, ",
            "x",
            "quantity(",
            ".isLessThan(",
            ".asInteger()",
            ".sum()",
            ".split(",
            ".matches(",
            ".find(",
            "int(",
            "string(",
        ]);
        prop::collection::vec(token, 1..16).prop_map(|tokens| tokens.concat())
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            "[a-z0-9.]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("spec|replicas|metadata|[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn any_expression_on_any_object(expression in expression(), spec in json_value(), old in proptest::option::of(json_value())) {
            let yaml = policy(
                "p",
                &format!(
                    "  variables:\n    - name: v\n      expression: {}\n  validations:\n    - expression: {}\n      messageExpression: {}\n",
                    serde_json::to_string(&expression).unwrap(),
                    serde_json::to_string(&expression).unwrap(),
                    serde_json::to_string(&expression).unwrap(),
                ),
            );
            let (set, _) = load(&[("policies/p.yaml", yaml.as_str())]);
            let mut object = deployment("ml", 1, 1);
            object["spec"] = spec;
            let old = old.map(|spec| {
                let mut old = deployment("ml", 1, 1);
                old["spec"] = spec;
                old
            });
            let _ = set.evaluate(&Subject::new(&object).with_old_object(old.as_ref()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn valid_expressions_give_at_most_one_violation_each(index in 0usize..6, spec in json_value()) {
            let expressions = [
                "object.spec.replicas <= 2",
                "object.spec.all(x, x != null)",
                "has(object.spec.metadata) && size(object.spec.metadata) > 0",
                "quantity(string(object.spec.replicas)).asInteger() > 0",
                "object.spec.map(x, x).sum() == 0",
                "string(object.spec.a).matches('^[0-9]+$')",
            ];
            let yaml = policy("p", &format!("  validations:\n    - expression: {:?}\n", expressions[index]));
            let (set, diagnostics) = load(&[("policies/p.yaml", yaml.as_str())]);
            prop_assert!(diagnostics.is_empty(), "{:?}", diagnostics);
            let mut object = deployment("ml", 1, 1);
            object["spec"] = spec;
            prop_assert!(set.evaluate(&Subject::new(&object)).len() <= 1);
        }
    }
}
