#!/usr/bin/env bash
# `make flaky N=10`: runs the moto-backed suites (the tests crate's integration
# tests: adapters, chaos, flow, local_stack, three_region_stack, ...; scripts/test.sh
# --suites) N times in a row, each run with moto servers of its own, and prints
# how many passed. Exits non-zero if any run failed; each run's output is kept
# in target/flaky/run-<i>.log.
set -uo pipefail
cd "$(dirname "$0")/.."
n="${1:-10}"
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 N (N >= 1)" >&2; exit 2; }
mkdir -p target/flaky
rm -f target/flaky/run-*.log

# Built once up front, so that every run measures the tests, not a build.
scripts/setup.sh
PATH="$PWD/.venv/bin:$PATH" cargo test -p eventline-tests --no-run --quiet || exit 1
for bin in user-processor notification-processor welcome-email profile-creator; do
  cargo build --quiet --bin "$bin" || exit 1
done

passed=0
for i in $(seq 1 "$n"); do
  log="target/flaky/run-$i.log"
  start=$(date +%s)
  if scripts/test.sh --suites >"$log" 2>&1; then
    passed=$((passed + 1)); outcome=passed
  else
    outcome="FAILED: $(grep -E '^test .* FAILED$|panicked at' "$log" | head -n 3 | tr '\n' ' ')"
  fi
  echo "flaky: run $i of $n $outcome ($(( $(date +%s) - start )) s, $log)"
done
echo "flaky: $passed of $n passed"
[ "$passed" -eq "$n" ]
