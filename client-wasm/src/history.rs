//! Where one room's history stands for this client (protocol 2, see
//! `docs/protocol.md`): the room's epoch and the offset of the last message
//! received, which the next rejoin sends as `since`, and what each rejoin,
//! delivery and `history_reset` says about messages recovered or lost.
//! Plain Rust, unit-tested natively; [`crate::rooms`] keeps one per room
//! and turns its [`Notice`]s into lines of the room's chat.
//!
//! Nothing is lost silently: every way messages can go missing ends in a
//! [`Notice`]. A rejoin that recovered says how many messages it brought
//! back, counted as they arrive; one the history could not serve says
//! messages may be missing; a live message whose offset skips some says
//! how many; a reset says history was lost.
//!
//! Offsets only grow within an epoch, so a message at or below the last
//! one received is one this client has already: a replay that started
//! before it (a `since` older than the last message, if the greeting was
//! set before the last messages of the old connection were handled). It
//! is dropped as a duplicate, and the replay's count leaves it out.

use duplex_protocol::Position;

/// A replay in progress: the server said `recovered: true` and sends the
/// missed messages before any live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Recovery {
    /// The room's latest offset at the join: the replay's last message.
    until: u64,
    /// How many messages the replay should bring (`until` minus the last
    /// offset received before it).
    expected: u64,
    /// How many of them arrived so far.
    received: u64,
}

/// Something the person must be told about a room's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A rejoin recovered this many messages, all that were missed (0: none
    /// were).
    Recovered(u64),
    /// The connection ended during a replay: `received` of `expected`
    /// messages arrived (the next rejoin asks for the rest).
    RecoveryInterrupted {
        /// Replayed messages that arrived.
        received: u64,
        /// Messages the replay was to bring.
        expected: u64,
    },
    /// The rejoin could not recover (`recovered: false`): the history no
    /// longer holds what was missed. `lost` is how many messages that is,
    /// when the epoch is the same (after a restart it cannot be known).
    Expired {
        /// Messages published while away and not replayed, if known.
        lost: Option<u64>,
    },
    /// The room's history was lost (`history_reset`, or a join without
    /// `since` that found another epoch): offsets start again, and
    /// messages from around the reset may be missing.
    Reset,
    /// This many messages before the one just received never arrived (its
    /// offset skipped them: the server dropped them for this client).
    Missed(u64),
}

/// What to do with a delivered message, from its offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Show it.
    Show {
        /// Messages just before it that never arrived (0: none):
        /// [`Notice::Missed`], to tell before showing it.
        missed: u64,
        /// It completes a replay: tell this after showing it.
        after: Option<Notice>,
    },
    /// This client has it already; drop it.
    Duplicate,
}

/// One room's history as this client knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The epoch and the last offset received; `None` until the first
    /// `joined` (a room joined for the first time asks for no replay).
    position: Option<Position>,
    /// The replay in progress, if any.
    recovery: Option<Recovery>,
}

impl History {
    /// No position yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The epoch and the last offset received: the `since` of the next
    /// rejoin. `None` before the first `joined`.
    pub fn position(&self) -> Option<&Position> {
        self.position.as_ref()
    }

    /// Whether a replay is in progress.
    pub fn recovering(&self) -> bool {
        self.recovery.is_some()
    }

    /// The last offset received in `epoch`, if that is the epoch this
    /// client knows.
    fn last_in(&self, epoch: &str) -> Option<u64> {
        self.position
            .as_ref()
            .filter(|p| p.epoch == epoch)
            .map(|p| p.offset)
    }

    /// The server's `joined`: the room's `epoch`, its latest `offset`, and
    /// `recovered` when the join carried `since`. What to tell, if
    /// anything (a recovery of several messages is told when its last one
    /// arrives, see [`History::message`]).
    pub fn joined(
        &mut self,
        epoch: String,
        offset: u64,
        recovered: Option<bool>,
    ) -> Option<Notice> {
        let last = self.last_in(&epoch);
        self.recovery = None;
        match recovered {
            Some(true) => {
                // The replay is since+1 ..= offset. Count from the last
                // offset actually received, not from the `since` sent: a
                // stale `since` replays messages this client has, which
                // are dropped as duplicates and are not "recovered".
                let last = last.unwrap_or(0);
                let expected = offset.saturating_sub(last);
                self.position = Some(Position {
                    epoch,
                    offset: last,
                });
                if expected == 0 {
                    return Some(Notice::Recovered(0));
                }
                self.recovery = Some(Recovery {
                    until: offset,
                    expected,
                    received: 0,
                });
                None
            }
            Some(false) => {
                self.position = Some(Position { epoch, offset });
                Some(Notice::Expired {
                    lost: last.map(|last| offset.saturating_sub(last)),
                })
            }
            // A join without `since`: the first one, or a rejoin whose
            // greeting predates our first `joined`. Compare with what we
            // know, if anything.
            None => {
                let had_position = self.position.is_some();
                self.position = Some(Position { epoch, offset });
                match last {
                    Some(last) if offset > last => Some(Notice::Missed(offset - last)),
                    Some(_) => None,
                    None if had_position => Some(Notice::Reset),
                    None => None,
                }
            }
        }
    }

    /// A delivered message (JSON `message` or binary delivery) at `offset`.
    pub fn message(&mut self, offset: u64) -> Arrival {
        let Some(position) = self.position.as_mut() else {
            // Before our first `joined`: the tail of an earlier membership
            // (left and joined again while the leave was on its way).
            return Arrival::Show {
                missed: 0,
                after: None,
            };
        };
        if offset <= position.offset {
            return Arrival::Duplicate;
        }
        let missed = offset - position.offset - 1;
        position.offset = offset;
        let mut after = None;
        if let Some(recovery) = self.recovery.as_mut() {
            if offset <= recovery.until {
                recovery.received += 1;
            }
            // The replay's last message, or a live one after it (the
            // replay's tail was dropped, and `missed` says so).
            if offset >= recovery.until {
                after = Some(Notice::Recovered(recovery.received));
                self.recovery = None;
            }
        }
        Arrival::Show { missed, after }
    }

    /// The server's `history_reset`: the room's history was lost; messages
    /// after `offset` in `epoch` follow.
    pub fn reset(&mut self, epoch: String, offset: u64) -> Notice {
        self.recovery = None;
        self.position = Some(Position { epoch, offset });
        Notice::Reset
    }

    /// The connection ended. The position stays (the next rejoin sends
    /// it); a replay in progress is cut short, which is told.
    pub fn disconnected(&mut self) -> Option<Notice> {
        let recovery = self.recovery.take()?;
        Some(Notice::RecoveryInterrupted {
            received: recovery.received,
            expected: recovery.expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(epoch: &str, offset: u64) -> Option<Position> {
        Some(Position {
            epoch: epoch.into(),
            offset,
        })
    }

    fn show(missed: u64) -> Arrival {
        Arrival::Show {
            missed,
            after: None,
        }
    }

    #[test]
    fn a_first_join_and_messages_move_the_position() {
        let mut history = History::new();
        assert_eq!(history.position(), None);
        assert_eq!(history.joined("e1".into(), 4, None), None);
        assert_eq!(history.position().cloned(), at("e1", 4));
        assert_eq!(history.message(5), show(0));
        assert_eq!(history.message(6), show(0));
        assert_eq!(history.position().cloned(), at("e1", 6));
    }

    #[test]
    fn a_recovery_counts_what_the_replay_brings() {
        let mut history = History::new();
        history.joined("e1".into(), 0, None);
        history.message(1);
        history.message(2);
        // Rejoined with since e1/2; the room is at 5: 3, 4, 5 follow.
        assert_eq!(history.joined("e1".into(), 5, Some(true)), None);
        assert!(history.recovering());
        assert_eq!(history.message(3), show(0));
        assert_eq!(history.message(4), show(0));
        assert_eq!(
            history.message(5),
            Arrival::Show {
                missed: 0,
                after: Some(Notice::Recovered(3))
            }
        );
        assert!(!history.recovering());
        assert_eq!(history.message(6), show(0));
        assert_eq!(history.position().cloned(), at("e1", 6));
    }

    #[test]
    fn a_recovery_with_nothing_missed_says_so_at_once() {
        let mut history = History::new();
        history.joined("e1".into(), 2, None);
        assert_eq!(
            history.joined("e1".into(), 2, Some(true)),
            Some(Notice::Recovered(0))
        );
        assert!(!history.recovering());
        assert_eq!(history.position().cloned(), at("e1", 2));
    }

    /// A `since` older than the last message received (the greeting was
    /// set before the old connection's last messages were handled)
    /// replays some this client has: dropped, and not counted.
    #[test]
    fn a_stale_since_replays_duplicates_that_are_dropped() {
        let mut history = History::new();
        history.joined("e1".into(), 0, None);
        for offset in 1..=4 {
            history.message(offset);
        }
        // The server replays 3..=6 from since 2.
        assert_eq!(history.joined("e1".into(), 6, Some(true)), None);
        assert_eq!(history.message(3), Arrival::Duplicate);
        assert_eq!(history.message(4), Arrival::Duplicate);
        assert_eq!(history.message(5), show(0));
        assert_eq!(
            history.message(6),
            Arrival::Show {
                missed: 0,
                after: Some(Notice::Recovered(2))
            }
        );
    }

    #[test]
    fn a_recovery_that_cannot_be_served_says_messages_may_be_missing() {
        let mut history = History::new();
        history.joined("e1".into(), 3, None);
        // Same epoch, too old: how many is known.
        assert_eq!(
            history.joined("e1".into(), 10, Some(false)),
            Some(Notice::Expired { lost: Some(7) })
        );
        assert_eq!(history.position().cloned(), at("e1", 10));
        // Another epoch (the server restarted): not known.
        assert_eq!(
            history.joined("e2".into(), 0, Some(false)),
            Some(Notice::Expired { lost: None })
        );
        assert_eq!(history.position().cloned(), at("e2", 0));
        assert_eq!(history.message(1), show(0));
    }

    #[test]
    fn a_history_reset_switches_to_the_new_epoch() {
        let mut history = History::new();
        history.joined("e1".into(), 0, None);
        history.message(1);
        history.message(2);
        assert_eq!(history.reset("e2".into(), 0), Notice::Reset);
        assert_eq!(history.position().cloned(), at("e2", 0));
        // Offsets start again: 1 is new, not a duplicate.
        assert_eq!(history.message(1), show(0));
        // A reset during a replay ends it.
        history.joined("e2".into(), 4, Some(true));
        assert!(history.recovering());
        assert_eq!(history.reset("e3".into(), 7), Notice::Reset);
        assert!(!history.recovering());
        assert_eq!(history.message(8), show(0));
    }

    #[test]
    fn a_gap_in_live_offsets_is_counted() {
        let mut history = History::new();
        history.joined("e1".into(), 0, None);
        assert_eq!(history.message(1), show(0));
        // 2..=4 dropped for this client (a `missed`).
        assert_eq!(history.message(5), show(3));
        assert_eq!(history.message(6), show(0));
        // A gap in a replay is counted too, and the replay still ends.
        history.joined("e1".into(), 10, Some(true));
        assert_eq!(history.message(7), show(0));
        assert_eq!(
            history.message(10),
            Arrival::Show {
                missed: 2,
                after: Some(Notice::Recovered(2))
            }
        );
    }

    #[test]
    fn a_replay_whose_tail_was_dropped_ends_at_the_next_live_message() {
        let mut history = History::new();
        history.joined("e1".into(), 1, None);
        history.joined("e1".into(), 3, Some(true));
        assert_eq!(history.message(2), show(0));
        assert_eq!(
            history.message(5),
            Arrival::Show {
                missed: 2,
                after: Some(Notice::Recovered(1))
            }
        );
        assert!(!history.recovering());
    }

    #[test]
    fn a_disconnect_during_a_replay_is_told_and_the_position_kept() {
        let mut history = History::new();
        history.joined("e1".into(), 1, None);
        history.joined("e1".into(), 5, Some(true));
        history.message(2);
        assert_eq!(
            history.disconnected(),
            Some(Notice::RecoveryInterrupted {
                received: 1,
                expected: 4
            })
        );
        assert_eq!(history.position().cloned(), at("e1", 2));
        assert_eq!(history.disconnected(), None);
    }

    /// A join without `since` for a room with a known position: the
    /// greeting was set before the first `joined` arrived.
    #[test]
    fn a_rejoin_without_since_still_reports_what_was_missed() {
        let mut history = History::new();
        history.joined("e1".into(), 2, None);
        assert_eq!(
            history.joined("e1".into(), 5, None),
            Some(Notice::Missed(3))
        );
        assert_eq!(history.joined("e1".into(), 5, None), None);
        assert_eq!(history.joined("e2".into(), 0, None), Some(Notice::Reset));
        assert_eq!(history.position().cloned(), at("e2", 0));
    }

    #[test]
    fn messages_before_the_first_joined_are_shown_without_bookkeeping() {
        let mut history = History::new();
        assert_eq!(history.message(9), show(0));
        assert_eq!(history.position(), None);
    }
}
