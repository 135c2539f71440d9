//! Typed errors: what can go wrong on one connection ([`ClientError`],
//! counted by [`ErrorKind`] in the results), in a whole run
//! ([`BenchError`]) and while rendering a report ([`ReportError`]).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::payload::Mismatch;
use duplex_protocol::deflate::InflateError;
use duplex_protocol::frame::FrameError;

/// What ended one connection early. Each connection stops at its first
/// error and is not reopened, so the counts are connections, not retries.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The TCP connection could not be made (refused, unreachable, out of
    /// ports or file descriptors).
    #[error("cannot connect: {0}")]
    Connect(#[source] io::Error),
    /// TCP connect plus handshake took longer than `--connect-timeout`.
    #[error("no connection within {0:?}")]
    ConnectTimeout(Duration),
    /// The server answered the upgrade with another status, e.g. 503 when
    /// it is at its connection limit.
    #[error("upgrade refused with HTTP {status}")]
    HandshakeStatus {
        /// The HTTP status code.
        status: u16,
    },
    /// The server's 101 response breaks RFC 6455 §4.1.
    #[error("bad handshake response: {0}")]
    Handshake(&'static str),
    /// A sent message was not echoed within `--timeout`.
    #[error("no echo within {0:?}")]
    Timeout(Duration),
    /// The server sent a Close frame.
    #[error("server closed the connection with code {code:?}")]
    Closed {
        /// The close code, if the frame carried one.
        code: Option<u16>,
    },
    /// The TCP connection ended without a Close frame.
    #[error("connection ended without a close frame")]
    Eof,
    /// The echo differs from the message sent.
    #[error("wrong echo: {0}")]
    Mismatch(#[from] Mismatch),
    /// The server sent a frame RFC 6455 forbids.
    #[error("protocol violation by the server: {0}")]
    Protocol(#[from] FrameError),
    /// A compressed message from the server does not inflate (RFC 7692).
    #[error("bad compressed message from the server: {0}")]
    Inflate(#[from] InflateError),
    /// The server answered a rooms command with a message that does not
    /// belong there (an `error` instead of `joined`, say); the message as
    /// it came.
    #[error("unexpected answer from the server: {0}")]
    Unexpected(String),
    /// Any other socket error.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl ClientError {
    /// The bucket this error is counted in.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Connect(_) => ErrorKind::Connect,
            Self::ConnectTimeout(_) | Self::Timeout(_) => ErrorKind::Timeout,
            Self::HandshakeStatus { .. } | Self::Handshake(_) => ErrorKind::Handshake,
            Self::Closed { .. } | Self::Eof => ErrorKind::Closed,
            Self::Mismatch(_) => ErrorKind::Mismatch,
            Self::Protocol(_) | Self::Inflate(_) | Self::Unexpected(_) => ErrorKind::Protocol,
            Self::Io(error) => match error.kind() {
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => ErrorKind::Closed,
                _ => ErrorKind::Io,
            },
        }
    }
}

/// The buckets errors are counted in, as they appear in `--json` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// TCP connect failed.
    Connect,
    /// The upgrade was refused or malformed.
    Handshake,
    /// Connect or echo took longer than its timeout.
    Timeout,
    /// The server closed or reset the connection.
    Closed,
    /// An echo differed from what was sent: the server is wrong.
    Mismatch,
    /// The server broke the framing rules, or answered a rooms command
    /// with a message that does not belong there.
    Protocol,
    /// Another socket error.
    Io,
}

/// Why a whole run could not produce a result.
#[derive(Debug, Error)]
pub enum BenchError {
    /// The URL's host does not resolve.
    #[error("cannot resolve {url}: {source}")]
    Resolve {
        /// The URL as given.
        url: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// Not one connection could be opened; the first error says why.
    #[error("no connection could be opened to {url} ({attempted} tried); first error: {first}")]
    NoConnection {
        /// The URL as given.
        url: String,
        /// Connections attempted.
        attempted: usize,
        /// The first failure's message.
        first: String,
    },
    /// The options contradict each other.
    #[error("invalid options: {0}")]
    Options(String),
    /// Reading another process's memory or CPU time failed.
    #[error(transparent)]
    Proc(#[from] crate::procfs::ProcError),
}

/// Why a report could not be rendered.
#[derive(Debug, Error)]
pub enum ReportError {
    /// A results or metadata file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A results file is not the JSON `duplex-bench --json` writes.
    #[error("{path} is not a duplex-bench result: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The results directory has no results.
    #[error("no results (*.json) in {0}")]
    NoResults(PathBuf),
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// plotters failed to draw the chart.
    #[error("cannot draw the chart: {0}")]
    Chart(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_count_as_closed_and_other_io_as_io() {
        let reset = ClientError::Io(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(reset.kind(), ErrorKind::Closed);
        let other = ClientError::Io(io::Error::other("disk on fire"));
        assert_eq!(other.kind(), ErrorKind::Io);
        assert_eq!(
            ClientError::HandshakeStatus { status: 503 }.kind(),
            ErrorKind::Handshake
        );
    }

    #[test]
    fn kinds_serialise_in_kebab_case() {
        let json = serde_json::to_string(&ErrorKind::Mismatch).expect("serialises");
        assert_eq!(json, "\"mismatch\"");
    }
}
