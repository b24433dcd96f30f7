#!/usr/bin/env bash
# Starts or stops the project's moto server (the local stand-in for AWS).
#   scripts/moto.sh start [PORT]  -> starts on 127.0.0.1 (free port unless given), prints the endpoint URL
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
    port="${2:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
    # Its own session: Ctrl-C in the terminal that runs `make dev` must not
    # kill the emulator before the runner has printed its summary.
    setsid "$moto" -H 127.0.0.1 -p "$port" >"$state/$name.log" 2>&1 &
    echo $! >"$state/$name.pid"
    url="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
      if python3 -c "import urllib.request,sys; urllib.request.urlopen('$url/moto-api/', timeout=1)" 2>/dev/null; then
        echo "$url" >"$state/$name.url"; echo "$url"; exit 0
      fi
      running || { echo "moto server exited; see $state/$name.log" >&2; exit 1; }
      sleep 0.1
    done
    echo "moto server did not answer on $url within 10 s; see $state/$name.log" >&2; exit 1 ;;
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
