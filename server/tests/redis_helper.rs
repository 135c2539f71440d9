//! The test helper `common::redis::RedisServer` against a real
//! redis-server: it starts on a free port and answers PING, commands come
//! back as raw RESP, a SIGKILL takes it down, a restart brings it back on
//! the same port and empty (no persistence), and drop kills it. The Redis
//! engine's tests rely on each of these.

use std::path::Path;
use std::time::Duration;

use crate::common::redis::RedisServer;

#[tokio::test]
async fn starts_on_a_free_port_and_answers_ping() {
    let redis = RedisServer::start().await;
    assert_ne!(redis.port(), 0);
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
    assert!(redis.answers_ping().await);
    assert_eq!(redis.command(&["PING"]).await, "+PONG\r\n");
}

#[tokio::test]
async fn runs_without_persistence() {
    let redis = RedisServer::start().await;
    assert_eq!(
        redis.command(&["CONFIG", "GET", "save"]).await,
        "*2\r\n$4\r\nsave\r\n$0\r\n\r\n"
    );
    assert_eq!(
        redis.command(&["CONFIG", "GET", "appendonly"]).await,
        "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
    );
}

#[tokio::test]
async fn commands_return_the_raw_reply() {
    let redis = RedisServer::start().await;
    assert_eq!(
        redis.command(&["SET", "greeting", "hello"]).await,
        "+OK\r\n"
    );
    assert_eq!(redis.command(&["GET", "greeting"]).await, "$5\r\nhello\r\n");
    assert_eq!(redis.command(&["GET", "missing"]).await, "$-1\r\n");
    assert_eq!(redis.command(&["DBSIZE"]).await, ":1\r\n");
    // Arrays come whole, nested ones too.
    assert_eq!(
        redis.command(&["KEYS", "*"]).await,
        "*1\r\n$8\r\ngreeting\r\n"
    );
    assert_eq!(
        redis
            .command(&["EVAL", "return {1, {'a', 'b'}}", "0"])
            .await,
        "*2\r\n:1\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert_eq!(
        redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]).await,
        ":0\r\n"
    );
    assert!(
        redis
            .command(&["NO-SUCH-COMMAND"])
            .await
            .starts_with("-ERR unknown command")
    );
    assert_eq!(redis.command(&["FLUSHALL"]).await, "+OK\r\n");
    assert_eq!(redis.command(&["DBSIZE"]).await, ":0\r\n");
}

#[tokio::test]
async fn two_servers_get_two_ports() {
    let first = RedisServer::start().await;
    let second = RedisServer::start().await;
    assert_ne!(first.port(), second.port());
    first.command(&["SET", "where", "first"]).await;
    assert_eq!(second.command(&["GET", "where"]).await, "$-1\r\n");
}

#[tokio::test]
async fn kill9_then_restart_comes_back_empty_on_the_same_port() {
    let mut redis = RedisServer::start().await;
    let port = redis.port();
    let first_pid = redis.pid().expect("running");
    redis.command(&["SET", "survives", "no"]).await;
    assert_eq!(redis.command(&["DBSIZE"]).await, ":1\r\n");

    redis.kill9();
    assert_eq!(redis.pid(), None);
    assert!(!Path::new(&format!("/proc/{first_pid}")).exists());
    assert!(
        !redis.answers_ping().await,
        "the port still answers after kill9"
    );

    redis.restart().await;
    assert_eq!(redis.port(), port);
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}"));
    assert_ne!(redis.pid(), Some(first_pid));
    assert_eq!(redis.command(&["DBSIZE"]).await, ":0\r\n");
    assert_eq!(redis.command(&["GET", "survives"]).await, "$-1\r\n");

    // A restart of a running server kills it first.
    redis.command(&["SET", "survives", "no"]).await;
    redis.restart().await;
    assert_eq!(redis.port(), port);
    assert_eq!(redis.command(&["DBSIZE"]).await, ":0\r\n");
}

#[tokio::test]
async fn restart_tries_again_while_another_process_holds_the_port() {
    let mut redis = RedisServer::start().await;
    let port = redis.port();
    redis.kill9();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take the port");
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(squatter);
    });
    redis.restart().await;
    release.await.expect("release task");
    assert_eq!(redis.port(), port);
    assert_eq!(redis.command(&["PING"]).await, "+PONG\r\n");
}

#[tokio::test]
async fn drop_kills_the_process() {
    let redis = RedisServer::start().await;
    let pid = redis.pid().expect("running");
    let port = redis.port();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(redis);
    // Killed and reaped: no process, and nothing on the port.
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "port {port} still accepts connections after drop"
    );
}

#[tokio::test]
#[should_panic(expected = "run scripts/setup.sh")]
async fn a_missing_redis_server_says_to_run_setup() {
    RedisServer::start_program("duplex-test-no-such-redis-server").await;
}
