//! One GitHub REST request, sent through octocrab's HTTP stack (base URI, hyper, rustls),
//! with the `Authorization` header of the right token, a timeout, and retries.
//!
//! ```text
//! send(repo, request) ─token_for(repo)─▶ attempt ─▶ 2xx/3xx/404...   ─▶ Reply
//!                                           │  5xx, transport error    ─▶ backoff (or Retry-After), again
//!                                           │  429, 403 rate limited   ─▶ Retry-After / x-ratelimit-reset
//!                                           │  other 4xx               ─▶ Error::Status
//!                                           └─ every attempt counted: modelship_forge_requests_total{result}
//! ```
//!
//! Requests that must not run twice (creating a comment) are sent once
//! ([`Retry::Never`]): their caller retries the whole operation after reading the state
//! again, so a 502 that GitHub answered after creating the comment still ends with one.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio::sync::Mutex;

use super::auth::{AppKey, Credentials, InstallationToken, Secret};
use super::{Error, Repo};
use crate::backoff::Backoff;

/// How often and how patiently requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// First backoff; doubled after each failure ([`RetryPolicy::backoff`]).
    pub base: Duration,
    /// Longest backoff between two attempts.
    pub max: Duration,
    /// Longest wait a `Retry-After` or rate-limit reset may ask for; beyond it the request
    /// fails at once ([`Error::RateLimited`]) rather than hold its caller.
    pub max_wait: Duration,
    /// Timeout of one attempt.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(500),
            max: Duration::from_secs(10),
            max_wait: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The backoff between attempts: `base`, doubled after each failure up to `max`. GitHub
    /// requests wait its ceiling, without jitter (one client, one request at a time).
    pub fn backoff(&self) -> Backoff {
        Backoff {
            base: self.base,
            max: self.max,
        }
    }

    /// The wait before attempt `failed + 1` after `failed` failures (1 for the first).
    pub fn delay(&self, failed: u32) -> Duration {
        self.backoff().ceiling(failed)
    }
}

/// Whether a request may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Idempotent: GET, PATCH, a status (the latest per context wins).
    Safe,
    /// Not idempotent (creating a comment): the caller retries after reading again.
    Never,
}

/// The label of `modelship_forge_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ForgeResult {
    /// `ok`, `not_found`, `client_error`, `rate_limited`, `server_error`, `transport_error`
    /// or `timeout`.
    pub result: String,
}

/// `modelship_forge_requests_total{result}`: every attempt of every GitHub request.
#[derive(Debug, Clone, Default)]
pub struct ForgeMetrics {
    pub requests: Family<ForgeResult, Counter>,
}

impl ForgeMetrics {
    /// Registers the counter as `forge_requests` (`modelship_forge_requests_total` under the
    /// daemon registry's `modelship` prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "forge_requests",
            "GitHub API requests by result (each attempt)",
            self.requests.clone(),
        );
    }

    /// The count of one result.
    pub fn count(&self, result: &str) -> u64 {
        self.requests
            .get_or_create(&ForgeResult {
                result: result.to_string(),
            })
            .get()
    }

    fn inc(&self, result: &str) {
        self.requests
            .get_or_create(&ForgeResult {
                result: result.to_string(),
            })
            .inc();
    }
}

/// A request: method, path below the API URL (with query), JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    pub retry: Retry,
}

/// A response whose status is not an error (or a 404, which callers interpret).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self, request: &Request) -> Result<Value, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode {
            method: request.method.to_string(),
            path: request.path.clone(),
            reason: e.to_string(),
        })
    }
}

/// The token cache of an App: installation per repository, token per installation.
#[derive(Debug, Default)]
struct AppTokens {
    installations: std::collections::HashMap<Repo, u64>,
    tokens: std::collections::HashMap<u64, InstallationToken>,
}

/// Sends requests to one GitHub API.
#[derive(Clone)]
pub(crate) struct Transport {
    octocrab: octocrab::Octocrab,
    credentials: Credentials,
    app_tokens: Arc<Mutex<AppTokens>>,
    pub retry: RetryPolicy,
    pub metrics: ForgeMetrics,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("credentials", &self.credentials)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub fn new(
        api_url: &str,
        credentials: Credentials,
        retry: RetryPolicy,
        metrics: ForgeMetrics,
    ) -> Result<Self, Error> {
        let bad = |_| Error::ApiUrl(api_url.to_string());
        let octocrab = octocrab::Octocrab::builder()
            .base_uri(api_url)
            .map_err(bad)?
            .build()
            .map_err(bad)?;
        Ok(Transport {
            octocrab,
            credentials,
            app_tokens: Arc::default(),
            retry,
            metrics,
        })
    }

    /// Sends a request for `repo`, retrying as its [`Retry`] allows. A 404 is returned to
    /// the caller; any other 4xx, or exhausted retries, is an error.
    pub async fn send(&self, repo: &Repo, request: &Request) -> Result<Reply, Error> {
        let token = self.token_for(repo).await?;
        self.send_with(&token, request).await
    }

    async fn send_with(&self, token: &Secret, request: &Request) -> Result<Reply, Error> {
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(token, request).await;
            let last = attempt >= self.retry.attempts || request.retry == Retry::Never;
            let wait = match outcome {
                Attempt::Done(reply) => return Ok(reply),
                Attempt::Fail(error) => return Err(error),
                Attempt::Again { error, .. } if last => return Err(error),
                Attempt::Again {
                    after: Some(after), ..
                } if after > self.retry.max_wait => {
                    return Err(Error::RateLimited {
                        method: request.method.to_string(),
                        path: request.path.clone(),
                        wait_secs: after.as_secs(),
                    });
                }
                Attempt::Again { after, .. } => after.unwrap_or_else(|| self.retry.delay(attempt)),
            };
            tracing::debug!(
                method = %request.method,
                path = %request.path,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "GitHub request failed; retrying"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, token: &Secret, request: &Request) -> Attempt {
        let failed = |reason: String| Error::Transport {
            method: request.method.to_string(),
            path: request.path.clone(),
            reason,
        };
        let body = match &request.body {
            Some(value) => value.to_string(),
            None => String::new(),
        };
        let built = http::Request::builder()
            .method(request.method.clone())
            .uri(request.path.as_str())
            .header(http::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", token.expose()),
            )
            .body(body);
        let built = match built {
            Ok(built) => built,
            Err(e) => return Attempt::Fail(failed(e.to_string())),
        };
        let sent = tokio::time::timeout(self.retry.timeout, async {
            let response = self.octocrab.execute(built).await?;
            let (parts, body) = response.into_parts();
            let body = http_body_util::BodyExt::collect(body).await?.to_bytes();
            Ok::<_, octocrab::Error>((parts, body))
        })
        .await;
        let (parts, body) = match sent {
            Err(_) => {
                self.metrics.inc("timeout");
                return Attempt::Again {
                    error: Error::Timeout {
                        method: request.method.to_string(),
                        path: request.path.clone(),
                        secs: self.retry.timeout.as_secs(),
                    },
                    after: None,
                };
            }
            Ok(Err(e)) => {
                self.metrics.inc("transport_error");
                return Attempt::Again {
                    error: failed(transport_reason(&e)),
                    after: None,
                };
            }
            Ok(Ok(sent)) => sent,
        };
        classify(request, parts.status, parts.headers, body, &self.metrics)
    }

    /// The token for a repository: the configured one, or the App's installation token.
    async fn token_for(&self, repo: &Repo) -> Result<Secret, Error> {
        match &self.credentials {
            Credentials::Token(token) => Ok(token.clone()),
            Credentials::App(app) => self.installation_token(app, repo).await,
        }
    }

    /// The App's installation on `repo` (looked up once, then cached); `None` for a token.
    pub(crate) async fn installation(&self, repo: &Repo) -> Result<Option<u64>, Error> {
        match &self.credentials {
            Credentials::Token(_) => Ok(None),
            Credentials::App(app) => {
                let mut cache = self.app_tokens.lock().await;
                self.installation_id(app, repo, &mut cache).await.map(Some)
            }
        }
    }

    async fn installation_token(&self, app: &AppKey, repo: &Repo) -> Result<Secret, Error> {
        let mut cache = self.app_tokens.lock().await;
        let now = SystemTime::now();
        let installation = self.installation_id(app, repo, &mut cache).await?;
        if let Some(token) = cache.tokens.get(&installation).filter(|t| t.fresh(now)) {
            return Ok(token.token.clone());
        }
        let request = Request {
            method: Method::POST,
            path: format!("/app/installations/{installation}/access_tokens"),
            body: None,
            retry: Retry::Safe,
        };
        let reply = self.send_with(&app.jwt(now)?, &request).await?;
        let token = InstallationToken::from_response(&reply.json(&request)?)
            .ok_or_else(|| decode(&request, "no token or expires_at"))?;
        let secret = token.token.clone();
        cache.tokens.insert(installation, token);
        Ok(secret)
    }

    async fn installation_id(
        &self,
        app: &AppKey,
        repo: &Repo,
        cache: &mut AppTokens,
    ) -> Result<u64, Error> {
        let now = SystemTime::now();
        let installation = match cache.installations.get(repo) {
            Some(id) => *id,
            None => {
                let request = Request {
                    method: Method::GET,
                    path: format!("/repos/{}/{}/installation", repo.owner, repo.name),
                    body: None,
                    retry: Retry::Safe,
                };
                let reply = self.send_with(&app.jwt(now)?, &request).await?;
                if reply.status == StatusCode::NOT_FOUND {
                    return Err(Error::NotInstalled(repo.to_string()));
                }
                let id = reply
                    .json(&request)?
                    .get("id")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| decode(&request, "no installation id"))?;
                cache.installations.insert(repo.clone(), id);
                id
            }
        };
        Ok(installation)
    }
}

/// An answer without what the request expects.
pub(crate) fn decode(request: &Request, reason: &str) -> Error {
    Error::Decode {
        method: request.method.to_string(),
        path: request.path.clone(),
        reason: reason.to_string(),
    }
}

/// What one attempt came to.
enum Attempt {
    Done(Reply),
    Fail(Error),
    /// Worth another attempt, after `after` when the server said how long.
    Again {
        error: Error,
        after: Option<Duration>,
    },
}

fn classify(
    request: &Request,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    metrics: &ForgeMetrics,
) -> Attempt {
    let error = |body: &Bytes| Error::Status {
        status: status.as_u16(),
        method: request.method.to_string(),
        path: request.path.clone(),
        message: github_message(body),
    };
    if status.is_success() || status.is_redirection() {
        metrics.inc("ok");
        return Attempt::Done(Reply {
            status,
            headers,
            body,
        });
    }
    if status == StatusCode::NOT_FOUND {
        metrics.inc("not_found");
        return Attempt::Done(Reply {
            status,
            headers,
            body,
        });
    }
    if let Some(after) = rate_limit_wait(status, &headers, SystemTime::now()) {
        metrics.inc("rate_limited");
        return Attempt::Again {
            error: error(&body),
            after: Some(after),
        };
    }
    if status.is_server_error() {
        metrics.inc("server_error");
        return Attempt::Again {
            error: error(&body),
            after: retry_after(&headers),
        };
    }
    metrics.inc("client_error");
    Attempt::Fail(error(&body))
}

/// How long a rate-limited answer asks to wait: `Retry-After` (seconds), else the
/// `x-ratelimit-reset` epoch second when `x-ratelimit-remaining` is 0. `None` when the
/// answer is not a rate limit (a 403 for lack of permission).
pub(crate) fn rate_limit_wait(
    status: StatusCode,
    headers: &HeaderMap,
    now: SystemTime,
) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    if let Some(after) = retry_after(headers) {
        return Some(after);
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if header("x-ratelimit-remaining") == Some(0)
        && let Some(reset) = header("x-ratelimit-reset")
    {
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        // A second more: the reset second itself may still be limited.
        return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
    }
    // A 429 without headers is still a rate limit: back off a minute (GitHub's advice).
    (status == StatusCode::TOO_MANY_REQUESTS).then_some(Duration::from_secs(60))
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// GitHub's `message` of an error body, shortened; never the request.
fn github_message(body: &Bytes) -> String {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let message = message.trim();
    match message.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None if message.is_empty() => "no message".to_string(),
        None => message.to_string(),
    }
}

/// A transport error in words. octocrab's errors carry no request headers, hence no
/// token; the source chain is flattened so a connection refusal says so.
fn transport_reason(error: &octocrab::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn rate_limits_honour_retry_after_then_the_reset_header() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let forbidden = StatusCode::FORBIDDEN;
        assert_eq!(
            rate_limit_wait(forbidden, &headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        let reset = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1030"),
        ]);
        assert_eq!(
            rate_limit_wait(forbidden, &reset, now),
            Some(Duration::from_secs(31))
        );
        // A 403 for lack of permission is not retried.
        let left = headers(&[
            ("x-ratelimit-remaining", "12"),
            ("x-ratelimit-reset", "1030"),
        ]);
        assert_eq!(rate_limit_wait(forbidden, &left, now), None);
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(rate_limit_wait(StatusCode::BAD_GATEWAY, &reset, now), None);
    }

    #[test]
    fn the_counter_registers_as_modelship_forge_requests_total() {
        let metrics = ForgeMetrics::default();
        let mut registry = Registry::with_prefix("modelship");
        metrics.register(&mut registry);
        metrics.inc("ok");
        metrics.inc("ok");
        metrics.inc("rate_limited");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"modelship_forge_requests_total{result="ok"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"modelship_forge_requests_total{result="rate_limited"} 1"#),
            "{text}"
        );
        assert_eq!(metrics.count("ok"), 2);
    }

    #[test]
    fn error_messages_are_github_s_message_shortened() {
        let body = Bytes::from(r#"{"message":"Resource not accessible by integration"}"#);
        assert_eq!(
            github_message(&body),
            "Resource not accessible by integration"
        );
        let long = Bytes::from("x".repeat(500));
        assert_eq!(github_message(&long).chars().count(), 201);
        assert_eq!(github_message(&Bytes::new()), "no message");
    }
}
