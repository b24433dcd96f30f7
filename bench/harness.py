"""Shared pieces of the benchmarks: a private moto server, provisioning, a fake Lambda Runtime API,
spawning a function process and timing it, a pool of concurrent instances of one function, SQS
signup events, statistics.

Used by coldstart.py, roundtrips.py and scale.py (run them with the project's .venv/bin/python).
Nothing here is imported by the project itself; it only talks to 127.0.0.1.
"""

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

BENCH = Path(__file__).resolve().parent
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


# ---------------------------------------------------------------------------------------------
# moto + provisioning
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# events
# ---------------------------------------------------------------------------------------------


def sqs_record(body: str, queue_arn: str, *, message_id: str | None = None, sent_ms: int | None = None,
               attributes: dict[str, str] | None = None, message_attributes: dict | None = None) -> dict:
    """One record of an SQS event in the exact shape Lambda delivers (see events/user-processor.sqs.json).
    `attributes` adds to the system attributes (e.g. MessageGroupId); `message_attributes` are in the
    event's shape ({"stringValue", "dataType", ...})."""
    now = int(time.time() * 1000)
    sent = now - 20 if sent_ms is None else sent_ms
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": base64.b64encode(os.urandom(96)).decode(),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(sent),
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": str(now - 5),
            **(attributes or {}),
        },
        "messageAttributes": message_attributes or {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def signup_bodies(records: int, tag: str = "bench") -> list[str]:
    """Valid signup message bodies with fresh unique user ids, so every run really writes."""
    out = []
    for _ in range(records):
        uid = f"{tag}-{uuid.uuid4().hex[:20]}"
        out.append(json.dumps({"user_id": uid, "email": f"{uid}@example.com", "name": "Bench Mark"},
                              separators=(",", ":")))
    return out


def signup_batch(queue_arn: str, records: int = 10, tag: str = "bench") -> dict:
    """An SQS event in the exact shape Lambda delivers (see events/user-processor.sqs.json), with
    fresh unique user ids, so every run really writes."""
    return {"Records": [sqs_record(body, queue_arn) for body in signup_bodies(records, tag)]}


# ---------------------------------------------------------------------------------------------
# the fake Lambda Runtime API
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# running a function process
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# statistics and reporting
# ---------------------------------------------------------------------------------------------


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
