//! Waiting in tests, with a deadline every time: poll until an answer comes ([`until`] and
//! its shorthands [`eventually`], [`eventually_within`], [`wait_for`]), or bound one step
//! ([`within`], [`within_blocking`]). A wait that runs out fails the test naming what was
//! awaited; none of them sleeps as a way to synchronise.
//!
//! Loopback servers of the test's own (the sandbox, a daemon run in the test, the GitHub
//! double) are asked every 10 ms; what moves in seconds (a rollout's steps, Prometheus's
//! scrapes) every 200 ms ([`wait_for`]); callers that ask a real API server through
//! kubectl pass their own interval to [`until`]. What knows how long its cluster needs
//! (`daemon::Place`, `pulls::world::World`, `real::Cluster`) has an `eventually` method
//! that passes its patience on to these.

use std::time::Duration;

/// The longest one step against a loopback server (a request, a reconcile, a daemon
/// start) may take.
pub const LIMIT: Duration = Duration::from_secs(20);

/// How often [`eventually`] and [`eventually_within`] ask a loopback server.
pub const EVERY: Duration = Duration::from_millis(10);

/// How often [`wait_for`] asks about what moves in seconds.
pub const SLOWLY: Duration = Duration::from_millis(200);

/// Polls `check` every `every` until it returns `Some`; after `limit`, fails naming
/// `what`, with `context()` (a log's end, say) appended.
pub async fn until<T, F, Fut>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut check: F,
    context: impl FnOnce() -> String,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            let context = context();
            let context = if context.is_empty() {
                String::new()
            } else {
                format!("\n{context}")
            };
            panic!("timed out after {limit:?} waiting for {what}{context}");
        }
        tokio::time::sleep(every).await;
    }
}

/// Polls `check` every 10 ms until it returns `Some`, failing after [`LIMIT`].
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(LIMIT, what, check).await
}

/// Polls `check` every 10 ms until it returns `Some`, failing after `limit`.
pub async fn eventually_within<T, F, Fut>(limit: Duration, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    until(what, limit, EVERY, check, String::new).await
}

/// Polls the yes-or-no `check` every 200 ms until it holds, failing after `limit`.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let holds = || {
        let answer = check();
        async move { answer.await.then_some(()) }
    };
    until(what, limit, SLOWLY, holds, String::new).await;
}

/// Runs `future`, failing the test if it takes longer than [`LIMIT`].
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("a step did not finish within {LIMIT:?}"))
}

/// Runs the blocking `work` (a Git fetch, say) on a thread of its own and fails the test
/// if it takes longer than `limit`.
pub fn within_blocking<T: Send + 'static>(
    what: &str,
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(work());
    });
    result
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
}
