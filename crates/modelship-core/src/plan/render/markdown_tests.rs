//! Unit tests of the pull-request comment: headline figures, version-only objects, links,
//! what merging does, and the size limit.

use serde_json::json;

use super::*;
use crate::plan::render::capacity::ServiceCapacity;
use crate::plan::{ChangeKind, FieldPath, ObjectKey, Summary};

fn change(path: &[&str], before: &str, after: &str) -> FieldChange {
    FieldChange {
        path: FieldPath(path.iter().map(|s| Segment::Field(s.to_string())).collect()),
        kind: ChangeKind::Replace,
        before: Some(json!(before)),
        after: Some(json!(after)),
    }
}

fn object(kind: &str, name: &str, action: Action, changes: Vec<FieldChange>) -> ObjectPlan {
    let diff = match action {
        Action::Unchanged => String::new(),
        _ => format!("--- {kind}/{name}\n+++ {kind}/{name}\n-a: 1\n+a: 2\n"),
    };
    ObjectPlan {
        key: ObjectKey::new("", kind, "ml", name),
        api_version: "v1".to_string(),
        action,
        live_uid: None,
        changes,
        patch: json_patch::Patch::default(),
        diff,
        ownership: None,
    }
}

fn service(name: &str, objects: Vec<ObjectPlan>) -> ServicePlan {
    ServicePlan {
        id: ServiceId::new("ml", name).unwrap(),
        file: Some(format!("services/{name}.yaml")),
        status: ServiceStatus::Present,
        objects,
        summary: Summary::default(),
        violations: Vec::new(),
    }
}

fn label_only(kind: &str, name: &str) -> ObjectPlan {
    let label = ["metadata", "labels", VERSION_LABEL];
    object(
        kind,
        name,
        Action::Update,
        vec![change(&label, "1.0", "1.1")],
    )
}

/// A version bump: every object's label changes, the Deployment's pods change too.
fn version_bump(name: &str) -> ServicePlan {
    let template = ["spec", "template", "metadata", "labels", VERSION_LABEL];
    let env = ["spec", "template", "spec", "containers"];
    service(
        name,
        vec![
            label_only("ServiceAccount", name),
            label_only("Service", name),
            object(
                "Deployment",
                name,
                Action::Update,
                vec![
                    change(&["metadata", "labels", VERSION_LABEL], "1.0", "1.1"),
                    change(&template, "1.0", "1.1"),
                    change(&env, "1.0", "1.1"),
                ],
            ),
        ],
    )
}

fn unchanged(name: &str) -> ServicePlan {
    service(
        name,
        vec![object("Deployment", name, Action::Unchanged, Vec::new())],
    )
}

#[test]
fn a_version_bump_is_one_line_per_object_and_one_diff() {
    let plan = Plan {
        services: vec![version_bump("fraud")],
    };
    let md = comment(&plan, &CommentContext::default());
    assert!(
        md.contains("- `~ ServiceAccount ml/fraud`: only the version label changes (1.0 → 1.1)\n"),
        "{md}"
    );
    assert!(
        md.contains("- `~ Service ml/fraud`: only the version label"),
        "{md}"
    );
    assert_eq!(md.matches("```diff").count(), 1, "{md}");
    assert!(md.contains("`~ Deployment ml/fraud`\n\n```diff"), "{md}");
    assert!(
        md.contains("**Merging will** roll the pods out with a rolling update."),
        "{md}"
    );
    assert!(
        md.contains("**1 of 1 service changes**: 3 to update."),
        "{md}"
    );
}

#[test]
fn bookkeeping_annotations_alone_are_one_line_too() {
    let annotation = ["metadata", "annotations", "modelship.dev/spec-hash"];
    let label = ["metadata", "labels", VERSION_LABEL];
    let plan = Plan {
        services: vec![service(
            "fraud",
            vec![
                object(
                    "Service",
                    "a",
                    Action::Update,
                    vec![change(&annotation, "1", "2")],
                ),
                object(
                    "Service",
                    "b",
                    Action::Update,
                    vec![change(&annotation, "1", "2"), change(&label, "1.0", "1.1")],
                ),
            ],
        )],
    };
    let md = comment(&plan, &CommentContext::default());
    assert!(
        md.contains("- `~ Service ml/a`: only bookkeeping annotations change\n"),
        "{md}"
    );
    assert!(
        md.contains("- `~ Service ml/b`: only the version label changes (1.0 → 1.1)\n"),
        "{md}"
    );
    assert!(!md.contains("```diff"), "{md}");
}

#[test]
fn headline_counts_gpus_and_cost_and_the_canary_peak() {
    let plan = Plan {
        services: vec![version_bump("llm"), unchanged("other")],
    };
    let mut context = CommentContext::default();
    let capacity = |gpus: u64, hourly: f64| Capacity {
        gpus,
        hourly,
        unpriced: 0,
    };
    context.capacities.services.insert(
        ServiceId::new("ml", "llm").unwrap(),
        ServiceCapacity {
            before: capacity(4, 14.68),
            after: capacity(8, 29.36),
        },
    );
    context.peaks.insert(
        ServiceId::new("ml", "llm").unwrap(),
        Peak {
            gpus: 12,
            hourly: 44.04,
        },
    );
    let md = comment(&plan, &context);
    assert!(md.contains("**1 of 2 services changes**"), "{md}");
    assert!(
        md.contains(
            "GPUs **4 → 8** · cost **+$14.68/hour** (+$10,716.40/month), $29.36/hour in all"
        ),
        "{md}"
    );
    assert!(
        md.contains("Peak during canary rollouts: **12 GPUs**, $44.04/hour"),
        "{md}"
    );
    assert!(
        md.contains("| `ml/llm` | present | 3 to update | 4 → 8 | $14.68 → $29.36 (+$14.68) |"),
        "{md}"
    );
    assert!(md.contains("1 more service unchanged, not listed."), "{md}");
    assert!(!md.contains("ml/other"), "{md}");
}

#[test]
fn canary_services_say_which_steps_and_gates_a_merge_starts() {
    let plan = Plan {
        services: vec![version_bump("llm")],
    };
    let mut context = CommentContext::default();
    let canary = super::super::merge::CanaryPlan {
        steps: vec![25, 100],
        step_interval: None,
        gates: vec![100],
        checks: Vec::new(),
        failure_limit: None,
    };
    context.merges.insert(
        ServiceId::new("ml", "llm").unwrap(),
        Merge::Canary(Box::new(canary)),
    );
    let md = comment(&plan, &context);
    assert!(
        md.contains("**Merging will** start a canary: 25% → ⏸ gate, then 100%. A gate waits for `/modelship approve ml/llm`"),
        "{md}"
    );
}

#[test]
fn a_plan_with_the_canary_started_says_a_merge_starts_a_canary() {
    // The rollout keeps the stable template (only its labels and state change) and
    // creates `<name>-canary`: merging starts the canary, not an in-place change.
    let started = service(
        "llm",
        vec![
            label_only("Deployment", "llm"),
            object("Deployment", "llm-canary", Action::Create, Vec::new()),
        ],
    );
    let plan = Plan {
        services: vec![started],
    };
    let canary = super::super::merge::CanaryPlan {
        steps: vec![50, 100],
        step_interval: None,
        gates: Vec::new(),
        checks: Vec::new(),
        failure_limit: None,
    };
    let mut context = CommentContext::default();
    let md = comment(&plan, &context);
    assert!(!md.contains("start a canary"), "not a canary service: {md}");
    context.merges.insert(
        ServiceId::new("ml", "llm").unwrap(),
        Merge::Canary(Box::new(canary)),
    );
    let md = comment(&plan, &context);
    assert!(
        md.contains("**Merging will** start a canary: 50% → 100%"),
        "{md}"
    );
    assert!(!md.contains("in place"), "{md}");
}

#[test]
fn diagnostics_link_to_the_head_commit() {
    let context = CommentContext {
        diagnostics: vec![Diagnostic {
            severity: Severity::Error,
            file: "services/llm.yaml".into(),
            line: 17,
            column: 5,
            field: "spec.autoscaling.maxReplica".into(),
            message: "unknown field".into(),
            hint: Some("did you mean maxReplicas?".into()),
        }],
        links: Some(Links {
            repository_url: "https://github.com/acme/models/".into(),
            sha: "abc123".into(),
            root: "/ml/".into(),
        }),
        ..CommentContext::default()
    };
    let md = comment(&Plan::default(), &context);
    assert!(
        md.contains(
            "- [`services/llm.yaml:17:5`](https://github.com/acme/models/blob/abc123/ml/services/llm.yaml#L17) \
             **error**: `spec.autoscaling.maxReplica`: unknown field; did you mean maxReplicas?\n"
        ),
        "{md}"
    );
    assert!(
        md.contains("**1 validation error**: services with errors are left untouched"),
        "{md}"
    );
}

#[test]
fn thousands_of_changes_stay_under_the_limit_by_collapsing_then_leaving_out() {
    // Large diffs: collapsing them is enough.
    let big = |name: &str| {
        let mut s = version_bump(name);
        s.objects[2].diff = format!("+{}\n", "x".repeat(5_000));
        s
    };
    let plan = Plan {
        services: (0..30).map(|i| big(&format!("svc-{i:02}"))).collect(),
    };
    let md = comment(&plan, &CommentContext::default());
    assert!(md.len() <= COMMENT_LIMIT, "{}", md.len());
    assert!(
        md.contains("Some diffs were left out"),
        "{}",
        &md[md.len() - 300..]
    );
    assert!(
        md.contains("<b>ml/svc-29</b>"),
        "every service still has its section"
    );
    assert!(md.contains("```diff"), "the diffs that fit are kept");

    // So many services that even collapsed sections do not fit: some are left out.
    let plan = Plan {
        services: (0..3_000).map(|i| big(&format!("svc-{i:04}"))).collect(),
    };
    let md = comment(&plan, &CommentContext::default());
    assert!(md.len() <= COMMENT_LIMIT, "{}", md.len());
    assert!(
        md.contains("more services not shown**"),
        "{}",
        &md[md.len() - 300..]
    );
}

#[test]
fn money_is_grouped_and_signed() {
    assert_eq!(money(1234567.891), "$1,234,567.89");
    assert_eq!(money(0.8), "$0.80");
    assert_eq!(signed_money(-2.5), "-$2.50");
    assert_eq!(signed_money(0.001), "±$0.00");
}

#[test]
fn policy_changes_of_the_change_are_named_and_deferred() {
    let plan = Plan {
        services: vec![version_bump("fraud")],
    };
    let context = CommentContext {
        deferred_policies: vec!["policies/gpu.yaml".into()],
        ..CommentContext::default()
    };
    let md = comment(&plan, &context);
    assert!(
        md.contains(
            "This PR changes policies (`policies/gpu.yaml`); they take effect after merge; \
             this plan is judged by the branch's."
        ),
        "{md}"
    );
    assert!(!comment(&plan, &CommentContext::default()).contains("changes policies"));
}
