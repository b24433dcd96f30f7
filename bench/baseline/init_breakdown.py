#!/usr/bin/env python3
"""Where the Python baseline's init goes: interpreter start, `import boto3`, the two clients.

    .venv/bin/python bench/baseline/init_breakdown.py [--runs 15] [--python INTERPRETER]

Each run is a fresh interpreter (default: the boto3-only bench/.out/venv-baseline) with the same
kind of environment coldstart.py gives the handler (dummy credentials, region, endpoint, no ~/.aws).
Prints medians in ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import harness as h  # noqa: E402

PROBE = """
import time
t0 = time.perf_counter()
import boto3
t1 = time.perf_counter()
boto3.client("dynamodb")
t2 = time.perf_counter()
boto3.client("sqs")
t3 = time.perf_counter()
print((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000)
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--python", help="interpreter (default: the boto3-only baseline venv)")
    args = p.parse_args()
    py = args.python or str(h.baseline_python())
    home = h.OUT / "empty-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
           "PYTHONDONTWRITEBYTECODE": "1", "TZ": ":UTC"}
    rows = {"interpreter start (python -c pass)": [], "import boto3": [], 'boto3.client("dynamodb")': [],
            'boto3.client("sqs")': []}
    for _ in range(args.runs):
        t = time.perf_counter()
        subprocess.run([py, "-c", "pass"], env=env, check=True)
        rows["interpreter start (python -c pass)"].append((time.perf_counter() - t) * 1000)
        out = subprocess.run([py, "-c", PROBE], env=env, check=True, capture_output=True, text=True).stdout.split()
        for key, v in zip(list(rows)[1:], out):
            rows[key].append(float(v))
    print(f"\n### Python baseline init, by phase ({py}, {args.runs} runs, median ms)\n")
    print("| phase | median ms | p90 ms |\n|---|---|---|")
    for key, vs in rows.items():
        s = h.summary(vs)
        print(f"| {key} | {s['median']:.1f} | {s['p90']:.1f} |")
    print(f"| sum | {sum(statistics.median(v) for v in rows.values()):.1f} | |")


if __name__ == "__main__":
    os.environ.pop("PYTHONPROFILEIMPORTTIME", None)
    main()
