//! Ownership in a plan: modelship creates an object only where none of that name exists,
//! and never takes one over silently.
//!
//! ```text
//! plan_service: an object of the live set labelled for another service ─▶ Conflict
//! claim(plan, found): the objects it would create that exist (one lookup by name)
//!   ours (this instance and service: a cache that lagged) ────────────▶ Create, as planned
//!   not modelship's, annotated modelship.dev/adopt: <this service> ───▶ Update, Adopted
//!   anything else (unmanaged, another instance, another service) ─────▶ Conflict
//! any Conflict ─▶ the service is Blocked(Ownership): nothing of it is written
//! ```
//!
//! Pure: the caller looks the objects up (the engine's `Owners`).

use serde::Serialize;
use serde_json::Value;

use super::{
    Action, BlockReason, DesiredService, Detail, ObjectKey, ObjectPlan, ServicePlan, ServiceStatus,
    block, plan_object,
};
use crate::meta::{LABEL_SERVICE, ServiceId};
use crate::ownership::{Instance, Occupant, adopts};

/// Why an object of a service's plan exists without being the service's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "ownership", rename_all = "kebab-case")]
pub enum Ownership {
    /// Someone else holds it: the service is blocked.
    Conflict(Occupant),
    /// A person handed it to the service (`modelship.dev/adopt`): it is updated and gets
    /// the service's labels.
    Adopted,
}

/// Marks the objects of `plan` that it would create and that exist in `found` (the live
/// objects of those names, as the cluster holds them): adopted when a person annotated
/// them for this service, conflicts otherwise. A conflict blocks the service. Objects of
/// `found` that the plan does not create are ignored.
pub fn claim(
    plan: &mut ServicePlan,
    desired: &DesiredService,
    found: &[Value],
    instance: &Instance,
    detail: Detail,
) {
    for live in found {
        let Some(key) = ObjectKey::of(live) else {
            continue;
        };
        let Some(index) = plan
            .objects
            .iter()
            .position(|o| o.key == key && o.action == Action::Create)
        else {
            continue;
        };
        let Some(occupant) = instance.occupant(live, &plan.id) else {
            // Ours already (a watch that has not caught up): applying it is safe.
            continue;
        };
        let Some(wanted) = desired
            .objects
            .iter()
            .find(|o| ObjectKey::of(o).as_ref() == Some(&key))
        else {
            continue;
        };
        plan.objects[index] = if occupant == Occupant::Unmanaged && adopts(live, &plan.id) {
            let (mut adopted, _) = plan_object(key, wanted, Some(live), detail);
            adopted.ownership = Some(Ownership::Adopted);
            adopted
        } else {
            conflict(key, wanted, occupant, detail)
        };
    }
    if plan.status == ServiceStatus::Present && plan.conflicts().next().is_some() {
        block(plan, BlockReason::Ownership);
    }
}

/// The plan of an object that exists and is held by `occupant`: blocked, with the diff of
/// what would have been created.
pub(super) fn conflict(
    key: ObjectKey,
    desired: &Value,
    occupant: Occupant,
    detail: Detail,
) -> ObjectPlan {
    let (mut plan, _) = plan_object(key, desired, None, detail);
    plan.action = Action::Blocked;
    plan.ownership = Some(Ownership::Conflict(occupant));
    plan
}

/// The other service of this instance that a live object of ours belongs to, if it is not
/// `id`'s.
pub(super) fn other_service(live: &Value, id: &ServiceId) -> Option<Occupant> {
    let service = live
        .pointer("/metadata/labels")
        .and_then(|l| l.get(LABEL_SERVICE))
        .and_then(Value::as_str)?;
    let owner = ServiceId::new(id.namespace(), service).ok()?;
    (owner != *id).then_some(Occupant::Service { id: owner })
}

/// What a person reads about a service blocked by ownership: each conflict with how to
/// hand the object over.
pub fn conflict_message(plan: &ServicePlan) -> String {
    let lines: Vec<String> = plan
        .conflicts()
        .map(|(object, occupant)| match occupant {
            Occupant::Unmanaged => format!(
                "{} {occupant}: modelship does not take it over; to hand it to this \
                 service, annotate it {}={}",
                object.key,
                crate::ownership::ANNOTATION_ADOPT,
                plan.id
            ),
            _ => format!("{} {occupant}", object.key),
        })
        .collect();
    lines.join("; ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::{LiveSet, plan_service};
    use crate::state::DesiredService;

    fn object(kind: &str, name: &str, labels: Value, annotations: Value) -> Value {
        json!({"apiVersion": "v1", "kind": kind,
            "metadata": {"name": name, "namespace": "risk",
                "labels": labels, "annotations": annotations},
            "spec": {"selector": {"app": name}}})
    }

    fn ours(kind: &str, name: &str, service: &str) -> Value {
        object(
            kind,
            name,
            json!({"app.kubernetes.io/managed-by": "modelship",
                   "modelship.dev/instance": "modelship", "modelship.dev/service": service}),
            json!({}),
        )
    }

    fn service() -> DesiredService {
        DesiredService {
            id: "risk/fraud".parse().unwrap(),
            file: "services/fraud.yaml".into(),
            objects: vec![
                ours("ServiceAccount", "fraud", "fraud"),
                ours("Service", "fraud", "fraud"),
            ],
        }
    }

    fn planned(found: &[Value]) -> ServicePlan {
        let desired = service();
        let mut plan = plan_service(&desired, &LiveSet::new(), Detail::Full).unwrap();
        claim(
            &mut plan,
            &desired,
            found,
            &Instance::default(),
            Detail::Full,
        );
        plan
    }

    fn action_of<'a>(plan: &'a ServicePlan, kind: &str) -> &'a ObjectPlan {
        plan.objects.iter().find(|o| o.key.kind == kind).unwrap()
    }

    #[test]
    fn nothing_found_creates() {
        let plan = planned(&[]);
        assert_eq!(plan.status, ServiceStatus::Present);
        assert_eq!(plan.count(Action::Create), 2);
        assert!(plan.conflicts().next().is_none());
    }

    #[test]
    fn an_object_of_another_tool_blocks_the_whole_service() {
        let foreign = object(
            "Service",
            "fraud",
            json!({"app": "payments-api"}),
            json!({}),
        );
        let plan = planned(&[foreign]);
        assert_eq!(plan.status, ServiceStatus::Blocked(BlockReason::Ownership));
        assert!(!plan.has_changes(), "nothing of the service is written");
        let service = action_of(&plan, "Service");
        assert_eq!(service.action, Action::Blocked);
        assert_eq!(
            service.ownership,
            Some(Ownership::Conflict(Occupant::Unmanaged))
        );
        assert_eq!(action_of(&plan, "ServiceAccount").action, Action::Blocked);
        assert_eq!(
            conflict_message(&plan),
            "Service risk/fraud exists, not managed by modelship: modelship does not take \
             it over; to hand it to this service, annotate it modelship.dev/adopt=risk/fraud"
        );
    }

    #[test]
    fn an_annotated_object_is_adopted_with_its_diff() {
        let handed = object(
            "Service",
            "fraud",
            json!({"app": "payments-api"}),
            json!({"modelship.dev/adopt": "risk/fraud"}),
        );
        let plan = planned(&[handed]);
        assert_eq!(plan.status, ServiceStatus::Present);
        let service = action_of(&plan, "Service");
        assert_eq!(service.action, Action::Update);
        assert_eq!(service.ownership, Some(Ownership::Adopted));
        assert!(
            service.diff.contains("modelship.dev/service"),
            "{}",
            service.diff
        );
        assert_eq!(action_of(&plan, "ServiceAccount").action, Action::Create);
    }

    #[test]
    fn adoption_is_for_the_named_service_and_unmanaged_objects_only() {
        let cases = [
            (
                object(
                    "Service",
                    "fraud",
                    json!({}),
                    json!({"modelship.dev/adopt": "risk/other"}),
                ),
                Occupant::Unmanaged,
            ),
            (
                object(
                    "Service",
                    "fraud",
                    json!({"app.kubernetes.io/managed-by": "modelship",
                           "modelship.dev/instance": "team-b", "modelship.dev/service": "fraud"}),
                    json!({"modelship.dev/adopt": "risk/fraud"}),
                ),
                Occupant::Instance {
                    name: "team-b".into(),
                },
            ),
            (
                object(
                    "Service",
                    "fraud",
                    json!({"app.kubernetes.io/managed-by": "modelship",
                           "modelship.dev/service": "other"}),
                    json!({"modelship.dev/adopt": "risk/fraud"}),
                ),
                Occupant::Service {
                    id: "risk/other".parse().unwrap(),
                },
            ),
        ];
        for (found, occupant) in cases {
            let plan = planned(std::slice::from_ref(&found));
            assert_eq!(
                plan.status,
                ServiceStatus::Blocked(BlockReason::Ownership),
                "{found}"
            );
            assert_eq!(
                action_of(&plan, "Service").ownership,
                Some(Ownership::Conflict(occupant))
            );
        }
    }

    #[test]
    fn the_services_own_object_found_late_is_created_as_planned() {
        let plan = planned(&[ours("Service", "fraud", "fraud")]);
        assert_eq!(plan.status, ServiceStatus::Present);
        assert_eq!(plan.count(Action::Create), 2);
    }

    #[test]
    fn an_object_of_another_service_in_the_live_set_is_a_conflict() {
        let desired = service();
        let live: LiveSet = [ours("Service", "fraud", "other")].into_iter().collect();
        let plan = plan_service(&desired, &live, Detail::Full).unwrap();
        assert_eq!(plan.status, ServiceStatus::Blocked(BlockReason::Ownership));
        assert_eq!(
            action_of(&plan, "Service").ownership,
            Some(Ownership::Conflict(Occupant::Service {
                id: "risk/other".parse().unwrap()
            }))
        );
    }
}
