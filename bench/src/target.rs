//! The URL the generator drives: `ws://host[:port][/path]`, parsed once.
//!
//! Plain `ws://` only: the benchmark measures WebSocket servers, and TLS
//! would measure the TLS library instead.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use thiserror::Error;

/// Why a URL cannot be driven.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TargetError {
    /// Anything but `ws://`; `wss://` is named so the message is clear.
    #[error("only ws:// URLs are supported (got {0:?})")]
    Scheme(String),
    /// No host between `ws://` and the path.
    #[error("the URL has no host")]
    NoHost,
    /// The port is not a number from 1 to 65535.
    #[error("bad port {0:?}")]
    Port(String),
}

/// A parsed `ws://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port; 80 when the URL names none.
    pub port: u16,
    /// Request target sent in the handshake, starting with `/`.
    pub path: String,
}

impl Target {
    /// The `Host` header value (RFC 7230 §5.4).
    #[must_use]
    pub fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Resolves the host to the first address it has.
    ///
    /// # Errors
    /// The name does not resolve.
    pub async fn resolve(&self) -> std::io::Result<SocketAddr> {
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .next()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} has no address", self.host),
                )
            })
    }
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| TargetError::Scheme(url.to_owned()))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) if rest[at..].starts_with('/') => (&rest[..at], rest[at..].to_owned()),
            Some(at) => (&rest[..at], format!("/{}", &rest[at..])),
            None => (rest, "/".to_owned()),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(TargetError::NoHost)?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(TargetError::NoHost);
        }
        let port = match port {
            None => 80,
            Some(text) => text
                .parse()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| TargetError::Port(text.to_owned()))?,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            path,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ws://{}{}", self.host_header(), self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<Target, TargetError> {
        url.parse()
    }

    #[test]
    fn host_port_and_path() {
        let target = parse("ws://127.0.0.1:9001/echo").expect("valid");
        assert_eq!(target.host, "127.0.0.1");
        assert_eq!(target.port, 9001);
        assert_eq!(target.path, "/echo");
        assert_eq!(target.to_string(), "ws://127.0.0.1:9001/echo");
    }

    #[test]
    fn defaults_for_port_and_path() {
        let target = parse("ws://localhost").expect("valid");
        assert_eq!((target.port, target.path.as_str()), (80, "/"));
        let query = parse("ws://h:1?x=1").expect("valid");
        assert_eq!(query.path, "/?x=1");
    }

    #[test]
    fn ipv6_literals_keep_their_brackets_in_the_host_header() {
        let target = parse("ws://[::1]:8080/").expect("valid");
        assert_eq!(target.host, "::1");
        assert_eq!(target.host_header(), "[::1]:8080");
    }

    #[test]
    fn refused_urls_say_why() {
        assert!(matches!(parse("wss://h/"), Err(TargetError::Scheme(_))));
        assert_eq!(parse("ws://:80/"), Err(TargetError::NoHost));
        assert_eq!(parse("ws://h:0/"), Err(TargetError::Port("0".into())));
        assert_eq!(parse("ws://h:http/"), Err(TargetError::Port("http".into())));
    }
}
