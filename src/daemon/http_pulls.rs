//! `pull_request` and `issue_comment` deliveries on `/hooks/github`, after the signature
//! check and the delivery dedupe of `http.rs`: parsed into typed events and queued for
//! the pull-request worker (`pulls.rs`). Nothing is done inside the request.
//!
//! | delivery | answer |
//! |---|---|
//! | no GitHub credentials (`--github-token-file`, App) | 204, not acted on |
//! | on a standby replica | 202, not queued (only the leader acts) |
//! | not the JSON GitHub sends | 400 |
//! | an action or comment modelship ignores, a PR into another branch | 204 |
//! | a PR event or a `/modelship` command | 202, queued |

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::http::HttpState;
use super::pulls::Job;
use crate::forge::events::{self, Event};

/// Answers one verified, first-time pull-request delivery.
pub(super) async fn pull_event(state: &HttpState, event: &str, body: &[u8]) -> Response {
    let Some(queue) = &state.pulls else {
        state.metrics.webhook("pulls_not_configured");
        return (
            StatusCode::NO_CONTENT,
            "pull requests are not acted on: no GitHub credentials",
        )
            .into_response();
    };
    if !state.board.read().await.leader {
        state.metrics.webhook("standby");
        return (StatusCode::ACCEPTED, "standby replica; the leader acts").into_response();
    }
    let job = match events::parse(event, body) {
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
    queue.push(job);
    state.metrics.webhook("queued");
    (StatusCode::ACCEPTED, "queued").into_response()
}
