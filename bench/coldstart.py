#!/usr/bin/env python3
"""Cold-start benchmark: user-processor (Rust release binary) vs its two Python peers, the classic
boto3 handler and the same function written with Powertools for AWS Lambda; or any of the other
three functions on its own (--function).

    .venv/bin/python bench/coldstart.py [--function user-processor] [--runs 30] [--warm 1]
                                        [--binary LABEL=PATH ...]
                                        [--python LABEL=INTERPRETER ...] [--no-python | --no-rust]
                                        [--no-powertools] [--set LABEL:KEY=VALUE ...]
                                        [--backend moto|fixed] [--delay-ms 10]

Starts a private moto server, provisions template.yaml into it (scripts/provision.py), and serves a
fake Lambda Runtime API on 127.0.0.1. Each run spawns the function process fresh, with the function's
environment from the manifest plus the variables Lambda sets, and hands it one 10-record SQS signup
batch with fresh user ids, then --warm more, one after the other. Per run it records

    init            spawn -> first GET /runtime/invocation/next
    first response  spawn -> the response POST for that first batch
    invocation      event written -> response received, for the first (cold) batch
    warm            the same for the later batches (same process, connections already open)
    peak RSS        VmHWM of the process, read after the last batch, just before it is killed

--function notification-processor gets a batch of signup_confirmation notifications for users put
into the users table before the process starts (not timed); welcome-email and profile-creator get one
`User Created` event each time, as EventBridge delivers it (events/FUNCTION.eventbridge.json with fresh
ids). Only user-processor has Python peers.

The Python peers (bench/baseline/: handler.py, the seed-style boto3 handler, labelled "python", and
powertools/handler.py, labelled "powertools") run by default in bench/.out/venv-baseline, a venv
holding only bench/baseline/requirements.txt, created on first use. --delay-ms puts
bench/latency_proxy.py between the functions and moto and also reports the AWS calls of each batch
(0 counts them without adding latency).

Runs of the different implementations are interleaved (A B A B ...) so machine noise hits them
alike; one unrecorded warm-up run per implementation goes first (page cache, moto's lazy imports).
All queues are drained between runs (not timed): moto's SendMessage slows down as a queue grows.
--backend fixed answers the AWS calls with bench/backend's fixed-latency-aws instead of moto (same
manifest; --delay-ms is then its latency, default 10 ms, and the calls are always counted): the
functions' own critical path, without moto answering one request at a time.
Prints a Markdown table; raw numbers go to bench/.out/coldstart.json (coldstart-FUNCTION.json for the
other functions).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402

FUNCTIONS = ("user-processor", "notification-processor", "welcome-email", "profile-creator")
# What each function answers when every record (or its one event) succeeded.
SUCCESS = {"user-processor": {"batchItemFailures": []}, "notification-processor": {"batchItemFailures": []},
           "welcome-email": None, "profile-creator": None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--function", choices=FUNCTIONS, default="user-processor",
                   help="the function to start (default user-processor; only it has Python peers)")
    p.add_argument("--runs", type=int, default=30, help="recorded runs per implementation (default 30)")
    p.add_argument("--records", type=int, default=10,
                   help="records in the SQS batch (default 10; the EventBridge functions get one event)")
    p.add_argument("--warm", type=int, default=1,
                   help="warm batches per process after the first one (default 1; 0: cold only)")
    p.add_argument("--binary", action="append", metavar="LABEL=PATH",
                   help="a Rust binary to measure (repeatable; default rust=target/release/FUNCTION)")
    p.add_argument("--set", action="append", default=[], metavar="LABEL:KEY=VALUE",
                   help="extra environment variable for one implementation (repeatable), e.g. "
                        "rust-bundle:SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt with --binary rust-bundle=...")
    p.add_argument("--python", action="append", metavar="LABEL=INTERPRETER",
                   help="a Python interpreter for the seed-style baseline (repeatable; default python=bench/.out/"
                        "venv-baseline/bin/python, a venv of bench/baseline/requirements.txt created on first use; "
                        "the Powertools peer always runs there)")
    p.add_argument("--no-python", action="store_true", help="skip both Python peers")
    p.add_argument("--no-powertools", action="store_true",
                   help="skip the Powertools peer (bench/baseline/powertools/, label powertools)")
    p.add_argument("--no-rust", action="store_true", help="only the Python peers")
    p.add_argument("--backend", choices=("moto", "fixed"), default="moto",
                   help="what answers the functions' AWS calls: moto (default), or bench/backend's fixed-latency-aws "
                        "(build it: cargo build --release -p eventline-bench-backend), which counts the calls")
    p.add_argument("--delay-ms", type=float, default=None,
                   help="moto: put bench/latency_proxy.py between the functions and moto, adding this delay to every "
                        "AWS call and counting the calls of each batch; fixed: the backend's latency (default 10)")
    p.add_argument("--title", default="Cold start", help="heading of the printed table")
    p.add_argument("--json-out", default=None,
                   help="file name under bench/.out/ (default coldstart.json, or coldstart-FUNCTION.json)")
    args = p.parse_args()
    function = args.function
    json_out = args.json_out or ("coldstart.json" if function == "user-processor" else f"coldstart-{function}.json")
    if function != "user-processor":
        if args.python:
            p.error(f"--python: only user-processor has Python peers, not {function}")
        args.no_python = True

    binaries = []
    for spec in [] if args.no_rust else args.binary or [f"rust={h.ROOT / 'target' / 'release' / function}"]:
        label, _, path = spec.partition("=")
        path = Path(path) if Path(path).is_absolute() else h.ROOT / path
        if not path.is_file():
            h.log(f"{path} does not exist: build it first (cargo build --release --bin {function})")
            return 2
        binaries.append((label, path))

    pythons = []  # (label, interpreter, task root): the Lambda task root holds handler.py
    if not args.no_python:
        for spec in args.python or [f"python={h.baseline_python()}"]:
            label, _, path = spec.partition("=")
            path = Path(path) if Path(path).is_absolute() else h.ROOT / path
            if path == h.BASELINE_VENV / "bin" / "python":
                h.baseline_python()  # created on first use
            pythons.append((label, path, h.BENCH / "baseline"))
    if not (args.no_python or args.no_powertools):
        pythons.append(("powertools", h.baseline_python(), h.BENCH / "baseline" / "powertools"))
    extra_env: dict[str, dict[str, str]] = {}
    for spec in args.set:
        label, _, kv = spec.partition(":")
        key, _, value = kv.partition("=")
        extra_env.setdefault(label, {})[key] = value

    load_before = h.machine()["loadavg"]
    moto = proxy = backend = None
    counter = None  # what counts the AWS calls (the proxy or the fixed backend): stats(), reset()
    calls: dict[str, list[list[dict[str, int]]]] = {}  # label -> runs -> batches -> {operation: calls}
    units: dict[str, list[list[dict[str, float]]]] = {}  # the same, {unit: n} as the fixed backend bills
    try:
        endpoint = None
        if args.backend == "fixed":
            h.log("provisioning template.yaml into a short-lived moto for the manifest ...")
            manifest, env_file, tables = h.fixed_stack("coldstart")
            backend = counter = h.FixedBackend(tables, args.delay_ms if args.delay_ms is not None else 10.0)
            endpoint = backend.url
        else:
            moto = h.Moto("coldstart")
            h.log(f"moto on {moto.url}; provisioning template.yaml ...")
            manifest, env_file = h.provision(moto.url, "coldstart")
            if args.delay_ms is not None:
                proxy = counter = h.ProxyProcess(moto.url, args.delay_ms)
                endpoint = proxy.url
        fn = h.function_entry(manifest, function)
        users_table = fn["environment"].get("USERS_TABLE")
        events_for = event_maker(function, fn, args.records)
        aws_url = backend.url if backend else moto.url  # for what is prepared outside the timing
        api = h.FakeRuntimeApi()

        def drain() -> None:
            """moto's SendMessage slows down as a queue grows: empty them (not timed)."""
            if moto:
                h.drain_queues(moto.url)

        impls = []  # (label, argv, env, cwd)
        for label, path in binaries:
            env = h.lambda_env(manifest, env_file, function, endpoint=endpoint, extra={"_HANDLER": "bootstrap",
                                                                     "LAMBDA_TASK_ROOT": str(path.parent),
                                                                     **extra_env.get(label, {})})
            impls.append((label, [str(path)], env, None))
        for label, interpreter, task_root in pythons:
            env = h.lambda_env(manifest, env_file, function, endpoint=endpoint, extra={
                "_HANDLER": "handler.handler", "LAMBDA_TASK_ROOT": str(task_root),
                "PYTHONDONTWRITEBYTECODE": "1",  # as on Lambda's read-only /var/task
                **extra_env.get(label, {}),
            })
            impls.append((label, [str(interpreter), str(h.BENCH / "baseline" / "bootstrap.py")], env, task_root))

        results: dict[str, list[h.ProcessResult]] = {label: [] for label, *_ in impls}
        errors: list[str] = []
        for i in range(-1, args.runs):  # -1: warm-up, not recorded
            for label, argv, env, cwd in impls:
                events = [json.dumps(events_for(aws_url, f"cs-{label}")).encode() for _ in range(1 + args.warm)]
                per_batch: list[dict[str, int]] = []  # AWS calls of each batch, by operation
                units_per_batch: list[dict[str, float]] = []  # billable units (fixed backend only)

                def between(_k: int) -> None:
                    if counter:
                        st = counter.stats()
                        per_batch.append(st["calls"])
                        units_per_batch.append(st.get("units") or {})
                        counter.reset()
                    drain()  # outside the timing: the next event is not offered yet

                if counter:
                    counter.reset()
                r = h.run_process(api, label, argv, env, events, cwd=cwd, between=between,
                                  function_arn=fn["function_arn"], deadline_s=fn["timeout_seconds"])
                for inv in r.invocations:
                    if r.error is None and json.loads(inv["body"] or "null") != SUCCESS[function]:
                        r.error = f"unexpected response {inv['body'][:300]}"
                if r.error:
                    errors.append(f"{label} run {i}: {r.error}")
                    h.log(f"  {label} run {i}: ERROR {r.error}")
                elif i >= 0:
                    results[label].append(r)
                    if counter:
                        calls.setdefault(label, []).append(per_batch)
                        units.setdefault(label, []).append(units_per_batch)
                drain()
            if i >= 0 and (i + 1) % 10 == 0:
                h.log(f"  {i + 1}/{args.runs} runs")

        stored = None
        if function == "user-processor":
            stored = backend.items(users_table) if backend else h.count_items(moto.url, users_table)
    finally:
        for server in (proxy, backend, moto):
            if server:
                server.close()

    table = {}
    for label, rs in results.items():
        table[label] = {
            "init_ms": h.summary([r.init_ms for r in rs]),
            "first_response_ms": h.summary([r.first_response_ms for r in rs]),
            "invocation_ms": h.summary([r.invocations[0]["wall_ms"] for r in rs]),
            "warm_invocation_ms": h.summary([inv["wall_ms"] for r in rs for inv in r.invocations[1:]]),
            "peak_rss_mib": h.summary([r.peak_rss_kib / 1024 for r in rs if r.peak_rss_kib]),
            "aws_calls": h.summary([sum(b[0].values()) for b in calls[label]]) if label in calls else None,
            "aws_calls_warm": (h.summary([sum(n.values()) for b in calls[label] for n in b[1:]])
                               if label in calls and args.warm else None),
            # median calls per operation over the warm batches (the first batch if --warm 0): what
            # bench/cost.py prices
            "aws_calls_by_operation": by_operation([n for b in calls[label] for n in (b[1:] or b[:1])])
            if label in calls else None,
            # median billable units of those batches as the fixed backend counted them (write units from
            # item sizes, ...): what bench/cost.py prices first
            "aws_units_by_unit": by_operation([n for b in units[label] for n in (b[1:] or b[:1])]) or None
            if label in units else None,
        }
    data = {
        "benchmark": "coldstart", "function": function, "records": args.records, "runs": args.runs,
        "backend": args.backend, "injected_delay_ms": args.delay_ms,
        "binaries": {label: {"path": str(path), "bytes": path.stat().st_size} for label, path in binaries},
        "extra_env": extra_env,
        "pythons": {label: {"interpreter": str(path), "task_root": str(task_root), "version": subprocess.run(
            [str(path), "-c", VERSIONS], env={"LAMBDA_TASK_ROOT": str(task_root)}, capture_output=True,
            text=True).stdout.strip()} for label, path, task_root in pythons},
        "users_stored": stored, "errors": errors,
        "machine": h.machine(), "loadavg_before": load_before, "git": h.git_rev(),
        "command": " ".join([".venv/bin/python", "bench/coldstart.py"] + sys.argv[1:]),
        "results": table,
        "raw": {label: [{"init_ms": r.init_ms, "first_response_ms": r.first_response_ms,
                         "invocation_ms": r.invocations[0]["wall_ms"],
                         "warm_invocation_ms": [inv["wall_ms"] for inv in r.invocations[1:]],
                         "peak_rss_kib": r.peak_rss_kib} for r in rs] for label, rs in results.items()},
        "aws_calls_per_batch": calls,
    }
    out = h.write_json(json_out, data)

    if backend:
        via = f"fixed-latency backend, {args.delay_ms if args.delay_ms is not None else 10.0:g} ms per AWS call"
    else:
        via = "moto" if args.delay_ms is None else f"moto + {args.delay_ms:g} ms injected per AWS call"
    warm = f", then {args.warm} warm" if args.warm else ""
    what = "one EventBridge event" if SUCCESS[function] is None else f"{args.records}-record SQS batch"
    print(f"\n### {args.title}: {function}, {what}{warm}, {via}, {args.runs} runs each (median / p90)\n")
    columns = ["init ms", "first response ms", "invocation ms"] + (["warm invocation ms"] if args.warm else []) \
        + ["peak RSS MiB"] + (["AWS calls per batch (first" + (" / warm)" if args.warm else ")")] if calls else [])
    print("| implementation | binary | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for label, t in table.items():
        if label in data["binaries"]:
            size = f"{data['binaries'][label]['bytes'] / 2**20:.1f} MiB"
        else:
            size = data["pythons"][label]["version"]
        keys = ["init_ms", "first_response_ms", "invocation_ms"] + (["warm_invocation_ms"] if args.warm else []) \
            + ["peak_rss_mib"]
        cells = [fmt2(t[k]) for k in keys]
        if calls:
            counts = [t[k]["median"] for k in ("aws_calls", "aws_calls_warm") if t[k]]
            cells.append(" / ".join(f"{n:g}" for n in counts) if counts else "—")
        print(f"| {label} | {size} | " + " | ".join(cells) + " |")
    if calls:
        print(f"\nAWS calls per {'warm' if args.warm else 'first'} batch by operation (median):\n")
        for label, t in table.items():
            ops = ", ".join(f"{op} {n:g}" for op, n in (t["aws_calls_by_operation"] or {}).items())
            print(f"- {label}: {ops or '—'}")
    for py_label, *_ in pythons:
        py = table[py_label]
        print()
        for label, t in table.items():
            if label not in data["binaries"]:
                continue
            for line in ratios(label, t, py_label, py):
                print(line)
    if stored is not None:
        print(f"\nusers stored: {stored} (expected {(args.runs + 1) * (1 + args.warm) * args.records * len(impls)} "
              "incl. warm-up)")
    print(f"\nerrors: {len(errors)}; load average before/after: "
          f"{'/'.join(f'{x:.2f}' for x in load_before)} -> {'/'.join(f'{x:.2f}' for x in data['machine']['loadavg'])}")
    print(f"raw: {out.relative_to(h.ROOT)}")
    return 1 if errors else 0


# Versions of each Python peer's interpreter and libraries, for the table and the JSON.
# (Powertools only where the handler imports it: the seed-style peer shares its venv.)
VERSIONS = """
import os, sys, boto3
found = [f"Python {sys.version.split()[0]}", f"boto3 {boto3.__version__}"]
if "aws_lambda_powertools" in open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "handler.py")).read():
    from aws_lambda_powertools.shared.version import VERSION
    found.append(f"Powertools {VERSION}")
print(", ".join(found))
"""

# Issue 11's targets for eventline against the Powertools peer (medians): init and first 10-record batch
# at least this many times faster, peak RSS at most this fraction. Against the other peers: ratios only.
TARGETS = {"powertools": {"init_ms": 50, "first_response_ms": 10, "peak_rss_mib": 1 / 4}}


def ratios(label: str, t: dict, peer_label: str, peer: dict) -> list[str]:
    """One line per figure: how `label` compares with `peer_label` (medians), with the verdict where a
    target is set."""
    lines = []
    targets = TARGETS.get(peer_label, {})
    for key, name in (("init_ms", "init"), ("first_response_ms", "first response"), ("peak_rss_mib", "peak RSS")):
        ours, theirs = t[key]["median"], peer[key]["median"]
        if not ours or not theirs:
            continue
        target = targets.get(key)
        if key == "peak_rss_mib":
            fraction = ours / theirs
            verdict = f"; target <= {target:.2f}: {'meets' if fraction <= target else 'misses'}" if target else ""
            lines.append(f"- {label} vs {peer_label}, {name}: {fraction:.2f} of it (median{verdict})")
        else:
            ratio = theirs / ours
            verdict = f"; target >= {target}x: {'meets' if ratio >= target else 'misses'}" if target else ""
            lines.append(f"- {label} vs {peer_label}, {name}: {ratio:.1f}x faster (median{verdict})")
    return lines


def event_maker(function: str, fn: dict, records: int):
    """`make(aws_url, tag)`: one fresh event for `function` as its trigger delivers it, with whatever it
    needs stored first (at `aws_url`, before the process is spawned, not timed)."""
    if function == "user-processor":
        queue_arn = fn["sqs_sources"][0]["queue_arn"]
        return lambda _url, tag: h.signup_batch(queue_arn, records, tag=tag)
    if function == "notification-processor":
        queue_arn = fn["sqs_sources"][0]["queue_arn"]
        table = fn["environment"]["USERS_TABLE"]

        def notifications(url: str, tag: str) -> dict:
            users = [f"{tag}-{uuid.uuid4().hex[:20]}" for _ in range(records)]
            put_users(url, table, users)
            return {"Records": [h.sqs_record(
                json.dumps({"notification_id": f"signup_confirmation.{uid}", "user_id": uid,
                            "kind": "signup_confirmation"}, separators=(",", ":")),
                queue_arn,
                message_attributes={"correlation_id": {"stringValue": str(uuid.uuid4()), "dataType": "String",
                                                       "stringListValues": [], "binaryListValues": []}},
            ) for uid in users]}
        return notifications
    sample = json.loads((h.SRC / "events" / f"{function}.eventbridge.json").read_text())

    def user_created(_url: str, tag: str) -> dict:
        uid = f"{tag}-{uuid.uuid4().hex[:20]}"
        now = rfc3339_ms(datetime.now(timezone.utc))
        detail = dict(sample["detail"], user_id=uid, email=f"{uid}@example.com", created_at=now,
                      event_key=f"user-created/{uid}", correlation_id=str(uuid.uuid4()))
        return dict(sample, id=str(uuid.uuid4()), time=now[:19] + "Z", detail=detail)
    return user_created


def put_users(url: str, table: str, user_ids: list[str]) -> None:
    """Stores users as user-processor does (the attributes of crates/aws's users item)."""
    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=url, region_name=h.REGION,
                       aws_access_key_id="test", aws_secret_access_key="test")
    now = rfc3339_ms(datetime.now(timezone.utc))
    for uid in user_ids:
        ddb.put_item(TableName=table, Item={"user_id": {"S": uid}, "email": {"S": f"{uid}@example.com"},
                                            "name": {"S": "Bench Mark"}, "created_at": {"S": now}})


def rfc3339_ms(t: datetime) -> str:
    """UTC with milliseconds, as the Rust Timestamp prints it: 2026-11-27T09:24:26.123Z."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def by_operation(batches: list[dict[str, int]]) -> dict[str, float]:
    """Median calls per operation over `batches` (an operation a batch did not call counts 0)."""
    ops = sorted({op for b in batches for op in b})
    return {op: h.summary([b.get(op, 0) for b in batches])["median"] for op in ops}


def fmt2(s: dict) -> str:
    return f"{h.fmt(s['median'])} / {h.fmt(s['p90'])}"


if __name__ == "__main__":
    sys.exit(main())
