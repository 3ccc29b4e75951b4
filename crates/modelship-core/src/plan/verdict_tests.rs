//! Unit tests of policy verdicts in a plan: a Deny blocks only its service, warnings are
//! shown and block nothing, and every rendering carries the violations.

use serde_json::{Value, json};

use super::*;
use crate::plan::render::{self, Format};
use crate::plan::{DesiredService, DesiredState, LiveSet, ServiceId, plan};
use crate::policy::{Action as PolicyAction, SourceRef};

/// A ConfigMap of service `service` in namespace `ns`, as modelship labels it.
fn mk_object(service: &str, name: &str, value: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns", "labels": {
            "app.kubernetes.io/managed-by": "modelship",
            "modelship.dev/service": service}},
        "data": {"value": value}
    })
}

fn mk_service(name: &str) -> DesiredService {
    DesiredService {
        id: ServiceId::new("ns", name).unwrap(),
        file: format!("services/{name}.yaml"),
        objects: vec![mk_object(name, name, "new")],
    }
}

/// A violation of `policy` on service `service`'s ConfigMap, at line 3 of its spec.
fn mk_violation(service: &str, policy: &str, action: PolicyAction) -> Violation {
    Violation {
        policy: policy.into(),
        binding: Some(format!("{policy}-binding")),
        action,
        kind: "ConfigMap".into(),
        namespace: Some("ns".into()),
        name: service.into(),
        message: format!("{policy} says no"),
        reason: "Forbidden".into(),
        source: Some(SourceRef {
            file: format!("services/{service}.yaml"),
            line: 3,
        }),
        policy_file: format!("policies/{policy}.yaml"),
        policy_line: 12,
    }
}

fn violations(entries: Vec<(&str, Violation)>) -> ServiceViolations {
    let mut out = ServiceViolations::new();
    for (service, violation) in entries {
        out.entry(ServiceId::new("ns", service).unwrap())
            .or_default()
            .push(violation);
    }
    out
}

/// Services `a` (its ConfigMap changes, and it has a live orphan) and `b` (its ConfigMap
/// is new), both to be written.
fn two_service_plan() -> Plan {
    let desired = DesiredState {
        services: vec![mk_service("a"), mk_service("b")],
        invalid: vec![],
        repository_valid: true,
    };
    let live: LiveSet = [
        mk_object("a", "a", "old"),
        mk_object("a", "a-orphan", "old"),
    ]
    .into_iter()
    .collect();
    plan(&desired, &live).unwrap()
}

fn service<'a>(plan: &'a Plan, name: &str) -> &'a ServicePlan {
    plan.services.iter().find(|s| s.id.name() == name).unwrap()
}

fn actions(service: &ServicePlan) -> Vec<(String, Action)> {
    service
        .objects
        .iter()
        .map(|o| (o.key.name.clone(), o.action))
        .collect()
}

#[test]
fn a_deny_blocks_only_its_service() {
    let mut plan = two_service_plan();
    assert_eq!(
        actions(service(&plan, "a")),
        [
            ("a".into(), Action::Update),
            ("a-orphan".into(), Action::Delete)
        ]
    );
    enforce(
        &mut plan,
        violations(vec![(
            "a",
            mk_violation("a", "gpu-limit", PolicyAction::Deny),
        )]),
    );

    let a = service(&plan, "a");
    assert_eq!(a.status, ServiceStatus::Blocked(BlockReason::PolicyDenied));
    assert_eq!(
        actions(a),
        [
            ("a".into(), Action::Blocked),
            ("a-orphan".into(), Action::Blocked)
        ]
    );
    assert!(!a.has_changes());
    assert!(!a.objects[0].diff.is_empty(), "the refused change is shown");
    let b = service(&plan, "b");
    assert_eq!(b.status, ServiceStatus::Present);
    assert_eq!(actions(b), [("b".into(), Action::Create)]);
    assert!(b.violations.is_empty());
    let denied: Vec<&str> = plan.denied().map(|s| s.id.name()).collect();
    assert_eq!(denied, ["a"]);
    assert!(plan.has_changes(), "b still applies");
}

#[test]
fn warnings_and_audits_block_nothing() {
    let mut plan = two_service_plan();
    let before = plan.clone();
    enforce(
        &mut plan,
        violations(vec![
            ("a", mk_violation("a", "owner-label", PolicyAction::Warn)),
            ("b", mk_violation("b", "audit-all", PolicyAction::Audit)),
        ]),
    );
    assert_eq!(plan.denied().count(), 0);
    for (after, before) in plan.services.iter().zip(&before.services) {
        assert_eq!(after.status, ServiceStatus::Present);
        assert_eq!(after.objects, before.objects);
    }
    assert_eq!(plan.violations().count(), 2);
}

#[test]
fn a_deny_keeps_an_invalid_spec_block() {
    let desired = DesiredState {
        services: vec![],
        invalid: vec![ServiceId::new("ns", "a").unwrap()],
        repository_valid: false,
    };
    let live: LiveSet = [mk_object("a", "a", "old")].into_iter().collect();
    let mut plan = plan(&desired, &live).unwrap();
    enforce(
        &mut plan,
        violations(vec![("a", mk_violation("a", "p", PolicyAction::Deny))]),
    );
    let a = service(&plan, "a");
    assert_eq!(a.status, ServiceStatus::Blocked(BlockReason::InvalidSpec));
    assert_eq!(a.violations.len(), 1);
}

#[test]
fn a_deny_of_a_service_the_plan_lacks_is_still_shown() {
    let mut plan = two_service_plan();
    enforce(
        &mut plan,
        violations(vec![("c", mk_violation("c", "p", PolicyAction::Deny))]),
    );
    let names: Vec<&str> = plan.services.iter().map(|s| s.id.name()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let c = service(&plan, "c");
    assert_eq!(c.status, ServiceStatus::Blocked(BlockReason::PolicyDenied));
    assert!(c.objects.is_empty());
}

/// Service `a` denied, `b` warned and audited.
fn judged_plan() -> Plan {
    let mut plan = two_service_plan();
    enforce(
        &mut plan,
        violations(vec![
            ("a", mk_violation("a", "gpu-limit", PolicyAction::Deny)),
            ("b", mk_violation("b", "owner-label", PolicyAction::Warn)),
            ("b", mk_violation("b", "audit-all", PolicyAction::Audit)),
        ]),
    );
    plan
}

#[test]
fn text_shows_denials_and_warnings_but_not_audits() {
    let text = render::render(&judged_plan(), Format::Text, false);
    assert!(
        text.contains("1 service denied by policy (ns/a): their objects are left untouched"),
        "{text}"
    );
    assert!(
        text.contains("ns/a (blocked: denied by policy): 2 blocked"),
        "{text}"
    );
    assert!(
        text.contains(
            "  services/a.yaml:3: error: ConfigMap ns/a: gpu-limit says no \
             [policy gpu-limit, policies/gpu-limit.yaml:12]\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "  services/b.yaml:3: warning: ConfigMap ns/b: owner-label says no \
             [policy owner-label, policies/owner-label.yaml:12]\n"
        ),
        "{text}"
    );
    assert!(!text.contains("audit-all"), "{text}");
    let colored = render::render(&judged_plan(), Format::Text, true);
    assert!(
        colored.contains("\x1b[31mservices/a.yaml:3: error"),
        "{colored}"
    );
    assert!(
        colored.contains("\x1b[33mservices/b.yaml:3: warning"),
        "{colored}"
    );
}

#[test]
fn markdown_shows_denials_and_warnings_but_not_audits() {
    let md = render::render(&judged_plan(), Format::Markdown, false);
    assert!(
        md.contains("**1 service denied by policy (ns/a)**: their objects are left untouched."),
        "{md}"
    );
    assert!(
        md.contains("| `ns/a` | blocked: denied by policy | 2 blocked |"),
        "{md}"
    );
    assert!(
        md.contains(
            "- **error** policy `gpu-limit` (`policies/gpu-limit.yaml:12`): ConfigMap ns/a: \
             gpu-limit says no (`services/a.yaml:3`)\n"
        ),
        "{md}"
    );
    assert!(md.contains("- **warning** policy `owner-label`"), "{md}");
    assert!(!md.contains("audit-all"), "{md}");
}

#[test]
fn markdown_keeps_policy_messages_literal() {
    let mut plan = two_service_plan();
    let mut violation = mk_violation("a", "p", PolicyAction::Warn);
    violation.message = "<img src=x> is *bad*".into();
    enforce(&mut plan, violations(vec![("a", violation)]));
    let md = render::render(&plan, Format::Markdown, false);
    assert!(md.contains("&lt;img src=x&gt; is \\*bad\\*"), "{md}");
}

#[test]
fn json_lists_every_violation_with_its_service() {
    let json: Value =
        serde_json::from_str(&render::render(&judged_plan(), Format::Json, false)).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(
        json["violations"],
        json!({"deny": 1, "warn": 1, "audit": 1})
    );
    let a = &json["services"][0];
    assert_eq!((&a["name"], &a["status"]), (&json!("a"), &json!("blocked")));
    assert_eq!(a["reason"], "policy-denied");
    assert_eq!(a["objects"][0]["action"], "blocked");
    assert_eq!(
        a["violations"],
        json!([{
            "policy": "gpu-limit",
            "binding": "gpu-limit-binding",
            "action": "deny",
            "kind": "ConfigMap",
            "namespace": "ns",
            "name": "a",
            "message": "gpu-limit says no",
            "reason": "Forbidden",
            "source": {"file": "services/a.yaml", "line": 3},
            "policyFile": "policies/gpu-limit.yaml",
            "policyLine": 12
        }])
    );
    let b = &json["services"][1];
    assert_eq!(b["status"], "present");
    let actions: Vec<&Value> = b["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["action"])
        .collect();
    assert_eq!(actions, [&json!("warn"), &json!("audit")]);
}

#[test]
fn a_plan_without_violations_renders_as_before() {
    let plan = two_service_plan();
    let text = render::render(&plan, Format::Text, false);
    assert!(!text.contains("denied"), "{text}");
    let json: Value = serde_json::from_str(&render::render(&plan, Format::Json, false)).unwrap();
    assert_eq!(json["services"][0]["violations"], json!([]));
    assert_eq!(
        json["violations"],
        json!({"deny": 0, "warn": 0, "audit": 0})
    );
}
