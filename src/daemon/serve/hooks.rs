//! `pull_request` and `issue_comment` deliveries on `/hooks/github`, after the signature
//! check and the delivery dedupe of `http.rs`: parsed into typed events and queued for
//! the pull-request worker (`pulls/`). Nothing is done inside the request.
//!
//! Deliveries are meant for the leader: it labels its Pod `modelship.dev/leader: "true"`
//! (`leader/label.rs`) and the Service `modelship-webhooks` selects that label, so a
//! standby sees one only in the moment of a failover (or when routing is unavailable,
//! `webhook_routing` on `/status`). It refuses it with 503 (before the delivery dedupe, so
//! a redelivery is acted on), counted as `modelship_webhooks_total{outcome="standby"}`:
//! GitHub then shows the delivery as failed, and it can be redelivered from the webhook's
//! page, rather than lost as handled.
//!
//! | delivery | answer |
//! |---|---|
//! | no GitHub credentials (`--github-token-file`, App) | 204, not acted on |
//! | on a standby replica | 503, not queued and not remembered (only the leader acts) |
//! | not the JSON GitHub sends | 400 |
//! | an action or comment modelship ignores, a PR into another branch | 204 |
//! | about another repository than the followed one (or from another App installation) | 403, counted as `foreign_repository` (`foreign_installation`, `repository_unknown`) |
//! | a PR event or a `/modelship` command | 202, queued |
//! | the same while `pulls::QUEUE_CAPACITY` pieces of work wait | 503, not queued (`queue_full`) |

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::state::HttpState;
use crate::daemon::pulls::Job;
use crate::daemon::pulls::trust::Foreign;
use crate::forge::events::{self, Event};

/// Answers a verified pull-request delivery that reached a standby replica: 503, so that
/// GitHub records it as failed (and it can be redelivered from the webhook's page) rather
/// than as handled. The delivery id is not remembered, so a redelivery is acted on.
pub(super) fn refused_by_standby(state: &HttpState) -> Response {
    tracing::warn!(
        "pull-request webhook on a standby replica: refused (deliveries go to the leader through the Service modelship-webhooks)"
    );
    state.metrics.webhook("standby");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "standby replica: pull-request deliveries go to the leader (Service modelship-webhooks); redeliver this one",
    )
        .into_response()
}

/// Answers one verified, first-time pull-request delivery on the leader.
/// A delivery refused because the queue is full is forgotten by the dedupe (`delivery`),
/// so its redelivery is acted on.
pub(super) async fn pull_event(
    state: &HttpState,
    event: &str,
    body: &[u8],
    delivery: &str,
) -> Response {
    let Some(queue) = &state.pulls else {
        state.metrics.webhook("pulls_not_configured");
        return (
            StatusCode::NO_CONTENT,
            "pull requests are not acted on: no GitHub credentials",
        )
            .into_response();
    };
    let parsed = events::parse(event, body);
    let about = match &parsed {
        Ok(Event::PullRequest(pull)) => Some((&pull.repo, pull.installation)),
        Ok(Event::Command(command)) => Some((&command.repo, command.installation)),
        Ok(Event::Ignored(_)) | Err(_) => None,
    };
    // Before anything else is looked at: this daemon acts for one repository.
    if let Some((repo, installation)) = about
        && let Err(foreign) = queue.followed.check(repo, installation)
    {
        return refused_foreign(state, &foreign);
    }
    let job = match parsed {
        Err(error) => {
            tracing::warn!(%error, "webhook refused");
            state.metrics.webhook(error.metric_label());
            return (StatusCode::BAD_REQUEST, error.to_string()).into_response();
        }
        Ok(Event::Ignored(reason)) => {
            tracing::debug!(%reason, "webhook ignored");
            state.metrics.webhook("ignored");
            return StatusCode::NO_CONTENT.into_response();
        }
        Ok(Event::PullRequest(pull)) if pull.base_branch != state.branch => {
            tracing::debug!(base = %pull.base_branch, "pull request into another branch: ignored");
            state.metrics.webhook("ignored");
            return StatusCode::NO_CONTENT.into_response();
        }
        Ok(Event::PullRequest(pull)) => {
            tracing::info!(repo = %pull.repo, pr = pull.number, action = ?pull.action, "pull request: queued");
            Job::Pull(pull)
        }
        Ok(Event::Command(command)) => {
            tracing::info!(repo = %command.repo, pr = command.number, user = %command.user, "pull-request command: queued");
            Job::Command(command)
        }
    };
    if let Err(full) = queue.push(job, delivery) {
        tracing::warn!(%full, "pull-request webhook refused: the queue is full");
        state.metrics.webhook("queue_full");
        if let Ok(mut seen) = state.deliveries.lock() {
            seen.forget(delivery);
        }
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{full}: redeliver this one later"),
        )
            .into_response();
    }
    state.metrics.webhook("queued");
    (StatusCode::ACCEPTED, "queued").into_response()
}

/// Answers a delivery about another repository (or App installation) than the followed
/// one: 403, nothing queued, counted by why.
fn refused_foreign(state: &HttpState, foreign: &Foreign) -> Response {
    tracing::warn!(%foreign, "webhook refused");
    state.metrics.webhook(foreign.metric_label());
    (StatusCode::FORBIDDEN, foreign.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use crate::daemon::pulls::{Followed, Job, PullQueue};
    use crate::daemon::serve::metrics::Metrics;
    use crate::daemon::serve::router;
    use crate::daemon::serve::state::HttpState;
    use crate::source::Secret;
    use crate::source::webhook::sign;

    const SECRET: &str = "s3cret";

    fn state(pulls: Option<PullQueue>, leader: bool) -> HttpState {
        let state = HttpState {
            board: Arc::default(),
            metrics: Arc::new(Metrics::new()),
            trigger: Arc::default(),
            webhook_secret: Some(Secret::new(SECRET)),
            branch: "main".into(),
            pulls,
            deliveries: Arc::default(),
        };
        state.board.try_write().unwrap().leader = leader;
        state
    }

    fn opened(base: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "action": "opened",
            "number": 4,
            "pull_request": {"number": 4, "head": {"sha": "abc", "ref": "f", "repo": null},
                             "base": {"ref": base}, "labels": []},
            "repository": {"full_name": "acme/models"},
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn deliveries_of_another_repository_or_installation_are_refused_with_403() {
        let followed = Followed::new("acme/models".parse().ok());
        let queue = PullQueue::new(followed.clone());
        let leader = state(Some(queue.clone()), true);
        let mut other = serde_json::from_slice::<serde_json::Value>(&opened("main")).unwrap();
        other["repository"]["full_name"] = "evil/models".into();
        let other = serde_json::to_vec(&other).unwrap();
        assert_eq!(deliver(&leader, other, "f1").await, 403);
        let mut shouting = serde_json::from_slice::<serde_json::Value>(&opened("main")).unwrap();
        shouting["repository"]["full_name"] = "ACME/Models".into();
        let shouting = serde_json::to_vec(&shouting).unwrap();
        assert_eq!(
            deliver(&leader, shouting, "f2").await,
            202,
            "names are case-insensitive"
        );
        followed.learn_installation(Some(7));
        let mut installed = serde_json::from_slice::<serde_json::Value>(&opened("main")).unwrap();
        installed["installation"] = serde_json::json!({"id": 8});
        let installed = serde_json::to_vec(&installed).unwrap();
        assert_eq!(deliver(&leader, installed, "f3").await, 403);
        assert_eq!(queue.drain().len(), 1, "only the followed repository's");
        let text = leader.metrics.encode();
        assert!(
            text.contains(r#"modelship_webhooks_total{outcome="foreign_repository"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"modelship_webhooks_total{outcome="foreign_installation"} 1"#),
            "{text}"
        );
    }

    async fn deliver(state: &HttpState, body: Vec<u8>, delivery: &str) -> u16 {
        let request = Request::post("/hooks/github")
            .header("x-github-event", "pull_request")
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", sign(SECRET.as_bytes(), &body))
            .body(Body::from(body))
            .unwrap();
        router(state.clone())
            .oneshot(request)
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn pull_request_events_are_queued_on_the_leader_only_and_once() {
        let queue = PullQueue::new(Followed::new("acme/models".parse().ok()));
        let leader = state(Some(queue.clone()), true);
        assert_eq!(deliver(&leader, opened("main"), "d1").await, 202);
        assert_eq!(
            deliver(&leader, opened("main"), "d1").await,
            200,
            "a redelivery"
        );
        assert_eq!(
            deliver(&leader, opened("release"), "d2").await,
            204,
            "another base"
        );
        let jobs = queue.drain();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert!(matches!(&jobs[0], Job::Pull(p) if p.number == 4));

        let standby = state(Some(queue.clone()), false);
        assert_eq!(deliver(&standby, opened("main"), "d3").await, 503);
        assert_eq!(
            deliver(&standby, opened("main"), "d3").await,
            503,
            "not remembered: a redelivery is not taken for a duplicate"
        );
        standby.board.try_write().unwrap().leader = true;
        assert_eq!(
            deliver(&standby, opened("main"), "d3").await,
            202,
            "the same delivery, once this replica leads"
        );
        assert_eq!(queue.drain().len(), 1);
        let off = state(None, true);
        assert_eq!(deliver(&off, opened("main"), "d4").await, 204);
        assert!(
            queue.drain().is_empty(),
            "nothing queued by a standby or without GitHub"
        );
        let text = off.metrics.encode();
        assert!(
            text.contains(r#"modelship_webhooks_total{outcome="pulls_not_configured"} 1"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_full_queue_refuses_deliveries_with_503_and_counts_them() {
        let queue = PullQueue::new(Followed::new("acme/models".parse().ok()));
        let leader = state(Some(queue.clone()), true);
        for n in 0..crate::daemon::pulls::QUEUE_CAPACITY {
            assert_eq!(
                deliver(&leader, opened("main"), &format!("d{n}")).await,
                202
            );
        }
        assert_eq!(deliver(&leader, opened("main"), "one-more").await, 503);
        let text = leader.metrics.encode();
        assert!(
            text.contains(r#"modelship_webhooks_total{outcome="queue_full"} 1"#),
            "{text}"
        );
        assert_eq!(queue.drain().len(), crate::daemon::pulls::QUEUE_CAPACITY);
        assert_eq!(deliver(&leader, opened("main"), "one-more").await, 202);
    }
}
