#!/usr/bin/env bash
# End-to-end test of smtp-io-wasm: build the example Worker, run it in workerd (through
# Miniflare's API) with its settings bound as vars and secrets, and send mail through a loopback
# SMTP server: bearer token (401 without it, no connection made), 405, plaintext refused,
# STARTTLS and implicit TLS delivery with AUTH, body cap (413), refused recipients, dropped
# connection, timeout, the session deadline (connect time counted), port 25, bad certificate,
# AUTH mechanism by name and XOAUTH2, DKIM, SOCKS5 and HTTP CONNECT proxies (a real pproxy: with
# and without credentials, STARTTLS and implicit TLS through the tunnel, wrong credentials),
# SMTP_TLS_SERVER_NAME (right and wrong). The Worker's request logic is unit-tested on the
# host first (cargo test, with and without the `dkim` feature), and the adapter's timer is
# checked in node for memory kept by timers dropped before they fire (e2e/timer-check).
#
# The Worker is built twice: as deployed by default (no DKIM), which runs every test but the
# signing ones and must refuse a DKIM configuration, and with `--features dkim` for the signing
# tests (and one delivery without a DKIM setting).
#
# Installs what it needs, idempotently, from package registries only:
#   rustup target wasm32-unknown-unknown; wasm-bindgen-cli at the exact version of the
#   wasm-bindgen crate in examples/worker/Cargo.lock (cargo install); miniflare and smtp-server
#   from e2e/package-lock.json (npm ci); pproxy (pip install pproxy, as scripts/test.sh does).
#   Needs: rustup/cargo, node >= 20 with npm, openssl, python3 with pip.
#   (The steps it shares with wasi-e2e/run.sh are in e2e/lib.sh.)
#
# Usage: smtp-io-wasm/e2e/run.sh          (exit status 0 only when every check passed)
# Env:   CARGO_TARGET_DIR  where the Worker is built (default examples/worker/target)
#        E2E_WORK          scratch folder (default e2e/work; wiped for each run)
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "E2E"
EXAMPLE="$CRATE/examples/worker"
TARGET_DIR="${CARGO_TARGET_DIR:-$EXAMPLE/target}"

need python3 "install Python 3 (apt-get install python3 python3-pip)"

SECONDS=0

rust_target wasm32-unknown-unknown

step "wasm-bindgen-cli (must equal the wasm-bindgen crate in the lockfile)"
LOCK="$EXAMPLE/Cargo.lock"
[ -f "$LOCK" ] || die "$LOCK is missing (it pins wasm-bindgen; restore it from git)"
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$LOCK")"
[ -n "$WB_VERSION" ] || die "no wasm-bindgen entry in $LOCK"
have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have" = "$WB_VERSION" ]; then
  echo "wasm-bindgen $WB_VERSION already installed"
else
  echo "installing wasm-bindgen-cli $WB_VERSION (found: ${have:-none}); a few minutes on 2 cores"
  # Not --locked: the CLI's own lockfile pins a crate version the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
  have="$(wasm-bindgen --version | awk '{print $2}')"
  [ "$have" = "$WB_VERSION" ] || die "wasm-bindgen on PATH is $have, not $WB_VERSION (is ~/.cargo/bin first on PATH?)"
fi

step "npm packages (miniflare, smtp-server for XOAUTH2; pinned in e2e/package-lock.json)"
npm_packages miniflare

step "pproxy (a real SOCKS5 and HTTP CONNECT proxy for the proxy tests)"
pproxy_installed

step "unit tests of the Worker's request logic (host), without and with the dkim feature"
CARGO_TARGET_DIR="$TARGET_DIR" cargo test --locked --manifest-path "$EXAMPLE/Cargo.toml" \
  || die "the Worker's unit tests failed"
CARGO_TARGET_DIR="$TARGET_DIR" cargo test --locked --features dkim --manifest-path "$EXAMPLE/Cargo.toml" \
  || die "the Worker's unit tests (--features dkim) failed"

step "build the example Worker twice (examples/worker/build.sh: release, opt-level s, LTO, 1 codegen unit)"
rm -rf "$WORK"
# worker/: the default build (no DKIM); worker-dkim/: built with --features dkim.
for variant in worker worker-dkim; do
  features=()
  [ "$variant" = worker-dkim ] && features=(--features dkim)
  mkdir -p "$WORK/$variant"
  CARGO_TARGET_DIR="$TARGET_DIR" "$EXAMPLE/build.sh" ${features[@]+"${features[@]}"} "$WORK/$variant/build" \
    || die "the Worker ($variant) did not build"
  cp "$EXAMPLE/entry.mjs" "$WORK/$variant/entry.mjs"
done
for variant in worker worker-dkim; do
  WASM="$WORK/$variant/build/index_bg.wasm"
  printf 'Worker .wasm (%s): %s bytes raw, %s bytes gzip -9\n' \
    "$([ "$variant" = worker ] && echo "default features" || echo "--features dkim")" \
    "$(wc -c <"$WASM")" "$(gzip -9c "$WASM" | wc -c)"
done
# The default build holds no DKIM code: no signer's header name, no PEM parser.
if grep -aq -e 'DKIM-Signature' -e 'PRIVATE KEY' "$WORK/worker/build/index_bg.wasm"; then
  die "the default build (no dkim feature) contains DKIM signing code"
fi
grep -aq 'DKIM-Signature' "$WORK/worker-dkim/build/index_bg.wasm" \
  || die "the --features dkim build holds no DKIM signer"

step "a Workers timer dropped before it fires keeps nothing alive (node, 400,000 timers)"
CHECK="$E2E/timer-check"
CARGO_TARGET_DIR="$TARGET_DIR" cargo build --locked --quiet --target wasm32-unknown-unknown \
  --manifest-path "$CHECK/Cargo.toml" || die "the timer check did not build"
wasm-bindgen --target nodejs --out-dir "$WORK/timer-check" \
  "$TARGET_DIR/wasm32-unknown-unknown/debug/smtp_timer_check.wasm" \
  || die "wasm-bindgen failed on the timer check"
# wasm-bindgen's nodejs output is CommonJS; e2e/package.json makes .js files ES modules.
echo '{ "type": "commonjs" }' >"$WORK/timer-check/package.json"
node --expose-gc "$CHECK/check.mjs" "$WORK/timer-check" \
  || die "dropped timers keep memory alive"

step "test CA and a certificate for localhost"
test_certificates "smtp-io-wasm e2e test" ca

step "run the Worker in workerd (Miniflare) against the loopback SMTP server"
# Replaces any NODE_EXTRA_CA_CERTS of the environment: only the test CA is needed here.
NODE_EXTRA_CA_CERTS="$WORK/ca.pem" node "$E2E/test.mjs" "$WORK" \
  || die "some end-to-end checks failed (see above)"

printf '\nE2E PASSED in %ss\n' "$SECONDS"
