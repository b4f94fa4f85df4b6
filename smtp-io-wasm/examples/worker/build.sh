#!/usr/bin/env bash
# Build the example Worker into build/ (index.js + index_bg.wasm), which entry.mjs imports.
# No worker-build: cargo, then wasm-bindgen, then one rewrite of the generated import.
#
# Needs: the wasm32-unknown-unknown target (rustup target add wasm32-unknown-unknown) and the
# wasm-bindgen CLI at the exact version of the wasm-bindgen crate in Cargo.lock
# (cargo install wasm-bindgen-cli --version X.Y.Z). ../../e2e/run.sh installs both.
#
# Usage: ./build.sh [--features dkim] [OUT_DIR]   (default OUT_DIR: build/ next to this script)
#   --features dkim   DKIM signing (DKIM_PRIVATE_KEY, DKIM_SELECTOR, DKIM_DOMAIN); off by
#                     default, as it makes the .wasm about 40% larger. Built without it, a Worker
#                     with a DKIM setting refuses every request (500 config) rather than send
#                     unsigned mail.
# Env:   CARGO_TARGET_DIR          (default: target/ next to this script)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FEATURES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --features) [ $# -ge 2 ] || { echo "build.sh: --features needs a value" >&2; exit 2; }
                FEATURES=(--features "$2"); shift 2 ;;
    --features=*) FEATURES=(--features "${1#--features=}"); shift ;;
    -*) echo "build.sh: unknown option $1 (usage: ./build.sh [--features dkim] [OUT_DIR])" >&2; exit 2 ;;
    *) break ;;
  esac
done
OUT="${1:-$HERE/build}"
TARGET_DIR="${CARGO_TARGET_DIR:-$HERE/target}"

CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --lib --locked ${FEATURES[@]+"${FEATURES[@]}"} \
  --target wasm32-unknown-unknown --manifest-path "$HERE/Cargo.toml"
wasm-bindgen --target module --out-dir "$OUT" --out-name index \
  "$TARGET_DIR/wasm32-unknown-unknown/release/smtp_worker_example.wasm"
# workerd takes a default import of a compiled wasm module, not the source-phase import.
sed -i 's/^import source wasmModule from /import wasmModule from /' "$OUT/index.js"
if ! grep -q '^import wasmModule from ' "$OUT/index.js"; then
  echo "build.sh: unexpected wasm-bindgen output: no wasm module import to rewrite in index.js" >&2
  exit 1
fi
