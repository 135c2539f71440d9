//! Reconnect delays: exponential backoff with jitter. Plain Rust; the
//! caller supplies the random number so tests are deterministic.
//!
//! The ceiling doubles with every failed attempt, from `initial` up to
//! `max`. The delay is "equal jitter": half the ceiling plus a random part
//! of the other half. The fixed half keeps a flapping server from being hit
//! immediately; the random half spreads the clients of a restarted server
//! so they do not all come back in the same millisecond.

use std::time::Duration;

/// Backoff limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Ceiling of the first delay. 500 ms: a server restart is usually over
    /// by then, and a person waits little.
    pub initial: Duration,
    /// Largest ceiling. 30 s: a server that is down for long is not
    /// hammered, and a person does not wait more than half a minute once it
    /// is back.
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

/// The delays of one series of reconnect attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    /// Failed attempts so far in this series; reset once a connection opens.
    attempt: u32,
}

impl Backoff {
    /// A new series.
    pub fn new(config: BackoffConfig) -> Self {
        Self { config, attempt: 0 }
    }

    /// How many delays this series has handed out.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The ceiling of the next delay: `initial * 2^attempt`, at most `max`.
    pub fn ceiling(&self) -> Duration {
        let initial = self.config.initial.min(self.config.max);
        // 2^20 times any sensible initial delay is past any sensible max.
        let factor = 1u32 << self.attempt.min(20);
        initial
            .checked_mul(factor)
            .map_or(self.config.max, |d| d.min(self.config.max))
    }

    /// The next delay, and counts the attempt. `random` is a number in
    /// `[0, 1)` (`Math.random()` in the browser); values outside are clamped.
    pub fn next_delay(&mut self, random: f64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let half = ceiling / 2;
        half + half.mul_f64(random)
    }

    /// Starts a new series (after a connection opened).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(initial_ms: u64, max_ms: u64) -> BackoffConfig {
        BackoffConfig {
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(max_ms),
        }
    }

    #[test]
    fn ceiling_doubles_up_to_the_maximum() {
        let mut backoff = Backoff::new(config(100, 1000));
        let ceilings: Vec<u128> = (0..6)
            .map(|_| {
                let c = backoff.ceiling().as_millis();
                backoff.next_delay(0.5);
                c
            })
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jitter_stays_between_half_and_the_whole_ceiling() {
        let mut low = Backoff::new(config(1000, 60_000));
        let mut high = low.clone();
        assert_eq!(low.next_delay(0.0), Duration::from_millis(500));
        assert_eq!(high.next_delay(0.999_999).as_millis(), 999);
        // Out-of-range and non-finite randomness cannot escape the bounds.
        assert_eq!(low.next_delay(7.0), Duration::from_millis(2000));
        assert_eq!(low.next_delay(f64::NAN), Duration::from_millis(2000));
        assert_eq!(low.next_delay(-1.0), Duration::from_millis(4000));
    }

    #[test]
    fn reset_starts_over_and_many_attempts_do_not_overflow() {
        let mut backoff = Backoff::new(config(250, 30_000));
        for _ in 0..10_000 {
            backoff.next_delay(0.3);
        }
        assert_eq!(backoff.ceiling(), Duration::from_secs(30));
        backoff.reset();
        assert_eq!(backoff.attempt(), 0);
        assert_eq!(backoff.ceiling(), Duration::from_millis(250));
    }

    #[test]
    fn initial_above_max_is_capped() {
        let backoff = Backoff::new(config(5000, 1000));
        assert_eq!(backoff.ceiling(), Duration::from_millis(1000));
    }
}
