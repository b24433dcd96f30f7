"""A fake Lambda Runtime API that hands events to a function process and times its answers."""

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



@dataclass
class Invocation:
    request_id: str
    payload: bytes
    t_next: float = 0.0       # GET /next that received this event arrived
    t_sent: float = 0.0       # event fully written to the function
    t_done: float = 0.0       # response (or error) POST fully read
    status: str = ""          # "response" | "error"
    body: bytes = b""
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Run:
    """One process lifetime. Events are handed out in order; a GET /next with no event waits."""
    deadline_s: float
    function_arn: str
    events: "queue.Queue[Invocation | None]" = field(default_factory=queue.Queue)
    t_first_next: float = 0.0
    first_next: threading.Event = field(default_factory=threading.Event)
    init_error: bytes | None = None
    by_id: dict[str, Invocation] = field(default_factory=dict)
    nexts: int = 0  # GET /next requests received (an instance pool counts its ready instances by them)
    _nexts_lock: threading.Lock = field(default_factory=threading.Lock)
    completed: "queue.Queue[Invocation] | None" = None  # if set, every answered invocation is put here

    def push(self, payload: bytes) -> Invocation:
        inv = Invocation(str(uuid.uuid4()), payload)
        self.by_id[inv.request_id] = inv
        self.events.put(inv)
        return inv


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: "FakeRuntimeApi"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        # status line, headers and body in ONE write (no Nagle / delayed-ACK stalls)
        lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
                 f"Content-Length: {len(body)}", "Content-Type: application/json"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self) -> None:
        t = time.perf_counter()
        run = self.server.run
        if self.path != "/2018-06-01/runtime/invocation/next" or run is None:
            self._reply(404, b'{"errorMessage":"not found"}')
            return
        if not run.first_next.is_set():
            run.t_first_next = t
            run.first_next.set()
        with run._nexts_lock:  # handler threads run concurrently
            run.nexts += 1
        inv = run.events.get()
        if inv is None:  # run over: the process is (being) killed
            self._reply(410, b'{"errorMessage":"run over"}')
            return
        inv.t_next = t
        trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
        self._reply(200, inv.payload, {
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(int((time.time() + run.deadline_s) * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": run.function_arn,
            "Lambda-Runtime-Trace-Id": trace,
        })
        inv.t_sent = time.perf_counter()

    def do_POST(self) -> None:
        body = self._body()
        t = time.perf_counter()
        run = self.server.run
        parts = self.path.strip("/").split("/")
        # /2018-06-01/runtime/invocation/{id}/response|error, /2018-06-01/runtime/init/error
        if run is not None and parts[:3] == ["2018-06-01", "runtime", "init"] and parts[3:] == ["error"]:
            run.init_error = body
            run.first_next.set()
            self._reply(202, b'{"status":"OK"}')
            return
        if (run is not None and len(parts) == 5 and parts[:3] == ["2018-06-01", "runtime", "invocation"]
                and parts[4] in ("response", "error") and parts[3] in run.by_id):
            inv = run.by_id[parts[3]]
            inv.t_done, inv.status, inv.body = t, parts[4], body
            self._reply(202, b'{"status":"OK"}')
            inv.done.set()
            if run.completed is not None:
                run.completed.put(inv)
            return
        self._reply(404, b'{"errorMessage":"not found"}')


class FakeRuntimeApi(http.server.ThreadingHTTPServer):
    """The Lambda Runtime API (2018-06-01) on 127.0.0.1, serving one Run at a time."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.run: Run | None = None
        self.address = f"127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


