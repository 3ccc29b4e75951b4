//! The one polling loop of the tests: ask until the answer comes or the limit passes,
//! then fail naming what was awaited. The support modules wrap it with their own limits
//! and intervals.
#![allow(dead_code)]

use std::time::Duration;

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
