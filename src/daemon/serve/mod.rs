//! The daemon's HTTP server: `/healthz`, `/readyz`, `/metrics`, `/status` and
//! `POST /hooks/github`, with what they read: the `/status` board ([`status`]) and the
//! `/metrics` registry ([`metrics`]).
//!
//! Every connection sends its headers within [`HEADER_READ_TIMEOUT`], at most
//! [`MAX_CONNECTIONS`] at once ([`serve`]). Every request is bounded: at most
//! [`MAX_CONCURRENT_REQUESTS`] at once (more get 503 at
//! once), its body read within [`BODY_READ_TIMEOUT`], its answer within
//! [`REQUEST_TIMEOUT`] (408), its body under `MAX_BODY_BYTES` (413).
//!
//! ```text
//! router (this file) ──/hooks/github push──▶ source trigger
//!        │            └─pull_request, issue_comment──▶ hooks.rs ──▶ PullQueue
//!        └── reads state.rs: HttpState { board, metrics, trigger, secret, pulls }
//! ```

mod hooks;
pub mod metrics;
pub mod rollout_metrics;
pub mod state;
pub mod status;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::source::webhook::{self, Delivery, MAX_BODY_BYTES};
pub use state::HttpState;

/// Requests handled at once; more are refused with 503 at once (never queued), so a flood
/// of requests cannot pile up in memory.
pub const MAX_CONCURRENT_REQUESTS: usize = 64;

/// The longest a request may take, from its headers to the answer (408 beyond).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest reading a request's body may take (a slow sender is cut off).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a client may take to send a request's headers, the first request of a
/// connection or the next one on a kept-alive connection: a connection that dribbles is
/// closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once; more wait in the listen backlog until one closes.
pub const MAX_CONNECTIONS: usize = 256;

/// Serves `router` on `listener` (HTTP/1.1) until `stop` completes, with
/// [`HEADER_READ_TIMEOUT`] and at most [`MAX_CONNECTIONS`] connections; then lets the
/// requests in flight finish, for at most [`REQUEST_TIMEOUT`].
pub async fn serve(listener: TcpListener, router: Router, stop: impl Future<Output = ()>) {
    serve_with(listener, router, stop, HEADER_READ_TIMEOUT).await;
}

/// [`serve`] with another header read timeout (tests).
async fn serve_with(
    listener: TcpListener,
    router: Router,
    stop: impl Future<Output = ()>,
    header_read_timeout: Duration,
) {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit,
            () = &mut stop => break,
        };
        // The semaphore is never closed: acquiring fails only if it were.
        let Ok(permit) = permit else { break };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little, never spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(router.clone()),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
            drop(permit);
        });
    }
    if tokio::time::timeout(REQUEST_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open at shutdown: closed");
    }
}

/// The router of every endpoint.
pub fn router(state: HttpState) -> Router {
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: BoxError| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "too many requests at once; try again",
            )
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(MAX_CONCURRENT_REQUESTS));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/hooks/github", post(github))
        // Bodies over the limit get 413 from axum before the handler runs; the handler
        // checks again so the limit holds whatever the extractor does.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyTimeoutLayer::new(BODY_READ_TIMEOUT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(shed)
        .with_state(state)
}

async fn readyz(State(state): State<HttpState>) -> Response {
    if state.board.read().await.ready {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "first revision not reconciled yet",
        )
            .into_response()
    }
}

async fn metrics(State(state): State<HttpState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn status(State(state): State<HttpState>) -> Response {
    let board = state.board.read().await.clone();
    axum::Json(board).into_response()
}

/// Why a push delivery is not the followed repository's, when the followed repository is
/// known (pull requests configured); a push only triggers a fetch of the followed remote,
/// but the webhook surface takes one repository's deliveries alone.
/// Returns the refusal's metric label and message.
fn foreign_push(state: &HttpState, body: &[u8]) -> Option<(&'static str, String)> {
    let queue = state.pulls.as_ref()?;
    let push: serde_json::Value = serde_json::from_slice(body).ok()?;
    let installation = push.pointer("/installation/id").and_then(|v| v.as_u64());
    let repo = push
        .pointer("/repository/full_name")
        .and_then(|v| v.as_str())
        .and_then(|name| name.parse::<crate::forge::Repo>().ok());
    match repo {
        Some(repo) => queue
            .followed
            .check(&repo, installation)
            .err()
            .map(|foreign| (foreign.metric_label(), foreign.to_string())),
        None => Some((
            "repository_unknown",
            "the push names no repository (repository.full_name)".to_string(),
        )),
    }
}

async fn github(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = &state.webhook_secret else {
        return (StatusCode::NOT_FOUND, "webhooks are not configured").into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = webhook::verify_signature(
        secret.expose().as_bytes(),
        header("x-hub-signature-256"),
        &body,
    );
    if signed.is_ok() {
        let pull_event = matches!(
            header("x-github-event"),
            Some("pull_request" | "issue_comment")
        );
        if pull_event && state.pulls.is_some() && !state.board.read().await.leader {
            // Before the dedupe: a redelivery of this one must still be acted on.
            return hooks::refused_by_standby(&state);
        }
        let delivery = header("x-github-delivery").unwrap_or_default();
        let first = state
            .deliveries
            .lock()
            .map(|mut seen| seen.first_time(delivery))
            .unwrap_or(true);
        if !first {
            tracing::info!(%delivery, "webhook delivery already handled");
            state.metrics.webhook("duplicate");
            return (StatusCode::OK, "already handled").into_response();
        }
        if let Some(event @ ("pull_request" | "issue_comment")) = header("x-github-event") {
            return hooks::pull_event(&state, event, &body, delivery).await;
        }
    }
    let verified =
        signed.and_then(|()| webhook::classify(header("x-github-event"), &body, &state.branch));
    match verified {
        Err(error) => {
            tracing::warn!(%error, "webhook refused");
            state.metrics.webhook(error.metric_label());
            let code = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
            (code, error.to_string()).into_response()
        }
        Ok(Delivery::Fetch { after }) => {
            if let Some((label, why)) = foreign_push(&state, &body) {
                tracing::warn!(%why, "push webhook refused");
                state.metrics.webhook(label);
                return (StatusCode::FORBIDDEN, why).into_response();
            }
            if !state.board.read().await.leader {
                tracing::info!(%after, "push webhook on a standby replica: the leader fetches it by polling");
                state.metrics.webhook("standby");
                return (StatusCode::ACCEPTED, "standby replica; the leader polls").into_response();
            }
            tracing::info!(%after, "push webhook: fetching now");
            state.metrics.webhook("fetch");
            state.trigger.notify_one();
            (StatusCode::ACCEPTED, "fetching").into_response()
        }
        Ok(Delivery::Ping) => {
            state.metrics.webhook("ping");
            (StatusCode::OK, "pong").into_response()
        }
        Ok(Delivery::Ignore { reason }) => {
            tracing::debug!(%reason, "webhook ignored");
            state.metrics.webhook("ignored");
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::daemon::serve::metrics::Metrics;
    use crate::source::Secret;
    use axum::body::Body;
    use axum::http::Request;
    use tokio::sync::Notify;
    use tower::ServiceExt;

    const SECRET: &str = "s3cret";

    fn state() -> HttpState {
        HttpState {
            board: Arc::default(),
            metrics: Arc::new(Metrics::new()),
            trigger: Arc::new(Notify::new()),
            webhook_secret: Some(Secret::new(SECRET)),
            branch: "main".into(),
            pulls: None,
            deliveries: Arc::default(),
        }
    }

    fn leader_state() -> HttpState {
        let state = state();
        state.board.try_write().unwrap().leader = true;
        state
    }

    async fn deliver(
        state: &HttpState,
        event: &str,
        body: Vec<u8>,
        signature: Option<String>,
    ) -> StatusCode {
        let mut request = Request::post("/hooks/github").header("x-github-event", event);
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        let response = router(state.clone())
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        response.status()
    }

    fn push(branch: &str) -> Vec<u8> {
        format!(r#"{{"ref":"refs/heads/{branch}","after":"abc"}}"#).into_bytes()
    }

    #[tokio::test]
    async fn a_signed_push_to_the_branch_triggers_a_fetch() {
        let state = leader_state();
        let body = push("main");
        let signature = webhook::sign(SECRET.as_bytes(), &body);
        let triggered = state.trigger.clone();
        assert_eq!(
            deliver(&state, "push", body, Some(signature)).await,
            StatusCode::ACCEPTED
        );
        tokio::time::timeout(std::time::Duration::from_secs(1), triggered.notified())
            .await
            .expect("the fetch trigger fired");
    }

    #[tokio::test]
    async fn a_push_about_another_repository_is_refused_once_the_followed_one_is_known() {
        use crate::daemon::pulls::{Followed, PullQueue};
        let state = HttpState {
            pulls: Some(PullQueue::new(Followed::new("acme/models".parse().ok()))),
            ..leader_state()
        };
        let about = |repo: &str| {
            format!(
                r#"{{"ref":"refs/heads/main","after":"abc","repository":{{"full_name":"{repo}"}}}}"#
            )
            .into_bytes()
        };
        for (body, code) in [
            (about("someone/else"), StatusCode::FORBIDDEN),
            (push("main"), StatusCode::FORBIDDEN),
            (about("ACME/Models"), StatusCode::ACCEPTED),
        ] {
            let signature = webhook::sign(SECRET.as_bytes(), &body);
            assert_eq!(
                deliver(&state, "push", body.clone(), Some(signature)).await,
                code,
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
        let text = state.metrics.encode();
        assert!(
            text.contains(r#"modelship_webhooks_total{outcome="foreign_repository"} 1"#)
                && text.contains(r#"modelship_webhooks_total{outcome="repository_unknown"} 1"#)
                && text.contains(r#"modelship_webhooks_total{outcome="fetch"} 1"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn bad_missing_and_oversized_deliveries_are_refused_without_a_fetch() {
        let state = leader_state();
        let body = push("main");
        let wrong = webhook::sign(b"other", &body);
        assert_eq!(
            deliver(&state, "push", body.clone(), Some(wrong)).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            deliver(&state, "push", body, None).await,
            StatusCode::UNAUTHORIZED
        );
        let big = vec![b' '; MAX_BODY_BYTES + 10];
        let signature = webhook::sign(SECRET.as_bytes(), &big);
        assert_eq!(
            deliver(&state, "push", big, Some(signature)).await,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let fired = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            state.trigger.notified(),
        )
        .await;
        assert!(fired.is_err(), "no fetch was triggered");
        let text = state.metrics.encode();
        assert!(
            text.contains(r#"modelship_webhooks_total{outcome="webhook_bad_signature"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"modelship_webhooks_total{outcome="webhook_unsigned"} 1"#));
    }

    #[tokio::test]
    async fn other_branches_and_pings_are_acknowledged_only() {
        let state = state();
        let body = push("dev");
        let signature = webhook::sign(SECRET.as_bytes(), &body);
        assert_eq!(
            deliver(&state, "push", body, Some(signature)).await,
            StatusCode::NO_CONTENT
        );
        let signature = webhook::sign(SECRET.as_bytes(), b"{}");
        assert_eq!(
            deliver(&state, "ping", b"{}".to_vec(), Some(signature)).await,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn a_connection_that_dribbles_its_headers_is_closed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let stop = async move {
            let _ = stop_rx.await;
        };
        let server = tokio::spawn(serve_with(
            listener,
            router(state()),
            stop,
            Duration::from_millis(200),
        ));
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer))
            .await
            .expect("closed by the server within the timeout");
        assert!(read.is_ok() || answer.is_empty());
        // A prompt client is served.
        let mut quick = tokio::net::TcpStream::connect(addr).await.unwrap();
        quick
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), quick.read_to_end(&mut answer))
            .await
            .expect("answered")
            .unwrap();
        assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
        stop_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server stops")
            .unwrap();
    }

    #[tokio::test]
    async fn readiness_follows_the_board() {
        let state = state();
        let get = |path: &'static str| {
            let router = router(state.clone());
            async move {
                router
                    .oneshot(Request::get(path).body(Body::empty()).unwrap())
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(get("/healthz").await, StatusCode::OK);
        assert_eq!(get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
        state.board.write().await.ready = true;
        assert_eq!(get("/readyz").await, StatusCode::OK);
        assert_eq!(get("/status").await, StatusCode::OK);
        assert_eq!(get("/metrics").await, StatusCode::OK);
    }
}
