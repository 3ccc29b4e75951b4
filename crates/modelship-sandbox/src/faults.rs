//! Fault injection: latency, error answers, forced conflicts and dropped watches.
//!
//! [`Faults`] is a cloneable handle tests use to change the fault plan while the server
//! runs. Before handling a resource request the server asks [`Faults::decide`], which
//! answers with the delay to add and whether to fail the request; error answers are drawn
//! from a seeded xorshift, so a given seed and request sequence fail the same way every
//! run.

use super::counters::Verb;
use super::rng::XorShift;
use super::status::{ApiError, Target};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// The error an error-rate rule answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    /// 500 InternalError.
    Internal,
    /// 503 ServiceUnavailable.
    Unavailable,
    /// 429 TooManyRequests.
    TooManyRequests,
}

/// Which requests a rule applies to; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultFilter {
    /// Only this verb.
    pub verb: Option<Verb>,
    /// Only this resource (plural, e.g. `deployments`).
    pub resource: Option<String>,
}

impl FaultFilter {
    /// Matches every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Matches one verb.
    pub fn verb(verb: Verb) -> Self {
        Self {
            verb: Some(verb),
            resource: None,
        }
    }

    /// Narrows to one resource.
    pub fn on(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }

    fn matches(&self, verb: Verb, resource: &str) -> bool {
        self.verb.is_none_or(|v| v == verb)
            && self
                .resource
                .as_deref()
                .is_none_or(|r| r == resource || resource.starts_with(&format!("{r}/")))
    }
}

#[derive(Debug)]
struct ErrorRule {
    rate: f64,
    code: FaultCode,
    filter: FaultFilter,
}

#[derive(Debug)]
struct Plan {
    latency: Duration,
    errors: Vec<ErrorRule>,
    conflicts_left: u32,
    rng: XorShift,
}

/// What to do with one request.
#[derive(Debug, Default)]
pub struct Decision {
    /// Delay before answering.
    pub delay: Duration,
    /// Answer with this error instead of handling the request.
    pub fail: Option<ApiError>,
}

/// Handle to the fault plan of a running sandbox.
#[derive(Debug, Clone)]
pub struct Faults {
    plan: Arc<Mutex<Plan>>,
    drops: Arc<watch::Sender<u64>>,
}

impl Faults {
    /// No faults; error draws seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            plan: Arc::new(Mutex::new(Plan {
                latency: Duration::ZERO,
                errors: Vec::new(),
                conflicts_left: 0,
                rng: XorShift::new(seed),
            })),
            drops: Arc::new(watch::channel(0).0),
        }
    }

    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `latency` to every resource request.
    pub fn set_latency(&self, latency: Duration) {
        self.plan().latency = latency;
    }

    /// Answers a fraction `rate` (0.0 to 1.0) of matching requests with `code`.
    pub fn fail_rate(&self, rate: f64, code: FaultCode, filter: FaultFilter) {
        self.plan().errors.push(ErrorRule {
            rate: rate.clamp(0.0, 1.0),
            code,
            filter,
        });
    }

    /// Answers the next `n` writes with 409 Conflict.
    pub fn conflict_next_writes(&self, n: u32) {
        self.plan().conflicts_left = n;
    }

    /// Closes every open watch connection now (clients see the stream end).
    pub fn drop_watches(&self) {
        self.drops.send_modify(|n| *n += 1);
    }

    /// Removes every fault (latency, error rules, pending conflicts).
    pub fn clear(&self) {
        let mut plan = self.plan();
        plan.latency = Duration::ZERO;
        plan.errors.clear();
        plan.conflicts_left = 0;
    }

    /// A receiver that changes whenever [`Faults::drop_watches`] is called.
    pub fn watch_drops(&self) -> watch::Receiver<u64> {
        self.drops.subscribe()
    }

    /// Decides the fate of one request.
    pub fn decide(&self, verb: Verb, resource: &str, target: &Target) -> Decision {
        let mut plan = self.plan();
        let delay = plan.latency;
        if verb.is_write() && plan.conflicts_left > 0 {
            plan.conflicts_left -= 1;
            return Decision {
                delay,
                fail: Some(ApiError::Conflict(target.clone())),
            };
        }
        let Plan { errors, rng, .. } = &mut *plan;
        for rule in errors.iter().filter(|r| r.filter.matches(verb, resource)) {
            if rng.next_f64() < rule.rate {
                let err = match rule.code {
                    FaultCode::Internal => ApiError::Internal("injected fault".into()),
                    FaultCode::Unavailable => ApiError::ServiceUnavailable,
                    FaultCode::TooManyRequests => ApiError::TooManyRequests,
                };
                return Decision {
                    delay,
                    fail: Some(err),
                };
            }
        }
        Decision { delay, fail: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_one_always_fails_and_filters_apply() {
        let f = Faults::new(1);
        f.fail_rate(
            1.0,
            FaultCode::Unavailable,
            FaultFilter::verb(Verb::Get).on("deployments"),
        );
        let t = Target::default();
        assert_eq!(
            f.decide(Verb::Get, "deployments", &t)
                .fail
                .map(|e| e.code()),
            Some(503)
        );
        assert!(f.decide(Verb::List, "deployments", &t).fail.is_none());
        assert!(f.decide(Verb::Get, "services", &t).fail.is_none());
        f.clear();
        assert!(f.decide(Verb::Get, "deployments", &t).fail.is_none());
    }

    #[test]
    fn conflicts_hit_only_the_next_n_writes() {
        let f = Faults::new(1);
        f.conflict_next_writes(2);
        let t = Target::default();
        assert!(f.decide(Verb::Get, "x", &t).fail.is_none());
        let codes: Vec<Option<u16>> = (0..3)
            .map(|_| f.decide(Verb::Apply, "x", &t).fail.map(|e| e.code()))
            .collect();
        assert_eq!(codes, vec![Some(409), Some(409), None]);
    }

    #[test]
    fn same_seed_same_failures() {
        let run = || {
            let f = Faults::new(99);
            f.fail_rate(0.5, FaultCode::Internal, FaultFilter::any());
            (0..32)
                .map(|_| f.decide(Verb::Get, "x", &Target::default()).fail.is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
    }
}
