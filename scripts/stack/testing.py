"""A private moto server for the scripts' tests (test_provision.py, test_iam_check.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from . import ROOT

MOTO_SERVER = ROOT / ".venv" / "bin" / "moto_server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """moto on a free port, its log in `work`, with `env` added to its environment; stopped by close()."""

    def __init__(self, work: Path, env: dict[str, str] | None = None):
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log = open(work / "moto.log", "w")
        self.proc = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
            env={**os.environ, **(env or {})},
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).read()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError(f"moto did not start; see {work / 'moto.log'}")
                time.sleep(0.1)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
