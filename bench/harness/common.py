"""Paths, logging and process stopping shared by the harness modules."""

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

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
OUT = BENCH / ".out"
VENV_BIN = ROOT / ".venv" / "bin"
REGION = "us-east-1"
# The source tree to provision from (scripts/provision.py + its template.yaml). Default: this checkout.
# Set BENCH_SRC to an exported commit when the binaries were built from that commit, so stack and
# binary match (e.g. `git archive HEAD | tar -x -C /tmp/src`, built with --target-dir target).
SRC = Path(os.environ.get("BENCH_SRC", str(ROOT))).resolve()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def stop(proc: subprocess.Popen) -> None:
    """Terminates `proc` (by its pid), and kills it if it has not exited after 5 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

