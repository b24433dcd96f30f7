"""The harness's moto start takes only its own server's answer: the port moto bound and reported, and
only once that port answers as moto while the process is alive (no free-port guess that another
process can take, no "something answers there").

    .venv/bin/python -m unittest discover -s bench -p 'test_*.py'
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.request
from pathlib import Path

import harness as h


class _NotMoto(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<title>Something else</title>")

    def log_message(self, *args) -> None:
        pass


class MotoPort(unittest.TestCase):
    def _fake(self, script: str) -> tuple[subprocess.Popen, Path]:
        log = Path(tempfile.mkdtemp()) / "moto.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-c", script], stdout=out, stderr=subprocess.STDOUT)
        self.addCleanup(h.stop, proc)
        return proc, log

    def test_a_port_answered_by_another_server_is_not_taken_for_moto(self):
        other = http.server.HTTPServer(("127.0.0.1", 0), _NotMoto)
        threading.Thread(target=other.serve_forever, daemon=True).start()
        self.addCleanup(other.shutdown)
        port = other.server_address[1]
        self.assertIn(b"Something else", urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/").read())
        proc, log = self._fake(f"import time; print(' * Running on http://127.0.0.1:{port}', flush=True); "
                               "time.sleep(30)")
        with self.assertRaisesRegex(RuntimeError, "did not answer as moto"):
            h.moto_port(proc, log, timeout=2)

    def test_a_server_that_exits_is_not_taken_for_moto_even_if_its_port_answers(self):
        proc, log = self._fake("print(' * Running on http://127.0.0.1:1', flush=True); "
                               "raise SystemExit('Address already in use')")
        with self.assertRaisesRegex(RuntimeError, "moto exited"):
            h.moto_port(proc, log, timeout=10)

    @unittest.skipUnless((h.VENV_BIN / "moto_server").exists(), "moto_server is not installed (make setup)")
    def test_moto_reports_its_own_port_and_answers_there(self):
        moto = h.Moto("test-harness")
        self.addCleanup(moto.close)
        body = urllib.request.urlopen(moto.url + "/moto-api/", timeout=5).read()
        self.assertIn(h.MOTO_TITLE, body)
        self.assertIsNone(moto.proc.poll())
        moto.close()
        with self.assertRaises(OSError):
            urllib.request.urlopen(moto.url + "/moto-api/", timeout=2)


if __name__ == "__main__":
    unittest.main()
