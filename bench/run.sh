#!/usr/bin/env bash
# Runs every benchmark and prints the tables (also saved to bench/.out/report.md; --quick: report-quick.md).
#
#   bench/run.sh            full: brings the builds up to date (four release binaries, opt-level s/z, arm64
#                           if its std is installed; ~45 min of builds on 2 cores the first time), then
#                           cold starts (30 runs: vs Python, at 10 ms per AWS call, on the fixed-latency
#                           backend and the other three functions on it, opt-levels, trust store), round
#                           trips 10 x (1 cold + 2 warm) for 10 and 1 records on moto and on the
#                           fixed-latency backend (bench/backend; also with injected conflicts and
#                           throttles), cost per million signups (as the backend counted the units, per
#                           region, with the SES line), the whole
#                           pipeline at 100, 1,000 and 10,000 signups (plot: docs/perf/scale.svg) and under
#                           each MaximumConcurrency and BatchSize
#   bench/run.sh --quick    no builds except the four functions and the fixed-latency backend if missing;
#                           cold start 5 runs, round trips 3 x (1 + 1) on both backends (calls per batch
#                           and round trips side by side), cost per million from a 5-run cold start on
#                           the fixed-latency backend, the pipeline at 100 signups, sizes of what is built
#   bench/run.sh --no-build full runs on whatever is built
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
[ -x "$py" ] || { echo "no .venv: run 'make setup' (or scripts/setup.sh) first" >&2; exit 1; }
quick=0 build=1
for a in "$@"; do
  case "$a" in
    --quick) quick=1; build=0 ;;
    --no-build) build=0 ;;
    *) echo "usage: $0 [--quick] [--no-build]" >&2; exit 2 ;;
  esac
done
mkdir -p bench/.out
# the quick run keeps its own report, so a smoke run never overwrites the full run's
report=bench/.out/report.md
[ "$quick" = 1 ] && report=bench/.out/report-quick.md
: >"$report"
say() { tee -a "$report"; }
# A benchmark that reports errors (exit 1: a run failed or answered wrongly) does not stop the others: its
# table leaves those runs out and says how many; the report says it exited so, and so does run.sh's status.
status=0
measure() {
  "$@" | say || { echo "**exit $?: \`$*\` reported errors (above); its table leaves those runs out**" | say; status=1; }
}

# BENCH_SRC=DIR: binaries built from, and stacks provisioned from, that tree (e.g. an exported commit)
repo=$PWD
src=${BENCH_SRC:-$repo}
for f in user-processor notification-processor welcome-email profile-creator; do
  # the other three only run in the pipeline benchmark (bench/scale.py); sizes.sh --build rebuilds all
  if [ ! -x "target/release/$f" ]; then
    echo "building target/release/$f (release profile: LTO, several minutes)" >&2
    (cd "$src" && nice -n 10 cargo build --release --bin "$f" --target-dir "$repo/target") \
      >"bench/.out/build-$f.log" 2>&1
  fi
done
if [ "$build" = 0 ] && [ -n "$(find "$src/crates" "$src/functions" "$src/Cargo.toml" "$src/Cargo.lock" -newer target/release/user-processor -type f -print -quit)" ]; then
  echo "warning: target/release/user-processor is older than the sources in $src; the numbers are for the old build" >&2
fi

# The fixed-latency backend (bench/backend) is a workspace member outside default-members.
backend=target/release/fixed-latency-aws
if [ "$build" = 1 ] || [ ! -x "$backend" ]; then
  echo "building $backend (release)" >&2
  (cd "$src" && nice -n 10 cargo build --release -p eventline-bench-backend --target-dir "$repo/target") \
    >bench/.out/build-backend.log 2>&1
fi

{
  rev=$( [ -f "$src/.git-rev" ] && cut -c1-7 "$src/.git-rev" || git -C "$src" rev-parse --short HEAD)
  echo "## eventline benchmarks ($(date -u +%FT%TZ), source $src at $rev)"
  echo
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
} | say

if [ "$quick" = 1 ]; then
  measure bench/sizes.sh
  measure $py bench/coldstart.py --runs 5 --json-out coldstart-quick.json
  measure $py bench/roundtrips.py --runs 3 --warm 1 --json-out roundtrips-quick.json
  measure $py bench/roundtrips.py --backend fixed --runs 3 --warm 1 --delays 10 --json-out roundtrips-fixed-quick.json
  measure $py bench/roundtrips.py --compare roundtrips-quick.json roundtrips-fixed-quick.json
  measure $py bench/coldstart.py --runs 5 --backend fixed --json-out coldstart-fixed-quick.json
  measure $py bench/cost.py --input bench/.out/coldstart-fixed-quick.json --json-out cost-quick.json
  measure $py bench/scale.py --quick --json-out scale-quick.json
  echo "quick mode: small samples, indicative only; bench/run.sh for the full numbers" | say
  exit "$status"
fi

sizes_args=(--opt-levels)
[ "$build" = 1 ] && sizes_args+=(--build)
measure bench/sizes.sh "${sizes_args[@]}"
# cold start vs the Python baseline (boto3-only venv, and the project .venv that also has awscrt/pyOpenSSL)
measure $py bench/coldstart.py --runs 30 --python python=bench/.out/venv-baseline/bin/python \
  --python python-devvenv=.venv/bin/python
# the same with 10 ms added to every AWS call
measure $py bench/coldstart.py --runs 30 --delay-ms 10 --json-out coldstart-10ms.json
# AWS calls and wall time per batch, 10 records and 1 record (1 record: calls in sequence = extra ms / 10)
measure $py bench/roundtrips.py --runs 10 --warm 2
measure $py bench/roundtrips.py --runs 10 --warm 2 --records 1 --json-out roundtrips-1record.json
# the same on the fixed-latency backend: the code's own critical path, without moto's cost
measure $py bench/roundtrips.py --backend fixed --runs 10 --warm 2 --json-out roundtrips-fixed.json
measure $py bench/roundtrips.py --backend fixed --runs 10 --warm 2 --records 1 --json-out roundtrips-fixed-1record.json
# the same with 5% of transactions conflicting and 2% of calls throttled (the SDK retries them)
measure $py bench/roundtrips.py --backend fixed --runs 10 --warm 2 --conflict-rate 0.05 --throttle-rate 0.02 \
  --json-out roundtrips-fixed-faults.json
measure $py bench/roundtrips.py --compare roundtrips.json roundtrips-1record.json roundtrips-fixed.json \
  roundtrips-fixed-1record.json roundtrips-fixed-faults.json
# the three implementations on the fixed-latency backend (10 ms per call): the fair durations for cost.py
measure $py bench/coldstart.py --runs 30 --backend fixed --json-out coldstart-fixed.json
measure $py bench/cost.py --input bench/.out/coldstart-fixed.json
# init of the other three functions on the same backend (the init target holds for all four)
for f in notification-processor welcome-email profile-creator; do
  measure $py bench/coldstart.py --function "$f" --runs 30 --backend fixed --json-out "coldstart-fixed-$f.json"
done
# the whole pipeline at 100, 1,000 and 10,000 signups, and under each MaximumConcurrency and BatchSize
measure $py bench/scale.py --plot docs/perf/scale.svg
measure $py bench/scale.py --sweep
# the release profile's build against the opt-level "s" / "z" builds, where they exist
opt_bins=(--binary release=target/release/user-processor)
for o in s z; do
  [ -x "target/opt-$o/release/user-processor" ] && opt_bins+=(--binary "opt-$o=target/opt-$o/release/user-processor")
done
measure $py bench/coldstart.py --runs 30 --no-python "${opt_bins[@]}" --title "user-processor by opt-level" \
  --json-out coldstart-opt-levels.json
# where Rust init goes: the system trust store (rustls-native-certs reads SSL_CERT_FILE / SSL_CERT_DIR)
: >bench/.out/empty.pem
measure $py bench/coldstart.py --runs 30 --no-python --binary rust=target/release/user-processor \
  --binary rust-bundle-only=target/release/user-processor \
  --set rust-bundle-only:SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --binary rust-no-certs=target/release/user-processor --set "rust-no-certs:SSL_CERT_FILE=$repo/bench/.out/empty.pem" \
  --title "user-processor init and the system trust store" --json-out coldstart-certs.json
echo "report: $report" >&2
exit "$status"
