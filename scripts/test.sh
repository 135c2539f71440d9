#!/usr/bin/env bash
# The one command that runs every check: installs what is missing
# (idempotently), then formatting, lints (native and wasm32), the Autobahn
# conformance run, a short run of every fuzz target, the browser suites in
# headless Chromium, a load-generator smoke run and every native test suite,
# and ends with a summary of each stage.

# One build for every stage: the conformance, browser and smoke stages run
# the dev binaries the unit tests compile anyway (scripts/lib.sh,
# DUPLEX_BUILD). DUPLEX_BUILD=release runs them against the release build.
export DUPLEX_BUILD="${DUPLEX_BUILD:-test}"
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# Incremental compilation speeds up rebuilds after small edits, which a
# run of every check (often in a fresh clone) rarely is; it also doubles the
# size of target/debug (19 of 35 GiB in one long-lived clone). Set
# CARGO_INCREMENTAL=1 to keep it.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# A cold build of every target takes 3.3 GiB of disk. When the disk fills up
# mid-link the linker dies of SIGBUS with no word about space, so say it
# first.
free_kib=$(df -Pk "$ROOT" | awk 'NR == 2 { print $4 }')
if [ "${free_kib:-0}" -lt $((8 * 1024 * 1024)) ]; then
    say "warning: only $((free_kib / 1024)) MiB free on the disk of $ROOT; a cold build takes 3.3 GiB"
fi

started=$SECONDS
summary=()
stage() {
    local name="$1"; shift
    say "$name"
    local t0=$SECONDS status=0
    "$@" || status=$?
    local took=$((SECONDS - t0))
    if [ "$status" -ne 0 ]; then
        summary+=("FAIL  ${took}s  $name")
        print_summary
        die "$name failed (exit $status)"
    fi
    summary+=("ok    ${took}s  $name")
}
print_summary() {
    printf '\n==> summary\n' >&2
    printf '  %s\n' "${summary[@]}" >&2
    printf '  total %ss\n' "$((SECONDS - started))" >&2
}

stage "setup (installs only what is missing)" scripts/setup.sh
stage "cargo fmt --check" cargo fmt --all --check

# Clippy lints while the build compiles: clippy-driver is rustc with the
# lints added, and `cargo clippy` is `cargo check` with it as the wrapper of
# the workspace's crates and its arguments in CLIPPY_ARGS. Wrapping the dev
# build the same way lints exactly what `cargo clippy --workspace
# --all-targets -- -D warnings` lints, and saves its second pass over every
# dependency (about 3 minutes of a cold run on 2 cores). Every later stage
# sees the same wrapper, so cargo finds the build current instead of
# compiling the workspace again without it. scripts/fuzz.sh drops it (the
# fuzz targets build with nightly), and so do the installs (lib.sh).
RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# The test build of every target (what nextest runs), then DUPLEX_BUILD's
# binaries: nothing more with the default test build.
build_and_lint() {
    cargo test --locked --workspace --all-targets --no-run --quiet
    build_binaries
}
stage "build and clippy: every crate and target, once, -D warnings ($DUPLEX_BUILD build of the binaries)" \
    build_and_lint
stage "Autobahn TestSuite vs autobahn/expected.json" scripts/autobahn.sh
stage "fuzz targets, 5 s each (scripts/fuzz.sh; long campaigns: docs/fuzzing.md)" scripts/fuzz.sh 5
stage "doc tests" cargo test --workspace --doc --locked --quiet
stage "browser suites: wasm32 clippy, wasm-bindgen tests, the page in headless Chromium, trunk serve's proxies" \
    scripts/test-browser.sh
stage "load generator smoke run against the server" scripts/bench-smoke.sh
stage "unit and integration tests (cargo nextest)" \
    cargo nextest run --workspace --locked --no-fail-fast
print_summary
say "all checks passed"
