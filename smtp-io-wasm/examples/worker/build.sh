#!/usr/bin/env bash
# Build the example Worker into build/ (index.js + index_bg.wasm), which entry.mjs imports.
# No worker-build: cargo, then wasm-bindgen, then one rewrite of the generated import.
#
# Needs: the wasm32-unknown-unknown target (rustup target add wasm32-unknown-unknown) and the
# wasm-bindgen CLI at the exact version of the wasm-bindgen crate in Cargo.lock
# (cargo install wasm-bindgen-cli --version X.Y.Z). ../../e2e/run.sh installs both.
#
# Usage: ./build.sh [OUT_DIR]      (default: build/ next to this script)
# Env:   CARGO_TARGET_DIR          (default: target/ next to this script)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/build}"
TARGET_DIR="${CARGO_TARGET_DIR:-$HERE/target}"

CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --lib --locked \
  --target wasm32-unknown-unknown --manifest-path "$HERE/Cargo.toml"
wasm-bindgen --target module --out-dir "$OUT" --out-name index \
  "$TARGET_DIR/wasm32-unknown-unknown/release/smtp_worker_example.wasm"
# workerd takes a default import of a compiled wasm module, not the source-phase import.
sed -i 's/^import source wasmModule from /import wasmModule from /' "$OUT/index.js"
if ! grep -q '^import wasmModule from ' "$OUT/index.js"; then
  echo "build.sh: unexpected wasm-bindgen output: no wasm module import to rewrite in index.js" >&2
  exit 1
fi
