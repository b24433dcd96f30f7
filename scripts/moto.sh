#!/usr/bin/env bash
# Starts or stops the project's moto server (the local stand-in for AWS).
#   scripts/moto.sh start [PORT]  -> starts on 127.0.0.1 (on a port moto binds and reports unless given),
#                                    prints the endpoint URL once that server answers as moto
#   scripts/moto.sh stop          -> stops the server this script started (by PID)
#   scripts/moto.sh url           -> prints the endpoint of the running server
# State lives in .local/: $MOTO_NAME.pid, .url, .log (MOTO_NAME defaults to "moto"; the tests use
# their own instance, "moto-test", so they never disturb a running local stack).
set -euo pipefail
cd "$(dirname "$0")/.."
state=.local
name="${MOTO_NAME:-moto}"
mkdir -p "$state"
moto="${MOTO_SERVER:-.venv/bin/moto_server}"

running() { [ -f "$state/$name.pid" ] && kill -0 "$(cat "$state/$name.pid")" 2>/dev/null; }

case "${1:-}" in
  start)
    if running; then cat "$state/$name.url"; exit 0; fi
    [ -x "$moto" ] || { echo "moto_server not found at $moto: run 'make setup' first" >&2; exit 1; }
    # Port 0 unless given: the kernel gives moto a port no one else holds and
    # moto reports it ("Running on http://127.0.0.1:PORT"). Ready when *this*
    # process is alive and that port answers as moto (GET /moto-api/), never
    # when merely something accepts connections there (docs/local.md).
    port="${2:-0}"
    # Its own session: Ctrl-C in the terminal that runs `make dev` must not
    # kill the emulator before the runner has printed its summary.
    setsid "$moto" -H 127.0.0.1 -p "$port" >"$state/$name.log" 2>&1 &
    pid=$!
    echo "$pid" >"$state/$name.pid"
    for _ in $(seq 1 300); do
      if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$state/$name.pid"
        if grep -q "Address already in use" "$state/$name.log"; then
          echo "port $port is taken by another program: choose another (MOTO_PORT=...), or omit it" >&2
        else
          echo "moto server exited; see $state/$name.log" >&2
        fi
        exit 1
      fi
      bound=$(sed -n 's|.*Running on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$state/$name.log" | head -n 1)
      if [ -n "$bound" ] && { [ "$port" = 0 ] || [ "$bound" = "$port" ]; }; then
        url="http://127.0.0.1:$bound"
        if python3 - "$url" <<'PY' 2>/dev/null && kill -0 "$pid" 2>/dev/null; then
import sys, urllib.request
body = urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=2).read()
sys.exit(0 if b"<title>Moto</title>" in body else 1)
PY
          echo "$url" >"$state/$name.url"; echo "$url"; exit 0
        fi
      fi
      sleep 0.1
    done
    echo "moto server did not answer within 30 s; see $state/$name.log" >&2; exit 1 ;;
  stop)
    if running; then
      pid=$(cat "$state/$name.pid"); kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$state/$name.pid" "$state/$name.url" ;;
  url)
    running && cat "$state/$name.url" || { echo "moto is not running: scripts/moto.sh start" >&2; exit 1; } ;;
  *) echo "usage: $0 start [PORT] | stop | url" >&2; exit 2 ;;
esac
