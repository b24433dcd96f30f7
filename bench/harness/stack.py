"""A private moto server or the fixed-latency backend, provisioned with the stack."""

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



MOTO_TITLE = b"<title>Moto</title>"


def moto_port(proc: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> int:
    """The port the moto server `proc` (started with `-p 0`) bound and reported in its log, once that
    port answers as moto (GET /moto-api/) and `proc` is still alive: never another server's port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto exited with {proc.returncode}; see {log_path}")
        match = re.search(r"Running on http://127\.0\.0\.1:(\d+)", log_path.read_text(errors="replace"))
        if match:
            port = int(match.group(1))
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2).read()
            except OSError:
                body = b""
            if MOTO_TITLE in body and proc.poll() is None:
                return port
        time.sleep(0.1)
    raise RuntimeError(f"moto did not answer as moto within {timeout} s; see {log_path}")


class Moto:
    """A private moto server, stopped (by its pid) on close. It binds port 0, so the kernel gives it
    a port no other process holds, and reports it; see moto_port."""

    def __init__(self, name: str):
        OUT.mkdir(parents=True, exist_ok=True)
        self.log_path = OUT / f"moto-{name}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", "0"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self.port = moto_port(self.proc, self.log_path)
        except RuntimeError:
            self.close()
            raise
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        stop(self.proc)
        self._log.close()


def provision(endpoint: str, name: str) -> tuple[dict, dict[str, str]]:
    """Runs scripts/provision.py against `endpoint`; returns (manifest, env file as a dict)."""
    out = OUT / f"stack-{name}.json"
    env_out = OUT / f"functions-{name}.env"
    cmd = [
        sys.executable, str(SRC / "scripts" / "provision.py"),
        "--endpoint", endpoint, "--reset", "--out", str(out), "--env-out", str(env_out),
    ]
    r = subprocess.run(cmd, cwd=SRC, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"provision failed:\n{r.stdout}\n{r.stderr}")
    manifest = json.loads(out.read_text())
    env: dict[str, str] = {}
    for line in env_out.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    return manifest, env


def function_entry(manifest: dict, name: str) -> dict:
    for f in manifest["functions"]:
        if f["name"] == name:
            return f
    raise KeyError(f"function {name} not in manifest")


def lambda_env(manifest: dict, env_file: dict[str, str], function: str, *, endpoint: str | None = None,
               extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment Lambda would give `function`: its template environment, the SDK settings of the
    env file (endpoint, region, dummy credentials) and the variables the Lambda service sets."""
    f = function_entry(manifest, function)
    home = OUT / "empty-home"  # no ~/.aws files: neither SDK finds a profile
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "HOME": str(home),
    }
    env.update(f["environment"])
    for k in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env[k] = env_file[k]
    env["AWS_DEFAULT_REGION"] = env["AWS_REGION"]
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    env.update({
        "AWS_LAMBDA_FUNCTION_NAME": f["function_name"],
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    })
    env.update(extra or {})
    return env


BASELINE_VENV = OUT / "venv-baseline"


def baseline_python() -> Path:
    """The interpreter for the Python peers: a venv holding only bench/baseline/requirements.txt
    (boto3, and Powertools for the powertools/ peer, as in a Lambda deployment package), created on
    first use with the .venv's base Python, and brought up to date when that file changes.
    The project .venv also holds awscrt and pyOpenSSL, which botocore imports when present."""
    py = BASELINE_VENV / "bin" / "python"
    requirements = BENCH / "baseline" / "requirements.txt"
    stamp = BASELINE_VENV / "requirements.installed"  # the requirements.txt it was installed from
    if not py.exists():
        log(f"creating {BASELINE_VENV.relative_to(ROOT)} (bench/baseline/requirements.txt only) ...")
        subprocess.run([sys.base_prefix + "/bin/python3", "-m", "venv", str(BASELINE_VENV)], check=True)
    if not stamp.is_file() or stamp.read_text() != requirements.read_text():
        subprocess.run([str(BASELINE_VENV / "bin" / "pip"), "install", "-q", "-r", str(requirements)], check=True)
        stamp.write_text(requirements.read_text())
    return py


def drain_queues(endpoint: str) -> int:
    """Receives and deletes every visible message of every queue (moto's SendMessage slows down as a
    queue grows, so each run starts from empty queues). Not timed."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id="test", aws_secret_access_key="test")
    n = 0
    for url in sqs.list_queues().get("QueueUrls", []):
        while True:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not msgs:
                break
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
            n += len(msgs)
    return n


def count_items(endpoint: str, table: str) -> int:
    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id="test", aws_secret_access_key="test")
    total, kwargs = 0, {"TableName": table, "Select": "COUNT"}
    while True:
        page = ddb.scan(**kwargs)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class _ChildServer:
    """A server run as a child process that prints "PORT <n>" once listening and has JSON control
    endpoints under `prefix`; stopped (by its pid) on close."""

    prefix = ""

    def __init__(self, argv: list[str], what: str):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            self.close()
            raise RuntimeError(f"{what} did not start: {line}")
        self.url = f"http://127.0.0.1:{line[1]}"

    def _call(self, path: str, method: str = "GET") -> dict:
        req = urllib.request.Request(self.url + self.prefix + path, method=method,
                                     data=b"" if method == "POST" else None)
        return json.loads(urllib.request.urlopen(req, timeout=10).read())

    def stats(self) -> dict:
        """Calls by operation ("calls"), "total", "round_trips" (groups of overlapping calls) and
        "span_ms" since the last reset; see the server's docs for the rest."""
        return self._call("/stats")

    def close(self) -> None:
        stop(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()


class ProxyProcess(_ChildServer):
    """bench/latency_proxy.py in front of `upstream`, as a child process (stopped by its pid on close)."""

    prefix = "/__proxy"

    def __init__(self, upstream: str, delay_ms: float):
        super().__init__([sys.executable, str(BENCH / "latency_proxy.py"), "--upstream", upstream,
                          "--delay-ms", str(delay_ms)], "latency_proxy.py")

    def reset(self) -> None:
        self._call("/reset", "POST")


# The fixed-latency backend (bench/backend): `cargo build --release -p eventline-bench-backend`.
FIXED_BACKEND = ROOT / "target" / "release" / "fixed-latency-aws"


class FixedBackend(_ChildServer):
    """bench/backend's fixed-latency-aws as a child process: answers the functions' AWS calls after
    `latency_ms`, all concurrently, with no emulator cost. `tables` maps each DynamoDB table to its
    key attributes (from fixed_stack). Its stats also hold "items" per table and "entries_failed"."""

    prefix = "/__backend"

    def __init__(self, tables: dict[str, list[str]], latency_ms: float = 10.0, *,
                 fail_entry_rate: float = 0.0, seed: int = 1, binary: Path = FIXED_BACKEND):
        if not Path(binary).is_file():
            raise RuntimeError(f"{binary} does not exist: cargo build --release -p eventline-bench-backend")
        argv = [str(binary), "--latency-ms", str(latency_ms), "--fail-entry-rate", str(fail_entry_rate),
                "--seed", str(seed)]
        for name, key in sorted(tables.items()):
            argv += ["--table", f"{name}={','.join(key)}"]
        super().__init__(argv, "fixed-latency-aws")

    def reset(self, data: bool = False) -> None:
        """Counters back to zero (and the failure draws to their start); `data`: forget items too."""
        self._call("/reset?data=1" if data else "/reset", "POST")

    def set_latency(self, ms: float) -> None:
        self._call(f"/latency?ms={ms}", "POST")

    def items(self, table: str) -> int:
        return self.stats()["items"].get(table, 0)

    def drain_queue(self, queue: str) -> list[dict]:
        """The messages sent to `queue` (name or URL) since the last drain, as ReceiveMessage answers
        them (MessageId, Body, MD5OfBody, Attributes, MessageAttributes); the backend forgets them."""
        return self._call("/drain?queue=" + urllib.parse.quote(queue, safe=""))["messages"]

    def drain_bus(self, bus: str) -> list[dict]:
        """The events put on `bus` (name or ARN) since the last drain, as PutEvents entries with their
        EventId and EventBusName; the backend forgets them."""
        return self._call("/drain?bus=" + urllib.parse.quote(bus, safe=""))["events"]

    def objects(self, prefix: str = "", bucket: str | None = None) -> int:
        """How many S3 objects have a key starting with `prefix` (in `bucket`, or in any)."""
        query = "prefix=" + urllib.parse.quote(prefix, safe="")
        if bucket:
            query += "&bucket=" + urllib.parse.quote(bucket, safe="")
        return self._call("/objects?" + query)["objects"]


def table_keys(endpoint: str) -> dict[str, list[str]]:
    """Every DynamoDB table of the emulator at `endpoint` and its key attributes (hash, then range)."""
    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id="test", aws_secret_access_key="test")
    keys = {}
    for name in ddb.list_tables()["TableNames"]:
        schema = ddb.describe_table(TableName=name)["Table"]["KeySchema"]
        keys[name] = [k["AttributeName"] for k in sorted(schema, key=lambda k: k["KeyType"] != "HASH")]
    return keys


def fixed_stack(name: str) -> tuple[dict, dict[str, str], dict[str, list[str]]]:
    """What the functions need to run against the fixed-latency backend: the same manifest and env file
    as the moto benches (template.yaml provisioned into a short-lived private moto, ~5 s) and the key
    attributes of its tables. moto is stopped before this returns; nothing is counted or timed."""
    moto = Moto(f"{name}-provision")
    try:
        manifest, env_file = provision(moto.url, name)
        return manifest, env_file, table_keys(moto.url)
    finally:
        moto.close()


