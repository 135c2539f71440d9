//! `--redis rediss://…`: the cluster engine over TLS to a real
//! redis-server with a TLS port (certificate made at test time, trusted
//! through `SSL_CERT_FILE`, as an operator with a private CA would):
//! two instances, one message published through one reaches a member of
//! the other; an untrusted certificate keeps the server from starting.

use crate::common;

use std::process::Stdio;

use crate::common::process::Binary;
use crate::common::redis::{RedisServer, free_port};
use crate::common::rooms::{connect_rooms, join, next_text, publish};
use crate::common::tls::TestCert;

/// redis-server with its usual plain port (which the helper probes) and a
/// TLS port with `cert`; returns it and the TLS port.
async fn tls_redis(cert: &TestCert) -> (RedisServer, u16) {
    let tls_port = free_port();
    let path = |p: &std::path::Path| p.display().to_string();
    let redis = RedisServer::start_with(
        "redis-server",
        vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            path(&cert.cert),
            "--tls-key-file".into(),
            path(&cert.key),
            "--tls-ca-cert-file".into(),
            path(&cert.cert),
            "--tls-auth-clients".into(),
            "no".into(),
        ],
    )
    .await;
    (redis, tls_port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_rooms_through_rediss() {
    let cert = TestCert::new("rediss");
    let (_redis, tls_port) = tls_redis(&cert).await;
    let url = format!("rediss://localhost:{tls_port}");
    let trust = cert.cert.display().to_string();
    let env = [("SSL_CERT_FILE", trust.as_str())];
    let one = Binary::start_with_env(&["--redis", &url], "info", &env).await;
    let two = Binary::start_with_env(&["--redis", &url], "info", &env).await;

    let (mut ann, _) = connect_rooms(one.addr).await;
    join(&mut ann, "r", "ann").await;
    let (mut bob, _) = connect_rooms(two.addr).await;
    join(&mut bob, "r", "bob").await;
    publish(&mut ann, "r", "over TLS").await;
    loop {
        let (_, text) = next_text(&mut bob).await;
        if text == "over TLS" {
            break;
        }
    }
    let health = common::get(one.addr, "/healthz").await.body_text();
    assert!(health.contains(r#""redis":"up""#), "{health}");
}

#[tokio::test]
async fn an_untrusted_redis_certificate_stops_the_start() {
    let cert = TestCert::new("rediss-untrusted");
    let stranger = TestCert::new("rediss-stranger");
    let (_redis, tls_port) = tls_redis(&cert).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_duplex"))
        .args(["--listen", "127.0.0.1:0", "--redis"])
        .arg(format!("rediss://localhost:{tls_port}"))
        .env("SSL_CERT_FILE", &stranger.cert)
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(common::WAIT * 2, output)
        .await
        .expect("the server gave up within the wait")
        .expect("run duplex");
    assert!(!output.status.success(), "started with an untrusted Redis");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.to_lowercase().contains("certificate") || stderr.contains("redis"),
        "{stderr}"
    );
}
