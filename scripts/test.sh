#!/usr/bin/env bash
# The whole test suite: formatting, lints, docs and every test of the workspace.
# Installs what the tests need first (idempotent), so it runs on a fresh machine.
#
#   scripts/test.sh           everything: lints, unit/transcript/loopback tests, fuzz smoke runs,
#                             the real-server interop matrix, the Worker end-to-end test and the
#                             WASI 0.2 component end-to-end test
#   scripts/test.sh --quick   only the Rust lints and tests (no fuzzing, no real servers, no wasm)
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

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "cargo test --workspace"
cargo test --workspace

step "smtp-io-wasm for wasm32-unknown-unknown (the Workers target)"
cargo clippy -p smtp-io-wasm --target wasm32-unknown-unknown --quiet -- -D warnings

step "smtp-io-tokio with the platform certificate store (TlsConfig::native_roots, in smtp-rustls)"
cargo clippy -p smtp-io-tokio --features native-roots --all-targets --quiet -- -D warnings
cargo test -p smtp-rustls --features native-roots --lib --quiet

step "smtp-proto without the optional features"
cargo test -p smtp-proto --no-default-features --features client --lib --quiet
cargo test -p smtp-proto --no-default-features --lib --quiet

step "smtp-proto on a bare-metal target: no_std + alloc (thumbv7em-none-eabihf)"
cargo clippy -p smtp-proto --no-default-features --target thumbv7em-none-eabihf --quiet -- -D warnings
cargo build -p smtp-proto --no-default-features --target thumbv7em-none-eabihf --quiet

if [ -n "$QUICK" ]; then
  echo
  echo "quick tests passed (fuzzing, real servers and the Worker test were skipped)"
  exit 0
fi

step "examples: each run against a local aiosmtpd, delivery checked"
./scripts/examples.sh

step "fuzz targets: build and a short run of each (nightly, cargo fuzz)"
./scripts/fuzz-smoke.sh 100000

step "interop with real servers: Postfix+Dovecot, Exim, aiosmtpd, smtp-server, smtp-sink"
tests/servers/run-interop.sh

step "smtp-io-wasm end to end: the example Worker in workerd"
smtp-io-wasm/e2e/run.sh

step "smtp-io-wasm end to end on WASI 0.2: the component's WIT interface from JavaScript under jco"
smtp-io-wasm/wasi-e2e/run.sh

echo
echo "all tests passed"
