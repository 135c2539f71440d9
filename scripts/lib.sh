# Shared helpers for the scripts in this folder. Source it; do not run it.
# shellcheck shell=bash

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Tools the project installs for itself live outside the clone, so a fresh
# clone on the same machine reuses them (setup.sh skips what is present).
TOOLS="${DUPLEX_TOOLS:-$HOME/.cache/duplex}"
export PATH="$HOME/.cargo/bin:$PATH"

# Pinned versions: a change here is a deliberate upgrade.
KOSOKU_VERSION="0.1.0"
CARGO_FUZZ_VERSION="0.13.2"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# cargo_install CRATE VERSION [ARGS...] : installs a tool the checks run
# (cargo install --locked, plus ARGS). Tools, not the product: they spend
# their time waiting on cargo, rustc, wasm-opt or the tests, so they are
# built with the dev profile (no optimisation) and without debug info, in
# a fraction of the release profile's time. On 2 cores, cold:
# wasm-bindgen-cli 97 s instead of 251 s; cargo-nextest 274 s instead of
# 675 s (with the features setup.sh picks). Running them unoptimised costs
# about 2 s per wasm-bindgen of a test binary, nothing measurable in
# nextest. Not wrapped by clippy-driver (scripts/test.sh): a tool's own
# warnings are not ours to fail on.
cargo_install() {
    local crate="$1" version="$2"
    shift 2
    env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS CARGO_PROFILE_DEV_DEBUG=false \
        cargo install --locked --debug "$crate" --version "$version" "$@"
}

# Which build of the binaries (duplex, duplex-bench, the browser harness)
# the check scripts (autobahn.sh, test-browser.sh, bench-smoke.sh) run:
#   release  the default: what users run and benchmarks measure;
#   test     the dev build `cargo nextest` compiles anyway. scripts/test.sh
#            picks it, so its conformance, browser and smoke stages reuse
#            the unit tests' build instead of compiling every dependency a
#            second time with release optimisations (7 of the run's 32
#            minutes on 2 cores). Debug assertions stay on: an arithmetic
#            overflow a client provokes panics there instead of wrapping.
# The benchmark scripts always use release.
DUPLEX_BUILD="${DUPLEX_BUILD:-release}"
case "$DUPLEX_BUILD" in
    release) BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release" ;;
    test) BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/debug" ;;
    *) die "DUPLEX_BUILD must be release or test, not $DUPLEX_BUILD" ;;
esac

# build_binaries : builds DUPLEX_BUILD's binaries into BIN_DIR. One cargo
# invocation with one package selection for every script: cargo unifies
# features per invocation, so building the server alone and then with the
# load generator compiled half the dependencies twice.
build_binaries() {
    case "$DUPLEX_BUILD" in
        release)
            cargo build --locked --release --quiet --manifest-path "$ROOT/Cargo.toml" \
                -p duplex-server -p duplex-bench -p duplex-browser-harness
            ;;
        # Exactly the build `cargo nextest run --workspace` makes (it runs
        # `cargo test --no-run`), binaries included.
        test) cargo test --locked --workspace --no-run --quiet --manifest-path "$ROOT/Cargo.toml" ;;
    esac
}

# start_server LOGFILE ARGS... : starts BIN_DIR's server on a free loopback
# port; sets SERVER_PID and SERVER_ADDR from its "listening" line.
start_server() {
    local log="$1"; shift
    RUST_LOG="${RUST_LOG:-warn,duplex_server::server=info}" \
        "$BIN_DIR/duplex" --listen 127.0.0.1:0 --log-format json "$@" 2>"$log" &
    SERVER_PID=$!
    SERVER_ADDR=""
    for _ in $(seq 1 100); do
        SERVER_ADDR="$(sed -n 's/.*"local":"\([0-9.:]*\)".*/\1/p' "$log" | head -n1)"
        [ -n "$SERVER_ADDR" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; die "server exited at start"; }
        sleep 0.1
    done
    kill "$SERVER_PID" 2>/dev/null || true
    die "server did not report its address within 10 s (log: $log)"
}

# stop_server : SIGTERM, then wait; fails unless it exits 0 (graceful).
stop_server() {
    [ -n "${SERVER_PID:-}" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local status=0
    wait "$SERVER_PID" || status=$?
    SERVER_PID=""
    [ "$status" -eq 0 ] || die "server exited with status $status after SIGTERM (expected 0)"
}

# How busy the machine is now: CPU use over one second, in percent (the
# load average lags by minutes). Anything else running adds noise to
# timings (bench.sh) and latencies (soak.sh).
busy_percent() {
    local a b
    a="$(head -n1 /proc/stat)"; sleep 1; b="$(head -n1 /proc/stat)"
    printf '%s\n%s\n' "$a" "$b" | awk '
        { idle[NR] = $5 + $6; total[NR] = 0; for (i = 2; i <= NF; i++) total[NR] += $i }
        END { t = total[2] - total[1]; busy = 0; if (t) busy = 100 * (1 - (idle[2] - idle[1]) / t); printf "%.0f", busy }'
}

# stop_pid PID TENTHS : SIGTERM, up to TENTHS tenths of a second to exit,
# then SIGKILL; reaps it. For processes this script started (bench.sh's
# servers, soak.sh's server).
stop_pid() {
    local pid="$1" tenths="$2"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 "$tenths"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
