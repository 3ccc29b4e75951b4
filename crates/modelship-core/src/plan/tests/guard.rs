//! The mass-prune guard over plans of live services written in folders.

use serde_json::Value;

use super::*;

/// A live ServiceAccount of service `ns/name`, compiled from `file`.
pub(super) fn mk_service_from(namespace: &str, name: &str, file: &str) -> Value {
    let mut object = mk_other_service(namespace, name);
    object["metadata"]["annotations"] =
        json!({"modelship.dev/source": format!("org/repo@abc:{file}")});
    object
}

/// The guard's verdict when the repository keeps `kept` of the live services `live`
/// (namespace, name, file).
fn guard(live: &[(&str, &str, &str)], kept: &[&str]) -> Option<MassPrune> {
    let set: LiveSet = live
        .iter()
        .map(|(ns, name, file)| mk_service_from(ns, name, file))
        .collect();
    let desired = DesiredState {
        services: live
            .iter()
            .filter(|(_, name, _)| kept.contains(name))
            .map(|(ns, name, file)| DesiredService {
                id: ServiceId::new(*ns, *name).unwrap(),
                file: file.to_string(),
                objects: vec![mk_service_from(ns, name, file)],
            })
            .collect(),
        invalid: vec![],
        repository_valid: true,
    };
    check_mass_prune(&plan(&desired, &set).unwrap())
}

#[test]
fn mass_prune_guard_allows_a_namespace_only_service_and_catches_wipes_and_folders() {
    let repo = [
        ("llm", "chat-llm", "services/llm/chat.yaml"),
        ("inference", "embed", "services/inference/embed.yaml"),
        ("inference", "rank", "services/inference/rank.yaml"),
        ("risk", "fraud", "services/risk/fraud.yaml"),
        ("risk", "score", "services/risk/score.yaml"),
    ];
    // The only service of namespace llm goes: allowed.
    assert_eq!(guard(&repo, &["embed", "rank", "fraud", "score"]), None);
    // Two of five go: allowed.
    assert_eq!(guard(&repo, &["embed", "fraud", "score"]), None);
    // Three of five go: most of the repository.
    let tripped = guard(&repo, &["embed", "fraud"]).expect("three of five");
    assert_eq!(
        tripped.reasons,
        [MassPruneReason::MostOfRepository {
            removed: 3,
            total: 5
        }]
    );
    assert_eq!(
        tripped.kept,
        [
            ServiceId::new("inference", "rank").unwrap(),
            ServiceId::new("llm", "chat-llm").unwrap(),
            ServiceId::new("risk", "score").unwrap(),
        ]
    );
    // A wiped repository.
    assert!(guard(&repo, &[]).is_some());
    // A single-service repository may lose its service.
    assert_eq!(guard(&repo[..1], &[]), None);

    // A team folder of three vanishes from a large repository: caught.
    let mut big: Vec<(String, String, String)> = (0..10)
        .map(|i| {
            (
                "a".to_string(),
                format!("keep-{i}"),
                format!("services/a/keep-{i}.yaml"),
            )
        })
        .collect();
    for i in 0..3 {
        big.push((
            "b".into(),
            format!("team-{i}"),
            format!("services/team/t{i}.yaml"),
        ));
    }
    let big_refs: Vec<(&str, &str, &str)> = big
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    let keep: Vec<String> = (0..10).map(|i| format!("keep-{i}")).collect();
    let keep_refs: Vec<&str> = keep.iter().map(String::as_str).collect();
    let tripped = guard(&big_refs, &keep_refs).expect("team folder");
    assert_eq!(
        tripped.reasons,
        [MassPruneReason::Folder {
            folder: "services/team".into(),
            removed: 3
        }]
    );
    // Two of that folder's three go: allowed.
    let mut keep_one = keep_refs.clone();
    keep_one.push("team-0");
    assert_eq!(guard(&big_refs, &keep_one), None);
}
