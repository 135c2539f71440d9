//! The bounded queue of messages written while the connection is not open.
//! Plain Rust.
//!
//! Overflow policy: **the newest message is refused**. A message that does
//! not fit (by count or by bytes) is not queued and the caller gets
//! [`OutboxFull`] at once, so the person who typed it sees it was not sent;
//! what was queued earlier is never dropped behind their back, and the
//! queue is delivered in order when the connection opens.

use std::collections::VecDeque;

use crate::message::Message;

/// How much the outbox holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Most messages queued. 1000: far more than a person types during an
    /// outage, small enough that the flush after a reconnect is quick.
    pub max_messages: usize,
    /// Most payload bytes queued. 16 MiB: a few large files, without letting
    /// an outage grow the tab's memory without bound.
    pub max_bytes: usize,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        Self {
            max_messages: 1000,
            max_bytes: 16 << 20,
        }
    }
}

/// A message was refused because the outbox is full.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "outbox full ({queued} messages, {queued_bytes} bytes queued; limits {max_messages} messages, {max_bytes} bytes): message of {size} bytes not queued"
)]
pub struct OutboxFull {
    /// Size of the refused message.
    pub size: usize,
    /// Messages queued when it was refused.
    pub queued: usize,
    /// Bytes queued when it was refused.
    pub queued_bytes: usize,
    /// The count limit.
    pub max_messages: usize,
    /// The byte limit.
    pub max_bytes: usize,
}

/// A FIFO of messages with count and byte limits.
#[derive(Debug, Clone)]
pub struct Outbox {
    items: VecDeque<Message>,
    /// Sum of the payload sizes in `items`.
    bytes: usize,
    limits: OutboxLimits,
    /// Messages refused since creation, for the page's counters.
    refused: u64,
}

impl Outbox {
    /// An empty outbox.
    pub fn new(limits: OutboxLimits) -> Self {
        Self {
            items: VecDeque::new(),
            bytes: 0,
            limits,
            refused: 0,
        }
    }

    /// Queues `message` at the back, or refuses it (see the module doc).
    ///
    /// # Errors
    /// [`OutboxFull`] when it would exceed either limit.
    pub fn push(&mut self, message: Message) -> Result<(), OutboxFull> {
        let size = message.len();
        let fits = self.items.len() < self.limits.max_messages
            && self
                .bytes
                .checked_add(size)
                .is_some_and(|total| total <= self.limits.max_bytes);
        if !fits {
            self.refused += 1;
            return Err(OutboxFull {
                size,
                queued: self.items.len(),
                queued_bytes: self.bytes,
                max_messages: self.limits.max_messages,
                max_bytes: self.limits.max_bytes,
            });
        }
        self.bytes += size;
        self.items.push_back(message);
        Ok(())
    }

    /// Takes the oldest message.
    pub fn pop(&mut self) -> Option<Message> {
        let message = self.items.pop_front()?;
        self.bytes -= message.len();
        Some(message)
    }

    /// Puts a message back at the front (its send failed; it keeps its
    /// place). Never refused: it was counted before.
    pub fn push_front(&mut self, message: Message) {
        self.bytes += message.len();
        self.items.push_front(message);
    }

    /// Messages queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Payload bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Messages refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Drops everything queued (the user disconnected on purpose) and says
    /// how many messages that was.
    pub fn clear(&mut self) -> usize {
        let n = self.items.len();
        self.items.clear();
        self.bytes = 0;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Message {
        Message::Text(s.into())
    }

    #[test]
    fn delivers_in_order_and_tracks_bytes() {
        let mut outbox = Outbox::new(OutboxLimits::default());
        for s in ["one", "two", "three"] {
            outbox.push(text(s)).expect("room");
        }
        assert_eq!((outbox.len(), outbox.bytes()), (3, 11));
        assert_eq!(outbox.pop(), Some(text("one")));
        outbox.push_front(text("one"));
        let order: Vec<_> = std::iter::from_fn(|| outbox.pop()).collect();
        assert_eq!(order, [text("one"), text("two"), text("three")]);
        assert_eq!(outbox.bytes(), 0);
    }

    #[test]
    fn the_newest_message_is_refused_when_the_count_is_reached() {
        let mut outbox = Outbox::new(OutboxLimits {
            max_messages: 2,
            max_bytes: 1 << 20,
        });
        outbox.push(text("a")).expect("room");
        outbox.push(text("b")).expect("room");
        let full = outbox.push(text("c")).expect_err("over the count");
        assert_eq!((full.queued, full.size), (2, 1));
        assert_eq!(outbox.refused(), 1);
        // What was queued first is still there, in order.
        assert_eq!(outbox.pop(), Some(text("a")));
        assert_eq!(outbox.pop(), Some(text("b")));
    }

    #[test]
    fn the_byte_limit_counts_payloads() {
        let mut outbox = Outbox::new(OutboxLimits {
            max_messages: 100,
            max_bytes: 10,
        });
        outbox.push(Message::Binary(vec![0; 6])).expect("room");
        assert!(outbox.push(Message::Binary(vec![0; 5])).is_err());
        outbox
            .push(Message::Binary(vec![0; 4]))
            .expect("exactly full");
        assert_eq!(outbox.bytes(), 10);
        assert_eq!(outbox.clear(), 2);
        assert!(outbox.is_empty());
    }
}
