#!/usr/bin/env bash
# Brings Duplex up: the release server on 127.0.0.1:8080 and the page through
# `trunk serve` on http://127.0.0.1:8081/, which rebuilds the page when its
# source changes and proxies the WebSocket endpoints /echo and /ws to the server, so
# the page talks to its own origin. Installs what is missing first
# (scripts/setup-wasm.sh --no-browser) and builds the server. In a terminal,
# `s` + Enter stops the server and `r` + Enter starts it again (to watch the
# page reconnect); Ctrl-C or `q` + Enter stops both.
#
#   scripts/up.sh                 server + page (development)
#   scripts/up.sh --release       one process: builds the page with
#                                 `trunk build --release` and serves it with
#                                 `duplex --ui-dir dist` at http://127.0.0.1:8080/
#   scripts/up.sh --server-only   just the server
# Further arguments go to duplex. The page's proxy (Trunk.toml) expects the
# server on 127.0.0.1:8080, so the first two modes keep that address.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

mode="dev"
case "${1:-}" in
    --release) mode="release"; shift ;;
    --server-only) mode="server"; shift ;;
esac
listen="127.0.0.1:8080"

cargo build --release --locked -p duplex-server
# Where cargo put it: CARGO_TARGET_DIR moves it (as in lib.sh).
duplex="${CARGO_TARGET_DIR:-$ROOT/target}/release/duplex"
if [ "$mode" = "server" ]; then
    exec "$duplex" "$@"
fi

"$ROOT/scripts/setup-wasm.sh" --no-browser
eval "$("$ROOT/scripts/setup-wasm.sh" --env)"
export TRUNK_SKIP_VERSION_CHECK=true

if [ "$mode" = "release" ]; then
    trunk build --release
    say "Duplex: page and sockets on http://$listen/ (Ctrl-C stops)"
    exec "$duplex" --listen "$listen" --ui-dir "$ROOT/dist" "$@"
fi

server_args=("$@")
server_pid=""
trunk_pid=""
start_duplex() {
    "$duplex" --listen "$listen" "${server_args[@]}" &
    server_pid=$!
}
stop_duplex() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
stop_all() {
    trap - INT TERM EXIT
    # Only the two processes this script started, by PID.
    stop_duplex
    if [ -n "$trunk_pid" ]; then
        kill -TERM "$trunk_pid" 2>/dev/null || true
        wait "$trunk_pid" 2>/dev/null || true
    fi
}
trap stop_all INT TERM EXIT

start_duplex
trunk serve &
trunk_pid=$!
say "Duplex: server on ws://$listen/echo; page on http://127.0.0.1:8081/ once trunk has built it (Ctrl-C stops both)"

if [ ! -t 0 ]; then
    # Not interactive: run until either ends, then stop the other.
    status=0
    wait -n "$server_pid" "$trunk_pid" || status=$?
    exit "$status"
fi

# Interactive: the server can be stopped and started again from here, to
# watch the page reconnect; trunk keeps serving the page meanwhile.
say "type s + Enter to stop the server, r + Enter to start it again, q + Enter to quit"
while kill -0 "$trunk_pid" 2>/dev/null; do
    key=""
    status=0
    read -r -t 1 key || status=$?
    # A status above 128 is the timeout; another failure, the end of input.
    if [ "$status" -ne 0 ] && [ "$status" -le 128 ]; then
        break
    fi
    case "$key" in
        s)
            stop_duplex
            say "server stopped: the page counts down and retries; r + Enter starts the server again"
            ;;
        r)
            if [ -z "$server_pid" ]; then
                start_duplex
                say "server started again: the page reconnects by itself"
            fi
            ;;
        q) break ;;
    esac
    if [ -n "$server_pid" ] && ! kill -0 "$server_pid" 2>/dev/null; then
        status=0
        wait "$server_pid" || status=$?
        server_pid=""
        say "the server exited (status $status); r + Enter starts it again"
    fi
done
