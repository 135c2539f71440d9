//! Starting up: `run` checks the configuration before serving; an
//! inconsistent one is returned as `Error::Config` at once, and the
//! listener is closed rather than left accepting connections nobody serves.

use crate::common;

use std::time::Duration;

use duplex_server::{ConfigError, Error};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

#[tokio::test]
async fn invalid_configuration_is_refused_before_serving() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let mut config = common::config();
    config.ping_interval = Duration::from_secs(5);
    config.idle_timeout = Duration::from_secs(5);
    let result = timeout(
        common::WAIT,
        duplex_server::run(listener, config, std::future::pending()),
    )
    .await
    .expect("run must return at once for an invalid configuration");
    assert!(
        matches!(
            result,
            Err(Error::Config(ConfigError::IdleNotAbovePing { .. }))
        ),
        "got {result:?}"
    );
    let connect = TcpStream::connect(addr).await;
    assert!(
        connect.is_err(),
        "the listener of a server that never started still accepts connections"
    );
}
