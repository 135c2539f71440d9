//! A JWT for the harness's TLS server (`--jwt-secret`), for tests that
//! cannot sign one themselves: the wasm-bindgen tests have no HMAC
//! (`DUPLEX_TEST_JWT`). The page's end-to-end test signs its own with
//! the secret, as a real issuer would.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An HS256 token signed with `secret`, for the member `sub`, valid for
/// `valid_for` from now, with no `rooms` claim (every room).
pub(crate) fn hs256(
    secret: &str,
    sub: &str,
    valid_for: Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let claims = serde_json::json!({ "sub": sub, "exp": (now + valid_for).as_secs() });
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())?;
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_verifies_with_the_secret_and_names_sub() {
        let token = hs256("s3cret", "harness", Duration::from_secs(600)).expect("signs");
        let key = jsonwebtoken::DecodingKey::from_secret(b"s3cret").expect("key");
        let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation)
            .expect("valid with the same secret");
        assert_eq!(data.claims["sub"], "harness");
        let other = jsonwebtoken::DecodingKey::from_secret(b"other").expect("key");
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &other, &validation).is_err());
    }
}
