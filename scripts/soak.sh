#!/usr/bin/env bash
# The soak test (not part of scripts/test.sh: it takes ten minutes):
#   1. builds the release server and duplex-bench;
#   2. starts the server on a free loopback port, pinned to one core, and
#      `duplex-bench soak` pinned to another;
#   3. holds CONNECTIONS WebSocket connections for MINUTES: half on /echo,
#      each sending one 128-byte message a second and checking every echo
#      byte for byte; half in 10 rooms on /ws, one member of each publishing
#      2 messages a second, every member checking each delivery (in order,
#      none lost, byte for byte);
#   4. samples the server's RSS (/proc/PID/status VmRSS) and open file
#      descriptors (/proc/PID/fd) every 10 s with messages/s and errors so
#      far into samples.csv, and draws plot.svg;
#   5. decides: no errors, every connection held, RSS growth from the first
#      sample after the warm-up to the last under 10%, descriptors constant
#      while loaded and all released after, no warning or error in the
#      server's log, and a graceful exit on SIGTERM.
#
# Usage: scripts/soak.sh [options]
#   --minutes N        length of the load, once every connection is open (default 10)
#   --connections N    connections held the whole time (default 10000)
#   --out DIR          where samples.csv, summary.json and plot.svg go
#                      (default: the run's directory; the committed run used docs/soak)
#   --server-cpu N     core the server is pinned to (default 0)
#   --generator-cpu N  core the generator is pinned to (default 1)
# Quick check: scripts/soak.sh --minutes 1 --connections 2000 (about 2 minutes once built).
# Exits 0 on PASS, 2 on FAIL, 1 when the run could not be made.
# The server's log and the results stay in target/soak/run-DATE/.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

COMMAND="scripts/soak.sh${*:+ $*}"
MINUTES=10
CONNECTIONS=10000
OUT=""
SERVER_CPU=0
GENERATOR_CPU=1

while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) MINUTES="$2"; shift 2 ;;
        --connections) CONNECTIONS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --server-cpu) SERVER_CPU="$2"; shift 2 ;;
        --generator-cpu) GENERATOR_CPU="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^# The server.s log/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ "$MINUTES" =~ ^[1-9][0-9]*$ ]] || die "--minutes must be a positive integer"
[[ "$CONNECTIONS" =~ ^[1-9][0-9]*$ ]] || die "--connections must be a positive integer"
[ "$CONNECTIONS" -ge 20 ] || die "--connections must be at least 20 (10 rooms of at least one member, and echo connections)"

# ---------------------------------------------------------------- checks
command -v taskset >/dev/null || die "taskset (util-linux) is needed to pin processes"
cores="$(nproc --all)"
[ "$SERVER_CPU" != "$GENERATOR_CPU" ] || die "server and generator must be on different cores"
[ "$SERVER_CPU" -lt "$cores" ] && [ "$GENERATOR_CPU" -lt "$cores" ] \
    || die "this machine has $cores cores; pick --server-cpu and --generator-cpu below $cores"
# Each connection is a descriptor in the server and one in the generator
# (two processes, so the per-process limit needs only one side's count),
# plus the ones each has anyway. Both raise their soft limit to the hard
# one at start; the shell's is raised here so the check below is the one
# that counts.
needed=$((CONNECTIONS + 1024))
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$needed" ] \
    || die "open-file limit $(ulimit -n) is below the $needed that $CONNECTIONS connections need; raise the hard limit (ulimit -Hn)"
# Every connection also takes a local port of the generator's.
read -r low high < /proc/sys/net/ipv4/ip_local_port_range
[ $((high - low)) -gt "$CONNECTIONS" ] \
    || die "only $((high - low)) local ports ($low-$high) for $CONNECTIONS connections: widen net.ipv4.ip_local_port_range"


say "building the server and duplex-bench (release)"
cargo build --release --locked -p duplex-server -p duplex-bench
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"

RUN_DIR="$ROOT/target/soak/run-$(date -u +%Y%m%dT%H%M%SZ)"
OUT="${OUT:-$RUN_DIR}"
mkdir -p "$RUN_DIR" "$OUT"
LOG="$RUN_DIR/server.log"

# ------------------------------------------------------- processes we own
SERVER_PID=""
GENERATOR_PID=""
# Stops what this script started, by PID, whatever way it exits: the
# generator first (it holds the connections), then the server (SIGTERM,
# then SIGKILL after its grace period and some).
cleanup() {
    if [ -n "$GENERATOR_PID" ] && kill -0 "$GENERATOR_PID" 2>/dev/null; then
        kill -TERM "$GENERATOR_PID" 2>/dev/null || true
        wait "$GENERATOR_PID" 2>/dev/null || true
    fi
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        stop_pid "$SERVER_PID" 150
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

busy="$(busy_percent)"
[ "$busy" -le 10 ] || say "warning: the CPUs are $busy% busy before the run: latencies will show it"

# The server's flags, each for a reason:
#   --listen 127.0.0.1:0       a free loopback port, read back from its log
#   --workers 1                it is pinned to one core: one thread is fastest there
#   --max-connections N+1000   the soak's connections are well inside the limit,
#                              so a refusal (503) would be a fault, not the limit
#   --log-format json          the listening address and any warning, parseable
# Everything else is the default, the keepalive's 20 s pings and 60 s idle
# timeout included: a soak of the server as it ships.
say "starting the server on core $SERVER_CPU"
RUST_LOG="warn,duplex_server::server=info" taskset -c "$SERVER_CPU" \
    "$BIN/duplex" --listen 127.0.0.1:0 --workers 1 \
    --max-connections $((CONNECTIONS + 1000)) --log-format json 2>"$LOG" &
SERVER_PID=$!
SERVER_ADDR=""
for _ in $(seq 1 100); do
    SERVER_ADDR="$(sed -n 's/.*"local":"\([0-9.:]*\)".*/\1/p' "$LOG" | head -n1)"
    [ -n "$SERVER_ADDR" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$LOG" >&2; die "the server exited at start"; }
    sleep 0.1
done
[ -n "$SERVER_ADDR" ] || die "the server did not report its address within 10 s (log: $LOG)"

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || commit="$commit+changes"
DESCRIBE="$(date -u '+%Y-%m-%d %H:%M') UTC · Duplex at $commit · $cores cores, server on core $SERVER_CPU, generator on core $GENERATOR_CPU · CPU $busy% busy before"

say "soak: $CONNECTIONS connections for $MINUTES min against $SERVER_ADDR (PID $SERVER_PID), generator on core $GENERATOR_CPU"
status=0
taskset -c "$GENERATOR_CPU" "$BIN/duplex-bench" soak --url "ws://$SERVER_ADDR" \
    --server-pid "$SERVER_PID" --connections "$CONNECTIONS" --duration "${MINUTES}m" \
    --out "$OUT" --describe "$DESCRIBE" > "$RUN_DIR/summary.txt" 2> >(tee "$RUN_DIR/soak.log" >&2) &
GENERATOR_PID=$!
wait "$GENERATOR_PID" || status=$?
GENERATOR_PID=""
cat "$RUN_DIR/summary.txt"
[ "$status" -le 2 ] || die "duplex-bench soak exited with status $status"
[ -s "$OUT/summary.json" ] || die "duplex-bench soak wrote no summary (status $status)"

# The server's own account: a graceful exit, and nothing it warned about.
kill -TERM "$SERVER_PID"
server_status=0
wait "$SERVER_PID" || server_status=$?
SERVER_PID=""
problems="$(grep -c '"level":"\(WARN\|ERROR\)"' "$LOG" || true)"
if [ "$server_status" -ne 0 ]; then
    say "FAIL: the server exited with status $server_status after SIGTERM (expected 0)"
    status=2
fi
if [ "$problems" -gt 0 ]; then
    say "FAIL: the server logged $problems warnings or errors:"
    grep '"level":"\(WARN\|ERROR\)"' "$LOG" | head -n 5 >&2
    status=2
fi
{
    echo "command: $COMMAND"
    echo "server: duplex --listen 127.0.0.1:0 --workers 1 --max-connections $((CONNECTIONS + 1000)) --log-format json (taskset -c $SERVER_CPU)"
    echo "server exit status after SIGTERM: $server_status; warnings and errors logged: $problems"
} > "$RUN_DIR/server.txt"
cat "$RUN_DIR/server.txt"
[ "$OUT" = "$RUN_DIR" ] || cp "$RUN_DIR/server.txt" "$OUT/server.txt"

if [ "$status" -eq 0 ]; then
    say "soak passed: $OUT/plot.svg"
else
    say "soak FAILED (status $status): $OUT/summary.json, $LOG"
fi
exit "$status"
