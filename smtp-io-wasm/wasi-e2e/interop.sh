#!/usr/bin/env bash
# The WASI column of the interop matrix (called by tests/servers/run-interop.sh):
#
#   interop.sh build   before the servers start: npm packages (wasi-e2e/package-lock.json), the
#                      component for wasm32-wasip2 (release), transpiled by jco into
#                      wasi-e2e/work-interop/component
#   interop.sh run     while they run (the SMTP_INTEROP_* environment of start-servers.sh
#                      exported): node interop.mjs, which appends its rows (server "<name>-wasi")
#                      to $SMTP_INTEROP_RESULTS; exit status 1 when a case failed
#
# Needs what wasi-e2e/run.sh needs: rustup with the wasm32-wasip2 target, clang (ring's C),
# Node >= 20 with npm. CARGO_TARGET_DIR is honoured (default component/target).
set -euo pipefail

E2E="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPONENT="$(dirname "$E2E")/component"
TARGET_DIR="${CARGO_TARGET_DIR:-$COMPONENT/target}"
OUT="$E2E/work-interop"

case "${1:-}" in
  build)
    rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
    # ring compiles its C for wasm32 with clang (gcc cannot). The interop run comes before
    # wasi-e2e/run.sh in scripts/test.sh, so a fresh machine gets it here, the same way.
    if ! command -v clang >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      apt-get install -y --no-install-recommends clang >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends clang >/dev/null; }
    fi
    command -v clang >/dev/null 2>&1 || { echo "interop.sh: clang is needed to build ring for wasm32 (apt-get install clang)" >&2; exit 1; }
    want="$(node -p 'require(process.argv[1]).packages["node_modules/smtp-server"].version' "$E2E/package-lock.json")"
    have="$(node -p 'try { require(process.argv[1]).version } catch { "" }' "$E2E/node_modules/smtp-server/package.json" 2>/dev/null || true)"
    [ "$have" = "$want" ] && [ -x "$E2E/node_modules/.bin/jco" ] || (cd "$E2E" && npm ci --no-audit --no-fund)
    CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet --target wasm32-wasip2 \
      --manifest-path "$COMPONENT/Cargo.toml"
    rm -rf "$OUT"
    mkdir -p "$OUT"
    "$E2E/node_modules/.bin/jco" transpile "$TARGET_DIR/wasm32-wasip2/release/smtp_wasi_component.wasm" \
      -o "$OUT/component" --name smtp --no-typescript --quiet
    echo "WASI component built and transpiled into $OUT/component"
    ;;
  run)
    [ -f "$OUT/component/smtp.js" ] || { echo "interop.sh: run '$0 build' first" >&2; exit 1; }
    node "$E2E/interop.mjs" "$OUT/component"
    ;;
  *)
    echo "usage: $0 build|run" >&2
    exit 2
    ;;
esac
