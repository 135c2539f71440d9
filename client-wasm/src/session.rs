//! The connection manager's decisions, without any browser: which state the
//! connection is in, whether to reconnect after a close, and how long to
//! wait first. Plain Rust; [`crate::connection`] drives it with real
//! sockets and timers.
//!
//! Reconnect policy: a close the person did not ask for is retried with
//! [`Backoff`] delays, if the close says retrying can help:
//! - an unclean close (1006: dropped, refused, server crashed) is retried;
//! - 1001 going away, 1011 internal error, 1012 service restart and
//!   1013 try again later are retried (a server restart sends 1001);
//! - every other code is final: 1000 means the server is done with us, and
//!   1002/1003/1007/1008/1009/1010 would only fail the same way again.
//!
//! A close the person asked for (disconnect) is never retried.

use std::time::Duration;

use crate::backoff::{Backoff, BackoffConfig};
use crate::format;
use crate::message::CloseInfo;

/// What the connection is doing, as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Not connected and not trying: before the first connect, after a
    /// disconnect, or after a close that is not retried.
    Closed,
    /// Opening a socket.
    Connecting {
        /// 0 for the first try of a series, then the retry number: 1, 2, …
        attempt: u32,
    },
    /// Open: messages flow.
    Open,
    /// Close requested; waiting for the server's Close frame.
    Closing,
    /// Waiting before the next attempt.
    Reconnecting {
        /// Which retry follows the wait: 1 for the first.
        attempt: u32,
        /// How long the wait is.
        delay: Duration,
        /// When it ends, on the manager's monotonic clock (ms).
        due_ms: f64,
    },
}

impl State {
    /// One word for the state, for styling and tests.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Connecting { .. } => "connecting",
            Self::Open => "open",
            Self::Closing => "closing",
            Self::Reconnecting { .. } => "reconnecting",
        }
    }

    /// What the state badge says at `now_ms`: `reconnecting in 3 s`.
    pub fn label(&self, now_ms: f64) -> String {
        match self {
            Self::Reconnecting { due_ms, .. } => {
                format!(
                    "reconnecting in {} s",
                    format::seconds_left(now_ms, *due_ms)
                )
            }
            Self::Connecting { attempt } if *attempt > 0 => format!("connecting (retry {attempt})"),
            other => other.name().to_owned(),
        }
    }
}

/// What to do after a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterClose {
    /// Wait this long, then connect again.
    Reconnect(Duration),
    /// Stay closed.
    Stop,
}

/// Whether a close the person did not ask for is worth retrying (see the
/// module doc).
pub fn retryable(info: &CloseInfo) -> bool {
    !info.was_clean || matches!(info.code, 1001 | 1006 | 1011 | 1012 | 1013)
}

/// The state machine of one connection manager.
#[derive(Debug, Clone)]
pub struct Supervisor {
    state: State,
    backoff: Backoff,
    /// Reconnect at all (off: every close is final).
    reconnect: bool,
    /// The person asked to close: the coming close is final.
    closing_on_request: bool,
    /// The current attempt follows a lost connection, so opening counts as
    /// a reconnect.
    recovering: bool,
}

impl Supervisor {
    /// A manager that is closed and has not tried anything yet.
    pub fn new(backoff: BackoffConfig, reconnect: bool) -> Self {
        Self {
            state: State::Closed,
            backoff: Backoff::new(backoff),
            reconnect,
            closing_on_request: false,
            recovering: false,
        }
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Starts an attempt: the person pressed connect, or a reconnect wait
    /// ended. A person's connect starts a new backoff series.
    pub fn connecting(&mut self, by_person: bool) {
        if by_person {
            self.backoff.reset();
            self.recovering = false;
        }
        self.closing_on_request = false;
        self.state = State::Connecting {
            attempt: self.backoff.attempt(),
        };
    }

    /// The socket opened. Returns whether this was a reconnect after a lost
    /// connection.
    pub fn opened(&mut self) -> bool {
        self.state = State::Open;
        self.backoff.reset();
        std::mem::take(&mut self.recovering)
    }

    /// The person asked to close. Returns whether a socket is there to close
    /// (otherwise the manager is simply closed now).
    pub fn close_requested(&mut self) -> bool {
        self.closing_on_request = true;
        self.recovering = false;
        let has_socket = matches!(
            self.state,
            State::Open | State::Closing | State::Connecting { .. }
        );
        self.state = if matches!(self.state, State::Open | State::Closing) {
            State::Closing
        } else {
            State::Closed
        };
        has_socket
    }

    /// The connection ended (or an attempt failed) with `info` at `now_ms`;
    /// `random` in `[0, 1)` jitters the delay. Decides what comes next and
    /// moves to `Reconnecting` or `Closed`.
    pub fn ended(&mut self, info: &CloseInfo, now_ms: f64, random: f64) -> AfterClose {
        let by_request = std::mem::take(&mut self.closing_on_request);
        if by_request || !self.reconnect || !retryable(info) {
            self.state = State::Closed;
            self.recovering = false;
            return AfterClose::Stop;
        }
        let delay = self.backoff.next_delay(random);
        self.recovering = true;
        self.state = State::Reconnecting {
            attempt: self.backoff.attempt(),
            delay,
            due_ms: now_ms + delay.as_secs_f64() * 1000.0,
        };
        AfterClose::Reconnect(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(code: u16, was_clean: bool) -> CloseInfo {
        CloseInfo {
            code,
            reason: String::new(),
            was_clean,
        }
    }

    fn supervisor() -> Supervisor {
        Supervisor::new(
            BackoffConfig {
                initial: Duration::from_millis(100),
                max: Duration::from_millis(1000),
            },
            true,
        )
    }

    #[test]
    fn which_closes_are_retried() {
        assert!(retryable(&close(1006, false)));
        assert!(retryable(&close(1001, true)));
        assert!(retryable(&close(1012, true)));
        assert!(retryable(&close(1000, false)));
        assert!(!retryable(&close(1000, true)));
        assert!(!retryable(&close(1008, true)));
        assert!(!retryable(&close(4000, true)));
    }

    #[test]
    fn a_lost_connection_is_retried_with_growing_delays_until_it_opens() {
        let mut s = supervisor();
        s.connecting(true);
        assert!(!s.opened(), "the first open is not a reconnect");
        // The server restarts: 1001, then refused attempts.
        assert_eq!(
            s.ended(&close(1001, true), 0.0, 0.0),
            AfterClose::Reconnect(Duration::from_millis(50))
        );
        assert_eq!(s.state().label(0.0), "reconnecting in 1 s");
        s.connecting(false);
        assert_eq!(s.state(), &State::Connecting { attempt: 1 });
        assert_eq!(s.state().label(0.0), "connecting (retry 1)");
        assert_eq!(
            s.ended(&close(1006, false), 1000.0, 0.0),
            AfterClose::Reconnect(Duration::from_millis(100))
        );
        assert!(matches!(
            s.state(),
            State::Reconnecting { due_ms, .. } if (*due_ms - 1100.0).abs() < 1e-9
        ));
        s.connecting(false);
        assert!(s.opened(), "opening after a loss is a reconnect");
        // The series starts over.
        assert_eq!(
            s.ended(&close(1006, false), 0.0, 0.0),
            AfterClose::Reconnect(Duration::from_millis(50))
        );
    }

    #[test]
    fn a_requested_close_is_final() {
        let mut s = supervisor();
        s.connecting(true);
        s.opened();
        assert!(s.close_requested());
        assert_eq!(s.state(), &State::Closing);
        assert_eq!(s.ended(&close(1000, true), 0.0, 0.5), AfterClose::Stop);
        assert_eq!(s.state(), &State::Closed);
        // Even an unclean end of a requested close is final.
        s.connecting(true);
        s.opened();
        s.close_requested();
        assert_eq!(s.ended(&close(1006, false), 0.0, 0.5), AfterClose::Stop);
    }

    #[test]
    fn disconnect_while_waiting_stops_the_series() {
        let mut s = supervisor();
        s.connecting(true);
        s.ended(&close(1006, false), 0.0, 0.5);
        assert!(!s.close_requested(), "no socket while waiting");
        assert_eq!(s.state(), &State::Closed);
        s.connecting(true);
        assert_eq!(s.state(), &State::Connecting { attempt: 0 });
        assert!(!s.opened(), "a fresh connect is not a reconnect");
    }

    #[test]
    fn final_codes_and_disabled_reconnect_stop() {
        let mut s = supervisor();
        s.connecting(true);
        s.opened();
        assert_eq!(s.ended(&close(1008, true), 0.0, 0.5), AfterClose::Stop);
        let mut off = Supervisor::new(BackoffConfig::default(), false);
        off.connecting(true);
        assert_eq!(off.ended(&close(1006, false), 0.0, 0.5), AfterClose::Stop);
    }
}
