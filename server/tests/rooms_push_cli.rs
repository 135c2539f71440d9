//! Rooms: `duplex push --room R MESSAGE` (the real binary) publishes into
//! a running server's room with the token, and fails with a non-zero exit
//! and the server's reason when the token is wrong.

use std::process::Stdio;

use crate::common::rooms::{connect_rooms, join, next_text};
use crate::common::{TestServer, WAIT, config};
use tokio::process::Command;
use tokio::time::timeout;

const TOKEN: &str = "cli-token-5678";

async fn duplex_push(server: &TestServer, token: &str, message: &str) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_duplex"))
        .args(["push", "--room", "ops", "--server"])
        .arg(format!("http://{}", server.addr))
        .arg(message)
        .env("DUPLEX_PUSH_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run duplex push");
    timeout(WAIT, child.wait_with_output())
        .await
        .expect("duplex push did not finish in time")
        .expect("duplex push output")
}

#[tokio::test]
async fn duplex_push_reaches_the_room_and_reports_refusals() {
    let mut config = config();
    config.push_token = Some(TOKEN.into());
    let server = TestServer::start(config).await;
    let (mut ada, _) = connect_rooms(server.addr).await;
    join(&mut ada, "ops", "ada").await;

    let output = duplex_push(&server, TOKEN, "hello from the CLI").await;
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"delivered\":1"));
    assert_eq!(
        next_text(&mut ada).await,
        (None, "hello from the CLI".to_owned())
    );

    let output = duplex_push(&server, "wrong", "nope").await;
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("401"),
        "{output:?}"
    );
}
