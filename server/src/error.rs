//! Typed errors of the library. A failure on one connection never becomes
//! one of these: it is logged in that connection's task and ends only it.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why [`crate::run`] could not start or keep serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is inconsistent; nothing was started.
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    /// The listener's local address could not be read.
    #[error("cannot read the listening address")]
    LocalAddr(#[source] io::Error),
}

/// A configuration value that cannot work, alone or with another one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A size, count or duration that must be positive is zero.
    #[error("--{0} must be greater than zero")]
    Zero(&'static str),
    /// A frame can never be larger than the message it is part of.
    #[error("--max-frame-size ({frame} bytes) exceeds --max-message-size ({message} bytes)")]
    FrameLargerThanMessage {
        /// The configured maximum frame size.
        frame: usize,
        /// The configured maximum message size.
        message: usize,
    },
    /// The outbound bound must hold one maximum-size message (with its frame
    /// header) on top of a queued write batch.
    #[error(
        "--max-outbound-buffer ({outbound} bytes) must be at least {needed} bytes: one message of --max-message-size plus the 64 KiB write batch and a frame header"
    )]
    OutboundTooSmall {
        /// The configured outbound buffer bound.
        outbound: usize,
        /// The smallest bound that works with the configured message size.
        needed: usize,
    },
    /// A connection would be declared dead before it is ever pinged.
    #[error("--idle-timeout ({idle:?}) must be longer than --ping-interval ({ping:?})")]
    IdleNotAbovePing {
        /// The configured idle timeout.
        idle: Duration,
        /// The configured ping interval.
        ping: Duration,
    },
    /// `--ui-dir` must hold a built UI (run `trunk build --release`).
    #[error("--ui-dir {0:?} has no index.html: build the UI first (trunk build --release)")]
    UiDirWithoutIndex(PathBuf),
    /// The binary frame header stores a room name's length in one byte.
    #[error("--max-room-len ({0}) must be at most 255: the binary header has one byte for it")]
    RoomLenOverHeader(usize),
    /// An empty token would let anyone push; leave it unset to disable.
    #[error("--push-token is empty: unset it to disable the push API")]
    EmptyPushToken,
}
