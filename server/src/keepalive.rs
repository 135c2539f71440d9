//! Liveness of one connection: when to ping, when to give up on a silent
//! peer. Pure logic driven by a periodic tick that is told whether any byte
//! arrived since the last one, so it is tested without a socket and costs
//! nothing per message.

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
    /// Silence accumulated over the ticks since something was last heard.
    quiet: Duration,
}

impl Keepalive {
    pub(crate) fn new(interval: Duration, idle_timeout: Duration) -> Self {
        Self {
            interval,
            idle_timeout,
            quiet: Duration::ZERO,
        }
    }

    /// Called once per interval with whether anything (data, ping, pong,
    /// part of a frame) arrived since the last tick; says what is due.
    pub(crate) fn tick(&mut self, heard: bool) -> Due {
        if heard {
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
            assert_eq!(k.tick(true), Due::Nothing);
        }
    }

    #[test]
    fn a_silent_peer_is_pinged_then_expires() {
        let mut k = Keepalive::new(Duration::from_secs(20), Duration::from_secs(60));
        assert_eq!(k.tick(false), Due::Ping);
        assert_eq!(k.tick(false), Due::Ping);
        assert_eq!(k.tick(false), Due::Expired);
    }

    #[test]
    fn a_pong_resets_the_silence() {
        let mut k = Keepalive::new(Duration::from_secs(20), Duration::from_secs(60));
        assert_eq!(k.tick(false), Due::Ping);
        assert_eq!(k.tick(false), Due::Ping);
        assert_eq!(k.tick(true), Due::Nothing);
        assert_eq!(k.tick(false), Due::Ping);
        assert_eq!(k.tick(false), Due::Ping);
        assert_eq!(k.tick(false), Due::Expired);
    }
}
