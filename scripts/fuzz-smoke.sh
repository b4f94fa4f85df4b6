#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for a fixed number of executions from the
# checked-in seeds. Fuzzing needs the nightly toolchain (used for nothing else).
# Usage: scripts/fuzz-smoke.sh [RUNS]   (default 100000 per target)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
RUNS="${1:-100000}"

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz-smoke: the nightly toolchain is required for cargo fuzz and is not installed" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

cargo +nightly fuzz build -O
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$work/$target"
  echo "fuzz: $target ($RUNS runs)"
  cargo +nightly fuzz run -O "$target" "$work/$target" "seeds/$target" -- \
    -runs="$RUNS" -max_len=4096 -print_final_stats=1 2>&1 | grep -E 'Done [0-9]+ runs|stat::number_of_executed_units' || {
    echo "fuzz: $target FAILED; reproduce with: cd fuzz && cargo +nightly fuzz run $target" >&2
    exit 1
  }
done
