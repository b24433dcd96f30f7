"""Statistics, the machine's description and the JSON reports."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import os
import platform
import queue
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import *  # noqa: F401,F403



def summary(values: list[float]) -> dict[str, float | int | None]:
    vs = sorted(v for v in values if v is not None)
    if not vs:
        return {"n": 0, "median": None, "p90": None, "min": None, "max": None}
    p90 = statistics.quantiles(vs, n=10, method="inclusive")[8] if len(vs) > 1 else vs[0]
    return {"n": len(vs), "median": statistics.median(vs), "p90": p90, "min": vs[0], "max": vs[-1]}


def fmt(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def machine() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg": os.getloadavg(),
    }


def git_rev() -> str:
    """The commit the stack was provisioned from (BENCH_SRC/.git-rev for an exported tree)."""
    if (SRC / ".git-rev").is_file():
        return (SRC / ".git-rev").read_text().strip()[:7]
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=SRC, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=SRC,
                           capture_output=True, text=True).stdout.strip()
    return r.stdout.strip() + ("+dirty" if dirty else "")


def write_json(name: str, data: Any) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    p = OUT / name
    p.write_text(json.dumps(data, indent=2) + "\n")
    return p
