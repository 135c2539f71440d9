//! Who may open a WebSocket, decided before the upgrade: the page's
//! Origin ([`origin`], `--allowed-origins`), a JWT on `/ws` ([`token`],
//! `--jwt-secret`, `--jwt-public-key`), and how many connections one
//! address may hold ([`per_ip`], `--max-connections-per-ip`), beside the
//! server-wide `--max-connections` permit.
//!
//! Every refusal is one [`Refusal`], with its HTTP status and reason, so
//! the HTTP layer answers (and can count) them in one place.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode, Uri};
use tracing::warn;

use crate::config::{Config, ConfigError};
use crate::connection::Service;
use crate::http::{Body, text};

mod origin;
mod per_ip;
mod token;

pub(crate) use per_ip::IpSlot;
pub(crate) use token::{Identity, TokenError};

use origin::AllowedOrigins;
use per_ip::PerIp;
use token::Verifier;

/// `Retry-After` of a 503 (`--max-connections`): a slot frees whenever
/// any client leaves, so a second is a fair wait.
const RETRY_AFTER_FULL: HeaderValue = HeaderValue::from_static("1");

/// `Retry-After` of a 429 (`--max-connections-per-ip`): a slot frees only
/// when one of that address's own connections closes, which it knows
/// better than we do; retrying every second would only cost both sides.
const RETRY_AFTER_PER_IP: HeaderValue = HeaderValue::from_static("5");

/// The admission rules of a server, built once from its configuration.
#[derive(Debug)]
pub(crate) struct Admission {
    /// `--allowed-origins`; `None`: every origin.
    origins: Option<AllowedOrigins>,
    /// The keys `/ws` tokens are checked with; `None`: `/ws` is open.
    tokens: Option<Verifier>,
    /// Connections open per address; `None`: not counted at all.
    per_ip: Option<Arc<PerIp>>,
}

/// Why an upgrade was refused before it happened: one type for every
/// rule, so each refusal is answered, logged and counted the same way.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// The Origin header names a page not in `--allowed-origins` (403).
    #[error("origin not allowed")]
    Origin,
    /// `/ws` without a valid token (401).
    #[error("token refused: {0}")]
    Token(#[from] TokenError),
    /// The address has `--max-connections-per-ip` connections open (429).
    #[error("too many connections from this address")]
    PerIp,
    /// The server has `--max-connections` connections open (503).
    #[error("too many connections")]
    Full,
}

impl Refusal {
    /// The HTTP status it is answered with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Origin => StatusCode::FORBIDDEN,
            Self::Token(_) => StatusCode::UNAUTHORIZED,
            Self::PerIp => StatusCode::TOO_MANY_REQUESTS,
            Self::Full => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The whole answer: status, a body saying why, and the header the
    /// status calls for (`WWW-Authenticate` on 401, `Retry-After` on 429
    /// and 503).
    pub(crate) fn response(&self) -> Response<Body> {
        let body = match self {
            Self::Origin => "this page's origin may not open WebSockets here\n",
            Self::Token(error) => error.body(),
            Self::PerIp => "too many connections from your address: close one first\n",
            Self::Full => "too many connections: try again later\n",
        };
        let mut response = text(self.status(), body);
        let headers = response.headers_mut();
        match self {
            Self::Origin => {}
            // RFC 6750, section 3: no error code when no token came.
            Self::Token(TokenError::Missing) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::Token(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            Self::PerIp => {
                headers.insert(header::RETRY_AFTER, RETRY_AFTER_PER_IP);
            }
            Self::Full => {
                headers.insert(header::RETRY_AFTER, RETRY_AFTER_FULL);
            }
        }
        response
    }
}

/// What an admitted connection carries into its session.
#[derive(Debug, Default)]
pub(crate) struct Admitted {
    /// Who the token says the client is (`/ws` with tokens on).
    pub(crate) identity: Option<Identity>,
    /// Its slot under `--max-connections-per-ip`, freed when dropped.
    pub(crate) ip_slot: Option<IpSlot>,
}

impl Admission {
    /// The rules `config` (already validated) asks for.
    ///
    /// # Errors
    /// [`ConfigError::JwtPublicKey`] when `--jwt-public-key` cannot be
    /// read or used.
    pub(crate) fn new(config: &Config) -> Result<Self, ConfigError> {
        Ok(Self {
            origins: config.allowed_origins.as_deref().map(AllowedOrigins::new),
            tokens: Verifier::new(
                config.jwt_secret.as_deref(),
                config.jwt_public_key.as_deref(),
                config.max_name_len,
            )?,
            per_ip: (config.max_connections_per_ip > 0)
                .then(|| Arc::new(PerIp::new(config.max_connections_per_ip))),
        })
    }

    /// Warns when the server can be reached from other machines and any
    /// web page may open sockets on it (no `--allowed-origins`).
    pub(crate) fn warn_if_open(&self, local: SocketAddr) {
        if self.origins.is_none() && !local.ip().is_loopback() {
            warn!(
                %local,
                "listening beyond loopback without --allowed-origins: any web page may open \
                 WebSockets here with its visitors' cookies; list the pages that may"
            );
        }
    }

    /// The checks on the request itself: its Origin on every path, its
    /// token on `/ws`. Returns who the token says the client is.
    ///
    /// # Errors
    /// The [`Refusal`] to answer with.
    pub(crate) fn check(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
        service: Service,
    ) -> Result<Option<Identity>, Refusal> {
        if let Some(origins) = &self.origins {
            origins.check(headers)?;
        }
        match (&self.tokens, service) {
            (Some(verifier), Service::Rooms) => Ok(Some(verifier.check(headers, uri)?)),
            (_, Service::Rooms | Service::Echo) => Ok(None),
        }
    }

    /// A slot under `--max-connections-per-ip` for a connection from `ip`,
    /// or `None` when connections are not counted.
    ///
    /// # Errors
    /// [`Refusal::PerIp`] when `ip` holds all its slots.
    pub(crate) fn take_ip_slot(&self, ip: IpAddr) -> Result<Option<IpSlot>, Refusal> {
        match &self.per_ip {
            Some(per_ip) => per_ip.try_take(ip).map(Some).ok_or(Refusal::PerIp),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::BodyExt;

    /// The whole body of a small answer.
    fn body_of(response: Response<Body>) -> Bytes {
        let collected = futures_util::FutureExt::now_or_never(response.into_body().collect())
            .expect("a whole body is ready at once")
            .expect("a whole body does not fail");
        collected.to_bytes()
    }

    #[test]
    fn each_refusal_has_its_status_and_header() {
        let cases = [
            (Refusal::Origin, 403, None),
            (
                Refusal::Token(TokenError::Missing),
                401,
                Some(("www-authenticate", "Bearer")),
            ),
            (
                Refusal::Token(TokenError::Signature),
                401,
                Some(("www-authenticate", "Bearer error=\"invalid_token\"")),
            ),
            (Refusal::PerIp, 429, Some(("retry-after", "5"))),
            (Refusal::Full, 503, Some(("retry-after", "1"))),
        ];
        for (refusal, status, header) in cases {
            let response = refusal.response();
            assert_eq!(response.status().as_u16(), status, "{refusal}");
            if let Some((name, value)) = header {
                assert_eq!(response.headers()[name], value, "{refusal}");
            }
            assert!(!body_of(response).is_empty(), "{refusal}: empty body");
        }
    }
}
