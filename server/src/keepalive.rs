//! Liveness of one connection: when to ping, when to give up on a silent
//! peer. Pure logic driven by a periodic tick, so it is tested without a
//! socket and costs nothing per message beyond setting a flag.

use std::time::Duration;

/// What the connection should do at this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Something arrived recently: nothing to do.
    Nothing,
    /// The peer has been quiet: ask it to prove it is there.
    Ping,
    /// Nothing arrived for the idle timeout: close the connection.
    Expired,
}

/// Tracks how long the peer has been silent, in whole ticks.
#[derive(Debug)]
pub(crate) struct Keepalive {
    /// Time between two ticks (the configured ping interval).
    interval: Duration,
    /// Silence after which the peer is considered gone.
    idle_timeout: Duration,
    /// Set by every frame received; cleared at each tick.
    heard: bool,
    /// Silence accumulated over the ticks since something was last heard.
    quiet: Duration,
}

impl Keepalive {
    pub(crate) fn new(interval: Duration, idle_timeout: Duration) -> Self {
        Self {
            interval,
            idle_timeout,
            heard: false,
            quiet: Duration::ZERO,
        }
    }

    /// Records that a frame (data, ping, pong or close) came in.
    #[inline]
    pub(crate) fn heard(&mut self) {
        self.heard = true;
    }

    /// Called once per interval; says what is due.
    pub(crate) fn tick(&mut self) -> Due {
        if std::mem::take(&mut self.heard) {
            self.quiet = Duration::ZERO;
            return Due::Nothing;
        }
        self.quiet += self.interval;
        if self.quiet >= self.idle_timeout {
            Due::Expired
        } else {
            Due::Ping
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_talking_peer_is_never_pinged() {
        let mut k = Keepalive::new(Duration::from_secs(20), Duration::from_secs(60));
        for _ in 0..10 {
            k.heard();
            assert_eq!(k.tick(), Due::Nothing);
        }
    }

    #[test]
    fn a_silent_peer_is_pinged_then_expires() {
        let mut k = Keepalive::new(Duration::from_secs(20), Duration::from_secs(60));
        assert_eq!(k.tick(), Due::Ping);
        assert_eq!(k.tick(), Due::Ping);
        assert_eq!(k.tick(), Due::Expired);
    }

    #[test]
    fn a_pong_resets_the_silence() {
        let mut k = Keepalive::new(Duration::from_secs(20), Duration::from_secs(60));
        assert_eq!(k.tick(), Due::Ping);
        assert_eq!(k.tick(), Due::Ping);
        k.heard();
        assert_eq!(k.tick(), Due::Nothing);
        assert_eq!(k.tick(), Due::Ping);
        assert_eq!(k.tick(), Due::Ping);
        assert_eq!(k.tick(), Due::Expired);
    }
}
