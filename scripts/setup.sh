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

# cargo-nextest: the test runner. Any 0.9 release reads our config.
if ! cargo nextest --version 2>/dev/null | grep -q '^cargo-nextest 0\.9\.'; then
    say "installing cargo-nextest"
    cargo install --locked cargo-nextest --version 0.9.143
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

# The browser client's toolchain: wasm32 target, trunk, wasm-bindgen-cli,
# wasm-pack, wasm-opt, Chromium and chromedriver (each skipped when present).
"$ROOT/scripts/setup-wasm.sh"
