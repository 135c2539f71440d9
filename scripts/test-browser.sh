#!/usr/bin/env bash
# The browser suites, in headless Chromium against the real server (the
# release build, or DUPLEX_BUILD's: scripts/lib.sh):
#   1. clippy for wasm32 (the client crate, all targets, -D warnings);
#   2. builds: the server, the test harness, the page (trunk build
#      --release into target/browser-tests/dist; reports the .wasm size and
#      fails above the size goal: 200 KiB raw, 80 KiB gzipped);
#   3. the wasm-bindgen tests (client-wasm/tests/browser.rs) under the
#      harness, which starts the server (--deflate on) on a free port with a
#      random push token, a second one with --deflate off, and a third with
#      TLS (a certificate made at start, trusted by its key's hash) and a
#      random --jwt-secret, passes their URLs at build time and lets the
#      reconnect test restart the first;
#   4. the page's end-to-end test (e2e/page.mjs, WebDriver through Debian's
#      chromedriver) against `duplex --ui-dir` serving that build, with the
#      server's push token and binary for `duplex push`; it saves
#      screenshots to target/browser-tests/page.png, page-phone.png and
#      page-rooms.png (two windows chatting, after a push),
#      page-recovery.png (the page after a restart, recovered) and
#      page-tls.png (the page over https, joined with a token, a room
#      outside the token's claim refused);
#      Both servers share a real redis-server the harness starts on a free
#      port (--redis): the restart tests then check that the page recovers
#      what was published while its server was down. DUPLEX_HARNESS_REDIS=0
#      runs them on the memory engine instead (the page must say "history
#      expired" after the restart).
#   5. the development setup (scripts/test-dev-proxy.sh): `trunk serve` with
#      the real Trunk.toml, on free ports, serves the page and proxies /echo
#      and /ws to the server (real clients through it).
# Installs what is missing first (scripts/setup-wasm.sh, idempotent).
#
#   scripts/test-browser.sh                      all of the above
#   scripts/test-browser.sh --update-screenshot  also copy the screenshots to docs/
#   scripts/test-browser.sh --wasm-pack          run step 3 as `wasm-pack test --headless --chrome client-wasm`
#   DUPLEX_SERVER=path/to/duplex scripts/test-browser.sh   against another server build
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

update_screenshot=""
runner="cargo"
for arg in "$@"; do
    case "$arg" in
        --update-screenshot) update_screenshot=1 ;;
        --wasm-pack) runner="wasm-pack" ;;
        *) die "unknown argument $arg (see the header of $0)" ;;
    esac
done

if [ "$runner" = "wasm-pack" ]; then
    "$ROOT/scripts/setup-wasm.sh" --wasm-pack
else
    "$ROOT/scripts/setup-wasm.sh"
fi
eval "$("$ROOT/scripts/setup-wasm.sh" --env)"
CHROMEDRIVER="$(command -v chromedriver)"
export CHROMEDRIVER
# trunk: no update check (there is no internet); tools come from PATH.
export TRUNK_SKIP_VERSION_CHECK=true
# A slow CI machine: give each wasm test binary time.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"

out="$ROOT/target/browser-tests"
dist="$out/dist"
mkdir -p "$out"
started=$SECONDS
timings=()
timed() {
    local name="$1"; shift
    say "$name"
    local t0=$SECONDS
    "$@"
    timings+=("$((SECONDS - t0))s  $name")
}

timed "clippy for wasm32 (client crate, all targets)" \
    cargo clippy --locked -p duplex-client --target wasm32-unknown-unknown --all-targets -- -D warnings
timed "build: server, test harness and load generator ($DUPLEX_BUILD build, scripts/lib.sh)" \
    build_binaries
# DUPLEX_SERVER runs the suites against another build of the server.
# The cluster variant by default (see the top); the harness reads it.
export DUPLEX_HARNESS_REDIS="${DUPLEX_HARNESS_REDIS:-1}"
# --deflate on: the compression checks need it, whatever the server's default
# (the harness also runs a --deflate off server for the checks without it).
harness=("$BIN_DIR/duplex-browser-harness" --server "${DUPLEX_SERVER:-$BIN_DIR/duplex}" --deflate on)
# Not into dist/: a `trunk serve` from scripts/up.sh may be using it.
timed "build: the page (trunk build --release)" \
    trunk build --release --dist "$dist" --public-url / >"$out/trunk.log" 2>&1 \
    || { tail -n 30 "$out/trunk.log" >&2; die "trunk build failed (log: $out/trunk.log)"; }

wasm="$(ls "$dist"/*.wasm)"
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
js="$(ls "$dist"/*.js)"
say "$(printf 'wasm after wasm-opt: %s bytes (%.1f KiB) raw, %s bytes (%.1f KiB) gzipped; JS glue %s bytes gzipped' \
    "$raw" "$(awk "BEGIN{print $raw/1024}")" "$gz" "$(awk "BEGIN{print $gz/1024}")" "$(gzip -9 -c "$js" | wc -c)")"
# The size goal (docs/client.md, "Size and speed"): every page load downloads
# it, so growing past it is a failure, not a note.
budget_raw=$((200 * 1024))
budget_gz=$((80 * 1024))
if [ "$raw" -gt "$budget_raw" ] || [ "$gz" -gt "$budget_gz" ]; then
    die "the .wasm is over its size goal: $raw B raw (goal $budget_raw), $gz B gzipped (goal $budget_gz)"
fi

browser_started=$SECONDS
if [ "$runner" = "wasm-pack" ]; then
    timed "browser tests: wasm-pack test --headless --chrome client-wasm" \
        "${harness[@]}" --log "$out/server-wasm.log" -- wasm-pack test --headless --chrome client-wasm
else
    timed "browser tests: wasm-bindgen tests in headless Chromium" \
        "${harness[@]}" --log "$out/server-wasm.log" -- \
        cargo test --locked --target wasm32-unknown-unknown -p duplex-client --test browser
fi
timed "browser tests: the page end to end (e2e/page.mjs)" \
    "${harness[@]}" --log "$out/server-e2e.log" --ui-dir "$dist" -- \
    env DUPLEX_E2E_SCREENSHOT="$out/page.png" node e2e/page.mjs
browser_took=$((SECONDS - browser_started))
timed "the dev setup: trunk serve proxies /echo and /ws (scripts/test-dev-proxy.sh)" \
    "$ROOT/scripts/test-dev-proxy.sh"

if [ -n "$update_screenshot" ]; then
    mkdir -p "$ROOT/docs"
    cp "$out/page.png" "$ROOT/docs/screenshot.png"
    cp "$out/page-phone.png" "$ROOT/docs/screenshot-phone.png"
    cp "$out/page-rooms.png" "$ROOT/docs/screenshot-rooms.png"
    cp "$out/page-tls.png" "$ROOT/docs/screenshot-tls.png"
    # The restart test's page: recovered (cluster variant) or warned (memory).
    for shot in recovery history; do
        if [ -f "$out/page-$shot.png" ]; then
            cp "$out/page-$shot.png" "$ROOT/docs/screenshot-$shot.png"
        fi
    done
    say "updated docs/screenshot.png, screenshot-phone.png, screenshot-rooms.png, screenshot-tls.png and the restart test's"
fi

printf '\n==> browser suites\n' >&2
printf '  %s\n' "${timings[@]}" >&2
printf '  wasm: %s B raw, %s B gzipped\n  browser suites wall time: %ss (total %ss)\n  screenshot: %s\n' \
    "$raw" "$gz" "$browser_took" "$((SECONDS - started))" "$out/page.png" >&2
