"""A private moto server for the scripts' tests (test_provision.py, test_iam_check.py, test_redrive.py)."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

from . import ROOT

MOTO_SERVER = ROOT / ".venv" / "bin" / "moto_server"
# What moto's dashboard (GET /moto-api/) answers with, and no other server.
MOTO_TITLE = b"<title>Moto</title>"


class MotoServer:
    """moto on a port it binds itself (`-p 0`) and reports, its log in `work`, with `env` added to its
    environment; stopped by close(). Ready once that port answers as moto and the process is alive:
    never a guessed free port, which another process can take meanwhile (docs/local.md)."""

    def __init__(self, work: Path, env: dict[str, str] | None = None):
        log_path = work / "moto.log"
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", "0"],
            env={**os.environ, **(env or {})},
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            found = re.search(r"Running on http://127\.0\.0\.1:(\d+)", log_path.read_text(errors="replace"))
            if found:
                self.endpoint = f"http://127.0.0.1:{found.group(1)}"
                try:
                    body = urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=2).read()
                except OSError:
                    body = b""
                if MOTO_TITLE in body and self.proc.poll() is None:
                    return
            time.sleep(0.1)
        self.close()
        raise RuntimeError(f"moto did not start; see {log_path}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
