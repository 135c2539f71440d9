//! Close codes: which RFC 6455 code answers which failure, and how a
//! connection ended, for the log line.

use std::fmt;

use crate::deflate::DeflateError;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A `/ws` connection whose token's `exp` has passed (plus the leeway):
/// from the private-use range (RFC 6455, section 7.4.2), so a client can
/// tell it from every other ending, get a new token and reconnect.
pub(crate) const TOKEN_EXPIRED: CloseCode = CloseCode::Library(4001);
/// The reason sent with [`TOKEN_EXPIRED`].
pub(crate) const TOKEN_EXPIRED_REASON: &str = "token expired";
/// The reason sent with 1008 (policy) to a client over
/// `--max-messages-per-second`.
pub(crate) const RATE_LIMITED_REASON: &str = "message rate limit exceeded";

/// The close frame RFC 6455 asks us to send before failing the connection
/// because of `error`, or `None` when the peer is already gone and nothing
/// can be sent.
pub(crate) fn frame_for(error: &WsError) -> Option<CloseFrame> {
    let deflate = match error {
        WsError::Io(io) => DeflateError::in_io(io),
        _ => None,
    };
    let (code, reason) = match (error, deflate) {
        // A compressed message that cannot be inflated (wire::inflate).
        (_, Some(DeflateError::Corrupt(_))) => (CloseCode::Invalid, "invalid compressed data"),
        (_, Some(DeflateError::TooLarge)) => (CloseCode::Size, "message too big"),
        (_, Some(DeflateError::Protocol)) => (CloseCode::Protocol, "protocol error"),
        (error, None) => match error {
            // Section 8.1: invalid UTF-8 in a text message (or a close reason).
            WsError::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8"),
            // Section 7.4.1: a message too big to process.
            WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
                (CloseCode::Size, "message too big")
            }
            WsError::Capacity(CapacityError::TooManyHeaders) => {
                (CloseCode::Protocol, "protocol error")
            }
            // The peer vanished: there is nobody to tell.
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
            | WsError::Io(_)
            | WsError::ConnectionClosed
            | WsError::AlreadyClosed => return None,
            WsError::Protocol(_) => (CloseCode::Protocol, "protocol error"),
            // Our own outbound bound was hit: the client is not keeping up.
            WsError::WriteBufferFull(_) => (CloseCode::Again, "outbound buffer full"),
            _ => (CloseCode::Error, "internal error"),
        },
    };
    Some(CloseFrame {
        code,
        reason: reason.into(),
    })
}

/// Who ended a connection and with which code, for the log line.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The peer sent Close; we answered with the same code.
    ByPeer(Option<CloseFrame>),
    /// We sent Close (shutdown, idle timeout, protocol error).
    ByServer {
        /// The code and reason we sent.
        frame: CloseFrame,
        /// Whether the peer answered with its own Close in time.
        acknowledged: bool,
    },
    /// The TCP connection ended without a close handshake.
    Dropped(Abort),
}

/// Why a connection ended without a close handshake.
#[derive(Debug)]
pub(crate) enum Abort {
    /// The peer closed or reset the TCP connection.
    Transport(WsError),
    /// The client did not take an outbound message within the write timeout.
    WriteTimeout,
}

impl Ending {
    /// The close code to log: the one exchanged, or 1006 (abnormal closure,
    /// never sent on the wire) when there was no close frame.
    pub(crate) fn code(&self) -> u16 {
        match self {
            Self::ByPeer(Some(frame)) => frame.code.into(),
            Self::ByPeer(None) => CloseCode::Status.into(),
            Self::ByServer { frame, .. } => frame.code.into(),
            Self::Dropped(_) => CloseCode::Abnormal.into(),
        }
    }

    /// `peer`, `server` or `none`.
    pub(crate) fn closed_by(&self) -> &'static str {
        match self {
            Self::ByPeer(_) => "peer",
            Self::ByServer { .. } => "server",
            Self::Dropped(_) => "none",
        }
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ByPeer(Some(frame)) => write!(f, "closed by peer: {:?}", frame.reason.as_str()),
            Self::ByPeer(None) => f.write_str("closed by peer without a code"),
            Self::ByServer {
                frame,
                acknowledged,
            } => {
                let ack = if *acknowledged {
                    "acknowledged"
                } else {
                    "not acknowledged"
                };
                write!(f, "closed by server: {:?} ({ack})", frame.reason.as_str())
            }
            Self::Dropped(Abort::Transport(error)) => write!(f, "connection lost: {error}"),
            Self::Dropped(Abort::WriteTimeout) => {
                f.write_str("client stopped reading (write timeout)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn code(error: &WsError) -> Option<u16> {
        frame_for(error).map(|f| f.code.into())
    }

    #[test]
    fn rfc_codes_for_each_failure() {
        assert_eq!(
            code(&WsError::Protocol(ProtocolError::NonZeroReservedBits)),
            Some(1002)
        );
        assert_eq!(
            code(&WsError::Capacity(CapacityError::MessageTooLong {
                size: 2,
                max_size: 1
            })),
            Some(1009)
        );
        let invalid = String::from_utf8(vec![0xff]).expect_err("0xff is not UTF-8");
        assert_eq!(code(&WsError::Utf8(invalid.to_string())), Some(1007));
        let deflate = |error: DeflateError| code(&WsError::Io(error.into()));
        assert_eq!(deflate(DeflateError::Corrupt("bad".into())), Some(1007));
        assert_eq!(deflate(DeflateError::TooLarge), Some(1009));
        assert_eq!(deflate(DeflateError::Protocol), Some(1002));
    }

    #[test]
    fn nothing_is_sent_to_a_vanished_peer() {
        assert_eq!(
            code(&WsError::Io(io::ErrorKind::ConnectionReset.into())),
            None
        );
        assert_eq!(
            code(&WsError::Protocol(
                ProtocolError::ResetWithoutClosingHandshake
            )),
            None
        );
    }
}
