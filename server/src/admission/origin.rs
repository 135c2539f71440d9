//! `--allowed-origins`: the web pages whose scripts may open WebSockets
//! here. A browser names the page in the `Origin` header of every
//! upgrade, and WebSockets are not held to the same-origin policy, so
//! without this check any page a visitor opens can talk to the server
//! with the visitor's cookies (cross-site WebSocket hijacking).
//!
//! Origins are compared as whole strings, exactly as browsers serialise
//! them (scheme, host and port; the list's syntax is checked by
//! `Config::validate`). A request without `Origin` does not come from a
//! browser's page and is let through: the check protects browsers'
//! users, and any other client could send whatever Origin it liked.

use hyper::header::{self, HeaderMap};

use super::Refusal;

/// The origins of `--allowed-origins`.
#[derive(Debug)]
pub(super) struct AllowedOrigins {
    /// Few entries in practice: a linear scan beats hashing them.
    list: Vec<Box<[u8]>>,
}

impl AllowedOrigins {
    /// The list as configured (validated: every entry is an origin).
    pub(super) fn new(list: &[String]) -> Self {
        Self {
            list: list.iter().map(|origin| origin.as_bytes().into()).collect(),
        }
    }

    /// Lets a request through when it has no `Origin` or one listed.
    ///
    /// # Errors
    /// [`Refusal::Origin`] for an origin not listed, `null` (sandboxed
    /// frames, `file:` pages, some redirects), or several `Origin` lines.
    pub(super) fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let Some(origin) = origins.next() else {
            return Ok(());
        };
        if origins.next().is_some() {
            return Err(Refusal::Origin);
        }
        if self
            .list
            .iter()
            .any(|allowed| **allowed == *origin.as_bytes())
        {
            Ok(())
        } else {
            Err(Refusal::Origin)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn with_origins(origins: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for origin in origins {
            headers.append(header::ORIGIN, HeaderValue::from_static(origin));
        }
        headers
    }

    #[test]
    fn only_listed_origins_and_requests_without_one_pass() {
        let allowed = AllowedOrigins::new(&["https://a.example".into(), "http://b:8080".into()]);
        assert!(allowed.check(&with_origins(&[])).is_ok());
        assert!(allowed.check(&with_origins(&["https://a.example"])).is_ok());
        assert!(allowed.check(&with_origins(&["http://b:8080"])).is_ok());
        for refused in [
            "null",
            "http://a.example",
            "https://a.example/",
            "https://a.example:443",
            "http://b:8081",
            "https://A.example",
            "",
        ] {
            assert!(
                allowed.check(&with_origins(&[refused])).is_err(),
                "{refused:?} passed"
            );
        }
        let twice = with_origins(&["https://a.example", "https://a.example"]);
        assert!(allowed.check(&twice).is_err());
    }
}
