//! The engine's decisions without a cluster: live views built by hand.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::compile::Source;
use crate::plan::{Action, BlockReason, Detail, ServiceStatus};
use crate::state::LiveSet;
use crate::state::LiveState;

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
    let prepared = prepare(&next, &BTreeMap::new(), &Source::local());
    assert!(prepared.policies_broken());
    let plan = plan(&prepared, &live, &NamespaceLabels::new(), Scope::All).unwrap();
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
fn a_scoped_plan_covers_its_services_only_and_never_prunes() {
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
    let prepared = prepare(&changed, &BTreeMap::new(), &Source::local());
    let only = BTreeSet::from([ServiceId::new("ml", "a").unwrap()]);
    let scoped = plan(
        &prepared,
        &live,
        &NamespaceLabels::new(),
        Scope::Services(&only),
    )
    .unwrap();
    let names: Vec<&str> = scoped.services.iter().map(|s| s.id.name()).collect();
    assert_eq!(names, ["a"]);
    assert_eq!(scoped.count(Action::Update), 1);
    assert_eq!(scoped.count(Action::Delete), 0);
    let all = plan(&prepared, &live, &NamespaceLabels::new(), Scope::All).unwrap();
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
    assert_eq!(error.cause, Cause::InvalidSpec);
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
    assert_eq!(Cause::InvalidSpec.metric_label(), "invalid_spec");
}

#[test]
fn a_preparation_keeping_specs_plans_exactly_as_the_full_one() {
    let before = prepare(&files(&["a", "b"]), &BTreeMap::new(), &Source::local());
    let live = applied(&before);
    let next = files(&["a", "c"]);
    let full = prepare(&next, &BTreeMap::new(), &Source::local());
    let parsed = plan(&full, &live, &NamespaceLabels::new(), Scope::All).unwrap();
    let service_a = full
        .service(&ServiceId::new("ml", "a").unwrap())
        .unwrap()
        .into_owned();
    let prepared = prepare_keeping(&next, &BTreeMap::new(), &Source::local(), Keep::Specs);
    assert!(
        prepared
            .desired
            .services
            .iter()
            .all(|s| s.objects.is_empty())
    );
    let compacted = plan(&prepared, &live, &NamespaceLabels::new(), Scope::All).unwrap();
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

/// The live objects of `services` in `live`.
fn view_of(live: &LiveSet, services: &BTreeSet<crate::meta::ServiceId>) -> LiveSet {
    services
        .iter()
        .flat_map(|id| live.owned_by_service(id))
        .filter_map(|key| live.get(key).cloned())
        .collect()
}

#[test]
fn a_plan_in_chunks_is_the_plan_of_the_whole_repository() {
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
        let whole = plan(&full, &live, &NamespaceLabels::new(), Scope::All).unwrap();
        let prepared = prepare_keeping(&next, &BTreeMap::new(), &Source::local(), Keep::Specs);
        for chunk in [1, 2, 100] {
            let chunked = plan_in_chunks(
                &prepared,
                &|only| view_of(&live, only),
                &live.services(),
                &NamespaceLabels::new(),
                chunk,
                Detail::Full,
            )
            .unwrap();
            assert_eq!(
                chunked, whole,
                "chunks of {chunk}, repository valid: {valid}"
            );
        }
    }
}
