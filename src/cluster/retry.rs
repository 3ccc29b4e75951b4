//! Bounded retries with exponential backoff and jitter for transient API failures.

use std::future::Future;
use std::time::Duration;

use crate::backoff::{Backoff, Jitter};

/// How often and how patiently a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (at least one is made).
    pub attempts: u32,
    /// The delays between attempts (the one backoff of [`crate::backoff`]).
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new(6, Duration::from_millis(200), Duration::from_secs(5))
    }
}

impl RetryPolicy {
    /// `attempts` in total, the first retry after `base` (up to twice), doubling to `max`.
    pub fn new(attempts: u32, base: Duration, max: Duration) -> Self {
        RetryPolicy {
            attempts,
            backoff: Backoff { base, max },
        }
    }

    /// The delay before retry number `retry` (0-based), for a random `unit` in `[0, 1)`.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        self.backoff.delay(retry + 1, unit)
    }
}

/// True for failures worth retrying: throttling (429), conflicts (409), server errors
/// (5xx) and broken connections.
pub fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code == 409 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Runs `op` until it succeeds, fails with a permanent error, or the attempts run out.
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, mut op: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut jitter = Jitter::from_clock();
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(error) if is_transient(&error) && attempt + 1 < policy.attempts => {
                let delay = policy.delay(attempt, jitter.unit());
                tracing::debug!(%error, attempt, ?delay, "transient API error, retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            ..kube::core::Status::default()
        }))
    }

    #[test]
    fn delays_grow_exponentially_within_jitter_and_cap() {
        let policy = RetryPolicy::new(10, Duration::from_millis(100), Duration::from_secs(1));
        for unit in [0.0, 0.25, 0.999] {
            let d0 = policy.delay(0, unit);
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
            let d2 = policy.delay(2, unit);
            assert!(d2 >= Duration::from_millis(200) && d2 <= Duration::from_millis(400));
            let d9 = policy.delay(9, unit);
            assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_secs(1));
        }
    }

    #[test]
    fn only_transient_errors_are_retried() {
        for (code, transient) in [
            (429, true),
            (409, true),
            (500, true),
            (503, true),
            (404, false),
            (422, false),
            (403, false),
        ] {
            assert_eq!(is_transient(&status(code)), transient, "{code}");
        }
    }

    #[tokio::test]
    async fn retries_until_success_and_stops_at_the_bound() {
        let policy = RetryPolicy::new(3, Duration::from_millis(1), Duration::from_millis(2));
        let mut calls = 0;
        let result = tokio::time::timeout(
            Duration::from_secs(5),
            retry(&policy, || {
                calls += 1;
                let n = calls;
                async move { if n < 3 { Err(status(503)) } else { Ok(n) } }
            }),
        )
        .await
        .unwrap();
        assert_eq!(result.unwrap(), 3);

        let mut calls = 0;
        let result: Result<(), _> = tokio::time::timeout(
            Duration::from_secs(5),
            retry(&policy, || {
                calls += 1;
                async { Err(status(500)) }
            }),
        )
        .await
        .unwrap();
        assert!(result.is_err());
        assert_eq!(calls, 3);

        let mut calls = 0;
        let result: Result<(), _> = retry(&policy, || {
            calls += 1;
            async { Err(status(422)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 1, "permanent errors are not retried");
    }
}
