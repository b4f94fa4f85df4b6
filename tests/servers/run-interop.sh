#!/usr/bin/env bash
# The interop test run: install the servers (idempotent), start them all on 127.0.0.1 with
# their state in a temporary folder, run the Rust interop tests against them, print the
# server x case matrix, and stop exactly the processes started here (also on failure or Ctrl-C).
#
#   tests/servers/run-interop.sh [extra arguments for the test binary, e.g. a test name]
#
# After the Rust tests, while the servers still run, the WASI column: the WASI 0.2 component
# through jco (smtp-io-wasm/wasi-e2e/interop.sh), its rows under the server names "<server>-wasi".
#
# Environment: SMTP_INTEROP_KEEP=1 keeps the state folder (logs, captured mail);
# SMTP_INTEROP_PORT_BASE moves the ports (default 24500); SMTP_INTEROP_SKIP_INSTALL=1 skips
# install.sh; SMTP_INTEROP_WASI=0 skips the WASI column (it needs the wasm32-wasip2 target,
# clang and npm), =1 runs it even when arguments select Rust tests (by default it runs only
# with no arguments: the whole matrix); CARGO_TARGET_DIR is honoured as usual (the component
# builds in its own smtp-io-wasm/component/target).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
started=$(date +%s)

if [ -z "${SMTP_INTEROP_SKIP_INSTALL:-}" ]; then
    "$HERE/install.sh"
fi
t_install=$(date +%s)

# Build the test binary before starting anything: the servers run only while tests run.
(cd "$ROOT" && cargo test -p smtp-tests --test interop --no-run --quiet)
WASI_INTEROP=$ROOT/smtp-io-wasm/wasi-e2e/interop.sh
if [ $# -eq 0 ]; then wasi_default=1; else wasi_default=0; fi
SMTP_INTEROP_WASI=${SMTP_INTEROP_WASI:-$wasi_default}
if [ "$SMTP_INTEROP_WASI" != 0 ]; then
    env -u CARGO_TARGET_DIR "$WASI_INTEROP" build
fi
t_build=$(date +%s)

STATE=$(mktemp -d /tmp/smtp-interop.XXXXXX)
chmod 755 "$STATE"
cleanup() {
    "$HERE/stop-servers.sh" "$STATE"
    if [ -n "${SMTP_INTEROP_KEEP:-}" ]; then
        log "state kept in $STATE"
    else
        rm -rf "$STATE"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$HERE/start-servers.sh" "$STATE"
t_start=$(date +%s)

# shellcheck disable=SC1091
. "$STATE/env"
rc=0
(cd "$ROOT" && cargo test -p smtp-tests --test interop -- --nocapture --test-threads=1 "$@") || rc=$?
if [ "$SMTP_INTEROP_WASI" != 0 ]; then
    echo
    echo "== WASI column: the WASI 0.2 component through jco =="
    "$WASI_INTEROP" run || rc=1
fi
t_test=$(date +%s)

if [ -s "$SMTP_INTEROP_RESULTS" ]; then
    echo
    echo "== interop matrix (server x case) =="
    awk -F'\t' '
        { if (!($1 in seen)) { seen[$1]=1; order[++n]=$1 }
          res[$1]++; if ($3 == "pass") ok[$1]++; else if ($3 == "FAIL") bad[$1]++
          printf "%-10s %-34s %-5s %s\n", $1, $2, $3, $4 }
        END { print ""; for (i=1;i<=n;i++) { s=order[i]
              printf "%-10s %3d cases: %3d pass, %3d FAIL, %3d n/a\n", s, res[s], ok[s], bad[s], res[s]-ok[s]-bad[s] } }
    ' "$SMTP_INTEROP_RESULTS"
fi
echo
log "timing: install $((t_install - started)) s, build $((t_build - t_install)) s, start $((t_start - t_build)) s, tests $((t_test - t_start)) s, total $((t_test - started)) s"
exit $rc
