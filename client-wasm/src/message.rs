//! The data messages the client sends and receives, and what a close
//! reported. Plain Rust, shared by the transport, the connection manager and
//! the page.

use std::fmt;

/// One WebSocket data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (always valid UTF-8 on the wire).
    Text(String),
    /// A binary message, byte for byte.
    Binary(Vec<u8>),
}

impl Message {
    /// Payload size in bytes (UTF-8 bytes for text).
    pub fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a connection ended, as the browser's `close` event reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code: the one in the peer's Close frame, 1005 when the frame
    /// had none, 1006 when the connection dropped without a close handshake.
    pub code: u16,
    /// The reason in the Close frame (empty when there was none).
    pub reason: String,
    /// Whether the close handshake completed.
    pub was_clean: bool,
}

/// Close code 1000: normal closure, the purpose of the connection is done.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code 1006: the connection dropped without a close handshake. Never
/// sent on the wire; browsers report it.
pub const CLOSE_ABNORMAL: u16 = 1006;
/// Longest close reason a Close frame can carry (125-byte control payload
/// minus the 2-byte code).
pub const MAX_CLOSE_REASON: usize = 123;

/// Why a close request is refused before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseRequestError {
    /// Browsers let a page send only 1000 or an application code
    /// (3000–4999); the others are reserved for the protocol.
    #[error("close code {0} is not allowed from a browser: use 1000 or 3000-4999")]
    Code(u16),
    /// The reason does not fit in a Close frame.
    #[error("close reason is {0} bytes of UTF-8; at most 123 fit in a Close frame")]
    ReasonTooLong(usize),
}

/// Checks a close code and reason the way `WebSocket.close()` would, so the
/// caller gets a typed error instead of a JavaScript exception.
///
/// # Errors
/// [`CloseRequestError`] names the rule broken.
pub fn check_close_request(code: u16, reason: &str) -> Result<(), CloseRequestError> {
    if code != CLOSE_NORMAL && !(3000..=4999).contains(&code) {
        return Err(CloseRequestError::Code(code));
    }
    if reason.len() > MAX_CLOSE_REASON {
        return Err(CloseRequestError::ReasonTooLong(reason.len()));
    }
    Ok(())
}

impl fmt::Display for CloseInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, close_code_name(self.code))?;
        if !self.reason.is_empty() {
            write!(f, " \"{}\"", self.reason)?;
        }
        if !self.was_clean {
            f.write_str(" (unclean)")?;
        }
        Ok(())
    }
}

/// The RFC 6455 name of a close code, or its range's name.
pub fn close_code_name(code: u16) -> &'static str {
    match code {
        1000 => "normal",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1005 => "no status",
        1006 => "abnormal",
        1007 => "invalid data",
        1008 => "policy violation",
        1009 => "too big",
        1010 => "extension required",
        1011 => "internal error",
        1012 => "service restart",
        1013 => "try again later",
        1015 => "TLS failure",
        3000..=3999 => "registered",
        4000..=4999 => "application",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_requests_follow_the_browser_rules() {
        assert_eq!(check_close_request(1000, "bye"), Ok(()));
        assert_eq!(check_close_request(4001, ""), Ok(()));
        assert_eq!(
            check_close_request(1001, ""),
            Err(CloseRequestError::Code(1001))
        );
        assert_eq!(
            check_close_request(2999, ""),
            Err(CloseRequestError::Code(2999))
        );
        assert_eq!(check_close_request(1000, &"é".repeat(61)), Ok(()));
        assert_eq!(
            check_close_request(1000, &"é".repeat(62)),
            Err(CloseRequestError::ReasonTooLong(124))
        );
    }

    #[test]
    fn close_info_reads_well() {
        let info = CloseInfo {
            code: 1001,
            reason: "server shutting down".into(),
            was_clean: true,
        };
        assert_eq!(info.to_string(), "1001 going away \"server shutting down\"");
        let dropped = CloseInfo {
            code: 1006,
            reason: String::new(),
            was_clean: false,
        };
        assert_eq!(dropped.to_string(), "1006 abnormal (unclean)");
    }

    #[test]
    fn length_counts_utf8_bytes() {
        assert_eq!(Message::Text("héllo".into()).len(), 6);
        assert!(Message::Binary(Vec::new()).is_empty());
    }
}
