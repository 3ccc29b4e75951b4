//! The writes of rollouts beside the plan: after an apply, [`record`] clears the command
//! annotations the advance read and creates one core/v1 Event per transition on the
//! service's stable Deployment; [`send_command`] writes a person's command (`modelship
//! rollout approve|abort|retry`). All of it goes through the one [`Writer`].
//!
//! Commands are written with a JSON merge patch under the field manager
//! [`COMMAND_MANAGER`], never `modelship`'s: server-side apply of modelship's own objects
//! neither claims nor removes them, and a merge patch cannot create a missing Deployment.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Error, ServiceRollout, deployment_key, is_warning, stored_state};
use crate::cluster::{self, Writer};
use crate::compile::Track;
use crate::meta::ServiceId;
use crate::rollout::{ANNOTATION_COMMAND, Command, CommandRequest, RolloutState, Transition};

/// The field manager of rollout commands.
pub const COMMAND_MANAGER: &str = "modelship-rollout-command";

/// The component named on the Events modelship records.
const EVENT_COMPONENT: &str = "modelship";

/// After the desired objects of `rollouts` were applied: clears the command annotations
/// they read and records their transitions as Events. Returns the writes that failed
/// (the rollout itself is already stored; a missed Event is reported, not retried).
pub async fn record(
    writer: &Writer,
    rollouts: &[&ServiceRollout],
    now: Timestamp,
) -> Vec<cluster::Error> {
    let mut failures = Vec::new();
    for rollout in rollouts {
        let key = deployment_key(&rollout.id, Track::Stable);
        if rollout.command_annotation.is_some()
            && let Err(error) = writer
                .annotate(&key, "apps/v1", COMMAND_MANAGER, ANNOTATION_COMMAND, None)
                .await
        {
            failures.push(error);
        }
        for (index, transition) in rollout.transitions.iter().enumerate() {
            let body = event_body(rollout, transition, now, index);
            if let Err(error) = writer.record_event(rollout.id.namespace(), &body).await {
                failures.push(error);
            }
        }
    }
    failures
}

/// The core/v1 Event of one transition, on the stable Deployment `<name>`. Its name is
/// unique per transition (`<name>.<nanoseconds><index>`, as kubectl's are).
pub fn event_body(
    rollout: &ServiceRollout,
    transition: &Transition,
    now: Timestamp,
    index: usize,
) -> Value {
    let (namespace, name) = (rollout.id.namespace(), rollout.id.name());
    let time = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut involved = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "namespace": namespace,
        "name": name,
    });
    if let Some(uid) = &rollout.stable_uid {
        involved["uid"] = json!(uid);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{name}.{:x}{index:02x}", now.as_nanosecond()),
            "namespace": namespace,
        },
        "involvedObject": involved,
        "reason": reason(transition),
        "message": transition.message,
        "type": if is_warning(transition.to) { "Warning" } else { "Normal" },
        "source": {"component": EVENT_COMPONENT},
        "reportingComponent": EVENT_COMPONENT,
        "reportingInstance": EVENT_COMPONENT,
        "firstTimestamp": time,
        "lastTimestamp": time,
        "count": 1,
    })
}

/// `RolloutProgressing`, `RolloutRolledBack`...: the Event reason of a transition.
fn reason(transition: &Transition) -> String {
    let camel: String = transition
        .to
        .as_str()
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect();
    format!("Rollout{camel}")
}

/// Writes a person's command on the stable Deployment of `id`, bound to the template hash
/// of the rollout it finds there, and returns the state it was sent for. The engine acts
/// on it at its next advance of the service (`modelship apply`, or at once under `run`).
pub async fn send_command(
    writer: &Writer,
    id: &ServiceId,
    command: Command,
) -> Result<(CommandRequest, RolloutState), Error> {
    send_command_for(writer, id, command, None).await
}

/// [`send_command`], bound to the rollout of `revision` when one is given: refused
/// ([`Error::OtherRevision`]) when the rollout state names another revision. The command
/// carries the template hash of the state it was checked against, so a rollout that
/// starts between the check and the write ignores it.
pub async fn send_command_for(
    writer: &Writer,
    id: &ServiceId,
    command: Command,
    revision: Option<&str>,
) -> Result<(CommandRequest, RolloutState), Error> {
    let key = deployment_key(id, Track::Stable);
    let live = writer
        .get(&key, "apps/v1")
        .await?
        .ok_or_else(|| Error::NoDeployment(id.clone()))?;
    let has_state = super::annotation(Some(&live), crate::rollout::ANNOTATION_ROLLOUT).is_some();
    if !has_state {
        return Err(Error::NoRollout(id.clone()));
    }
    let state = stored_state(Some(&live), &mut Vec::new());
    if let Some(expected) = revision
        && state.revision != expected
    {
        return Err(Error::OtherRevision {
            id: id.clone(),
            expected: expected.to_string(),
            found: state.revision,
        });
    }
    let request = CommandRequest {
        command,
        template_hash: Some(state.template_hash.clone()),
    };
    let text = request.to_string();
    writer
        .annotate(
            &key,
            "apps/v1",
            COMMAND_MANAGER,
            ANNOTATION_COMMAND,
            Some(&text),
        )
        .await?;
    Ok((request, state))
}
