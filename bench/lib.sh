# shellcheck shell=bash
# Helpers for the measurement scripts in bench/ (sourced, not run): free
# loopback ports, servers and a redis-server started in the background and
# stopped by the PID this shell started them with.

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# PIDs of everything started here; stopped on exit.
started=()
stop_all() { for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap stop_all EXIT

# start_duplex CPU BINARY LOG ARGS...: a duplex on a free port, pinned to
# CPU, with ARGS; waits for /healthz. Sets $port and $pid.
start_duplex() {
    local cpu=$1 binary=$2 log=$3
    shift 3
    port=$(free_port)
    taskset -c "$cpu" "$binary" --listen "127.0.0.1:$port" "$@" >"$log" 2>&1 &
    pid=$!
    started+=("$pid")
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "duplex did not start; see $log" >&2
    return 1
}

# start_redis CPU LOG: an empty redis-server (no persistence) on a free
# port, pinned to CPU. Sets $redis_port and $redis_pid.
start_redis() {
    local cpu=$1 log=$2
    redis_port=$(free_port)
    taskset -c "$cpu" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
        --appendonly no >"$log" 2>&1 &
    redis_pid=$!
    started+=("$redis_pid")
    for _ in $(seq 100); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "redis-server did not start; see $log" >&2
    return 1
}

# stop PID: stops one process started here and waits for it.
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# Load and CPU of the whole machine over a batch, into $out: call with
# "start" and "end".
machine_mark() {
    # shellcheck disable=SC2154 # $out is the sourcing script's

    echo "load average at $1: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/load"
    head -n1 /proc/stat >"$out/stat-$1"
}
