#!/usr/bin/env bash
# Installs what the browser client needs, idempotently: each step checks for
# the tool at the pinned version first and does nothing when it is there, so
# a second run takes seconds. Tools come only from package registries
# (crates.io through `cargo install --locked`, npm, Debian apt): nothing here
# downloads prebuilt binaries from elsewhere.
#
#   scripts/setup-wasm.sh              install what is missing
#   scripts/setup-wasm.sh --no-browser skip Chromium (enough to build and serve the page)
#   scripts/setup-wasm.sh --wasm-pack  also wasm-pack, for `wasm-pack test` (the
#                                      default runs use wasm-bindgen's runner,
#                                      which wasm-pack drives too: minutes of
#                                      compiling a fresh machine need not do)
#   scripts/setup-wasm.sh --env        print the PATH line the other scripts use
source "$(dirname "$0")/lib.sh"

# Pinned versions: a change here is a deliberate upgrade. WASM_BINDGEN_VERSION
# must equal the `wasm-bindgen` pin in Cargo.toml (the CLI refuses to process
# output of another version). trunk 0.22 needs a newer rustc than ours.
TRUNK_VERSION="0.21.14"
WASM_BINDGEN_VERSION="0.2.120"
WASM_PACK_VERSION="0.15.1"
BINARYEN_VERSION="132.0.0"
NPM_PREFIX="$TOOLS/npm"

# The npm wasm-opt must come before /usr/bin: Debian's wasm-opt 108 silently
# breaks wasm-bindgen 0.2.120 output (Table.grow fails at load).
wasm_path="$NPM_PREFIX/node_modules/.bin:$HOME/.cargo/bin"
browser=1
wasm_pack=""
for arg in "$@"; do
    case "$arg" in
        --env)
            printf 'export PATH="%s:$PATH"\n' "$wasm_path"
            exit 0
            ;;
        --no-browser) browser="" ;;
        --wasm-pack) wasm_pack=1 ;;
        *) die "unknown argument $arg (see the header of $0)" ;;
    esac
done
export PATH="$wasm_path:$PATH"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    say "installing rustup target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi

# cargo_tool BIN VERSION_REGEX CRATE VERSION [ARGS...] : installs
# CRATE@VERSION (cargo_install, with ARGS) unless `BIN --version` already
# matches.
cargo_tool() {
    local bin="$1" want="$2" crate="$3" version="$4"
    shift 4
    if "$bin" --version 2>/dev/null | grep -Eq "$want"; then
        return 0
    fi
    say "installing $crate $version (cargo install --locked; takes minutes on 2 cores)"
    cargo_install "$crate" "$version" "$@"
}
cargo_tool wasm-bindgen "^wasm-bindgen $WASM_BINDGEN_VERSION\$" wasm-bindgen-cli "$WASM_BINDGEN_VERSION"
if [ -n "$wasm_pack" ]; then
    cargo_tool wasm-pack "^wasm-pack $WASM_PACK_VERSION\$" wasm-pack "$WASM_PACK_VERSION"
fi
# trunk without its default features: no check of crates.io for a newer
# trunk (Trunk.toml says offline), and no TLS of its own (rustls and ring),
# since its dev server listens on loopback and proxies plain ws:// to the
# server beside it. For `trunk serve` over https, or a proxy to a wss://
# backend, install it with `cargo install --locked trunk` instead.
cargo_tool trunk "^trunk $TRUNK_VERSION\$" trunk "$TRUNK_VERSION" --no-default-features

# apt_install PACKAGE... : Debian packages, as root (a fresh machine's apt
# lists may be empty: update first).
apt_install() {
    say "installing $* (apt)"
    [ "$(id -u)" -eq 0 ] || die "installing $* needs root: sudo apt-get install -y $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Node runs npm's wasm-opt and the page's end-to-end test.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
fi

# wasm-opt from npm's binaryen (a Node script over binaryen's wasm build).
if ! wasm-opt --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}\b"; then
    say "installing binaryen@$BINARYEN_VERSION (wasm-opt) into $NPM_PREFIX"
    mkdir -p "$NPM_PREFIX"
    npm install --prefix "$NPM_PREFIX" --no-audit --no-fund --silent "binaryen@$BINARYEN_VERSION"
fi

# Chromium and its driver from Debian, at the same version (the driver only
# talks to its own browser version).
[ -n "$browser" ] || exit 0
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi
