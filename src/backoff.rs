//! The one backoff: exponential delays with half jitter, used for every retry modelship
//! makes (a request to the API server, a service reconcile that failed). Pure: the caller
//! hands in the random unit, so the bounds are testable.

use std::time::Duration;

/// Exponential backoff: attempt `n` (from 1) waits a random time in
/// `[ceiling(n) / 2, ceiling(n)]` with `ceiling(n) = min(max, base * 2^(n-1))` (half
/// jitter: retries of many services spread out, yet never retry at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The upper bound of attempt `attempt` (1 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(32);
        self.base
            .checked_mul(1u32 << exponent.min(31))
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The delay of `attempt` for a random `unit` in `[0, 1)` (values outside are clamped).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        ceiling / 2 + ceiling.mul_f64(unit / 2.0)
    }
}

/// A small xorshift generator for jitter: no cryptographic needs, no extra dependency.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator seeded from `seed` (zero is replaced: xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Self {
        Jitter(seed.max(1))
    }

    /// A generator seeded from the clock.
    pub fn from_clock() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Jitter::new(nanos)
    }

    /// The next value in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_maximum() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let ceilings: Vec<u128> = (1..=7).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(2));
        assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
    }

    #[test]
    fn delays_stay_within_half_and_full_ceiling() {
        let backoff = Backoff::default();
        let mut jitter = Jitter::new(42);
        for attempt in 1..=20 {
            let ceiling = backoff.ceiling(attempt);
            let mut seen = Vec::new();
            for _ in 0..200 {
                let delay = backoff.delay(attempt, jitter.unit());
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "{delay:?} {ceiling:?}"
                );
                seen.push(delay);
            }
            seen.sort();
            seen.dedup();
            assert!(seen.len() > 100, "jitter spreads delays: {}", seen.len());
        }
        assert_eq!(backoff.delay(1, f64::NAN), Duration::from_millis(500));
        assert_eq!(backoff.delay(1, 7.0), Duration::from_secs(1));
    }

    #[test]
    fn jitter_units_are_in_the_unit_interval() {
        let mut jitter = Jitter::new(0);
        for _ in 0..10_000 {
            let u = jitter.unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
