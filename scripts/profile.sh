#!/usr/bin/env bash
# Instructions per echoed message, for Duplex and the Rust peers, counted
# with callgrind: repeatable whatever else the machine is doing, unlike
# timings. Each server runs under callgrind twice, for N1 and N2 closed-loop
# echoes; (total2 - total1) / (N2 - N1) leaves out start-up, connects and
# shutdown. Also writes the top functions of Duplex's second run.
#
#   scripts/profile.sh [CONNECTIONS [PAYLOAD]]    default: 100 20
#   DUPLEX_BASE=/path/to/older/duplex scripts/profile.sh   also counts that
#       binary (e.g. a build of the commit before a change), for a ratio
#
# Needs scripts/bench.sh to have built the peers (target/peers/release);
# servers that are missing are skipped. Binaries come from CARGO_TARGET_DIR
# when it is set.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

connections="${1:-100}"
payload="${2:-20}"
n1=5000
n2=25000
target="${CARGO_TARGET_DIR:-$ROOT/target}"
out="$target/profile"
mkdir -p "$out"
command -v valgrind >/dev/null || die "valgrind is needed (apt-get install valgrind)"
cargo build --release --locked --quiet -p duplex-server -p duplex-bench

# total_instructions NAME N COMMAND... : runs COMMAND under callgrind while
# duplex-bench sends N echoes, prints callgrind's instruction total.
total_instructions() {
    local name="$1" n="$2"; shift 2
    local file="$out/$name.$n.callgrind" log="$out/$name.$n.log" addr="" pid
    rm -f "$file"
    valgrind --tool=callgrind --callgrind-out-file="$file" "$@" 2>"$log" &
    pid=$!
    for _ in $(seq 1 300); do
        addr="$(sed -n 's/.*"local":"\([0-9.:]*\)".*/\1/p' "$log" | head -n1)"
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { kill "$pid"; die "$name did not start under callgrind (see $log)"; }
    "$target/release/duplex-bench" echo --url "ws://$addr/" --connections "$connections" \
        --size "$payload" --messages "$n" --timeout 60s --no-progress >"$out/$name.$n.bench" 2>&1 ||
        { kill "$pid"; die "$name: the load run failed (see $out/$name.$n.bench)"; }
    kill -TERM "$pid"
    wait "$pid" || true
    sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$log" | tail -n1
}

declare -A servers=(
    [duplex]="$target/release/duplex --listen 127.0.0.1:0 --log-format json --workers 1"
    [duplex-base]="${DUPLEX_BASE:-/nonexistent} --listen 127.0.0.1:0 --log-format json --workers 1"
    [tungstenite]="$ROOT/target/peers/release/tungstenite-echo 127.0.0.1:0"
    [fastwebsockets]="$ROOT/target/peers/release/fastwebsockets-echo 127.0.0.1:0"
)
say "instructions per echoed message: $connections connections x $payload B (callgrind)"
printf '| server | instructions per message |\n|---|---:|\n'
for name in duplex duplex-base tungstenite fastwebsockets; do
    read -r -a command <<<"${servers[$name]}"
    [ -x "${command[0]}" ] || { say "skipping $name: ${command[0]} is not built"; continue; }
    a="$(total_instructions "$name" "$n1" "${command[@]}")"
    b="$(total_instructions "$name" "$n2" "${command[@]}")"
    printf '| %s | %s |\n' "$name" "$(( (b - a) / (n2 - n1) ))"
done
if command -v callgrind_annotate >/dev/null; then
    callgrind_annotate "$out/duplex.$n2.callgrind" >"$out/duplex.top.txt" 2>/dev/null || true
    say "Duplex's top functions: $out/duplex.top.txt"
fi
