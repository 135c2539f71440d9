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
#   scripts/up.sh --cluster       two servers sharing one Redis, as several
#                                 instances of one service: a redis-server of
#                                 its own on a free port (no persistence,
#                                 installed by scripts/setup.sh), instance A
#                                 on 127.0.0.1:8080 and instance B on
#                                 127.0.0.1:8082, each with
#                                 --redis redis://127.0.0.1:PORT, and the page
#                                 as in development; prints where each is and
#                                 how to watch a message cross from one to the
#                                 other. Ctrl-C or q + Enter stops all four.
# Further arguments go to duplex (both instances, with --cluster). The page's
# proxy (Trunk.toml) expects the server on 127.0.0.1:8080, so every mode
# but --server-only keeps that address.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

mode="dev"
case "${1:-}" in
    --release) mode="release"; shift ;;
    --server-only) mode="server"; shift ;;
    --cluster) mode="cluster"; shift ;;
esac
listen="127.0.0.1:8080"

if [ "$mode" = "cluster" ]; then
    # Before the build: a missing redis-server should not cost one.
    command -v redis-server >/dev/null || die "redis-server is not installed: run scripts/setup.sh"
fi

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

if [ "$mode" = "cluster" ]; then
    # The page's proxy, trunk and instance B need these three ports.
    port_a="${listen##*:}"
    port_b=$((port_a + 2))
    for port in "$port_a" 8081 "$port_b"; do
        if (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            die "127.0.0.1:$port is taken (another scripts/up.sh?): --cluster needs $port_a, 8081 and $port_b"
        fi
    done
    # Everything this mode starts, by PID, in start order, with names.
    pids=()
    declare -A names=()
    # shellcheck disable=SC2317 # called by the EXIT trap
    stop_cluster() {
        trap - EXIT
        # Only the processes this script started, by PID: the page and the
        # instances first, so they do not watch redis go; redis last.
        local pid
        for pid in "${pids[@]:1}"; do kill -TERM "$pid" 2>/dev/null || true; done
        for pid in "${pids[@]:1}"; do wait "$pid" 2>/dev/null || true; done
        if [ "${#pids[@]}" -gt 0 ]; then
            kill -TERM "${pids[0]}" 2>/dev/null || true
            wait "${pids[0]}" 2>/dev/null || true
        fi
    }
    # Ctrl-C and SIGTERM end the script; the EXIT trap then stops the rest.
    trap stop_cluster EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    started() { pids+=("$2"); names[$2]="$1"; }

    # redis_ping PORT : whether something on PORT answers PING (RESP).
    redis_ping() {
        local reply=""
        { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
        # shellcheck disable=SC2016 # $4 is RESP (a 4-byte string), not bash
        printf '*1\r\n$4\r\nPING\r\n' >&3
        IFS= read -r -t 1 reply <&3 || true
        exec 3<&-
        [ "$reply" = $'+PONG\r' ]
    }

    # Its own redis-server in the project's cache folder: a free port below
    # the kernel's ephemeral range (retried when taken meanwhile), no
    # persistence, so every run starts empty and leaves nothing behind.
    redis_dir="$TOOLS/up-cluster"
    mkdir -p "$redis_dir"
    redis_log="$redis_dir/redis.log"
    redis_port=""
    for _ in 1 2 3 4 5; do
        port=$(shuf -i 20000-32767 -n 1)
        (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no --dir "$redis_dir" >"$redis_log" 2>&1 &
        pid=$!
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            if redis_ping "$port"; then redis_port="$port"; break; fi
            sleep 0.1
        done
        if [ -n "$redis_port" ]; then
            started redis "$pid"
            break
        fi
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        grep -q "Address already in use" "$redis_log" ||
            { cat "$redis_log" >&2; die "redis-server did not start on port $port (log: $redis_log)"; }
    done
    [ -n "$redis_port" ] || die "redis-server found no free port in 5 tries (log: $redis_log)"
    redis_url="redis://127.0.0.1:$redis_port"

    # The push API for the demonstration below: this run's own token,
    # unless one is set already.
    DUPLEX_PUSH_TOKEN="${DUPLEX_PUSH_TOKEN:-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}"
    export DUPLEX_PUSH_TOKEN

    # start_instance NAME PORT ARGS... : duplex on 127.0.0.1:PORT with the shared
    # redis; waits until it listens, or dies with what it said.
    start_instance() {
        local name="$1" port="$2" pid status=0
        shift 2
        "$duplex" --listen "127.0.0.1:$port" --redis "$redis_url" "$@" &
        pid=$!
        started "$name" "$pid"
        for _ in $(seq 1 100); do
            (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
            if ! kill -0 "$pid" 2>/dev/null; then
                wait "$pid" || status=$?
                die "$name exited at start (status $status; its output is above)"
            fi
            sleep 0.1
        done
        die "$name did not listen on 127.0.0.1:$port within 10 s"
    }
    start_instance "instance A" "$port_a" "$@"
    start_instance "instance B" "$port_b" "$@"
    trunk serve &
    started "trunk serve (the page)" $!

    say "redis:      $redis_url (pid ${pids[0]}; no persistence; log $redis_log)"
    say "instance A: ws://127.0.0.1:$port_a/ws and /echo, with --redis $redis_url"
    say "instance B: ws://127.0.0.1:$port_b/ws and /echo, with --redis $redis_url"
    say "page on A:  http://127.0.0.1:8081/ (once trunk has built it)"
    say "page on B:  http://127.0.0.1:8081/?url=ws://127.0.0.1:$port_b/echo"
    say "to watch a message cross: open both pages and join the same room (lobby) in each; what one sends, the other shows. Or publish through B and watch the page on A:"
    printf '      DUPLEX_PUSH_TOKEN=%s %s push --server http://127.0.0.1:%s --room lobby "hello through B"\n' \
        "$DUPLEX_PUSH_TOKEN" "$duplex" "$port_b" >&2

    # Runs until one of them ends (or Ctrl-C, or q + Enter); then the EXIT
    # trap stops the others.
    status=0
    if [ -t 0 ]; then
        say "q + Enter or Ctrl-C stops all four"
        while :; do
            for pid in "${pids[@]}"; do
                if ! kill -0 "$pid" 2>/dev/null; then
                    wait "$pid" || status=$?
                    say "${names[$pid]} exited (status $status): stopping the rest"
                    exit "$status"
                fi
            done
            key=""
            read_status=0
            read -r -t 1 key || read_status=$?
            # Above 128: the timeout; another failure: the end of input.
            if [ "$read_status" -ne 0 ] && [ "$read_status" -le 128 ]; then
                exit 0
            fi
            [ "$key" != q ] || exit 0
        done
    fi
    ended=""
    wait -n -p ended "${pids[@]}" || status=$?
    say "${names[$ended]:-a process} exited (status $status): stopping the rest"
    exit "$status"
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
