#!/usr/bin/env bash
# Installs what the tests need, idempotently: each step checks for the tool
# at the pinned version first and does nothing when it is there.
source "$(dirname "$0")/lib.sh"

# Rust components for the lint steps.
installed="$(rustup component list --installed 2>/dev/null || true)"
for component in rustfmt clippy; do
    if ! grep -q "^$component" <<<"$installed"; then
        say "installing rustup component $component"
        rustup component add "$component"
    fi
done

# cargo-nextest: the test runner. Any 0.9 release reads our config. Without
# its self-updater (an HTTP client and TLS: a third of its crates), as
# nextest recommends for CI builds.
if ! cargo nextest --version 2>/dev/null | grep -q '^cargo-nextest 0\.9\.'; then
    say "installing cargo-nextest"
    cargo_install cargo-nextest 0.9.143 --no-default-features --features default-no-update
fi

# cargo-fuzz and the nightly toolchain it builds with: the fuzz targets in
# fuzz/ (scripts/fuzz.sh, docs/fuzzing.md). About a minute on 2 cores.
if ! rustup toolchain list | grep -q '^nightly-'; then
    say "installing the nightly toolchain (for cargo-fuzz)"
    rustup toolchain install nightly --profile minimal
fi
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo_install cargo-fuzz "$CARGO_FUZZ_VERSION"
fi

# kosoku: runs the Autobahn TestSuite cases against a server, in its own venv.
venv="$TOOLS/venv"
if [ "$("$venv/bin/python" -m pip show kosoku 2>/dev/null | sed -n 's/^Version: //p')" != "$KOSOKU_VERSION" ]; then
    say "installing kosoku $KOSOKU_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "kosoku==$KOSOKU_VERSION"
fi
# Its permessage-deflate cases fail every text message on its own bug.
"$venv/bin/python" "$ROOT/autobahn/kosoku-mend.py"

# redis-server, from Debian: the Redis engine's tests and `scripts/up.sh
# --cluster` start their own on a free port, without persistence. The
# package's own system service (6379, saving to /var/lib/redis) must not run:
# it would hold the default port and keep data between runs. Its postinst
# starts it unless policy-rc.d says no, so say no for this install (unless a
# policy is already there: containers ship one), then disable it for boot.
redis_policy=/usr/sbin/policy-rc.d
redis_own_policy=""
redis_service_enabled() {
    if command -v systemctl >/dev/null; then
        # Reads the unit files: works without systemd running too.
        systemctl is-enabled --quiet redis-server 2>/dev/null
    else
        compgen -G "/etc/rc[2-5].d/S*redis-server" >/dev/null
    fi
}
redis_service_running() {
    # The service runs as the package's user; our own instances do not. A
    # zombie (exited, not yet reaped) does not count.
    id redis >/dev/null 2>&1 &&
        ps -u redis -o stat=,comm= | awk '$1 !~ /^Z/ && $2 == "redis-server" { found = 1 } END { exit !found }'
}
if command -v redis-server >/dev/null; then
    say "have redis-server $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') ($(command -v redis-server))"
else
    [ "$(id -u)" -eq 0 ] || die "installing redis-server needs root: sudo apt-get install -y redis-server, then sudo systemctl disable --now redis-server"
    if [ ! -e "$redis_policy" ]; then
        printf '#!/bin/sh\n# Written by Duplex scripts/setup.sh for one apt-get install.\nexit 101\n' >"$redis_policy"
        chmod 755 "$redis_policy"
        redis_own_policy=1
        # Removed however this script ends (Ctrl-C and apt failures too).
        trap 'rm -f "$redis_policy"' EXIT
        trap 'exit 1' INT TERM
    fi
    say "installing redis-server (apt; its system service kept stopped)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    if [ -n "$redis_own_policy" ]; then
        rm -f "$redis_policy"
        trap - EXIT INT TERM
    fi
    command -v redis-server >/dev/null || die "apt installed redis-server but it is not on PATH"
fi
# Checked on every run, so a redis-server installed by other means is
# brought in line too; each step acts only when needed, so a second run
# does nothing. Without root, only a warning: the tests never use 6379.
if redis_service_enabled || redis_service_running; then
    if [ "$(id -u)" -ne 0 ]; then
        say "warning: the redis-server system service is enabled or running; the tests do not need it (sudo systemctl disable --now redis-server)"
    else
        if redis_service_enabled; then
            say "disabling the redis-server system service (not started at boot)"
            if command -v systemctl >/dev/null; then
                systemctl disable --quiet redis-server
            else
                update-rc.d redis-server disable >/dev/null
            fi
        fi
        if redis_service_running; then
            say "stopping the redis-server system service"
            if [ -d /run/systemd/system ]; then
                systemctl stop redis-server
            else
                /etc/init.d/redis-server stop >/dev/null || true
            fi
            for _ in $(seq 1 50); do
                redis_service_running || break
                sleep 0.1
            done
            ! redis_service_running || die "the redis-server system service (user redis) is still running 5 s after stop: stop it by hand"
        fi
    fi
fi

# The browser client's toolchain: wasm32 target, trunk, wasm-bindgen-cli,
# wasm-pack, wasm-opt, Chromium and chromedriver (each skipped when present).
"$ROOT/scripts/setup-wasm.sh"
