#!/usr/bin/env python3
"""One signup's journey through the functions, from what they logged.

Reads the JSON log lines of `cargo lambda watch` (`make demo` writes `.local/watch.log`, or
`.local/<region>/watch.log` per region with REGIONS=2 or 3) and prints, in time order, each time a
function finished with one of the signup's records or events: time offset, region, function, attempt,
outcome and duration. Those are the functions' `record settled` lines (crates/powertools/src/settled.rs),
found by `correlation_id`, the signup's id in every function and region.

  scripts/journey.py                      the first signup user-processor handled
  scripts/journey.py --id u-2001          every signup of that user (by the user_id its lines log)
  scripts/journey.py --id <correlation>   one signup, by its correlation id
  scripts/journey.py --logs a.log b.log   other log files (region: AWS_REGION of the functions.env
                                          beside each file, else its folder's name)

The attempt is the how-many-th time that function (in that region) settled that record or event in
these logs, so a redelivered SQS message or a retried event shows 2, 3… Standard library only.
docs/observability.md ("Following one signup").
"""

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

SETTLED = "record settled"
FIRST_FUNCTION = "user-processor"


def parse_time(text):
    """RFC 3339 with a Z (what the functions log) to an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_lines(path, region):
    """The JSON log lines of one file, each with its region; other lines (cargo's, EMF) skipped."""
    lines = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            raw = raw.strip()
            if not raw.startswith('{"level"'):
                continue
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if "timestamp" not in line:
                continue
            line["_region"] = region
            line["_time"] = parse_time(line["timestamp"])
            lines.append(line)
    return lines


def region_of(path):
    """AWS_REGION from the functions.env beside the log, else the folder's name."""
    env = Path(path).parent / "functions.env"
    if env.exists():
        for row in env.read_text(encoding="utf-8").splitlines():
            if row.startswith("AWS_REGION="):
                return row.split("=", 1)[1].strip()
    return Path(path).parent.name


def default_logs(local=Path(".local")):
    """The newest demo's logs: the per-region ones if newer than the one-region log."""
    single = local / "watch.log"
    regional = sorted(local.glob("*/watch.log"))
    if regional and (not single.exists() or max(p.stat().st_mtime for p in regional) > single.stat().st_mtime):
        return regional
    return [single] if single.exists() else []


def correlation_ids(lines, wanted):
    """The correlation ids `wanted` names: itself, or those of the lines logging it as user_id;
    without `wanted`, the first signup user-processor handled."""
    if wanted is None:
        firsts = [l for l in lines if l.get("function_name") == FIRST_FUNCTION and l.get("correlation_id")]
        if not firsts:
            return []
        return [min(firsts, key=lambda l: l["_time"])["correlation_id"]]
    if any(l.get("correlation_id") == wanted for l in lines):
        return [wanted]
    found = []
    for line in sorted(lines, key=lambda l: l["_time"]):
        cid = line.get("correlation_id")
        if line.get("user_id") == wanted and cid and cid not in found:
            found.append(cid)
    return found


def journey(lines, ids):
    """The settled lines of those correlation ids, in time order, with their attempt numbers."""
    hops = sorted(
        (l for l in lines if l.get("message") == SETTLED and l.get("correlation_id") in ids),
        key=lambda l: l["_time"],
    )
    seen = {}
    rows = []
    for line in hops:
        record = line.get("message_id") or line.get("event_id") or line.get("correlation_id")
        key = (line["_region"], line.get("function_name"), record)
        seen[key] = seen.get(key, 0) + 1
        rows.append({
            "time": line["_time"],
            "region": line["_region"],
            "function": line.get("function_name", line.get("service", "?")),
            "attempt": seen[key],
            "outcome": line.get("outcome", "?"),
            "duration_ms": line.get("duration_ms"),
            "correlation_id": line["correlation_id"],
        })
    return rows


def table(rows):
    """The rows as aligned text, time as milliseconds since the first row."""
    if not rows:
        return "no settled record found for that signup (are the logs JSON? AWS_LAMBDA_LOG_FORMAT=JSON)"
    start = rows[0]["time"]
    header = ("+ms", "region", "function", "attempt", "outcome", "duration ms")
    body = [
        (
            str(round((r["time"] - start).total_seconds() * 1000)),
            r["region"],
            r["function"],
            str(r["attempt"]),
            r["outcome"],
            "-" if r["duration_ms"] is None else str(r["duration_ms"]),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    right = {0, 3, 5}
    def fmt(row):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
    return "\n".join([fmt(header), *map(fmt, body)])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--id", help="a user id or a correlation id (default: the first signup handled)")
    p.add_argument("--logs", nargs="+", help="log files (default: the newest demo's under .local/)")
    args = p.parse_args(argv)
    paths = args.logs or default_logs()
    if not paths:
        print("journey: no logs (run `make demo` first, or give --logs)", file=sys.stderr)
        return 2
    lines = [line for path in paths for line in read_lines(path, region_of(path))]
    ids = correlation_ids(lines, args.id)
    if not ids:
        print(f"journey: no signup {args.id or ''} in {', '.join(map(str, paths))} (a signup refused as invalid "
              "logs no user id: give its correlation_id, from its WARN line)", file=sys.stderr)
        return 1
    rows = journey(lines, ids)
    users = sorted({l["user_id"] for l in lines if l.get("correlation_id") in ids and l.get("user_id")})
    print(f"journey of {' '.join(users) or args.id}: correlation id {', '.join(ids)}")
    print(table(rows))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
