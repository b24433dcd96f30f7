#!/usr/bin/env bash
# Runs the whole eventline pipeline locally, from template.yaml, with no
# Docker and no AWS account:
#   moto server (local AWS) <- template.yaml deployed through the SAM translator
#   cargo lambda watch      <- serves the four real function binaries
#   devstack                <- plays Lambda: SQS event source mappings, rule targets, retries, DLQs
#
#   scripts/demo.sh          send events/signups.json, run until idle, print the summary, clean up
#   scripts/demo.sh --dev    stay up; send more with `make send FILE=...`; Ctrl-C stops everything
#
# KEEP=1 leaves the moto server running after the demo so its state can be browsed.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-demo}"
MOTO_PORT="${MOTO_PORT:-5055}"
INVOKE_PORT="${INVOKE_PORT:-9000}"
SIGNUPS="${SIGNUPS:-events/signups.json}"
export PATH="$PWD/.venv/bin:$PATH"

scripts/setup.sh
mkdir -p .local
watch_pid=""
cleanup() {
  if [ -n "$watch_pid" ]; then kill -- "-$watch_pid" 2>/dev/null || kill "$watch_pid" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" != 1 ]; then scripts/moto.sh stop; else echo "moto server left running at $(scripts/moto.sh url 2>/dev/null) (make moto-stop)"; fi
}
trap cleanup EXIT INT TERM

echo "==> local AWS: moto server on port $MOTO_PORT"
endpoint=$(scripts/moto.sh start "$MOTO_PORT")
echo "==> provisioning template.yaml into $endpoint"
.venv/bin/python scripts/provision.py --endpoint "$endpoint" --reset

echo "==> building the four functions and the runner (first time: a few minutes on 2 cores)"
# One build per binary, as cargo lambda watch runs them, so watch finds them fresh.
for bin in user-processor notification-processor welcome-email profile-creator; do
  cargo build --quiet --bin "$bin"
done
cargo build --quiet -p eventline-devstack

echo "==> serving the functions with cargo lambda watch on port $INVOKE_PORT (log: .local/watch.log)"
set -m  # own process group, so cleanup stops watch and the functions it spawned
cargo lambda watch --invoke-port "$INVOKE_PORT" --env-file .local/functions.env >.local/watch.log 2>&1 &
watch_pid=$!
set +m
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$INVOKE_PORT") 2>/dev/null && break
  sleep 0.2
done

devstack=target/debug/devstack
if [ "$mode" = "--dev" ]; then
  echo "==> running; send signups with: make send FILE=$SIGNUPS   (Ctrl-C to stop)"
  "$devstack" run --invoke-url "http://127.0.0.1:$INVOKE_PORT"
else
  echo "==> sending $SIGNUPS"
  "$devstack" send "$SIGNUPS"
  echo "==> running until the pipeline is idle"
  "$devstack" run --invoke-url "http://127.0.0.1:$INVOKE_PORT" --until-idle 4 --limit 300
fi
