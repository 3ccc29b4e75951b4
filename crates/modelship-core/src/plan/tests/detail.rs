//! What the renderings list, and plans made with less detail.

use super::guard::mk_service_from;
use super::*;
use crate::plan::Detail;

#[test]
fn text_and_markdown_list_only_services_that_change_and_count_the_rest() {
    let services: Vec<&str> = vec!["alpha", "beta", "gamma"];
    let live: LiveSet = services
        .iter()
        .map(|name| mk_service_from("ns", name, "services/a.yaml"))
        .collect();
    let mut changed = mk_service_from("ns", "beta", "services/a.yaml");
    changed["metadata"]["labels"]["team"] = json!("new");
    let desired = DesiredState {
        services: services
            .iter()
            .map(|name| DesiredService {
                id: ServiceId::new("ns", *name).unwrap(),
                file: "services/a.yaml".into(),
                objects: vec![if *name == "beta" {
                    changed.clone()
                } else {
                    mk_service_from("ns", name, "services/a.yaml")
                }],
            })
            .collect(),
        invalid: vec![],
        repository_valid: true,
    };
    let plan = plan(&desired, &live).unwrap();
    let text = render::render(&plan, render::Format::Text, false);
    assert!(text.contains("ns/beta"), "{text}");
    assert!(
        !text.contains("ns/alpha") && !text.contains("ns/gamma"),
        "{text}"
    );
    assert!(text.contains("and 2 services unchanged"), "{text}");
    let markdown = render::render(&plan, render::Format::Markdown, false);
    assert!(markdown.contains("`ns/beta`"), "{markdown}");
    assert!(!markdown.contains("ns/alpha"), "{markdown}");
    assert!(markdown.contains("2 more services unchanged"), "{markdown}");
    let json = render::render(&plan, render::Format::Json, false);
    for name in services {
        assert!(json.contains(&format!("\"{name}\"")), "json keeps {name}");
    }
}

#[test]
fn a_decisions_plan_decides_as_the_full_one_without_patches_or_diffs() {
    let live: LiveSet = [
        mk_live(&mk_deployment("img:1", json!("1"))),
        mk_other_service("ns", "gone"),
    ]
    .into_iter()
    .collect();
    let desired = desired_of(vec![mk_deployment("img:2", json!("2"))]);
    let full = plan(&desired, &live).unwrap();
    let decisions = plan_with(&desired, &live, Detail::Decisions).unwrap();
    assert!(full.has_changes());
    let actions = |p: &Plan| -> Vec<(String, Action, usize)> {
        p.services
            .iter()
            .flat_map(|s| &s.objects)
            .map(|o| (o.key.to_string(), o.action, o.changes.len()))
            .collect()
    };
    assert_eq!(actions(&full), actions(&decisions));
    assert!(
        full.services
            .iter()
            .flat_map(|s| &s.objects)
            .any(|o| !o.diff.is_empty())
    );
    for object in decisions.services.iter().flat_map(|s| &s.objects) {
        assert!(
            object.diff.is_empty() && object.patch.0.is_empty(),
            "{}",
            object.key
        );
    }
}
