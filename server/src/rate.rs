//! `--max-messages-per-second`: a token bucket per connection, burst N,
//! refilled at N a second, full at the start. Kept as the generic cell
//! rate algorithm (one instant, no floating point): a message is due
//! one interval after the one before, and may come early by as much as
//! the burst allows.

use std::time::Duration;

use tokio::time::Instant;

/// One connection's message budget.
#[derive(Debug, Clone)]
pub(crate) struct RateLimit {
    /// 1 s / N: what one message costs.
    interval: Duration,
    /// (N - 1) intervals: how far ahead of its schedule a client may get,
    /// so N messages pass at once from a full bucket.
    burst: Duration,
    /// When the bucket would be full again if nothing more came (the
    /// theoretical arrival time of the next message).
    full_at: Instant,
}

impl RateLimit {
    /// `per_second` messages a second, or `None` for 0 (no limit).
    pub(crate) fn new(per_second: u32, now: Instant) -> Option<Self> {
        let interval = Duration::from_secs(1).checked_div(per_second)?;
        Some(Self {
            interval,
            burst: interval * (per_second - 1),
            full_at: now,
        })
    }

    /// Takes one message's token at `now`; `false` when the bucket is
    /// empty (the message is over the rate).
    pub(crate) fn admit(&mut self, now: Instant) -> bool {
        let due = self.full_at.max(now);
        if due.duration_since(now) > self.burst {
            return false;
        }
        self.full_at = due + self.interval;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn zero_is_no_limit() {
        assert!(RateLimit::new(0, Instant::now()).is_none());
    }

    #[test]
    fn a_full_bucket_takes_a_burst_of_n_then_refills_at_n_a_second() {
        let start = Instant::now();
        let mut rate = RateLimit::new(10, start).expect("a limit");
        assert!((0..10).all(|_| rate.admit(start)), "the burst of 10");
        assert!(!rate.admit(start), "the 11th at once");
        // One token back every 100 ms.
        assert!(!rate.admit(start + 99 * MS));
        assert!(rate.admit(start + 100 * MS));
        assert!(!rate.admit(start + 100 * MS));
        // Idle for long: full again, never more than full.
        let later = start + Duration::from_secs(60);
        assert!((0..10).all(|_| rate.admit(later)));
        assert!(!rate.admit(later));
    }

    #[test]
    fn half_the_rate_is_never_refused_twice_the_rate_soon_is() {
        let start = Instant::now();
        let mut half = RateLimit::new(50, start).expect("a limit");
        assert!(
            (0..250).all(|i| half.admit(start + i * 40 * MS)),
            "25/s for 10 s"
        );
        let mut double = RateLimit::new(50, start).expect("a limit");
        let refused = (0..200).position(|i| !double.admit(start + i * 10 * MS));
        // 100/s drains a bucket of 50 refilled at 50/s in about a second.
        let at = refused.expect("refused within 2 s");
        assert!((95..=105).contains(&at), "first refused at message {at}");
    }
}
