#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS_PER_TARGET]: builds every cargo-fuzz target in
# fuzz/ once, then runs each for SECONDS (default 20), one after another on
# one core, and prints the executions of each and their total. Fails on the
# first crash, hang (no answer to one input within 10 s) or leak (with
# AddressSanitizer), naming the input libFuzzer saved
# (fuzz/artifacts/TARGET/). Each run starts from a copy of the committed
# seeds (fuzz/corpus/TARGET) in fuzz/runs/BUILD/TARGET, so the seeds stay as
# committed; what a run found stays there until the next. Long campaigns:
# docs/fuzzing.md.
source "$(dirname "$0")/lib.sh"

seconds="${1:-20}"
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] (a whole number above 0)"
command -v cargo-fuzz >/dev/null || die "cargo-fuzz is missing: run scripts/setup.sh"

cd "$ROOT/fuzz"
# How to build. The default is the cheapest cold build, for the short run
# in scripts/test.sh: unoptimised (debug assertions and overflow checks
# on) and without AddressSanitizer, half the CPU time of cargo fuzz's
# default. Campaigns build with FUZZ_BUILD=release (7-47x the executions
# per second) and FUZZ_SANITIZER=address (memory errors in dependencies'
# unsafe code, and leaks). docs/fuzzing.md has the measurements.
build="${FUZZ_BUILD:-dev}"
sanitizer="${FUZZ_SANITIZER:-none}"
case "$build" in
    dev) profile=debug; flags=(--dev) ;;
    release) profile=release; flags=() ;;
    *) die "FUZZ_BUILD is dev or release, not $build" ;;
esac
# The build goes outside the clone, like the tools (lib.sh), one folder per
# kind of build: a fresh clone on the same machine rebuilds only Duplex's
# own crates, not the ~160 instrumented dependencies.
target_dir="${FUZZ_TARGET_DIR:-$TOOLS/fuzz-target/$build-$sanitizer}"
flags+=(--sanitizer "$sanitizer" --target-dir "$target_dir")

# scripts/test.sh lints its build through clippy-driver (stable): it
# cannot wrap nightly's rustc.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
t0=$SECONDS
cargo +nightly fuzz build "${flags[@]}"
say "built every fuzz target in $((SECONDS - t0)) s"

mapfile -t targets < <(cargo +nightly fuzz list)
[ "${#targets[@]}" -gt 0 ] || die "no fuzz targets in $ROOT/fuzz"
# Run the binaries themselves: `cargo fuzz run` would check the build again
# before each target (seconds each on a busy machine). The ASan option is
# the one cargo fuzz sets.
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin_dir="$target_dir/$triple/$profile"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"

# One folder per kind of build, so a campaign and a short run can go on at
# the same time.
runs="runs/$build-$sanitizer"
total=0
report=()
for target in "${targets[@]}"; do
    corpus="$runs/$target"
    rm -rf "$corpus"
    mkdir -p "$corpus" "artifacts/$target"
    cp -r "corpus/$target/." "$corpus/"
    log="$runs/$target.log"
    say "fuzzing $target for ${seconds} s"
    status=0
    "$bin_dir/$target" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="artifacts/$target/" "$corpus" >"$log" 2>&1 || status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
    if [ "$status" -ne 0 ] || [ -z "$execs" ]; then
        tail -n 40 "$log" >&2
        die "fuzz target $target failed (exit $status); log: fuzz/$log; the input is in fuzz/artifacts/$target/ (docs/fuzzing.md: reproduce it, then make it a regression test)"
    fi
    total=$((total + execs))
    report+=("$(printf '%-16s %12s executions in %s s, corpus %s inputs' \
        "$target" "$execs" "$seconds" "$(find "$corpus" -type f | wc -l)")")
done

printf '\n==> fuzzing: %s targets, %s s each, 0 crashes\n' "${#targets[@]}" "$seconds" >&2
printf '  %s\n' "${report[@]}" >&2
printf '  %-16s %12s executions\n' total "$total" >&2
