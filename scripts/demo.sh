#!/usr/bin/env bash
# Runs the whole eventline pipeline locally, from template.yaml, with no
# Docker and no AWS account:
#   moto server (local AWS) <- template.yaml deployed through the SAM translator
#   cargo lambda watch      <- serves the four real function binaries
#   devstack                <- plays Lambda: SQS event source mappings, rule targets, retries, DLQs
#
#   scripts/demo.sh          send events/signups.json, run until idle, print the summary, clean up
#   scripts/demo.sh --dev    stay up; send more with `make send FILE=...`; Ctrl-C stops everything
#   REGIONS=3 scripts/demo.sh   the same stack in us-west-2, us-east-1 and eu-west-1 of one moto
#                               server (REGIONS=2: the first two; or a comma list, the first the
#                               primary): each region's own function processes, the signups spread
#                               over the regions plus one user signing up in two at once, users
#                               replicated by devstack, a summary per region (docs/multi-region.md)
#   scripts/demo.sh --drill  the region failure drill (make drill): the three-region stack, signups
#                            arriving in every region while DOWN's functions (default us-east-1) are
#                            stopped for OUTAGE seconds (default 30), then recover; fails unless
#                            nothing was lost or done twice; prints the time to drain (docs/multi-region.md)
#
# KEEP=1 leaves the moto server running after the demo so its state can be browsed.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-demo}"
MOTO_PORT="${MOTO_PORT:-5055}"
INVOKE_PORT="${INVOKE_PORT:-9000}"
SIGNUPS="${SIGNUPS:-events/signups.json}"
REPLICATION_LAG_MS="${REPLICATION_LAG_MS:-250}"
# REGIONS is also the functions' own variable (each region's env file sets it): keep it out of
# the environment cargo lambda watch passes on.
if [ "$mode" = "--drill" ]; then regions_wanted="${REGIONS:-3}"; else regions_wanted="${REGIONS:-1}"; fi
unset REGIONS
export PATH="$PWD/.venv/bin:$PATH"

case "$regions_wanted" in
  1) [ "$mode" = "--drill" ] && { echo "the drill needs two or more regions (REGIONS=2 or 3)" >&2; exit 2; }
     regions=() ;;
  2 | 3) all=(us-west-2 us-east-1 eu-west-1); regions=("${all[@]:0:$regions_wanted}") ;;
  *,*) IFS=, read -r -a regions <<<"$regions_wanted" ;;
  *) echo "REGIONS=$regions_wanted: give 1, 2, 3 or a comma list of regions (the first the primary)" >&2; exit 2 ;;
esac
if [ ${#regions[@]} -gt 0 ] && [ "$mode" = "--dev" ]; then
  echo "REGIONS=$regions_wanted: several regions run as a demo only (scripts/demo.sh without --dev)" >&2; exit 2
fi

scripts/setup.sh
mkdir -p .local
watch_pids=()
cleanup() {
  for pid in "${watch_pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  if [ "${KEEP:-0}" != 1 ]; then scripts/moto.sh stop; else echo "moto server left running at $(scripts/moto.sh url 2>/dev/null) (make moto-stop)"; fi
}
trap cleanup EXIT INT TERM

wait_for_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.2
  done
}

build() {
  echo "==> building the four functions and the runner (first time: a few minutes on 2 cores)"
  # One build per binary, as cargo lambda watch runs them, so watch finds them fresh.
  for bin in user-processor notification-processor welcome-email profile-creator; do
    cargo build --quiet --bin "$bin"
  done
  cargo build --quiet -p eventline-devstack
}

devstack=target/debug/devstack
# JSON lines, as deployed (template Globals): scripts/journey.py reads their keys.
log_format=AWS_LAMBDA_LOG_FORMAT=JSON
if [ ${#regions[@]} -gt 0 ]; then
  list=$(IFS=,; echo "${regions[*]}")
  echo "==> local AWS: moto server on port $MOTO_PORT, regions $list"
  endpoint=$(scripts/moto.sh start "$MOTO_PORT")
  echo "==> provisioning template.yaml into $endpoint, one stack per region (${regions[0]} the primary)"
  .venv/bin/python scripts/provision.py --endpoint "$endpoint" --reset --regions "$list"
  build
  manifests=() invoke_urls=()
  set -m  # each watch in its own process group, so cleanup stops it and the functions it spawned
  # --ignore-changes: three watches would each rebuild every function on every edit during the run.
  for i in "${!regions[@]}"; do
    region=${regions[$i]} port=$((INVOKE_PORT + i))
    echo "==> serving $region's functions with cargo lambda watch on port $port (log: .local/$region/watch.log)"
    cargo lambda watch --ignore-changes --invoke-port "$port" --env-file ".local/$region/functions.env" \
      --env-var "$log_format" >".local/$region/watch.log" 2>&1 &
    watch_pids+=($!)
    manifests+=(--manifest ".local/$region/stack.json")
    invoke_urls+=(--invoke-url "http://127.0.0.1:$port")
  done
  set +m
  for i in "${!regions[@]}"; do wait_for_port $((INVOKE_PORT + i)); done

  if [ "$mode" = "--drill" ]; then
    down="${DOWN:-${regions[1]}}"
    echo "==> region failure drill: $down's functions stopped for ${OUTAGE:-30} s while signups keep arriving"
    "$devstack" drill "${manifests[@]}" "${invoke_urls[@]}" --down "$down" --outage "${OUTAGE:-30}" \
      --users "${DRILL_USERS:-60}" --replication-lag-ms "$REPLICATION_LAG_MS" --quiet
    exit 0
  fi

  echo "==> sending $SIGNUPS, each user's messages to one region, users dealt round the regions"
  python3 - "$SIGNUPS" "${regions[@]}" <<'PY'
import json, sys
path, regions = sys.argv[1], sys.argv[2:]
owner, parts = {}, {r: [] for r in regions}
for message in json.load(open(path, encoding="utf-8")):
    # A user's duplicate and its impostor go where the user went, as in the single-region demo.
    user = message.get("user_id", message.get("id"))
    owner.setdefault(user, regions[len(owner) % len(regions)])
    parts[owner[user]].append(message)
for region, messages in parts.items():
    with open(f".local/{region}/signups.json", "w", encoding="utf-8") as f:
        json.dump(messages, f, ensure_ascii=False)
PY
  for region in "${regions[@]}"; do
    "$devstack" --manifest ".local/$region/stack.json" send ".local/$region/signups.json"
  done
  both=("${regions[@]: -2}")
  echo "==> one user signing up in ${both[0]} and ${both[1]} at once (events/signup.two-regions.json)"
  for region in "${both[@]}"; do
    "$devstack" --manifest ".local/$region/stack.json" send events/signup.two-regions.json
  done
  echo "==> running every region until the pipeline is idle (replication lag $REPLICATION_LAG_MS ms)"
  "$devstack" run "${manifests[@]}" "${invoke_urls[@]}" --replication-lag-ms "$REPLICATION_LAG_MS" \
    --until-idle 4 --limit 300
  echo "==> one signup's journey (make journey ID=<user or correlation id> for another)"
  python3 scripts/journey.py --logs $(printf '.local/%s/watch.log ' "${regions[@]}")
  exit 0
fi

echo "==> local AWS: moto server on port $MOTO_PORT"
endpoint=$(scripts/moto.sh start "$MOTO_PORT")
echo "==> provisioning template.yaml into $endpoint"
.venv/bin/python scripts/provision.py --endpoint "$endpoint" --reset

build

echo "==> serving the functions with cargo lambda watch on port $INVOKE_PORT (log: .local/watch.log)"
set -m  # own process group, so cleanup stops watch and the functions it spawned
cargo lambda watch --invoke-port "$INVOKE_PORT" --env-file .local/functions.env --env-var "$log_format" \
  >.local/watch.log 2>&1 &
watch_pids+=($!)
set +m
wait_for_port "$INVOKE_PORT"

if [ "$mode" = "--dev" ]; then
  echo "==> running; send signups with: make send FILE=$SIGNUPS   (Ctrl-C to stop)"
  "$devstack" run --invoke-url "http://127.0.0.1:$INVOKE_PORT"
else
  echo "==> sending $SIGNUPS"
  "$devstack" send "$SIGNUPS"
  echo "==> running until the pipeline is idle"
  "$devstack" run --invoke-url "http://127.0.0.1:$INVOKE_PORT" --until-idle 4 --limit 300
  echo "==> one signup's journey (make journey ID=<user or correlation id> for another)"
  python3 scripts/journey.py --logs .local/watch.log
fi
