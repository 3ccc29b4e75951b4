//! Waiting on the clock in the daemon's loops: the one [`sleep_until`] that a
//! `tokio::select!` arm waits on for the next due retry, whether there is one or not.

use tokio::time::Instant;

/// Sleeps until `at`; never wakes when there is nothing to wait for (`None`), so the
/// other arms of a `select!` decide.
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
