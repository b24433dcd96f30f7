"""Running a function process (or a pool of instances) against the fake Runtime API."""

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
from .stack import *  # noqa: F401,F403
from .events import *  # noqa: F401,F403
from .runtime_api import *  # noqa: F401,F403



def read_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS of a live process, in KiB."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0])
    return out


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a live process has used so far (its own threads, not its children)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": fields 3.. of proc(5)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ProcessResult:
    label: str
    init_ms: float | None
    first_response_ms: float | None
    invocations: list[dict]
    peak_rss_kib: int | None
    error: str | None = None


def run_process(api: FakeRuntimeApi, label: str, argv: list[str], env: dict[str, str], events: list[bytes],
                *, cwd: Path | None = None, timeout_s: float = 30.0, function_arn: str = "",
                deadline_s: float = 3.0, between=None) -> ProcessResult:
    """Spawns `argv` fresh, feeds it `events` one after the other, and times it.

    init            = spawn -> first GET /next
    first response  = spawn -> the response POST of the first event
    per invocation  = event written -> response POST read (wall time of the invocation)
    `between(i)` (optional) runs after invocation i is answered and before the next event is offered.
    Peak RSS is VmHWM read after the last response, just before the process is killed."""
    run = Run(deadline_s=deadline_s, function_arn=function_arn)
    api.run = run
    env = dict(env, AWS_LAMBDA_RUNTIME_API=api.address)
    OUT.mkdir(parents=True, exist_ok=True)
    logf = open(OUT / f"function-{label}.log", "ab")
    invs: list[Invocation] = []
    err = None
    if events:
        invs.append(run.push(events[0]))  # waiting at once, as with Lambda's on-demand init
    t_spawn = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    hwm = None
    try:
        for i in range(len(events)):
            inv = invs[i]
            deadline = time.monotonic() + timeout_s
            while not inv.done.wait(0.02):
                if run.init_error is not None:
                    raise RuntimeError(f"init error: {run.init_error[:500]!r}")
                if proc.poll() is not None:
                    raise RuntimeError(f"process exited with {proc.returncode} (see {logf.name})")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no response after {timeout_s} s")
            if between is not None:
                between(i)
            if i + 1 < len(events):
                invs.append(run.push(events[i + 1]))
        hwm = read_status(proc.pid).get("VmHWM")
    except RuntimeError as e:
        err = str(e)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: children (e.g. under strace) go too
        proc.wait()
        run.events.put(None)  # release a GET /next still waiting
        logf.close()
        api.run = None
    init_ms = (run.t_first_next - t_spawn) * 1000 if run.t_first_next else None
    first = invs[0] if invs else None
    first_ms = (first.t_done - t_spawn) * 1000 if first and first.t_done else None
    inv_rows = [{
        "request_id": v.request_id,
        "status": v.status,
        "wall_ms": (v.t_done - v.t_sent) * 1000 if v.t_done and v.t_sent else None,
        "body": v.body.decode(errors="replace"),
    } for v in invs]
    for row in inv_rows:
        if err is None and row["status"] != "response":
            err = f"invocation {row['request_id']} returned an error: {row['body'][:300]}"
    return ProcessResult(label, init_ms, first_ms, inv_rows, hwm, err)


class InstancePool:
    """`size` concurrent instances of one function, as Lambda runs up to N execution environments of a
    function: the processes share one fake Runtime API, and each takes the next event pushed as soon as
    it is free (its GET /next). Every answered invocation is also put on `completed`. Unlike
    run_process, nothing here waits for an answer: the caller does, on `completed`."""

    def __init__(self, label: str, argv: list[str], env: dict[str, str], size: int,
                 completed: "queue.Queue[Invocation]", *, function_arn: str = "", deadline_s: float = 3.0):
        self.label, self.size = label, size
        self.api = FakeRuntimeApi()
        self.run = Run(deadline_s=deadline_s, function_arn=function_arn, completed=completed)
        self.api.run = self.run
        env = dict(env, AWS_LAMBDA_RUNTIME_API=self.api.address)
        OUT.mkdir(parents=True, exist_ok=True)
        self._log = open(OUT / f"function-{label}.log", "ab")
        self.procs: list[subprocess.Popen] = []
        for _ in range(size):  # each in its own session: killed as a group on close
            self.procs.append(subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, start_new_session=True))

    def check(self) -> None:
        """Raises if an instance failed its init or exited (Lambda would replace it; a bench must not)."""
        if self.run.init_error is not None:
            raise RuntimeError(f"{self.label}: init error: {self.run.init_error[:500]!r}")
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.label}: an instance exited with {proc.returncode} "
                                   f"(see {self._log.name})")

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Waits until every instance has asked for its first event."""
        deadline = time.monotonic() + timeout_s
        while self.run.nexts < self.size:
            self.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label}: {self.run.nexts} of {self.size} instances ready "
                                   f"after {timeout_s} s")
            time.sleep(0.01)

    def push(self, payload: bytes) -> Invocation:
        return self.run.push(payload)

    def peak_rss_kib(self) -> list[int]:
        """VmHWM of each live instance."""
        return [hwm for proc in self.procs if (hwm := read_status(proc.pid).get("VmHWM")) is not None]

    def cpu_seconds(self) -> float:
        """CPU time all live instances have used so far."""
        return sum(cpu_seconds(proc.pid) or 0.0 for proc in self.procs)

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for _ in self.procs:
            self.run.events.put(None)  # release the GET /next requests still waiting
        self.api.run = None
        self.api.shutdown()
        self.api.server_close()
        self._log.close()


