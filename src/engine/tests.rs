//! The engine's decisions without a cluster: live views built by hand.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::compile::Source;
use crate::meta::ServiceId;
use crate::plan::{Action, BlockReason, Detail, Plan, ServiceStatus};
use crate::state::LiveSet;

fn service(name: &str) -> (String, Vec<u8>) {
    (
        format!("services/{name}.yaml"),
        format!(
            "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {{name: {name}, namespace: ml}}\nspec:\n  model: {{name: {name}, version: \"1.0.0\"}}\n  runtime: {{image: \"registry.example.com/{name}:1\"}}\n  resources: {{cpu: \"1\", memory: 1Gi}}\n"
        )
        .into_bytes(),
    )
}

fn files(names: &[&str]) -> BTreeMap<String, Vec<u8>> {
    names.iter().map(|n| service(n)).collect()
}

/// The live objects of `prepared`'s services, as if applied.
fn applied(prepared: &Prepared) -> LiveSet {
    prepared
        .desired
        .services
        .iter()
        .flat_map(|s| s.objects.iter().cloned())
        .collect()
}

/// The whole revision planned read-only, as `modelship plan` plans it.
fn plan_all(revision: &Revision, live: &LiveSet) -> Plan {
    let analyst = rollout::PrometheusAnalyst::default();
    let run = Run {
        owners: &super::Nobody,
        revision,
        now: jiff::Timestamp::UNIX_EPOCH,
        analyst: &analyst,
        settings: rollout::Settings::default(),
        detail: Detail::Full,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let sweep = runtime.block_on(run.plan_all(live));
    assert!(sweep.failure().is_none(), "{:?}", sweep.failure());
    sweep.plan
}

fn revision(files: &BTreeMap<String, Vec<u8>>, keep: Keep) -> Revision {
    let prepared = prepare_keeping(files, &BTreeMap::new(), &Source::local(), keep);
    Revision::new(prepared, NamespaceLabels::new(), &Default::default())
}

fn status(plan: &Plan, name: &str) -> ServiceStatus {
    plan.services
        .iter()
        .find(|s| s.id.name() == name)
        .map(|s| s.status)
        .unwrap_or_else(|| panic!("{name} not in the plan"))
}

#[test]
fn a_broken_policy_file_blocks_every_service_and_prunes_nothing() {
    let before = prepare(&files(&["a", "b"]), &BTreeMap::new(), &Source::local());
    let live = applied(&before);
    let mut next = files(&["a"]);
    next.insert("policies/broken.yaml".into(), b"kind: [".to_vec());
    let prepared = revision(&next, Keep::Objects);
    assert!(prepared.policies_broken());
    let plan = plan_all(&prepared, &live);
    assert_eq!(
        status(&plan, "a"),
        ServiceStatus::Blocked(BlockReason::PoliciesBroken)
    );
    assert_eq!(
        status(&plan, "b"),
        ServiceStatus::Blocked(BlockReason::RepositoryInvalid),
        "nothing is pruned without the policies"
    );
    assert!(!plan.has_changes());
}

#[test]
fn a_step_covers_its_service_only_and_never_prunes() {
    let before = prepare(&files(&["a", "b", "c"]), &BTreeMap::new(), &Source::local());
    let live = applied(&before);
    let mut changed = files(&["a"]);
    changed.insert(
        "services/a.yaml".into(),
        String::from_utf8(service("a").1)
            .unwrap()
            .replace("a:1", "a:2")
            .into_bytes(),
    );
    let prepared = revision(&changed, Keep::Objects);
    let analyst = rollout::PrometheusAnalyst::default();
    let step = Step {
        owners: &super::Nobody,
        revision: &prepared,
        now: jiff::Timestamp::UNIX_EPOCH,
        analyst: &analyst,
        settings: rollout::Settings::default(),
        detail: Detail::Full,
        mode: Mode::ReadOnly,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let id = ServiceId::new("ml", "a").unwrap();
    let outcome = runtime.block_on(step.reconcile_service(&id, &live, Trigger::Change));
    let scoped = Plan {
        services: vec![outcome.plan],
    };
    let names: Vec<&str> = scoped.services.iter().map(|s| s.id.name()).collect();
    assert_eq!(names, ["a"]);
    assert_eq!(scoped.count(Action::Update), 1);
    assert_eq!(scoped.count(Action::Delete), 0);
    assert_eq!(outcome.verdict, Verdict::Pending);
    assert_eq!(outcome.next, Next::Idle);
    let all = plan_all(&prepared, &live);
    assert_eq!(status(&all, "b"), ServiceStatus::Removed);
    assert_eq!(status(&all, "c"), ServiceStatus::Removed);
}

#[test]
fn prepare_names_invalid_and_failing_services_with_their_cause() {
    let mut next = files(&["a"]);
    next.insert(
        "services/b.yaml".into(),
        b"apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {name: b, namespace: ml}\nspec:\n  model: {name: b, version: \"1\"}\n  runtime: {image: \"registry.example.com/b:latest\"}\n  resources: {cpu: \"1\", memory: 1Gi}\n"
            .to_vec(),
    );
    let prepared = prepare(&next, &BTreeMap::new(), &Source::local());
    let error = &prepared.errors[&ServiceId::new("ml", "b").unwrap()];
    assert_eq!(error.cause, BlockReason::InvalidSpec);
    assert!(
        error.message.contains("services/b.yaml"),
        "{}",
        error.message
    );
    assert!(
        prepared
            .service(&ServiceId::new("ml", "a").unwrap())
            .is_some()
    );
    assert!(
        prepared
            .service(&ServiceId::new("ml", "b").unwrap())
            .is_none()
    );
    assert_eq!(BlockReason::InvalidSpec.metric_label(), "invalid_spec");
}

#[test]
fn a_preparation_keeping_specs_plans_exactly_as_the_full_one() {
    let before = prepare(&files(&["a", "b"]), &BTreeMap::new(), &Source::local());
    let live = applied(&before);
    let next = files(&["a", "c"]);
    let full = revision(&next, Keep::Objects);
    let parsed = plan_all(&full, &live);
    let service_a = full
        .service(&ServiceId::new("ml", "a").unwrap())
        .unwrap()
        .into_owned();
    let prepared = revision(&next, Keep::Specs);
    assert!(
        prepared
            .desired
            .services
            .iter()
            .all(|s| s.objects.is_empty())
    );
    let compacted = plan_all(&prepared, &live);
    assert_eq!(parsed, compacted);
    assert_eq!(
        prepared
            .service(&ServiceId::new("ml", "a").unwrap())
            .unwrap()
            .into_owned(),
        service_a
    );
    assert_eq!(prepared.desired().services.len(), 2);
}

#[test]
fn keeping_specs_prepares_the_same_services_and_objects() {
    let mut next = files(&["b", "a", "c"]);
    next.insert("services/g.yaml".into(), b"apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {name: g, namespace: ml}\nspec: {}\n".to_vec());
    let full = prepare(&next, &BTreeMap::new(), &Source::local());
    let lean = prepare_keeping(&next, &BTreeMap::new(), &Source::local(), Keep::Specs);
    assert!(lean.desired.services.iter().all(|s| s.objects.is_empty()));
    assert_eq!(lean.desired().into_owned(), full.desired);
    assert_eq!(lean.desired.invalid, full.desired.invalid);
    assert!(!lean.desired.repository_valid);
    assert_eq!(lean.spec_hashes, full.spec_hashes);
    assert_eq!(lean.errors, full.errors);
    for service in &full.desired.services {
        let id = service.id.clone();
        assert_eq!(lean.service(&id).unwrap().into_owned(), *service);
        // The loaded spec of each compiled service, by id.
        let loaded = lean.loaded(&id).expect("a compiled service's spec");
        assert_eq!(
            (loaded.name(), loaded.file.as_str()),
            (id.name(), service.file.as_str())
        );
    }
    assert!(lean.service(&ServiceId::new("ml", "g").unwrap()).is_none());
    assert!(
        lean.loaded(&ServiceId::new("ml", "g").unwrap()).is_none(),
        "g failed to compile"
    );
}

#[test]
fn the_steps_of_a_revision_plan_what_the_whole_repository_planner_plans() {
    let before = prepare(
        &files(&["a", "b", "c", "d", "e"]),
        &BTreeMap::new(),
        &Source::local(),
    );
    let live = applied(&before);
    let mut next = files(&["a", "c", "f"]);
    next.insert(
        "services/c.yaml".into(),
        String::from_utf8(service("c").1)
            .unwrap()
            .replace("c:1", "c:2")
            .into_bytes(),
    );
    next.insert("services/g.yaml".into(), b"apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {name: g, namespace: ml}\nspec: {}\n".to_vec());
    for valid in [false, true] {
        if valid {
            next.remove("services/g.yaml");
        }
        let full = prepare(&next, &BTreeMap::new(), &Source::local());
        assert_eq!(full.desired.repository_valid, valid);
        // The core's planner over the whole desired state, as one piece.
        let whole = crate::plan::plan(&full.desired, &live).unwrap();
        for keep in [Keep::Objects, Keep::Specs] {
            let stepped = plan_all(&revision(&next, keep), &live);
            assert_eq!(
                stepped, whole,
                "keeping {keep:?}, repository valid: {valid}"
            );
        }
    }
}

#[test]
fn one_services_policy_check_is_what_the_repository_check_finds_for_it() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo");
    let mut files = crate::source::read_dir(&root).unwrap();
    let live = applied(&prepare(&files, &BTreeMap::new(), &Source::local()));
    // 1 -> 4 GPUs per pod: gpu-increase-limit denies it, with the live Deployment as
    // oldObject.
    let path = "services/genai/image-classifier.yaml".to_string();
    let text = String::from_utf8(files[&path].clone()).unwrap();
    assert!(text.contains("count: 1"));
    files.insert(path, text.replacen("count: 1", "count: 4", 1).into_bytes());
    let prepared = prepare(&files, &BTreeMap::new(), &Source::local());
    assert!(!prepared.policies.is_empty(), "example-repo has policies");
    let labels = NamespaceLabels::from([(
        "genai".to_string(),
        BTreeMap::from([("tier".to_string(), "prod".to_string())]),
    )]);
    let mut found = 0;
    for service in &prepared.desired.services {
        let only = std::collections::BTreeSet::from([service.id.clone()]);
        let mut whole = crate::policy::check_desired_of(
            &prepared.repository,
            &prepared.desired,
            &live,
            &labels,
            &prepared.policies,
            Some(&only),
        )
        .unwrap();
        let loaded = prepared.loaded(&service.id).unwrap();
        let one = crate::policy::check_service(loaded, service, &live, &labels, &prepared.policies)
            .unwrap();
        found += one.len();
        assert_eq!(
            one,
            whole.remove(&service.id).unwrap_or_default(),
            "{}",
            service.id
        );
    }
    assert!(found > 0, "some policy speaks about example-repo");
}

#[test]
fn every_service_left_alone_has_its_error_so_the_revision_names_it() {
    let mut next = files(&["a", "b"]);
    next.insert("services/g.yaml".into(), b"apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {name: g, namespace: ml}\nspec: {}\n".to_vec());
    let broken_config = {
        let mut files = files(&["a", "b"]);
        files.insert("modelship.yaml".into(), b"kind: [".to_vec());
        files
    };
    for files in [next, broken_config] {
        let revision = revision(&files, Keep::Specs);
        assert!(!revision.desired.invalid.is_empty());
        for id in &revision.desired.invalid {
            assert!(revision.errors.contains_key(id), "{id} has no error");
            assert!(revision.names(id), "{id}");
        }
        let named: Vec<String> = revision
            .services()
            .iter()
            .map(ToString::to_string)
            .collect();
        let mut expected: Vec<String> = revision
            .desired
            .services
            .iter()
            .map(|s| s.id.to_string())
            .chain(revision.desired.invalid.iter().map(ToString::to_string))
            .collect();
        expected.sort();
        expected.dedup();
        assert_eq!(named, expected);
    }
}

#[test]
fn a_service_outside_the_namespaces_given_is_blocked_with_an_error_at_its_spec() {
    let mut files = files(&["a"]);
    files.insert(
        "services/other.yaml".into(),
        b"apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {name: other, namespace: elsewhere}\nspec:\n  model: {name: other, version: \"1.0.0\"}\n  runtime: {image: \"registry.example.com/other:1\"}\n  resources: {cpu: \"1\", memory: 1Gi}\n".to_vec(),
    );
    for keep in [Keep::Objects, Keep::Specs] {
        let mut prepared = prepare_keeping(&files, &BTreeMap::new(), &Source::local(), keep);
        prepared.confine(&crate::cluster::Namespaces::All);
        assert!(prepared.desired.repository_valid && prepared.errors.is_empty());
        prepared.confine(&"ml,team-b".parse().unwrap());
        let other = ServiceId::new("elsewhere", "other").unwrap();
        let error = &prepared.errors[&other];
        assert_eq!(error.cause, BlockReason::InvalidSpec);
        assert_eq!(
            error.message,
            "services/other.yaml:1: error: metadata.namespace: service elsewhere/other: namespace `elsewhere` is not one of --namespaces (ml,team-b): modelship may not read or write there; add the namespace to --namespaces (with a RoleBinding of the modelship ClusterRole in it), or move the service"
        );
        assert_eq!(prepared.desired.invalid, std::slice::from_ref(&other));
        assert!(!prepared.desired.repository_valid, "nothing is pruned");
        assert_eq!(prepared.error_lines().len(), 1);
        // The service in scope is planned as before, its objects intact.
        let a = ServiceId::new("ml", "a").unwrap();
        assert!(!prepared.service(&a).unwrap().objects.is_empty());
        let revision = Revision::new(prepared, NamespaceLabels::new(), &BTreeSet::new());
        let plan = plan_all(&revision, &LiveSet::new());
        assert_eq!(status(&plan, "a"), ServiceStatus::Present);
        assert!(
            matches!(status(&plan, "other"), ServiceStatus::Blocked(_)),
            "{plan:?}"
        );
    }
}

/// Services `a` (new, first in path order) and `b` (running) of one GPU each with 2
/// replicas, in a tenant of 2 GPUs: only one fits.
fn tenant_over_budget() -> BTreeMap<String, Vec<u8>> {
    let gpu = |name: &str| {
        let (file, text) = service(name);
        let text =
            String::from_utf8(text).unwrap() + "  replicas: 2\n  gpu: {count: 1, type: l4}\n";
        (file, text.into_bytes())
    };
    let config = "apiVersion: modelship.dev/v1alpha1\nkind: RepositoryConfig\nspec:\n  gpu:\n    catalog:\n      l4: {product: NVIDIA-L4}\n  tenants: [{name: team, paths: [\"services/**\"], namespaces: [ml], maxGPUs: 2}]\n";
    [gpu("a"), gpu("b"), ("modelship.yaml".into(), config.into())]
        .into_iter()
        .collect()
}

#[test]
fn a_revision_keeps_the_running_service_of_a_tenant_over_budget_and_blocks_the_new_one() {
    for keep in [Keep::Objects, Keep::Specs] {
        let files = tenant_over_budget();
        let prepared = prepare_keeping(&files, &BTreeMap::new(), &Source::local(), keep);
        let running = BTreeSet::from([ServiceId::new("ml", "b").unwrap()]);
        let revision = Revision::new(prepared, NamespaceLabels::new(), &running);
        let a = ServiceId::new("ml", "a").unwrap();
        let b = ServiceId::new("ml", "b").unwrap();
        let error = &revision.errors[&a];
        assert_eq!(error.cause, BlockReason::InvalidSpec);
        assert!(
            error
                .message
                .contains("tenant team: 4 GPUs at maximum scale, over maxGPUs 2"),
            "{}",
            error.message
        );
        assert!(!revision.desired.repository_valid, "nothing is pruned");
        // The service kept is still compiled from its own spec.
        let kept = revision.service(&b).expect("b is valid");
        assert_eq!(kept.id, b);
        assert_eq!(revision.loaded(&b).map(|s| s.name()), Some("b"));
        assert!(revision.service(&a).is_none());
        assert!(revision.names(&a), "its live objects are left untouched");
        // Without a live view, path order: `a` stays and `b` is blocked.
        let prepared = prepare_keeping(&files, &BTreeMap::new(), &Source::local(), keep);
        let revision = Revision::new(prepared, NamespaceLabels::new(), &BTreeSet::new());
        assert!(revision.errors.contains_key(&b), "{keep:?}");
        assert!(revision.service(&a).is_some(), "{keep:?}");
    }
}
