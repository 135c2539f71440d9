//! A room's history in this process (the memory engine): its epoch, the
//! offset of its latest message, and the last `--history-size` messages as
//! the frames members got, for a rejoining client to recover.
//!
//! A history lives `--history-ttl` after the room's last message (or its
//! creation), whether or not the room still has members; then it is lost,
//! and the room's next message starts a new epoch at offset 1. The
//! [`Store`] keeps the histories by room name, so a room whose members all
//! left keeps its history for a member who comes back.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use duplex_protocol::Position;

use super::epoch::Epoch;
use crate::wire::Frame;

/// What recovering from a position gives.
#[derive(Debug)]
pub(crate) enum Recovery {
    /// The history holds everything after the position: these frames, in
    /// order (none when the position is the latest).
    Recovered(Vec<Frame>),
    /// Another epoch, an offset past the latest, or messages the history
    /// no longer holds: nothing to replay.
    Lost,
}

/// One room's history.
#[derive(Debug)]
pub(crate) struct History {
    epoch: Epoch,
    /// The offset of the latest message (0: none in this epoch).
    top: u64,
    /// The last messages, oldest first, each with its offset.
    log: VecDeque<(u64, Frame)>,
    /// When the history was created or last appended to.
    touched: Instant,
}

impl History {
    fn new(now: Instant) -> Self {
        Self {
            epoch: Epoch::new(),
            top: 0,
            log: VecDeque::new(),
            touched: now,
        }
    }

    /// The epoch and the latest offset.
    pub(crate) fn position(&self) -> (Epoch, u64) {
        (self.epoch, self.top)
    }

    /// Starts a new epoch if the history has been idle for `ttl`.
    fn expire(&mut self, now: Instant, ttl: Duration) {
        if now.saturating_duration_since(self.touched) >= ttl {
            *self = Self::new(now);
        }
    }

    /// Gives the next message its offset and keeps `frame(offset)`, the
    /// last `size` messages only. Returns the epoch, the offset and the
    /// frame.
    pub(crate) fn append(
        &mut self,
        size: usize,
        frame: impl FnOnce(u64) -> Frame,
    ) -> (Epoch, u64, Frame) {
        self.top += 1;
        self.touched = Instant::now();
        let frame = frame(self.top);
        if size > 0 {
            if self.log.len() >= size {
                self.log.pop_front();
            }
            self.log.push_back((self.top, frame.clone()));
        }
        (self.epoch, self.top, frame)
    }

    /// The messages after `since`, if this history holds all of them.
    pub(crate) fn since(&self, since: &Position) -> Recovery {
        if Epoch::parse(&since.epoch) != Some(self.epoch) || since.offset > self.top {
            return Recovery::Lost;
        }
        if since.offset == self.top {
            return Recovery::Recovered(Vec::new());
        }
        match self.log.front() {
            Some(&(oldest, _)) if oldest <= since.offset + 1 => {
                let skip = usize::try_from(since.offset + 1 - oldest).unwrap_or(usize::MAX);
                Recovery::Recovered(
                    self.log
                        .iter()
                        .skip(skip)
                        .map(|(_, frame)| frame.clone())
                        .collect(),
                )
            }
            _ => Recovery::Lost,
        }
    }
}

/// A room's history, shared by the room while it has members and kept by
/// the [`Store`] for `--history-ttl`.
pub(crate) type Shared = Arc<Mutex<History>>;

/// Every room's history in this process.
#[derive(Debug)]
pub(crate) struct Store {
    histories: Mutex<HashMap<Arc<str>, Shared>>,
    /// Messages kept per room (`--history-size`).
    size: usize,
    /// How long a history outlives its room's last message
    /// (`--history-ttl`).
    ttl: Duration,
}

impl Store {
    pub(crate) fn new(size: usize, ttl: Duration) -> Self {
        Self {
            histories: Mutex::default(),
            size,
            ttl,
        }
    }

    /// Messages kept per room.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    fn histories(&self) -> MutexGuard<'_, HashMap<Arc<str>, Shared>> {
        self.histories
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `room`'s history, created if it has none.
    pub(crate) fn get(&self, room: &Arc<str>) -> Shared {
        Arc::clone(
            self.histories()
                .entry(Arc::clone(room))
                .or_insert_with(|| Arc::new(Mutex::new(History::new(Instant::now())))),
        )
    }

    /// Locks a history, first starting a new epoch if it expired.
    pub(crate) fn lock<'a>(&self, history: &'a Shared) -> MutexGuard<'a, History> {
        let mut history = history.lock().unwrap_or_else(PoisonError::into_inner);
        history.expire(Instant::now(), self.ttl);
        history
    }

    /// Forgets the expired histories of rooms without members (a room with
    /// members holds its history: it expires when next locked).
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        self.histories().retain(|_, history| {
            Arc::strong_count(history) > 1
                || history.lock().map_or(true, |h| {
                    now.saturating_duration_since(h.touched) < self.ttl
                })
        });
    }

    /// How often [`Store::sweep`] should run: a fraction of the TTL, so a
    /// forgotten history's memory is held at most a little past it.
    pub(crate) fn sweep_interval(&self) -> Duration {
        (self.ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
    }

    /// Histories held, for tests.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.histories().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(offset: u64) -> Frame {
        Frame::text(&offset.to_string())
    }

    fn texts(recovery: &Recovery) -> Option<Vec<String>> {
        match recovery {
            Recovery::Recovered(frames) => Some(
                frames
                    .iter()
                    .map(|f| String::from_utf8_lossy(f.payload()).into_owned())
                    .collect(),
            ),
            Recovery::Lost => None,
        }
    }

    fn at(history: &History, offset: u64) -> Position {
        Position {
            epoch: history.epoch.to_string(),
            offset,
        }
    }

    #[test]
    fn offsets_start_at_one_and_the_size_is_exact() {
        let mut history = History::new(Instant::now());
        assert_eq!(history.position().1, 0);
        for expected in 1..=10 {
            let (_, offset, _) = history.append(4, frame);
            assert_eq!(offset, expected);
        }
        // Missed 4 (the size): recovered, exactly 7..=10.
        assert_eq!(
            texts(&history.since(&at(&history, 6))),
            Some(vec!["7".into(), "8".into(), "9".into(), "10".into()])
        );
        // Missed 5: lost.
        assert!(texts(&history.since(&at(&history, 5))).is_none());
        // At the latest: recovered, nothing to replay.
        assert_eq!(texts(&history.since(&at(&history, 10))), Some(vec![]));
        // Beyond the latest, or another epoch: lost.
        assert!(texts(&history.since(&at(&history, 11))).is_none());
        let other = Position {
            epoch: "another".into(),
            offset: 10,
        };
        assert!(texts(&history.since(&other)).is_none());
    }

    #[test]
    fn a_history_of_size_zero_recovers_only_the_latest() {
        let mut history = History::new(Instant::now());
        history.append(0, frame);
        assert_eq!(texts(&history.since(&at(&history, 1))), Some(vec![]));
        assert!(texts(&history.since(&at(&history, 0))).is_none());
    }

    #[test]
    fn an_idle_history_expires_into_a_new_epoch() {
        let mut history = History::new(Instant::now());
        history.append(10, frame);
        let start = history.touched;
        let (old, _) = history.position();
        history.expire(start + Duration::from_secs(59), Duration::from_secs(60));
        assert_eq!(history.position(), (old, 1));
        history.expire(start + Duration::from_secs(60), Duration::from_secs(60));
        let (new, top) = history.position();
        assert_ne!(new, old);
        assert_eq!(top, 0);
        assert!(
            texts(&history.since(&Position {
                epoch: old.to_string(),
                offset: 1
            }))
            .is_none()
        );
    }

    #[test]
    fn the_store_forgets_only_expired_histories_nobody_holds() {
        let store = Store::new(10, Duration::from_millis(0));
        let held = store.get(&Arc::from("held"));
        drop(store.get(&Arc::from("idle")));
        store.sweep();
        assert_eq!(store.len(), 1);
        drop(held);
        store.sweep();
        assert_eq!(store.len(), 0);
        let store = Store::new(10, Duration::from_secs(60));
        drop(store.get(&Arc::from("fresh")));
        store.sweep();
        assert_eq!(store.len(), 1);
    }
}
