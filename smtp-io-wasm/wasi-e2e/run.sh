#!/usr/bin/env bash
# End-to-end test of smtp-io-wasm on WASI 0.2: run the WASI adapter's unit tests inside the
# guest, build the WASI client and the component (component/, exporting wit/smtp.wit) for
# wasm32-wasip2, transpile it with jco, and call its WIT interface from a JavaScript host
# (Node + @bytecodealliance/preview2-shim) against loopback SMTP servers: plain, STARTTLS and
# implicit TLS with AUTH (exact bytes delivered), and the
# typed errors of a wrong certificate, a refused recipient, a closed port, a silent server, a
# wrong password, plaintext AUTH, STARTTLS response injection, a dropped connection and
# invalid input; the session deadline, connect time (TLS handshake included) counted; and the
# `session` resource against nodemailer's smtp-server: ten messages on one TLS connection (one
# handshake, ten MAIL FROMs), per-message options and per-recipient results, send-batch, a
# 20 MiB body from a wasi:io input stream in bounded guest memory, the AUTH mechanism by name,
# an XOAUTH2 token accepted and refused, client certificates, tls-server-name (127.0.0.1 dialled,
# the certificate checked for localhost; a wrong name; one that cannot be a name); delivery through
# a real pproxy (SOCKS5 and HTTP CONNECT, with and without credentials, STARTTLS and implicit TLS,
# the certificate checked for the SMTP host; wrong credentials, an unreachable proxy, a bad proxy
# URL) and from local-address 127.0.0.2 (the server sees the peer); and, against a
# scripted server that records how commands arrive (feature-server.mjs), the connect options
# pipelining, chunking, data-pipelining, protocol (LMTP) and transcript-lines.
#
# Installs what it needs, idempotently, from package registries only:
#   rustup target wasm32-wasip2; clang (for ring's C, only when missing, with apt-get);
#   jco, preview2-shim and smtp-server from wasi-e2e/package-lock.json (npm ci);
#   pproxy (pip, only when `python3 -c 'import pproxy'` fails).
# Needs: rustup/cargo, node >= 20 with npm, openssl, python3 with pip.
# (The steps it shares with e2e/run.sh are in e2e/lib.sh.)
#
# Usage: smtp-io-wasm/wasi-e2e/run.sh        (exit status 0 only when every check passed)
# Env:   CARGO_TARGET_DIR  where the component is built (default component/target)
#        E2E_WORK          scratch folder (default wasi-e2e/work; wiped for each run)
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh" "WASI E2E"
COMPONENT="$CRATE/component"
TARGET_DIR="${CARGO_TARGET_DIR:-$COMPONENT/target}"

SECONDS=0

rust_target wasm32-wasip2

step "clang (ring compiles its C for wasm32 with it; gcc cannot)"
if command -v clang >/dev/null 2>&1; then
  echo "already installed: $(clang --version | head -n1)"
elif command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get install -y --no-install-recommends clang >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends clang >/dev/null; }
  command -v clang >/dev/null 2>&1 || die "clang did not install"
  echo "installed: $(clang --version | head -n1)"
else
  die "clang is needed to build ring for wasm32 (apt-get install clang)"
fi

step "npm packages (jco, preview2-shim, smtp-server; pinned in wasi-e2e/package-lock.json)"
npm_packages @bytecodealliance/jco
JCO="$E2E/node_modules/.bin/jco"

step "pproxy (the real SOCKS5 and HTTP CONNECT proxy of the proxy checks)"
pproxy_installed

step "clippy: the WASI client and the component for wasm32-wasip2 (-D warnings)"
CARGO_TARGET_DIR="$TARGET_DIR" cargo clippy --target wasm32-wasip2 --all-targets \
  --manifest-path "$CRATE/Cargo.toml" -p smtp-io-wasm -- -D warnings
CARGO_TARGET_DIR="$TARGET_DIR" cargo clippy --target wasm32-wasip2 \
  --manifest-path "$COMPONENT/Cargo.toml" -- -D warnings

step "the WASI adapter's own tests, inside the guest (built for wasm32-wasip2, run by jco)"
TEST_WASM="$(CARGO_TARGET_DIR="$TARGET_DIR" cargo test --target wasm32-wasip2 --lib --no-run \
  --manifest-path "$CRATE/Cargo.toml" -p smtp-io-wasm --message-format=json \
  | node -e 'let exe = ""; require("readline").createInterface({ input: process.stdin })
      .on("line", (l) => { try { const m = JSON.parse(l); if (m.executable && m.profile && m.profile.test) exe = m.executable; } catch {} })
      .on("close", () => console.log(exe));')"
[ -n "$TEST_WASM" ] && [ -f "$TEST_WASM" ] || die "no test binary for wasm32-wasip2"
# Bounded: a test that spins without yielding (a loop no timer can stop) fails, never hangs.
timeout 300 "$JCO" run "$TEST_WASM" || die "the in-guest tests failed (or ran past 300 s)"

step "build the component (release, opt-level s, LTO, 1 codegen unit)"
CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --target wasm32-wasip2 \
  --manifest-path "$COMPONENT/Cargo.toml"
WASM="$TARGET_DIR/wasm32-wasip2/release/smtp_wasi_component.wasm"
[ -f "$WASM" ] || die "no component at $WASM"
printf 'component: %s bytes raw, %s bytes gzip -9\n' "$(wc -c <"$WASM")" "$(gzip -9c "$WASM" | wc -c)"

step "transpile it with jco (ES module + core wasm for Node)"
rm -rf "$WORK"
mkdir -p "$WORK"
"$JCO" transpile "$WASM" -o "$WORK/component" --name smtp --no-typescript --quiet \
  || die "jco transpile failed"
grep -q "smtp-rs:smtp/client@0.1.0" "$WORK/component/smtp.js" \
  || die "the transpiled component does not export smtp-rs:smtp/client@0.1.0"

step "test CAs and a certificate for localhost"
test_certificates "smtp-io-wasm wasi e2e" ca other-ca

step "call the component's WIT interface from JavaScript against loopback SMTP servers"
node "$E2E/test.mjs" "$WORK" || die "some end-to-end checks failed (see above)"

printf '\nWASI E2E PASSED in %ss\n' "$SECONDS"
