//! Bounded retries with exponential backoff and jitter for transient API failures.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// How often and how patiently a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (at least one is made).
    pub attempts: u32,
    /// Delay before the first retry; it doubles on every further one.
    pub base: Duration,
    /// The longest delay between two attempts.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(200),
            max: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (0-based): exponential, capped, and jittered
    /// into its upper half so that clients that failed together do not retry together.
    pub fn delay(&self, retry: u32, seed: u64) -> Duration {
        let exponential = self.base.saturating_mul(1u32 << retry.min(16));
        let capped = exponential.min(self.max);
        let half = capped / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_nanos(seed % nanos)
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
    let random = RandomState::new();
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(error) if is_transient(&error) && attempt + 1 < policy.attempts => {
                let delay = policy.delay(attempt, random.hash_one(attempt));
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
        let policy = RetryPolicy {
            attempts: 10,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for seed in [0, 1, 12345, u64::MAX] {
            let d0 = policy.delay(0, seed);
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
            let d2 = policy.delay(2, seed);
            assert!(d2 >= Duration::from_millis(200) && d2 <= Duration::from_millis(400));
            let d9 = policy.delay(9, seed);
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
        let policy = RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
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
