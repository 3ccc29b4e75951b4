//! The simulated Deployment controller.
//!
//! A background task that plays kube-controller-manager for Deployments: whenever a
//! Deployment's status does not describe its current generation, it waits the configured
//! delay and then writes a status through the `/status` write path (bumping
//! resourceVersion, not generation, and emitting `MODIFIED`). Status reports
//! `spec.replicas` (default 1) as ready and available with conditions `Available` and
//! `Progressing` (reason `NewReplicaSetAvailable`), unless the Deployment is held
//! unready, in which case no replica is ready and `Available` is `False`.
//!
//! [`desired_status`] is the pure part; [`run`] is the loop.

use super::ops::{WriteCtx, WriteMode, key_of};
use super::server::Shared;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

const MANAGER: &str = "kube-controller-manager";

fn replicas(deploy: &Value) -> i64 {
    deploy
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn generation(deploy: &Value) -> i64 {
    deploy
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// The status the controller converges a Deployment to.
pub fn desired_status(deploy: &Value, held: bool, now: &str) -> Value {
    let n = replicas(deploy);
    let name = deploy
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let cond = |kind: &str, status: &str, reason: &str, message: String| {
        json!({ "type": kind, "status": status, "reason": reason, "message": message,
                "lastUpdateTime": now, "lastTransitionTime": now })
    };
    let mut status = json!({
        "observedGeneration": generation(deploy),
        "replicas": n,
        "updatedReplicas": n,
    });
    if held && n > 0 {
        status["unavailableReplicas"] = json!(n);
        status["conditions"] = json!([
            cond(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into()
            ),
            cond(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{name}\" is progressing.")
            ),
        ]);
    } else {
        if n > 0 {
            status["readyReplicas"] = json!(n);
            status["availableReplicas"] = json!(n);
        }
        status["conditions"] = json!([
            cond(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into()
            ),
            cond(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{name}\" has successfully progressed.")
            ),
        ]);
    }
    status
}

/// Whether the live status already says what [`desired_status`] would (timestamps aside).
pub fn converged(deploy: &Value, held: bool) -> bool {
    let want = desired_status(deploy, held, "");
    let have = deploy.get("status").cloned().unwrap_or(Value::Null);
    let fields = [
        "observedGeneration",
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
    ];
    let same_numbers = fields.iter().all(|f| want.get(*f) == have.get(*f));
    let summary = |s: &Value| -> Vec<(Value, Value, Value)> {
        s.get("conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| (c["type"].clone(), c["status"].clone(), c["reason"].clone()))
            .collect()
    };
    same_numbers && summary(&want) == summary(&have)
}

type Key = (String, String);

/// What the controller has already looked at: the resourceVersion up to which
/// Deployment events were examined, and the held set at that time.
#[derive(Debug, Default)]
struct Seen {
    cursor: u64,
    held: HashSet<Key>,
}

/// Examines the Deployments changed since the last look (all of them after a change of
/// the held set or when the history no longer reaches back): for each, `Some` state
/// (generation, held) when its status lags, `None` when it has converged.
fn examine(shared: &Shared, seen: &mut Seen) -> Vec<(Key, Option<(i64, bool)>)> {
    let held = shared
        .held
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let cluster = shared.lock();
    let Some(rt) = cluster.registry.find("apps", "v1", "deployments") else {
        return Vec::new();
    };
    let res = key_of(rt);
    let changed: Option<HashSet<Key>> = match (
        held == seen.held,
        cluster.store.events_since(&res, seen.cursor),
    ) {
        (true, Ok(events)) => Some(
            events
                .iter()
                .filter_map(|e| object_key(&e.object))
                .collect(),
        ),
        _ => None,
    };
    seen.cursor = cluster.store.current_rv();
    seen.held = held;
    cluster
        .store
        .list(&res, None)
        .filter_map(|d| {
            let key = object_key(d)?;
            if changed.as_ref().is_some_and(|c| !c.contains(&key)) {
                return None;
            }
            let is_held = seen.held.contains(&key);
            let state = (!converged(d, is_held)).then(|| (generation(d), is_held));
            Some((key, state))
        })
        .collect()
}

fn object_key(obj: &Value) -> Option<Key> {
    let ns = obj.pointer("/metadata/namespace")?.as_str()?;
    let name = obj.pointer("/metadata/name")?.as_str()?;
    Some((ns.to_string(), name.to_string()))
}

fn write_status(shared: &Shared, (ns, name): &Key) {
    let held = shared
        .held
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(&(ns.clone(), name.clone()));
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    shared.write(|c| {
        let Some(rt) = c.registry.find("apps", "v1", "deployments").cloned() else {
            return;
        };
        let Ok(live) = c.get(&rt, Some(ns), name) else {
            return;
        };
        if converged(&live, held) {
            return;
        }
        let mut new = live.clone();
        new["status"] = desired_status(&live, held, &now);
        let ctx = WriteCtx {
            dry_run: false,
            manager: MANAGER,
            now: &now,
        };
        // A failed status write (the object changed shape meanwhile) is retried on the next pass.
        let _ = c.commit(&rt, ns, name, Some(live), new, ctx, WriteMode::Status);
    });
}

/// Runs the controller until the sandbox stops (the `changes` channel closes).
pub async fn run(shared: Arc<Shared>, delay: Duration) {
    let mut changes = shared.changes.subscribe();
    let mut due: HashMap<Key, ((i64, bool), Instant)> = HashMap::new();
    let mut seen = Seen::default();
    loop {
        let now = Instant::now();
        for (key, state) in examine(&shared, &mut seen) {
            match (state, due.get(&key)) {
                (None, _) => {
                    due.remove(&key);
                }
                (Some(state), Some((pending, _))) if *pending == state => {}
                (Some(state), _) => {
                    due.insert(key, (state, now + delay));
                }
            }
        }
        let ready: Vec<Key> = due
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &ready {
            due.remove(key);
            write_status(&shared, key);
        }
        if !ready.is_empty() {
            continue;
        }
        let next = due.values().map(|(_, at)| *at).min();
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = async { match next { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(replicas: Option<i64>, generation: i64) -> Value {
        let mut d = json!({ "metadata": { "name": "web", "namespace": "ns", "generation": generation }, "spec": {} });
        if let Some(r) = replicas {
            d["spec"]["replicas"] = json!(r);
        }
        d
    }

    #[test]
    fn ready_status_reports_spec_replicas() {
        let s = desired_status(&deploy(Some(3), 2), false, "t");
        assert_eq!(s["observedGeneration"], 2);
        assert_eq!(s["readyReplicas"], 3);
        assert_eq!(s["availableReplicas"], 3);
        assert_eq!(s["conditions"][1]["reason"], "NewReplicaSetAvailable");
        assert_eq!(desired_status(&deploy(None, 1), false, "t")["replicas"], 1);
    }

    #[test]
    fn held_deployments_are_unavailable() {
        let s = desired_status(&deploy(Some(2), 1), true, "t");
        assert!(s.get("readyReplicas").is_none());
        assert_eq!(s["conditions"][0]["status"], "False");
    }

    #[test]
    fn convergence_ignores_timestamps_but_not_generation() {
        let mut d = deploy(Some(2), 1);
        assert!(!converged(&d, false));
        d["status"] = desired_status(&d, false, "earlier");
        assert!(converged(&d, false));
        assert!(!converged(&d, true));
        d["metadata"]["generation"] = json!(2);
        assert!(!converged(&d, false));
    }
}
