#!/usr/bin/env bash
# The development setup of scripts/up.sh, checked: `trunk serve` with the
# real Trunk.toml serves the page and proxies every WebSocket endpoint the
# page uses (/echo, /ws) to the server. Its ports are moved to free ones
# (the real file says 8081 and a server on 8080, which a test must not
# take), and its paths made absolute; nothing else of the file changes.
# Through trunk's port it then runs real clients: duplex-bench's echo on
# /echo and a short fan-out on /ws (exit 2 on any lost message or dropped
# connection). Run by scripts/test-browser.sh, which installs trunk and
# builds the server and duplex-bench; alone it needs them built
# (DUPLEX_BUILD picks which build: scripts/lib.sh).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

eval "$("$ROOT/scripts/setup-wasm.sh" --env)"
export TRUNK_SKIP_VERSION_CHECK=true
bench="$BIN_DIR/duplex-bench"
[ -x "$bench" ] || die "build duplex-bench first (scripts/lib.sh build_binaries; DUPLEX_BUILD=$DUPLEX_BUILD)"

out="$ROOT/target/dev-proxy"
rm -rf "$out"
mkdir -p "$out"
trunk_pid=""
cleanup() {
    # Only what this script started, by PID.
    if [ -n "$trunk_pid" ]; then
        kill -TERM "$trunk_pid" 2>/dev/null || true
        wait "$trunk_pid" 2>/dev/null || true
    fi
    stop_server
}
trap cleanup EXIT

start_server "$out/server.log"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# rewrite PATTERN REPLACEMENT: one substitution in the config copy, which
# must match exactly once (so a reshaped Trunk.toml fails here, loudly,
# instead of testing something else).
config="$out/Trunk.toml"
cp "$ROOT/Trunk.toml" "$config"
rewrite() {
    local count
    count=$(grep -c -- "$1" "$config" || true)
    [ "$count" -ge 1 ] || die "Trunk.toml has no line matching '$1': update $0"
    sed -i "s#$1#$2#g" "$config"
}
rewrite '^target = "index.html"' "target = \"$ROOT/index.html\""
rewrite '^dist = "dist"' "dist = \"$out/dist\""
rewrite '^watch = \["index.html", "client-wasm"\]' "watch = [\"$ROOT/index.html\", \"$ROOT/client-wasm\"]"
rewrite '^port = 8081' "port = $port"
rewrite 'ws://127.0.0.1:8080/' "ws://$SERVER_ADDR/"

trunk serve --config "$config" >"$out/trunk.log" 2>&1 &
trunk_pid=$!
say "dev proxy: trunk serve on 127.0.0.1:$port (building the page), server on $SERVER_ADDR"
page=""
for _ in $(seq 1 600); do
    kill -0 "$trunk_pid" 2>/dev/null || { tail -n 30 "$out/trunk.log" >&2; die "trunk serve exited"; }
    # python3 rather than curl: setup.sh already needs it, curl is not
    # installed by anything here.
    page="$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())' \
        "http://127.0.0.1:$port/" 2>/dev/null || true)"
    [[ "$page" == *"_bg.wasm"* ]] && break
    sleep 0.5
done
[[ "$page" == *"_bg.wasm"* ]] || { tail -n 30 "$out/trunk.log" >&2; die "trunk serve did not serve the built page within 300 s"; }

say "dev proxy: echo through trunk's /echo"
timeout 30 "$bench" echo --url "ws://127.0.0.1:$port/echo" --connections 2 --messages 200 \
    --size 100 --timeout 5s --no-progress
say "dev proxy: rooms through trunk's /ws (3 members, every message delivered)"
timeout 30 "$bench" fanout --url "ws://127.0.0.1:$port/ws" --members 3 --publishers 1 --rate 20 \
    --duration 1s --warmup 200ms --drain 1s
say "dev proxy passed: the page, /echo and /ws through trunk serve"
