use std::path::Path;

use serde_json::json;

use super::*;
use crate::compile::{Source, compile_repository};
use crate::daemon::live::LiveMap;

fn example_work() -> (Vec<ServiceWork>, Vec<InvalidService>) {
    let files = crate::source::read_dir(Path::new("example-repo")).unwrap();
    let repo = crate::spec::load(&files);
    work_items(&compile_repository(&repo, &Source::local()))
}

/// What an API server adds to an object: status, uid, defaults inside lists and maps.
fn as_served(object: &Value) -> Value {
    let mut live = object.clone();
    live["metadata"]["uid"] = json!("0000");
    live["metadata"]["resourceVersion"] = json!("7");
    live["status"] = json!({"observedGeneration": 1});
    if let Some(containers) = live
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
    {
        for container in containers {
            container["terminationMessagePath"] = json!("/dev/termination-log");
        }
    }
    live
}

/// Whether one desired object is in sync with one live object, through [`diff_service`].
fn in_sync(desired: &Value, live: &Value) -> bool {
    let key = key_of(desired).unwrap();
    let (namespace, name) = service_of(desired).unwrap();
    let work = ServiceWork {
        namespace,
        name,
        spec_hash: "h".into(),
        file: "services/x.yaml".into(),
        objects: vec![(key, serde_json::to_vec(desired).unwrap().into_boxed_slice())],
    };
    let mut map = LiveMap::new();
    map.upsert(live.clone());
    diff_service(&work, &map).unwrap().is_empty()
}

fn live_of(work: &[ServiceWork]) -> LiveMap {
    let mut live = LiveMap::new();
    for service in work {
        for (_, object) in service.parsed() {
            live.upsert(as_served(&object));
        }
    }
    live
}

#[test]
fn every_example_service_becomes_work_with_keys_in_apply_order() {
    let (work, invalid) = example_work();
    assert!(invalid.is_empty(), "{invalid:?}");
    assert_eq!(work.len(), 5);
    for service in &work {
        assert!(!service.spec_hash.is_empty());
        let keys: Vec<_> = service.objects.iter().map(|(k, _)| k.clone()).collect();
        for (key, object) in service.parsed() {
            assert_eq!(key_of(&object).as_ref(), Some(key));
            assert_eq!(
                service_of(&object),
                Some((service.namespace.clone(), service.name.clone()))
            );
        }
        assert!(keys.iter().any(|k| k.kind == Kind::Deployment));
    }
}

#[test]
fn a_served_copy_is_in_sync_and_a_missing_or_edited_object_is_not() {
    let (work, _) = example_work();
    let mut live = live_of(&work);
    let service = &work[0];
    assert_eq!(
        diff_service(service, &live).unwrap(),
        ServiceDiff::default()
    );

    // Someone scales the Deployment by hand (or removes it).
    let (deploy_key, deploy) = service
        .parsed()
        .find(|(k, _)| k.kind == Kind::Deployment)
        .unwrap();
    let mut edited = as_served(&deploy);
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil:1");
    live.upsert(edited);
    assert_eq!(
        diff_service(service, &live).unwrap().apply,
        std::slice::from_ref(deploy_key)
    );
    live.remove(deploy_key);
    assert_eq!(
        diff_service(service, &live).unwrap().apply,
        std::slice::from_ref(deploy_key)
    );
}

#[test]
fn a_new_source_annotation_alone_is_not_a_change() {
    let (work, _) = example_work();
    let (_, object) = work[0].parsed().next().unwrap();
    let object = &object;
    let mut live = as_served(object);
    live["metadata"]["annotations"]["modelship.dev/source"] = json!("repo@0123:services/x.yaml");
    live["metadata"]["annotations"]["modelship.dev/spec-hash"] = json!("old");
    assert!(in_sync(object, &live));
    live["metadata"]["labels"]["team"] = json!("someone-else");
    assert_eq!(
        in_sync(object, &live),
        object.pointer("/metadata/labels/team").is_none()
    );
}

#[test]
fn server_spellings_and_extra_fields_are_in_sync_and_real_changes_are_not() {
    let labels = json!({"app.kubernetes.io/managed-by": "modelship", "modelship.dev/service": "a"});
    let desired = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "a", "namespace": "ml", "labels": labels},
        "spec": {"template": {"spec": {"containers": [{"name": "server",
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}}}});
    let served = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "a", "namespace": "ml", "uid": "u", "generation": 3, "labels": labels},
        "spec": {"replicas": 4, "template": {"spec": {"dnsPolicy": "ClusterFirst",
            "containers": [{"name": "server", "terminationMessagePath": "/dev/termination-log",
            "resources": {"requests": {"cpu": "1000m", "memory": "1Gi"}},
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}}},
        "status": {"replicas": 4}});
    assert!(in_sync(&desired, &served));
    let mut changed = served.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["env"][1]["value"] = json!("3");
    assert!(!in_sync(&desired, &changed));
    let mut missing = served;
    missing["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .pop();
    assert!(!in_sync(&desired, &missing));
}

#[test]
fn objects_no_longer_desired_are_orphans_of_their_service() {
    let (work, _) = example_work();
    let mut live = live_of(&work);
    let service = &work[0];
    let (_, mut extra) = service.parsed().next().unwrap();
    extra["kind"] = json!("NetworkPolicy");
    extra["apiVersion"] = json!("networking.k8s.io/v1");
    let extra_key = key_of(&extra).unwrap();
    live.upsert(extra);
    let diff = diff_service(service, &live).unwrap();
    assert!(diff.apply.is_empty());
    assert_eq!(diff.orphans, [extra_key]);
}

#[test]
fn pruning_needs_a_valid_repository_and_respects_the_mass_guard() {
    let (work, _) = example_work();
    let live = live_of(&work);
    let all: BTreeSet<ServiceId> = work.iter().map(ServiceWork::id).collect();
    assert_eq!(prune_candidates(&all, true, false, &live), Ok(vec![]));

    let mut one_gone = all.clone();
    let gone = work[0].id();
    one_gone.remove(&gone);
    assert_eq!(
        prune_candidates(&one_gone, true, false, &live),
        Ok(vec![gone.clone()])
    );
    assert_eq!(prune_candidates(&one_gone, false, false, &live), Ok(vec![]));

    let namespace = &work[0].namespace;
    let in_namespace: Vec<&ServiceWork> =
        work.iter().filter(|w| &w.namespace == namespace).collect();
    assert!(
        in_namespace.len() >= 2,
        "example has 2+ services per namespace"
    );
    let others: BTreeSet<ServiceId> = all
        .iter()
        .filter(|(n, _)| n != namespace)
        .cloned()
        .collect();
    let error = prune_candidates(&others, true, false, &live).unwrap_err();
    assert_eq!(error.namespace, *namespace);
    assert_eq!(error.would_prune, in_namespace.len());
    assert_eq!(
        prune_candidates(&others, true, true, &live).unwrap().len(),
        in_namespace.len()
    );
}

#[test]
fn objects_without_our_labels_are_never_held() {
    let mut live = LiveMap::new();
    let foreign = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "x", "namespace": "ml", "labels": {"app": "x"}}});
    assert_eq!(live.upsert(foreign), None);
    assert!(live.is_empty());
}
