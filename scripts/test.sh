#!/usr/bin/env bash
# The project's test command (`make test`): sets up what is missing, starts a
# private moto server (on a port it binds and reports), runs every test of the workspace
# against it, and stops the server however the tests end. Then checks IAM by
# behaviour (docs/iam.md): every AWS call the functions made in the
# end-to-end test must be permitted by their roles in the translated template.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# Each moto server the tests start for a stack of their own (the end-to-end
# test's among them) inherits these and appends every request it serves to one
# recording; scripts/iam_check.py reads the functions' calls from it.
mkdir -p target/iam
export MOTO_ENABLE_RECORDING=true
export MOTO_RECORDER_FILEPATH="$PWD/target/iam/recording.jsonl"
: >"$MOTO_RECORDER_FILEPATH"

export MOTO_NAME=moto-test
trap 'scripts/moto.sh stop' EXIT
# The shared server of the adapter tests makes no function calls: not recorded.
EVENTLINE_MOTO_ENDPOINT=$(MOTO_ENABLE_RECORDING= scripts/moto.sh start)
export EVENTLINE_MOTO_ENDPOINT
echo "test: moto server at $EVENTLINE_MOTO_ENDPOINT"

# The end-to-end test starts cargo lambda watch and moto from .venv.
export PATH="$PWD/.venv/bin:$PATH"

# The tests crate's suites (the moto-backed ones): each test binary with
# cargo's default threads, except chaos, one scenario at a time: its hang
# scenario counts calls that depend on timing, which two scenarios sharing
# 2 cores would skew.
suites() {
  local targets=()
  for file in tests/tests/*.rs; do
    name=$(basename "$file" .rs)
    [ "$name" = chaos ] || targets+=(--test "$name")
  done
  cargo test -p eventline-tests "${targets[@]}"
  cargo test -p eventline-tests --test chaos -- --test-threads=1
}

case "${1:-}" in
  --suites)  # `make flaky`: only the tests crate's suites, no IAM check
    suites; exit 0 ;;
  "") ;;
  *)
    # A filtered run (arguments given) may not run the end-to-end test, so it
    # records no function call to check.
    cargo test --workspace "$@"
    echo "test: IAM check skipped (filtered run; \`make test\` runs it)"
    exit 0 ;;
esac

cargo test --workspace --exclude eventline-tests
suites
echo "test: IAM checked by behaviour (docs/iam.md)"
.venv/bin/python -m unittest discover -s scripts -p 'test_*.py'
echo "test: bench scripts' arithmetic"
.venv/bin/python -m unittest discover -s bench -p 'test_*.py'
.venv/bin/python scripts/iam_check.py --prove-failure
