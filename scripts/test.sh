#!/usr/bin/env bash
# The whole test suite: formatting, lints, docs and every test of the workspace.
# Installs what the tests need first (idempotent), so it runs on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components"
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "cargo test --workspace"
cargo test --workspace

step "fuzz targets: build and a short run of each (nightly, cargo fuzz)"
./scripts/fuzz-smoke.sh 100000

step "smtp-io-tokio with the platform certificate store"
cargo clippy -p smtp-io-tokio --features native-roots --all-targets --quiet -- -D warnings
cargo test -p smtp-io-tokio --features native-roots --lib --quiet

step "smtp-proto without the optional SASL features"
cargo test -p smtp-proto --no-default-features --features client --lib --quiet

echo
echo "all tests passed"
