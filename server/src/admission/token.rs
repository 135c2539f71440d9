//! Tokens on `/ws` (`--jwt-secret`, `--jwt-public-key`): the JWT a rooms
//! client presents at the upgrade, checked by `jsonwebtoken` (HS256 with
//! the secret, RS256 or ES256 with the public key), and what it says:
//! the member's name (`sub`), the rooms it may join (`rooms`), when it
//! ends (`exp`).
//!
//! Where the token comes from: `Authorization: Bearer TOKEN`, or
//! `?token=TOKEN` for browsers, whose `WebSocket` cannot set headers. A
//! header wins over the query; any other `Authorization` scheme (Basic)
//! is refused rather than ignored, and so are two tokens of one kind.
//!
//! What is required: a valid signature by a configured key, for the
//! algorithm that key is for (so `alg: none`, a stripped signature or an
//! HS256 token signed with the public key never pass); `sub`; `exp`,
//! because a token without one would open connections forever and its
//! expiry is what closes them; `nbf` when present. A token with `aud` is
//! refused: this server has no audience to match it against, and a token
//! meant for another service must not open this one.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::Uri;
use hyper::header::{self, HeaderMap};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;

use crate::config::ConfigError;

/// Clock skew allowed between the token's issuer and this server, on
/// `exp` and `nbf`: a few seconds covers NTP-synchronised machines, and
/// lets an expired token live no longer than that. The connection is
/// closed when `exp` plus this has passed, the moment the token would
/// stop opening new ones.
const LEEWAY: Duration = Duration::from_secs(5);

/// The keys tokens are checked with, each for one algorithm.
pub(super) struct Verifier {
    keys: Vec<(Algorithm, DecodingKey, Validation)>,
    /// `--max-name-len`: `sub` becomes the member's name.
    max_name_len: usize,
}

impl fmt::Debug for Verifier {
    /// The algorithms only: a key's Debug would print the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithms: Vec<_> = self.keys.iter().map(|(alg, ..)| alg).collect();
        f.debug_struct("Verifier")
            .field("algorithms", &algorithms)
            .finish_non_exhaustive()
    }
}

/// Who a token says its client is.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// `sub`: the member's name in every room.
    name: String,
    /// `rooms`: the only rooms it may join; `None`: any room.
    rooms: Option<Vec<String>>,
    /// `exp` plus the leeway: when the connection is closed.
    ends: SystemTime,
}

impl Identity {
    /// The name every member of its rooms sees (`sub`).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether the token lets its client join `room`.
    pub(crate) fn may_join(&self, room: &str) -> bool {
        self.rooms
            .as_ref()
            .is_none_or(|rooms| rooms.iter().any(|allowed| allowed == room))
    }

    /// When the token's connection must end.
    pub(crate) fn ends(&self) -> SystemTime {
        self.ends
    }
}

/// Why a token was refused; each is a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    /// Neither `Authorization: Bearer` nor `?token=`.
    #[error("no token")]
    Missing,
    /// An `Authorization` header of another scheme (Basic, ...).
    #[error("Authorization is not Bearer")]
    NotBearer,
    /// Two `Authorization` headers, or two `token` parameters.
    #[error("more than one token")]
    Several,
    /// Not three base64url parts of JSON, or an unknown `alg` (`none`).
    #[error("malformed token")]
    Malformed,
    /// An `alg` no configured key is for.
    #[error("algorithm not accepted")]
    Algorithm,
    /// The signature does not match (or was stripped).
    #[error("bad signature")]
    Signature,
    /// `exp` has passed (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    #[error("token not valid yet")]
    NotYetValid,
    /// `sub` or `exp` missing or mistyped, `rooms` not a list of names,
    /// or an `aud`.
    #[error("claims missing or malformed")]
    Claims,
    /// `sub` is empty or longer than `--max-name-len`.
    #[error("sub is not a usable name")]
    Name,
}

impl TokenError {
    /// The body of the 401: what the client should fix.
    pub(super) fn body(&self) -> &'static str {
        match self {
            Self::Missing => "/ws needs a token: ?token=JWT or Authorization: Bearer JWT\n",
            Self::NotBearer => "the Authorization header must be Bearer JWT\n",
            Self::Several => "more than one token: send one\n",
            Self::Malformed => "malformed token\n",
            Self::Algorithm => "the token's algorithm is not accepted here\n",
            Self::Signature => "the token's signature does not match\n",
            Self::Expired => "the token has expired\n",
            Self::NotYetValid => "the token is not valid yet (nbf)\n",
            Self::Claims => {
                "the token needs sub and exp, rooms must be a list of names, and aud is not accepted\n"
            }
            Self::Name => "the token's sub is empty or longer than the server's --max-name-len\n",
        }
    }

    fn from_jwt(error: &jsonwebtoken::errors::Error) -> Self {
        match error.kind() {
            ErrorKind::InvalidSignature => Self::Signature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => Self::Algorithm,
            ErrorKind::MissingRequiredClaim(_)
            | ErrorKind::InvalidClaimFormat(_)
            | ErrorKind::InvalidAudience
            | ErrorKind::InvalidIssuer
            | ErrorKind::InvalidSubject
            | ErrorKind::Json(_) => Self::Claims,
            _ => Self::Malformed,
        }
    }
}

/// The claims Duplex reads; others are ignored.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    /// A NumericDate: seconds since the epoch, maybe with a fraction.
    exp: f64,
    #[serde(default)]
    rooms: Option<Vec<String>>,
}

impl Verifier {
    /// The verifier for the configured keys, or `None` when there are
    /// none (`/ws` is open).
    ///
    /// # Errors
    /// [`ConfigError::JwtPublicKey`] when the public key file cannot be
    /// read or is not an RSA or EC public key in PEM.
    pub(super) fn new(
        secret: Option<&str>,
        public_key: Option<&Path>,
        max_name_len: usize,
    ) -> Result<Option<Self>, ConfigError> {
        let mut keys = Vec::new();
        if let Some(secret) = secret {
            keys.push((
                Algorithm::HS256,
                // Only an empty secret fails here.
                DecodingKey::from_secret(secret.as_bytes())
                    .map_err(|_| ConfigError::EmptyJwtSecret)?,
                validation(Algorithm::HS256),
            ));
        }
        if let Some(path) = public_key {
            let (algorithm, key) = load_public_key(path)?;
            keys.push((algorithm, key, validation(algorithm)));
        }
        Ok((!keys.is_empty()).then_some(Self { keys, max_name_len }))
    }

    /// The identity of a request's valid token.
    ///
    /// # Errors
    /// Why the token (or its absence) is refused.
    pub(super) fn check(&self, headers: &HeaderMap, uri: &Uri) -> Result<Identity, TokenError> {
        let token = presented(headers, uri)?;
        let header =
            jsonwebtoken::decode_header(token.as_bytes()).map_err(|_| TokenError::Malformed)?;
        // The key is chosen by `alg`, and each key accepts only its own
        // algorithm: a token cannot pick how it is checked.
        let Some((_, key, validation)) = self.keys.iter().find(|(alg, ..)| *alg == header.alg)
        else {
            return Err(TokenError::Algorithm);
        };
        let claims = jsonwebtoken::decode::<Claims>(token.as_bytes(), key, validation)
            .map_err(|error| TokenError::from_jwt(&error))?
            .claims;
        if claims.sub.is_empty() || claims.sub.len() > self.max_name_len {
            return Err(TokenError::Name);
        }
        let ends = Duration::try_from_secs_f64(claims.exp)
            .ok()
            .and_then(|exp| UNIX_EPOCH.checked_add(exp)?.checked_add(LEEWAY))
            .ok_or(TokenError::Claims)?;
        Ok(Identity {
            name: claims.sub,
            rooms: claims.rooms,
            ends,
        })
    }
}

/// The checks every token gets for `algorithm`.
fn validation(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = LEEWAY.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "sub"]);
    // With no audience set, a token that has `aud` is refused.
    validation.validate_aud = true;
    validation
}

/// The token a request presents: the `Authorization: Bearer` header's,
/// else the `token` query parameter's (percent-decoded).
fn presented<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Result<Cow<'a, str>, TokenError> {
    let mut authorization = headers.get_all(header::AUTHORIZATION).iter();
    if let Some(value) = authorization.next() {
        if authorization.next().is_some() {
            return Err(TokenError::Several);
        }
        let value = value.to_str().map_err(|_| TokenError::Malformed)?;
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        // Schemes are case-insensitive (RFC 9110, section 11.1).
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::NotBearer);
        }
        let token = token.trim_matches(' ');
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        return Ok(Cow::Borrowed(token));
    }
    let mut found = None;
    for (name, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if name == "token" {
            if found.is_some() {
                return Err(TokenError::Several);
            }
            found = Some(value);
        }
    }
    match found {
        Some(token) if !token.is_empty() => Ok(token),
        _ => Err(TokenError::Missing),
    }
}

/// `--jwt-public-key`: an RSA key (RS256) or an EC key (ES256) in PEM.
fn load_public_key(path: &Path) -> Result<(Algorithm, DecodingKey), ConfigError> {
    let error = |reason: &str| ConfigError::JwtPublicKey {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let pem = std::fs::read(path).map_err(|io| error(&io.to_string()))?;
    // jsonwebtoken would take a private key too, and then every token
    // would fail: say so at start instead.
    if pem.windows(11).any(|w| w == b"PRIVATE KEY") {
        return Err(error(
            "this is a private key: give the server the public half",
        ));
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((Algorithm::RS256, key));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
        // jsonwebtoken takes an EC key on any curve, and ES256 then fails
        // every token: only P-256 is ES256's.
        return match SubjectPublicKeyInfoDer::from_pem_slice(&pem) {
            Ok(spki) if spki.starts_with(&P256_SPKI_PREFIX) => Ok((Algorithm::ES256, key)),
            _ => Err(error(
                "an EC key on another curve than P-256 (ES256 needs P-256)",
            )),
        };
    }
    Err(error(
        "not an RSA or P-256 public key in PEM (-----BEGIN PUBLIC KEY-----)",
    ))
}

/// How the DER of every uncompressed P-256 public key begins (RFC 5480):
/// SEQUENCE (89 bytes), SEQUENCE (19) { OID id-ecPublicKey
/// 1.2.840.10045.2.1, OID prime256v1 1.2.840.10045.3.1.7 }, BIT STRING
/// (66 bytes, no unused bits), point tag 4 (uncompressed).
const P256_SPKI_PREFIX: [u8; 27] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
];

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn request(authorization: &[&'static str], uri: &'static str) -> (HeaderMap, Uri) {
        let mut headers = HeaderMap::new();
        for value in authorization {
            headers.append(header::AUTHORIZATION, HeaderValue::from_static(value));
        }
        (headers, Uri::from_static(uri))
    }

    fn token(authorization: &[&'static str], uri: &'static str) -> Result<String, TokenError> {
        let (headers, uri) = request(authorization, uri);
        presented(&headers, &uri).map(Cow::into_owned)
    }

    #[test]
    fn a_header_token_wins_over_the_query() {
        assert_eq!(
            token(&["Bearer h.h.h"], "/ws?token=q.q.q"),
            Ok("h.h.h".into())
        );
        assert_eq!(token(&["bearer h.h.h"], "/ws"), Ok("h.h.h".into()));
        assert_eq!(token(&[], "/ws?x=1&token=q.q.q"), Ok("q.q.q".into()));
    }

    #[test]
    fn the_query_token_is_percent_decoded() {
        assert_eq!(token(&[], "/ws?token=a%2Eb.c"), Ok("a.b.c".into()));
    }

    #[test]
    fn missing_basic_and_doubled_tokens_are_refused() {
        assert_eq!(token(&[], "/ws"), Err(TokenError::Missing));
        assert_eq!(token(&[], "/ws?token="), Err(TokenError::Missing));
        assert_eq!(token(&["Bearer"], "/ws"), Err(TokenError::Missing));
        assert_eq!(
            token(&["Basic dTpw"], "/ws?token=q.q.q"),
            Err(TokenError::NotBearer)
        );
        assert_eq!(
            token(&["Bearer a", "Bearer b"], "/ws"),
            Err(TokenError::Several)
        );
        assert_eq!(token(&[], "/ws?token=a&token=b"), Err(TokenError::Several));
    }

    #[test]
    fn identity_limits_rooms_only_with_a_rooms_claim() {
        let any = Identity {
            name: "ada".into(),
            rooms: None,
            ends: UNIX_EPOCH,
        };
        assert!(any.may_join("anything"));
        let some = Identity {
            rooms: Some(vec!["lobby".into()]),
            ..any
        };
        assert!(some.may_join("lobby"));
        assert!(!some.may_join("attic"));
        assert!(!some.may_join("lobby "));
    }
}
