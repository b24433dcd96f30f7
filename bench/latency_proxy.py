#!/usr/bin/env python3
"""Latency-injection proxy: an HTTP reverse proxy on 127.0.0.1 in front of moto that counts AWS calls
and delays each forwarded request, to stand in for the network round trip to a real AWS endpoint.

    .venv/bin/python bench/latency_proxy.py --upstream http://127.0.0.1:5055 [--port 0] [--delay-ms 10]

Point a function's AWS_ENDPOINT_URL at the proxy. Every request is held --delay-ms before it is
forwarded (each concurrently, so parallel calls overlap as they would on the network) and counted by
service and operation: the X-Amz-Target header (DynamoDB, SQS JSON, EventBridge: "SQS.SendMessage"),
else the query/form `Action` (query protocols), "SESv2.SendEmail", or S3's "S3.PutObject" / "S3.GetObject"
(the names bench/backend's fixed-latency-aws counts under).
Prints "PORT <n>" on stdout once listening. Control endpoints (not counted, not delayed):
    GET  /__proxy/stats   -> {"calls": {"DynamoDB.PutItem": 10, ...}, "total": n, "delay_ms": d,
                              "upstream_ms": {op: summed time waiting for moto}, "span_ms": first call
                              arrival -> last response sent, "round_trips": groups of overlapping calls}
    POST /__proxy/reset   -> counts back to zero
    POST /__proxy/delay?ms=N
"""

from __future__ import annotations

import argparse
import collections
import http.client
import http.server
import json
import threading
import time
import urllib.parse

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length", "host"}


def operation(method: str, path: str, headers, body: bytes) -> str:
    target = headers.get("X-Amz-Target")
    if target:
        service, _, op = target.partition(".")
        service = {"DynamoDB_20120810": "DynamoDB", "AmazonSQS": "SQS", "AWSEvents": "EventBridge"}.get(service, service)
        return f"{service}.{op}"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    if "Action" in query:
        return f"query.{query['Action'][0]}"
    if body and "x-www-form-urlencoded" in (headers.get("Content-Type") or ""):
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        if "Action" in form:
            return f"query.{form['Action'][0]}"
    if path.startswith("/v2/email/outbound-emails") and method == "POST":
        return "SESv2.SendEmail"
    if path.startswith("/v2/email"):
        return f"SESv2.{method}"
    return {"PUT": "S3.PutObject", "GET": "S3.GetObject", "HEAD": "S3.HeadObject"}.get(method, f"S3.{method}")


def round_trips(intervals: list[tuple[float, float]]) -> int:
    """Maximal groups of overlapping (arrival, answer) intervals: calls made at once are one round trip,
    calls made one after the other one each."""
    groups, end = 0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            groups += 1
            end = stop
        else:
            end = max(end, stop)
    return groups


class Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, upstream: str, delay_ms: float):
        super().__init__(("127.0.0.1", port), Handler)
        u = urllib.parse.urlsplit(upstream)
        self.upstream = (u.hostname, u.port or 80)
        self.delay_s = delay_ms / 1000
        self.calls: collections.Counter[str] = collections.Counter()
        self.upstream_ms: collections.Counter[str] = collections.Counter()  # summed upstream (moto) time
        self.first_ms: float | None = None   # first request arrival / last response sent, since reset
        self.last_ms: float | None = None
        self.intervals: list[tuple[float, float]] = []  # (arrival, response sent) of every call
        self.lock = threading.Lock()
        self.local = threading.local()

    def connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        c = getattr(self.local, "conn", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            c = http.client.HTTPConnection(*self.upstream, timeout=60)
            self.local.conn = c
        return c


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Proxy

    def log_message(self, *args) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> None:
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
        lines.append(f"Content-Length: {len(body)}")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _control(self, body: bytes) -> None:
        s = self.server
        path = urllib.parse.urlsplit(self.path)
        if path.path == "/__proxy/reset":
            with s.lock:
                s.calls.clear()
                s.upstream_ms.clear()
                s.intervals.clear()
                s.first_ms = s.last_ms = None
        elif path.path == "/__proxy/delay":
            s.delay_s = float(urllib.parse.parse_qs(path.query)["ms"][0]) / 1000
        with s.lock:
            out = {"calls": dict(sorted(s.calls.items())), "total": sum(s.calls.values()),
                   "upstream_ms": {k: round(v, 3) for k, v in sorted(s.upstream_ms.items())},
                   # no span while the only calls since the reset are still in flight (a function that
                   # gave up at its deadline leaves its call in moto): last_ms is not set yet
                   "span_ms": None if s.first_ms is None or s.last_ms is None else round(s.last_ms - s.first_ms, 3),
                   "round_trips": round_trips(s.intervals),
                   "delay_ms": s.delay_s * 1000}
        self._send(200, "OK", [("Content-Type", "application/json")], json.dumps(out).encode())

    def _proxy(self) -> None:
        body = self._read_body()
        if self.path.startswith("/__proxy/"):
            self._control(body)
            return
        op = operation(self.command, self.path, self.headers, body)
        t_in = time.perf_counter() * 1000
        with self.server.lock:
            self.server.calls[op] += 1
            if self.server.first_ms is None:
                self.server.first_ms = t_in
        if self.server.delay_s:
            time.sleep(self.server.delay_s)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = self.headers.get("Host", "")  # signed: keep it as the client sent it
        headers["Content-Length"] = str(len(body))
        t_up = time.perf_counter() * 1000
        for attempt in (0, 1):  # one retry on a stale upstream keep-alive connection
            conn = self.server.connection(fresh=attempt == 1)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError):
                if attempt == 1:
                    self._send(502, "Bad Gateway", [], b"proxy: upstream failed")
                    return
        t_back = time.perf_counter() * 1000
        out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        self._send(resp.status, resp.reason, out, data)
        t_out = time.perf_counter() * 1000
        with self.server.lock:
            self.server.upstream_ms[op] += t_back - t_up
            self.server.last_ms = max(self.server.last_ms or 0.0, t_out)
            self.server.intervals.append((t_in, t_out))

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _proxy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", required=True, help="moto URL, e.g. http://127.0.0.1:5055")
    p.add_argument("--port", type=int, default=0, help="listen port on 127.0.0.1 (default: a free one)")
    p.add_argument("--delay-ms", type=float, default=0.0, help="delay added to every forwarded request")
    args = p.parse_args()
    server = Proxy(args.port, args.upstream, args.delay_ms)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
