//! Tokens on `/ws` (`--jwt-secret`, `--jwt-public-key`): a valid JWT as
//! `?token=` or `Authorization: Bearer` opens rooms, and anything else
//! (none, malformed, wrongly signed, expired, not yet valid, `alg: none`,
//! a stripped signature, Basic) gets 401 with `WWW-Authenticate: Bearer`
//! before the upgrade. The token's `sub` is the member's name whatever
//! `join` says, its `rooms` claim limits the rooms (`forbidden`), and its
//! `exp` closes the connection with 4001. `/` and `/echo` need none.

use crate::common;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::admission::upgrade;
use crate::common::rooms::{next_server, send_client};
use crate::common::{Client, TestServer};
use duplex_protocol::{ClientMessage, ErrorCode, ServerMessage};
use futures_util::StreamExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "test-secret-that-is-long-enough-for-hs256";

/// `{"alg":"none","typ":"JWT"}`, base64url: the header of an unsigned JWT.
const NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Claims for `sub`, valid for an hour.
fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "exp": now() + 3600 })
}

fn sign_with(claims: &Value, algorithm: Algorithm, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key).expect("sign")
}

fn hs256(claims: &Value, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes()).expect("HMAC key");
    sign_with(claims, Algorithm::HS256, &key)
}

fn token(sub: &str) -> String {
    hs256(&claims(sub), SECRET)
}

async fn start_with_secret() -> TestServer {
    let mut config = common::config();
    config.jwt_secret = Some(SECRET.to_owned());
    TestServer::start(config).await
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

/// Asserts the upgrade is refused with 401 and a Bearer challenge.
async fn assert_401(server: &TestServer, path: &str, headers: &str) {
    let answer = upgrade(server.addr, path, headers).await;
    assert_eq!(answer.status, 401, "{path} {headers:?}: {}", answer.head);
    let challenge = answer.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer"),
        "WWW-Authenticate: {challenge:?}"
    );
}

async fn assert_101(server: &TestServer, path: &str, headers: &str) {
    let answer = upgrade(server.addr, path, headers).await;
    assert_eq!(answer.status, 101, "{path} {headers:?}: {}", answer.head);
}

/// Connects to `/ws?token=TOKEN` and reads the welcome.
async fn connect_with(server: &TestServer, token: &str) -> Client {
    let mut ws = common::connect(server.addr, &format!("/ws?token={token}")).await;
    match next_server(&mut ws).await {
        ServerMessage::Welcome { .. } => ws,
        other => panic!("expected welcome, got {other:?}"),
    }
}

async fn join(ws: &mut Client, room: &str, name: &str) -> ServerMessage {
    let join = ClientMessage::Join {
        room: room.into(),
        name: name.into(),
        since: None,
    };
    send_client(ws, &join).await;
    next_server(ws).await
}

async fn expect_error(ws: &mut Client, expected: ErrorCode, room: &str) {
    match next_server(ws).await {
        ServerMessage::Error {
            code, room: got, ..
        } => {
            assert_eq!((code, got.as_deref()), (expected, Some(room)));
        }
        other => panic!("expected error {expected:?}, got {other:?}"),
    }
}

fn member_names(joined: &ServerMessage) -> Vec<String> {
    match joined {
        ServerMessage::Joined { members, .. } => members.iter().map(|m| m.name.clone()).collect(),
        other => panic!("expected joined, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_token_opens_ws_from_the_query_or_the_header() {
    let server = start_with_secret().await;
    assert_101(&server, &format!("/ws?token={}", token("ada")), "").await;
    assert_101(&server, "/ws", &bearer(&token("ada"))).await;
    // The scheme is case-insensitive.
    assert_101(
        &server,
        "/ws",
        &format!("Authorization: bearer {}\r\n", token("ada")),
    )
    .await;
    // Percent-encoded in the query, as a browser's URL may carry it.
    let encoded = token("ada").replace('.', "%2E");
    assert_101(&server, &format!("/ws?room=x&token={encoded}"), "").await;
}

#[tokio::test]
async fn a_header_token_wins_over_the_query() {
    let server = start_with_secret().await;
    let good = token("ada");
    let bad = hs256(&claims("ada"), "another-secret");
    assert_101(&server, &format!("/ws?token={bad}"), &bearer(&good)).await;
    assert_401(&server, &format!("/ws?token={good}"), &bearer(&bad)).await;
}

#[tokio::test]
async fn missing_malformed_and_forged_tokens_get_401() {
    let server = start_with_secret().await;
    let good = token("ada");
    let (header, rest) = good.split_once('.').expect("three parts");
    let (payload, _signature) = rest.split_once('.').expect("three parts");
    let cases = [
        ("missing", "/ws".to_owned(), String::new()),
        ("empty query token", "/ws?token=".to_owned(), String::new()),
        ("malformed", "/ws?token=not-a-jwt".to_owned(), String::new()),
        (
            "three garbage parts",
            "/ws?token=a.b.c".to_owned(),
            String::new(),
        ),
        (
            "wrong signature",
            format!("/ws?token={}", hs256(&claims("ada"), "another-secret")),
            String::new(),
        ),
        (
            "stripped signature",
            format!("/ws?token={header}.{payload}."),
            String::new(),
        ),
        (
            "alg none",
            format!("/ws?token={NONE_HEADER}.{payload}."),
            String::new(),
        ),
        (
            "Basic, even with a good query token",
            format!("/ws?token={good}"),
            "Authorization: Basic YWRhOnNlY3JldA==\r\n".to_owned(),
        ),
        (
            "two tokens",
            format!("/ws?token={good}&token={good}"),
            String::new(),
        ),
        (
            "expired",
            format!(
                "/ws?token={}",
                hs256(&json!({"sub": "ada", "exp": now() - 60}), SECRET)
            ),
            String::new(),
        ),
        (
            "not yet valid",
            format!(
                "/ws?token={}",
                hs256(
                    &json!({"sub": "ada", "exp": now() + 3600, "nbf": now() + 600}),
                    SECRET
                )
            ),
            String::new(),
        ),
        (
            "no exp",
            format!("/ws?token={}", hs256(&json!({"sub": "ada"}), SECRET)),
            String::new(),
        ),
        (
            "no sub",
            format!("/ws?token={}", hs256(&json!({"exp": now() + 3600}), SECRET)),
            String::new(),
        ),
        (
            "sub longer than --max-name-len",
            format!("/ws?token={}", token(&"a".repeat(65))),
            String::new(),
        ),
        (
            "rooms not a list",
            format!(
                "/ws?token={}",
                hs256(
                    &json!({"sub": "ada", "exp": now() + 3600, "rooms": "lobby"}),
                    SECRET
                )
            ),
            String::new(),
        ),
    ];
    for (case, path, headers) in &cases {
        let answer = upgrade(server.addr, path, headers).await;
        assert_eq!(answer.status, 401, "{case}: {}", answer.head);
        let challenge = answer.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{case}: {challenge:?}");
    }
    let health = common::health(server.addr).await;
    assert_eq!(
        health["connections_total"], 0,
        "a refused token opened a connection"
    );
}

#[tokio::test]
async fn echo_paths_need_no_token() {
    let server = start_with_secret().await;
    for path in ["/", "/echo"] {
        let mut ws = common::connect(server.addr, path).await;
        common::assert_echo(&mut ws, Message::text("no token needed")).await;
    }
}

#[tokio::test]
async fn sub_is_the_name_everywhere_and_join_names_are_ignored() {
    let server = start_with_secret().await;
    let mut ada = connect_with(&server, &token("ada")).await;
    let joined = join(&mut ada, "lobby", "mallory").await;
    assert_eq!(member_names(&joined), ["ada"]);

    let mut bob = connect_with(&server, &token("bob")).await;
    let joined = join(&mut bob, "lobby", "ada").await;
    let mut names = member_names(&joined);
    names.sort();
    assert_eq!(names, ["ada", "bob"]);
    match next_server(&mut ada).await {
        ServerMessage::MemberJoined { member, .. } => assert_eq!(member.name, "bob"),
        other => panic!("expected member_joined, got {other:?}"),
    }

    send_client(
        &mut bob,
        &ClientMessage::Publish {
            room: "lobby".into(),
            text: "hello".into(),
        },
    )
    .await;
    for ws in [&mut ada, &mut bob] {
        match next_server(ws).await {
            ServerMessage::Message { from, text, .. } => {
                assert_eq!(text, "hello");
                assert_eq!(from.expect("from a member").name, "bob");
            }
            other => panic!("expected message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_rooms_claim_limits_joins_and_the_connection_stays_up() {
    let server = start_with_secret().await;
    let limited = hs256(
        &json!({"sub": "ada", "exp": now() + 3600, "rooms": ["lobby", "kitchen"]}),
        SECRET,
    );
    let mut ws = connect_with(&server, &limited).await;
    let join_attic = ClientMessage::Join {
        room: "attic".into(),
        name: "ada".into(),
        since: None,
    };
    send_client(&mut ws, &join_attic).await;
    expect_error(&mut ws, ErrorCode::Forbidden, "attic").await;
    assert_eq!(member_names(&join(&mut ws, "lobby", "x").await), ["ada"]);
    assert_eq!(member_names(&join(&mut ws, "kitchen", "x").await), ["ada"]);
}

#[tokio::test]
async fn forbidden_joins_count_toward_max_protocol_errors() {
    let mut config = common::config();
    config.jwt_secret = Some(SECRET.to_owned());
    config.max_protocol_errors = 1;
    let server = TestServer::start(config).await;
    let limited = hs256(
        &json!({"sub": "ada", "exp": now() + 3600, "rooms": []}),
        SECRET,
    );
    let mut ws = connect_with(&server, &limited).await;
    let join_lobby = ClientMessage::Join {
        room: "lobby".into(),
        name: "ada".into(),
        since: None,
    };
    send_client(&mut ws, &join_lobby).await;
    expect_error(&mut ws, ErrorCode::Forbidden, "lobby").await;
    send_client(&mut ws, &join_lobby).await;
    common::expect_close(&mut ws, 1008, "too many bad messages").await;
}

#[tokio::test]
async fn an_expired_token_closes_its_connection_with_4001() {
    let server = start_with_secret().await;
    let exp = now() + 1;
    let short = hs256(&json!({"sub": "ada", "exp": exp}), SECRET);
    let mut ws = connect_with(&server, &short).await;
    let _ = join(&mut ws, "lobby", "ada").await;
    let mut watcher = connect_with(&server, &token("bob")).await;
    let _ = join(&mut watcher, "lobby", "bob").await;
    let started = Instant::now();
    // exp plus the 5 s leeway, then a margin for a loaded machine; bob's
    // arrival comes first.
    let frame = timeout(Duration::from_secs(15), async {
        for _ in 0..10 {
            match ws.next().await {
                Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(other)) => return other,
                ended => panic!("the connection ended without a Close: {ended:?}"),
            }
        }
        panic!("ten messages and no Close");
    })
    .await
    .expect("closed within exp + leeway + margin");
    let elapsed = started.elapsed();
    match frame {
        Message::Close(Some(close)) => {
            assert_eq!(u16::from(close.code), 4001);
            assert_eq!(close.reason.as_str(), "token expired");
        }
        other => panic!("expected Close 4001, got {other:?}"),
    }
    // Not before exp + leeway (5 s), to the second the token has.
    let until = (UNIX_EPOCH + Duration::from_secs(exp + 5))
        .duration_since(SystemTime::now() - elapsed)
        .unwrap_or_default();
    assert!(
        elapsed + Duration::from_millis(1100) >= until,
        "closed after {elapsed:?}, before exp + leeway ({until:?})"
    );
    common::expect_end(&mut ws).await;
    // The room was told at once.
    match next_server(&mut watcher).await {
        ServerMessage::MemberLeft { member, .. } => assert_eq!(member.name, "ada"),
        other => panic!("expected member_left, got {other:?}"),
    }
}

/// A public key in a temporary file, removed on drop.
struct KeyFile(PathBuf);

impl KeyFile {
    fn new(name: &str, pem: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "duplex-test-{}-{name}-{}.pem",
            std::process::id(),
            now()
        ));
        std::fs::write(&path, pem).expect("write the key file");
        Self(path)
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn start_with_public_key(file: &KeyFile) -> TestServer {
    let mut config = common::config();
    config.jwt_public_key = Some(file.0.clone());
    TestServer::start(config).await
}

#[tokio::test]
async fn es256_tokens_are_checked_with_the_public_key() {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    let file = KeyFile::new("es256", &pair.public_key_pem());
    let server = start_with_public_key(&file).await;
    let private = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("EC key");
    let good = sign_with(&claims("ada"), Algorithm::ES256, &private);
    let mut ws = connect_with(&server, &good).await;
    assert_eq!(member_names(&join(&mut ws, "lobby", "x").await), ["ada"]);

    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    let other = EncodingKey::from_ec_pem(other.serialize_pem().as_bytes()).expect("EC key");
    assert_401(
        &server,
        "/ws",
        &bearer(&sign_with(&claims("ada"), Algorithm::ES256, &other)),
    )
    .await;
    // Algorithm confusion: HS256 "signed" with the public key's text.
    let confused = hs256(&claims("ada"), &pair.public_key_pem());
    assert_401(&server, "/ws", &bearer(&confused)).await;
    // No secret configured: HS256 is not accepted at all.
    assert_401(&server, "/ws", &bearer(&token("ada"))).await;
}

#[tokio::test]
async fn rs256_tokens_are_checked_with_the_public_key() {
    let (private_pem, public_pem) = rsa_key_pair();
    let file = KeyFile::new("rs256", &public_pem);
    let server = start_with_public_key(&file).await;
    let private = EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("RSA key");
    let good = sign_with(&claims("ada"), Algorithm::RS256, &private);
    assert_101(&server, "/ws", &bearer(&good)).await;
    let mut ws = connect_with(&server, &good).await;
    assert_eq!(member_names(&join(&mut ws, "lobby", "x").await), ["ada"]);
    // Tampered: the same signature over other claims.
    let signature = good.rsplit('.').next().expect("a signature");
    let forged = sign_with(&claims("root"), Algorithm::RS256, &private);
    let (forged_head, _) = forged.rsplit_once('.').expect("three parts");
    assert_401(
        &server,
        "/ws",
        &bearer(&format!("{forged_head}.{signature}")),
    )
    .await;
}

#[tokio::test]
async fn a_private_key_given_as_the_public_key_stops_the_start() {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    let error = start_error_with_public_key("private", &pair.serialize_pem()).await;
    assert!(error.contains("JwtPublicKey"), "{error}");
}

#[tokio::test]
async fn an_ec_key_on_another_curve_than_p256_stops_the_start() {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("P-384 key");
    let error = start_error_with_public_key("p384", &pair.public_key_pem()).await;
    assert!(error.contains("P-256"), "{error}");
}

/// The error a server given `pem` as `--jwt-public-key` stops with (the
/// test fails if it starts).
async fn start_error_with_public_key(name: &str, pem: &str) -> String {
    let file = KeyFile::new(name, pem);
    let mut server = start_with_public_key(&file).await;
    let error = server
        .finished(common::WAIT)
        .await
        .expect_err("the key is refused at start");
    format!("{error:?}")
}

/// A new RSA key pair as PEM (PKCS#8 private key, SPKI public key), made
/// with the `rsa` crate from the OS's random source (3072 bits).
fn rsa_key_pair() -> (String, String) {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    use rsa::{Generate, PrivateKey};
    let key = PrivateKey::generate();
    let private = key.to_pkcs8_pem(LineEnding::LF).expect("private PEM");
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("public PEM");
    (private.to_string(), public)
}
