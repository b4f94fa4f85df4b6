#!/usr/bin/env bash
# The whole test suite: formatting, lints, docs and every test of the workspace.
# Installs what the tests need first (idempotent), so it runs on a fresh machine.
#
#   scripts/test.sh           everything: lints, unit/transcript/loopback tests, the publishing
#                             dry run (cargo package) and cargo deny, fuzz smoke runs, the
#                             real-server interop matrix, the Worker end-to-end test and the
#                             WASI 0.2 component end-to-end test
#   scripts/test.sh --quick   only the Rust lints and tests (no publishing dry run, no cargo deny,
#                             no fuzzing, no real servers, no wasm)
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=
[ "${1:-}" = "--quick" ] && QUICK=1

step() { printf '\n==> %s\n' "$*"; }

# Disk. A fresh machine builds everything once, so incremental caches only cost space (1.3 GB
# here), and line tables are all the debug info a failing test's backtrace needs (full debug info
# made target/debug 4.3 GB). Both can be overridden from the environment.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"

step "toolchain components"
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
  rustup target list --installed | grep -qx wasm32-unknown-unknown \
    || rustup target add wasm32-unknown-unknown
  rustup target list --installed | grep -qx thumbv7em-none-eabihf \
    || rustup target add thumbv7em-none-eabihf
fi

step "python packages the Rust tests use (pproxy: real SOCKS5 and HTTP CONNECT proxies)"
python3 -c 'import pproxy' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pproxy

step "python packages for DKIM: dkimpy (with cryptography, and pynacl for ed25519) verifies every signature"
python3 -c 'import dkim, nacl, cryptography' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check dkimpy cryptography pynacl

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
# The engine's own docs as a no_std user builds them.
RUSTDOCFLAGS="-D warnings" cargo doc -p smtp-proto --no-default-features --no-deps --quiet

step "cargo test --workspace"
cargo test --workspace

step "smtp-io-wasm for wasm32-unknown-unknown (the Workers target)"
cargo clippy -p smtp-io-wasm --target wasm32-unknown-unknown --quiet -- -D warnings

step "smtp-dkim without std: no_std + alloc, for the Workers target and bare metal"
cargo clippy -p smtp-dkim --no-default-features --all-targets --quiet -- -D warnings
cargo build -p smtp-dkim --no-default-features --target wasm32-unknown-unknown --quiet
cargo build -p smtp-dkim --no-default-features --target thumbv7em-none-eabihf --quiet

step "smtp-io-tokio with the platform certificate store (TlsConfig::native_roots, in smtp-rustls)"
cargo clippy -p smtp-io-tokio --features native-roots --all-targets --quiet -- -D warnings
cargo test -p smtp-rustls --features native-roots --lib --quiet

step "smtp-io-tokio with Redis: one rate limit shared by two processes (feature redis, a real redis-server)"
if ! command -v redis-server >/dev/null 2>&1; then
  (apt-get install -y -q redis-server >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null; })
  # The package may start a system instance: the test starts its own on a Unix socket.
fi
cargo clippy -p smtp-io-tokio --features redis --all-targets --quiet -- -D warnings
cargo test -p smtp-io-tokio --features redis --test pool_shared_limit --quiet
# The README's shared-limit example compiles only with the feature.
cargo test -p smtp-io-tokio --features redis --doc --quiet

step "smtp-proto without the optional features"
cargo test -p smtp-proto --no-default-features --features client --lib --quiet
cargo test -p smtp-proto --no-default-features --lib --quiet

step "smtp-proto on a bare-metal target: no_std + alloc (thumbv7em-none-eabihf)"
cargo clippy -p smtp-proto --no-default-features --target thumbv7em-none-eabihf --quiet -- -D warnings
cargo build -p smtp-proto --no-default-features --target thumbv7em-none-eabihf --quiet

if [ -n "$QUICK" ]; then
  echo
  echo "quick tests passed (packaging, cargo deny, fuzzing, real servers and the Worker test were skipped)"
  exit 0
fi

step "publishing: each published crate packaged, then built from its package alone (cargo package)"
# The crates for users, in dependency order, packaged together: each is verified against the
# packages of the others (an overlay of crates.io), since none is on crates.io yet. This is what
# `cargo publish` checks before uploading: every dependency has a version and can come from
# crates.io (no unpublished test support, no path-only crate), the README each manifest names
# exists, and the crate builds from what its package holds, with its own features only.
# Two names are taken on crates.io by other projects: smtp-proto (a parser by another author,
# whose 0.1.x the verification would pick instead of ours) and smtp-send (as smtp_send). Until
# those crates are renamed, the verification builds take smtp-proto from this tree (the patch
# below), and a real `cargo publish` of either would be refused.
# Cargo unpacks each verified package into its registry cache under a directory named after the
# local overlay, and reuses it while the version stays 0.1.0: a second run would verify the
# first run's sources. Drop those copies of our own crates first.
for crate in smtp-proto smtp-rustls smtp-io-tokio smtp-io-wasm smtp-io-std smtp-dkim smtp-capture smtp-send; do
  rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/"$crate"-[0-9]*
done
cargo package --locked --allow-dirty \
  -p smtp-proto -p smtp-rustls -p smtp-io-tokio -p smtp-io-wasm -p smtp-io-std -p smtp-dkim \
  -p smtp-capture -p smtp-send \
  --config "patch.crates-io.smtp-proto.path='$PWD/smtp-proto'"

step "cargo deny check licenses bans sources (deny.toml)"
# Advisories are left out: their database is fetched from the network, which CI cannot reach.
CARGO_DENY_VERSION=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
  cargo install --locked cargo-deny --version "$CARGO_DENY_VERSION"
fi
cargo deny check licenses bans sources

step "declared minimum Rust versions: each library checked with the toolchain it declares"
# rust-version in the manifests is a promise: the libraries build on 1.85 (edition 2024),
# smtp-dkim and smtp-capture on 1.88, smtp-send on 1.89. Checked with those toolchains, in a
# target directory of their own (the stable build's stays as it is).
msrv_check() {
  local version="$1"; shift
  if ! rustup toolchain list | grep -q "^$version"; then
    rustup toolchain install "$version" --profile minimal >/dev/null
  fi
  cargo "+$version" check --locked --quiet --target-dir target/msrv "$@"
}
msrv_check 1.85 -p smtp-proto -p smtp-rustls -p smtp-io-tokio -p smtp-io-std -p smtp-io-wasm
msrv_check 1.85 -p smtp-proto --no-default-features
msrv_check 1.88 -p smtp-dkim -p smtp-capture --all-features
msrv_check 1.88 -p smtp-io-tokio --features dkim
msrv_check 1.89 -p smtp-send
msrv_check 1.89 -p smtp-io-tokio --features mail-builder

step "examples: each run against a local aiosmtpd, delivery checked"
./scripts/examples.sh

step "fuzz targets: build and a short run of each (nightly, cargo fuzz)"
./scripts/fuzz-smoke.sh 100000

step "interop with real servers: Postfix+Dovecot, Exim, aiosmtpd, smtp-server, smtp-sink; the tokio, blocking (-std) and WASI (-wasi) clients"
tests/servers/run-interop.sh

step "smtp-io-wasm end to end: the example Worker in workerd"
smtp-io-wasm/e2e/run.sh

step "smtp-io-wasm end to end on WASI 0.2: the component's WIT interface from JavaScript under jco"
smtp-io-wasm/wasi-e2e/run.sh

echo
echo "all tests passed"
