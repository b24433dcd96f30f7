#!/usr/bin/env bash
# The project's test command (`make test`): sets up what is missing, starts a
# private moto server on a free port, runs every test of the workspace
# against it, and stops the server however the tests end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

export MOTO_NAME=moto-test
trap 'scripts/moto.sh stop' EXIT
EVENTLINE_MOTO_ENDPOINT=$(scripts/moto.sh start)
export EVENTLINE_MOTO_ENDPOINT
echo "test: moto server at $EVENTLINE_MOTO_ENDPOINT"

# The end-to-end test starts cargo lambda watch and moto from .venv.
export PATH="$PWD/.venv/bin:$PATH"
cargo test --workspace "$@"
