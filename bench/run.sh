#!/usr/bin/env bash
# Benchmark smtp-io-tokio against lettre and mail-send on loopback and print markdown tables.
#
#   bench/run.sh            full run: criterion micro-benchmarks, Worker wasm size, then the
#                           matrix, 5 repetitions (about 15 minutes on 2 cores), then the pool
#                           measurements, 5 repetitions (about 10 minutes more), then the
#                           issue 22 measurements (about a minute more)
#   bench/run.sh --quick    smoke run: small N, 1 repetition, no criterion run (reuses earlier
#                           criterion results if there are any), no wasm build; under a minute
#                           once built
#   bench/run.sh --only-pool
#                           only the pool measurements (issue 15), full repetitions
#   bench/run.sh --only-issue22
#                           only the issue 22 measurements (streamed bodies' CPU, the pool's
#                           shutdown at +20 ms RTT), full repetitions; about a minute
#   options: --reps K, --no-micro, --no-wasm, --no-pool (skip the pool measurements),
#            --no-issue22 (skip the issue 22 measurements)
#
# After the matrix, the pool measurements (smtp-bench pool: our Mailer against lettre's pooled
# transport and bare clients, plaintext and STARTTLS) print a second table; they use only the
# bench's own sinks, so --only-pool needs no smtp-sink. Then the issue 22 measurements print two
# more (smtp-bench stream-cpu: one 10 MiB message in memory, streamed, through the pool's
# send_file; smtp-bench pool-shutdown: Mailer::shutdown of 64 idle connections); they too use
# only the bench's own sink and delay line.
#
# Needs Postfix's smtp-sink (tests/servers/install.sh installs it; run as root). Starts one
# smtp-sink on loopback (no dumping) and the bench's own helpers (a CHUNKING sink and two delay
# lines), and stops exactly those when it ends. Not part of any CI: too slow and too noisy.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

ARGS_ORIG="$*"
QUICK=0 REPS="" MICRO=1 WASM=1 POOL=1 MATRIX=1 ISSUE22=1 WAN=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; MICRO=0; WASM=0 ;;
    --reps) REPS="$2"; shift ;;
    --no-micro) MICRO=0 ;;
    --no-wasm) WASM=0 ;;
    --no-pool) POOL=0 ;;
    --only-pool) MATRIX=0; MICRO=0; WASM=0; POOL=1; ISSUE22=0; WAN=0 ;;
    --no-issue22) ISSUE22=0 ;;
    --only-issue22) MATRIX=0; MICRO=0; WASM=0; POOL=0; ISSUE22=1; WAN=0 ;;
    --no-wan) WAN=0 ;;
    --only-wan) MATRIX=0; MICRO=0; WASM=0; POOL=0; ISSUE22=0; WAN=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "== $*" >&2; }

SINK_BIN="$(command -v smtp-sink || echo /usr/sbin/smtp-sink)"
if [ "$MATRIX" = 1 ] && [ ! -x "$SINK_BIN" ]; then
  log "smtp-sink missing: installing Postfix with tests/servers/install.sh"
  "$ROOT/tests/servers/install.sh" >&2
  SINK_BIN=/usr/sbin/smtp-sink
fi

log "building the bench (release)"
cargo build --release --locked --manifest-path "$HERE/Cargo.toml" >&2
BIN="$CARGO_TARGET_DIR/release/smtp-bench"

EXTRA=()
if [ "$MICRO" = 1 ]; then
  log "criterion micro-benchmarks (cargo bench -p smtp-proto, a few minutes)"
  (cd "$ROOT" && cargo bench --locked -p smtp-proto) > "$CARGO_TARGET_DIR/bench-criterion.log" 2>&1
fi
if [ -d "$CARGO_TARGET_DIR/criterion/body" ]; then
  EXTRA+=(--criterion-dir "$CARGO_TARGET_DIR/criterion")
fi

if [ "$WASM" = 1 ]; then
  log "building the example Worker for wasm32 (release)"
  rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown >&2
  cargo build --release --lib --locked --target wasm32-unknown-unknown \
    --manifest-path "$ROOT/smtp-io-wasm/examples/worker/Cargo.toml" >&2
  RAW="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/smtp_worker_example.wasm"
  EXTRA+=(--wasm-raw "$(stat -c %s "$RAW")" --wasm-gz "$(gzip -9 -c "$RAW" | wc -c)")
  LOCK="$ROOT/smtp-io-wasm/examples/worker/Cargo.lock"
  WB_WANT="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$LOCK")"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" = "$WB_WANT" ]; then
    WB_OUT="$(mktemp -d)"
    wasm-bindgen --target module --out-dir "$WB_OUT" --out-name index "$RAW"
    EXTRA+=(--wasm-bindgen-raw "$(stat -c %s "$WB_OUT/index_bg.wasm")"
            --wasm-bindgen-gz "$(gzip -9 -c "$WB_OUT/index_bg.wasm" | wc -c)")
    rm -rf "$WB_OUT"
  fi
fi

if [ "$MATRIX" = 1 ]; then
  # A free loopback port for smtp-sink.
  PORT=""
  for p in $(seq 25300 25399); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PORT=$p; break; fi
  done
  [ -n "$PORT" ] || { echo "no free port in 25300-25399" >&2; exit 1; }

  SINK_USER=()
  [ "$(id -u)" = 0 ] && SINK_USER=(-u nobody)
  log "starting smtp-sink on 127.0.0.1:$PORT (PIPELINING, no dumping)"
  "$SINK_BIN" "${SINK_USER[@]}" -h sink.bench.test "127.0.0.1:$PORT" 1024 >&2 &
  SINK_PID=$!
  stop_sink() {
    # Only the process this script started, and only if it is still that smtp-sink.
    if [ -n "${SINK_PID:-}" ] && grep -q smtp-sink "/proc/$SINK_PID/cmdline" 2>/dev/null; then
      kill "$SINK_PID" 2>/dev/null || true
      wait "$SINK_PID" 2>/dev/null || true
    fi
  }
  trap stop_sink EXIT
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.05
  done
fi

MODE=()
[ "$QUICK" = 1 ] && MODE+=(--quick)
[ -n "$REPS" ] && MODE+=(--reps "$REPS")

echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), \
$(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), Linux $(uname -r); \
load average $(cut -d' ' -f1-3 /proc/loadavg); $(rustc --version); commit $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "Command: bench/run.sh ${ARGS_ORIG}"
echo
if [ "$MATRIX" = 1 ]; then
  log "running the matrix"
  "$BIN" matrix --sink-port "$PORT" "${MODE[@]}" "${EXTRA[@]}"
fi
if [ "$POOL" = 1 ]; then
  [ "$MATRIX" = 1 ] && echo
  log "running the pool measurements"
  "$BIN" pool "${MODE[@]}"
  echo
  log "counting the pool's cost per message (callgrind, strace)"
  "$BIN" pool-cost "${MODE[@]}"
fi
if [ "$ISSUE22" = 1 ]; then
  if [ "$MATRIX" = 1 ] || [ "$POOL" = 1 ]; then echo; fi
  log "streamed bodies against bodies in memory, CPU (issue 22, item 6)"
  "$BIN" stream-cpu "${MODE[@]}"
  echo
  log "Mailer::shutdown of 64 idle connections at +20 ms RTT (issue 22, item 7)"
  "$BIN" pool-shutdown "${MODE[@]}"
fi
if [ "$WAN" = 1 ]; then
  if [ "$MATRIX" = 1 ] || [ "$POOL" = 1 ] || [ "$ISSUE22" = 1 ]; then echo; fi
  log "64 tasks on a pool of 8 at +20 ms RTT, chained flights (issue 23, item 4)"
  "$BIN" pool-wan "${MODE[@]}"
fi
