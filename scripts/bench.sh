#!/usr/bin/env bash
# The peer comparison, from scratch, in one command:
#   1. installs what is missing (Node.js, the `ws` package) and builds Duplex,
#      duplex-bench and the Rust peers (release);
#   2. starts every server pinned to one core, the load generator pinned to
#      another;
#   3. runs every echo configuration against every server, interleaved
#      (A B C D, A B C D, ... for each round), then the idle-connection memory
#      run against a freshly started instance of each;
#   4. renders docs/bench/results.md (medians, ratios, p99) and
#      docs/bench/chart.svg with duplex-bench report.
#
# Usage: scripts/bench.sh [options]
#   --rounds N        rounds of every measurement (default 3)
#   --duration D      measurement window of each echo run (default 5s)
#   --warmup D        load before each window, not counted (default 1s)
#   --idle N          idle connections of the memory runs (default 10000)
#   --configs LIST    echo configurations, CONNECTIONSxBYTES, space separated
#                     (default "100x20 10x1024 10x16384 200x16384 1000x128")
#   --servers LIST    servers to compare, space separated, Duplex first
#                     (default "duplex tungstenite fastwebsockets node-ws")
#   --server-cpu N    core the servers are pinned to (default 0)
#   --generator-cpu N core the load generator is pinned to (default 1)
#   --out DIR         where results.md, chart.svg, results.json go
#                     (default docs/bench; target/bench/quick with --quick)
#   --quick           prove the pipeline: 1 round of 1 s, 1000 idle
#                     connections (numbers are not meaningful)
# Raw results and server logs stay in target/bench/run-DATE/.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

COMMAND="scripts/bench.sh${*:+ $*}"
ROUNDS=3
DURATION=5s
WARMUP=1s
IDLE=10000
CONFIGS="100x20 10x1024 10x16384 200x16384 1000x128"
SERVERS="duplex tungstenite fastwebsockets node-ws"
SERVER_CPU=0
GENERATOR_CPU=1
OUT=""
QUICK=0
# Pinned: a change here is a deliberate upgrade of the comparison.
WS_VERSION="8.23.0"

while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --warmup) WARMUP="$2"; shift 2 ;;
        --idle) IDLE="$2"; shift 2 ;;
        --configs) CONFIGS="$2"; shift 2 ;;
        --servers) SERVERS="$2"; shift 2 ;;
        --server-cpu) SERVER_CPU="$2"; shift 2 ;;
        --generator-cpu) GENERATOR_CPU="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        -h|--help) sed -n '2,/^# Raw results/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    ROUNDS=1 DURATION=1s WARMUP=0s IDLE=1000
    OUT="${OUT:-target/bench/quick}"
fi
OUT="${OUT:-docs/bench}"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ "$IDLE" =~ ^[1-9][0-9]*$ ]] || die "--idle must be a positive integer"

# ---------------------------------------------------------------- checks
command -v taskset >/dev/null || die "taskset (util-linux) is needed to pin processes"
cores="$(nproc --all)"
[ "$SERVER_CPU" != "$GENERATOR_CPU" ] || die "server and generator must be on different cores"
[ "$SERVER_CPU" -lt "$cores" ] && [ "$GENERATOR_CPU" -lt "$cores" ] \
    || die "this machine has $cores cores; pick --server-cpu and --generator-cpu below $cores"
busy="$(busy_percent)"
load="$(cut -d' ' -f1-3 /proc/loadavg) (CPU $busy% busy just before the run)"
if [ "$busy" -gt 10 ]; then
    say "warning: the CPUs are $busy% busy before the run: other work will add noise to the numbers"
fi

# Each idle connection is a descriptor in the server and in the generator.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -gt $((IDLE + 256)) ] \
    || die "file descriptor limit $(ulimit -n) is below --idle $IDLE; raise the hard limit"

# --------------------------------------------------------------- installs
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    say "installing Node.js and npm (Debian packages)"
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
NODE_PEER="$TOOLS/peers/node-ws"
installed_ws="$(sed -n 's/^ *"version": "\(.*\)",*$/\1/p' "$NODE_PEER/node_modules/ws/package.json" 2>/dev/null || true)"
if [ "$installed_ws" != "$WS_VERSION" ]; then
    say "installing ws@$WS_VERSION into $NODE_PEER"
    mkdir -p "$NODE_PEER"
    npm install --prefix "$NODE_PEER" --no-audit --no-fund --loglevel=error "ws@$WS_VERSION" >/dev/null
fi

say "building Duplex, duplex-bench and the Rust peers (release)"
cargo build --release --locked -p duplex-server -p duplex-bench
cargo build --release --locked --manifest-path bench/peers/Cargo.toml --target-dir target/peers
BENCH="$ROOT/target/release/duplex-bench"

# ---------------------------------------------------------------- servers
RUN_DIR="$ROOT/target/bench/run-$(date -u +%Y%m%dT%H%M%SZ)"
RESULTS="$RUN_DIR/results"
LOGS="$RUN_DIR/logs"
mkdir -p "$RESULTS" "$LOGS"

declare -A PID ADDR

# start NAME : starts server NAME pinned to SERVER_CPU on a free loopback
# port; sets PID[NAME] and ADDR[NAME] from its "listening" line.
start() {
    local name="$1" log="$LOGS/$1-$(date +%s%N).log" pid
    case "$name" in
        duplex)
            RUST_LOG="warn,duplex_server::server=info" taskset -c "$SERVER_CPU" \
                target/release/duplex --listen 127.0.0.1:0 --log-format json \
                --max-connections $((IDLE * 2)) 2>"$log" &
            ;;
        tungstenite) taskset -c "$SERVER_CPU" target/peers/release/tungstenite-echo 2>"$log" & ;;
        fastwebsockets) taskset -c "$SERVER_CPU" target/peers/release/fastwebsockets-echo 2>"$log" & ;;
        node-ws)
            NODE_PATH="$NODE_PEER/node_modules" taskset -c "$SERVER_CPU" \
                node bench/peers/node-ws/echo.js 127.0.0.1:0 2>"$log" &
            ;;
        *) die "unknown server $name (known: duplex tungstenite fastwebsockets node-ws)" ;;
    esac
    pid=$!
    PID[$name]=$pid
    ADDR[$name]=""
    for _ in $(seq 1 100); do
        ADDR[$name]="$(sed -n 's/.*"local":"\([0-9.:]*\)".*/\1/p' "$log" | head -n1)"
        [ -n "${ADDR[$name]}" ] && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "$name exited at start"; }
        sleep 0.1
    done
    die "$name did not report its address within 10 s (log: $log)"
}

# stop NAME : SIGTERM, up to 10 s to exit, then SIGKILL.
stop() {
    local pid="${PID[$1]:-}"
    [ -n "$pid" ] || return 0
    stop_pid "$pid" 100
    PID[$1]=""
}

# Whatever happens, no server started here outlives the script. Only the
# PIDs still running are signalled (stop clears its entry), never a name.
cleanup() {
    for name in "${!PID[@]}"; do
        stop "$name"
    done
}
trap cleanup EXIT

# run FILE ARGS... : one pinned generator run, its JSON result into FILE.
# A run that fails outright leaves no file (the report shows a gap).
run() {
    local file="$1"; shift
    local status=0
    taskset -c "$GENERATOR_CPU" "$BENCH" "$@" --json >"$file.tmp" 2>>"$LOGS/generator.log" || status=$?
    if [ "$status" -ne 0 ] && [ "$status" -ne 2 ] || [ ! -s "$file.tmp" ]; then
        rm -f "$file.tmp"
        say "warning: run failed (exit $status): $*; see $LOGS/generator.log"
        return 0
    fi
    mv "$file.tmp" "$file"
    grep -q '"mode":"hold"' "$file" && return 0
    local rate p99 errors
    rate="$(sed -n 's/.*"messages_per_sec":\([0-9.]*\).*/\1/p' "$file")"
    p99="$(sed -n 's/.*"latency_us":{[^}]*"p99":\([0-9.]*\).*/\1/p' "$file")"
    errors="$(sed -n 's/.*"errors":{\([^}]*\)}.*/\1/p' "$file")"
    printf '    %-15s %10.0f msg/s  p99 %8.0f µs  errors {%s}\n' \
        "$label" "${rate:-0}" "${p99:-0}" "$errors" >&2
}

# ------------------------------------------------------------- echo runs
say "echo: $ROUNDS round(s) × [$CONFIGS] × [$SERVERS], $DURATION windows after $WARMUP warm-up"
for name in $SERVERS; do start "$name"; done
for round in $(seq 1 "$ROUNDS"); do
    for config in $CONFIGS; do
        connections="${config%x*}" size="${config#*x}"
        say "round $round/$ROUNDS: $connections connections × $size B"
        for label in $SERVERS; do
            run "$RESULTS/echo-$connections-$size-$label-r$round.json" \
                echo --url "ws://${ADDR[$label]}/" --connections "$connections" --size "$size" \
                --duration "$DURATION" --warmup "$WARMUP" \
                --label "$label" --server-pid "${PID[$label]}"
        done
    done
done
for name in $SERVERS; do stop "$name"; done

# ------------------------------------------------------------- hold runs
say "memory: $ROUNDS round(s) × $IDLE idle connections, a fresh server each time"
for round in $(seq 1 "$ROUNDS"); do
    for label in $SERVERS; do
        start "$label"
        sleep 0.5 # let it finish starting before the baseline RSS
        run "$RESULTS/hold-$label-r$round.json" \
            hold --url "ws://${ADDR[$label]}/" --connections "$IDLE" --duration 1s --settle 2s \
            --label "$label" --server-pid "${PID[$label]}"
        stop "$label"
        rss="$(sed -n 's/.*"per_connection_kib":\([0-9.]*\).*/\1/p' "$RESULTS/hold-$label-r$round.json" 2>/dev/null || true)"
        printf '    round %s %-15s %s KiB per idle connection\n' "$round" "$label" "${rss:-?}" >&2
    done
done

# ------------------------------------------------------------ the report
json_str() { # a JSON string literal
    local s="${1//\\/\\\\}"
    s="${s//\"/\\\"}"
    printf '"%s"' "$s"
}
lock_version() { # lock_version LOCKFILE CRATE
    awk -v name="$2" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' "$1"
}
duplex_commit() { # the commit Duplex was built from, "+local changes" if the server differs
    local commit
    commit="$(git rev-parse --short HEAD 2>/dev/null)" || { echo unknown; return; }
    git diff-index --quiet HEAD -- server Cargo.toml Cargo.lock 2>/dev/null || commit="$commit + local changes"
    echo "$commit"
}
server_json() { # server_json LABEL
    case "$1" in
        duplex) name="Duplex" version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1) ($(duplex_commit))" ;;
        tungstenite) name="tokio-tungstenite" version="$(lock_version bench/peers/Cargo.lock tokio-tungstenite)" ;;
        fastwebsockets) name="fastwebsockets" version="$(lock_version bench/peers/Cargo.lock fastwebsockets)" ;;
        node-ws) name="Node ws" version="$WS_VERSION" ;;
    esac
    printf '{"label":%s,"name":%s,"version":%s}' "$(json_str "$1")" "$(json_str "$name")" "$(json_str "$version")"
}
cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
memory_gib="$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
machine="${cpu_model:-unknown CPU}, $cores cores, $memory_gib GiB, Linux $(uname -r)"
servers_json="$(for s in $SERVERS; do server_json "$s"; printf ','; done)"
cat >"$RESULTS/meta.json" <<EOF
{
  "command": $(json_str "$COMMAND"),
  "date": $(json_str "$(date -u '+%Y-%m-%d %H:%M UTC')"),
  "machine": $(json_str "$machine"),
  "pinning": $(json_str "server on CPU $SERVER_CPU, generator on CPU $GENERATOR_CPU (taskset)"),
  "rounds": $ROUNDS,
  "duration": $(json_str "$DURATION"),
  "warmup": $(json_str "$WARMUP"),
  "idle_connections": $IDLE,
  "load": $(json_str "$load"),
  "subject": "duplex",
  "servers": [${servers_json%,}],
  "versions": {
    "duplex-bench": $(json_str "$("$BENCH" --version | cut -d' ' -f2)"),
    "rustc": $(json_str "$(rustc --version | cut -d' ' -f2)"),
    "node": $(json_str "$(node --version)")
  }
}
EOF
say "report"
"$BENCH" report "$RESULTS" --out "$OUT"
say "raw results and logs: $RUN_DIR"
