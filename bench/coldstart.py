#!/usr/bin/env python3
"""Cold-start benchmark: user-processor (Rust release binary) vs the classic Python/boto3 handler.

    .venv/bin/python bench/coldstart.py [--runs 30] [--binary LABEL=PATH ...] [--python LABEL=INTERPRETER ...]
                                        [--no-python | --no-rust] [--set LABEL:KEY=VALUE ...] [--delay-ms 10]

Starts a private moto server, provisions template.yaml into it (scripts/provision.py), and serves a
fake Lambda Runtime API on 127.0.0.1. Each run spawns the function process fresh, with the function's
environment from the manifest plus the variables Lambda sets, and hands it one 10-record SQS signup
batch with fresh user ids. Per run it records

    init            spawn -> first GET /runtime/invocation/next
    first response  spawn -> the response POST for that first batch
    invocation      event written -> response received
    peak RSS        VmHWM of the process, read just before it is killed

The Python baseline (bench/baseline/) runs by default in bench/.out/venv-baseline, a venv holding only
boto3 (bench/baseline/requirements.txt), created on first use. --delay-ms puts bench/latency_proxy.py
between the functions and moto and also reports the AWS calls of each batch.

Runs of the different implementations are interleaved (A B A B ...) so machine noise hits them
alike; one unrecorded warm-up run per implementation goes first (page cache, moto's lazy imports).
All queues are drained between runs (not timed): moto's SendMessage slows down as a queue grows.
Prints a Markdown table; raw numbers go to bench/.out/coldstart.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402

FUNCTION = "user-processor"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=30, help="recorded runs per implementation (default 30)")
    p.add_argument("--records", type=int, default=10, help="records in the SQS batch (default 10)")
    p.add_argument("--binary", action="append", metavar="LABEL=PATH",
                   help="a Rust binary to measure (repeatable; default rust=target/release/user-processor)")
    p.add_argument("--set", action="append", default=[], metavar="LABEL:KEY=VALUE",
                   help="extra environment variable for one implementation (repeatable), e.g. "
                        "rust-bundle:SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt with --binary rust-bundle=...")
    p.add_argument("--python", action="append", metavar="LABEL=INTERPRETER",
                   help="a Python interpreter for the baseline (repeatable; default python=bench/.out/venv-baseline/"
                        "bin/python, a boto3-only venv created on first use)")
    p.add_argument("--no-python", action="store_true", help="skip the Python baseline")
    p.add_argument("--no-rust", action="store_true", help="only the Python baseline")
    p.add_argument("--delay-ms", type=float, default=None,
                   help="put bench/latency_proxy.py between the functions and moto, adding this delay to every "
                        "AWS call (and count the calls of each first batch)")
    p.add_argument("--title", default="Cold start", help="heading of the printed table")
    p.add_argument("--json-out", default="coldstart.json", help="file name under bench/.out/")
    args = p.parse_args()

    binaries = []
    for spec in [] if args.no_rust else args.binary or [f"rust={h.ROOT / 'target' / 'release' / FUNCTION}"]:
        label, _, path = spec.partition("=")
        path = Path(path) if Path(path).is_absolute() else h.ROOT / path
        if not path.is_file():
            h.log(f"{path} does not exist: build it first (cargo build --release --bin {FUNCTION})")
            return 2
        binaries.append((label, path))

    pythons = []
    if not args.no_python:
        for spec in args.python or [f"python={h.baseline_python()}"]:
            label, _, path = spec.partition("=")
            path = Path(path) if Path(path).is_absolute() else h.ROOT / path
            if path == h.BASELINE_VENV / "bin" / "python":
                h.baseline_python()  # created on first use
            pythons.append((label, path))
    extra_env: dict[str, dict[str, str]] = {}
    for spec in args.set:
        label, _, kv = spec.partition(":")
        key, _, value = kv.partition("=")
        extra_env.setdefault(label, {})[key] = value

    load_before = h.machine()["loadavg"]
    moto = h.Moto("coldstart")
    proxy = None
    calls: dict[str, list[int]] = {}
    try:
        h.log(f"moto on {moto.url}; provisioning template.yaml ...")
        manifest, env_file = h.provision(moto.url, "coldstart")
        fn = h.function_entry(manifest, FUNCTION)
        queue_arn = fn["sqs_sources"][0]["queue_arn"]
        api = h.FakeRuntimeApi()
        endpoint = None
        if args.delay_ms is not None:
            proxy = h.ProxyProcess(moto.url, args.delay_ms)
            endpoint = proxy.url

        impls = []  # (label, argv, env, cwd)
        for label, path in binaries:
            env = h.lambda_env(manifest, env_file, FUNCTION, endpoint=endpoint, extra={"_HANDLER": "bootstrap",
                                                                     "LAMBDA_TASK_ROOT": str(path.parent),
                                                                     **extra_env.get(label, {})})
            impls.append((label, [str(path)], env, None))
        for label, interpreter in pythons:
            base = h.BENCH / "baseline"
            env = h.lambda_env(manifest, env_file, FUNCTION, endpoint=endpoint, extra={
                "_HANDLER": "handler.handler", "LAMBDA_TASK_ROOT": str(base),
                "PYTHONDONTWRITEBYTECODE": "1",  # as on Lambda's read-only /var/task
                **extra_env.get(label, {}),
            })
            impls.append((label, [str(interpreter), str(base / "bootstrap.py")], env, base))

        results: dict[str, list[h.ProcessResult]] = {label: [] for label, *_ in impls}
        errors: list[str] = []
        for i in range(-1, args.runs):  # -1: warm-up, not recorded
            for label, argv, env, cwd in impls:
                event = json.dumps(h.signup_batch(queue_arn, args.records, tag=f"cs-{label}")).encode()
                if proxy:
                    proxy.reset()
                r = h.run_process(api, label, argv, env, [event], cwd=cwd,
                                  function_arn=fn["function_arn"], deadline_s=fn["timeout_seconds"])
                body = r.invocations[0]["body"] if r.invocations else ""
                if r.error is None and json.loads(body or "null") != {"batchItemFailures": []}:
                    r.error = f"unexpected response {body[:300]}"
                if r.error:
                    errors.append(f"{label} run {i}: {r.error}")
                    h.log(f"  {label} run {i}: ERROR {r.error}")
                elif i >= 0:
                    results[label].append(r)
                    if proxy:
                        calls.setdefault(label, []).append(proxy.stats()["total"])
                h.drain_queues(moto.url)
            if i >= 0 and (i + 1) % 10 == 0:
                h.log(f"  {i + 1}/{args.runs} runs")

        stored = h.count_items(moto.url, fn["environment"]["USERS_TABLE"])
    finally:
        if proxy:
            proxy.close()
        moto.close()

    table = {}
    for label, rs in results.items():
        table[label] = {
            "init_ms": h.summary([r.init_ms for r in rs]),
            "first_response_ms": h.summary([r.first_response_ms for r in rs]),
            "invocation_ms": h.summary([r.invocations[0]["wall_ms"] for r in rs]),
            "peak_rss_mib": h.summary([r.peak_rss_kib / 1024 for r in rs if r.peak_rss_kib]),
            "aws_calls": h.summary(calls[label]) if label in calls else None,
        }
    data = {
        "benchmark": "coldstart", "function": FUNCTION, "records": args.records, "runs": args.runs,
        "injected_delay_ms": args.delay_ms,
        "binaries": {label: {"path": str(path), "bytes": path.stat().st_size} for label, path in binaries},
        "extra_env": extra_env,
        "pythons": {label: {"interpreter": str(path), "version": subprocess.run(
            [str(path), "-c", "import sys, boto3; print(sys.version.split()[0], boto3.__version__)"],
            capture_output=True, text=True).stdout.strip()} for label, path in pythons},
        "users_stored": stored, "errors": errors,
        "machine": h.machine(), "loadavg_before": load_before, "git": h.git_rev(),
        "command": " ".join([".venv/bin/python", "bench/coldstart.py"] + sys.argv[1:]),
        "results": table,
        "raw": {label: [{"init_ms": r.init_ms, "first_response_ms": r.first_response_ms,
                         "invocation_ms": r.invocations[0]["wall_ms"], "peak_rss_kib": r.peak_rss_kib}
                        for r in rs] for label, rs in results.items()},
    }
    out = h.write_json(args.json_out, data)

    via = "moto" if args.delay_ms is None else f"moto + {args.delay_ms:g} ms injected per AWS call"
    print(f"\n### {args.title}: {FUNCTION}, {args.records}-record SQS batch, {via}, {args.runs} runs each "
          f"(median / p90)\n")
    print("| implementation | binary | init ms | first response ms | invocation ms | peak RSS MiB |"
          + (" AWS calls |" if calls else ""))
    print("|---|---|---|---|---|---|" + ("---|" if calls else ""))
    for label, t in table.items():
        if label in data["binaries"]:
            size = f"{data['binaries'][label]['bytes'] / 2**20:.1f} MiB"
        else:
            py_version, _, boto_version = data["pythons"][label]["version"].partition(" ")
            size = f"Python {py_version}, boto3 {boto_version}"
        cells = [f"{fmt2(t[k])}" for k in ("init_ms", "first_response_ms", "invocation_ms", "peak_rss_mib")]
        if calls:
            cells.append(f"{t['aws_calls']['median']:g}" if t["aws_calls"] else "—")
        print(f"| {label} | {size} | " + " | ".join(cells) + " |")
    for py_label, _ in pythons:
        py = table[py_label]
        print()
        for label, t in table.items():
            if label not in data["binaries"]:
                continue
            for k, name, target in (("init_ms", "init", 50), ("first_response_ms", "first response", 15)):
                if t[k]["median"] and py[k]["median"]:
                    ratio = py[k]["median"] / t[k]["median"]
                    verdict = "meets" if ratio >= target else "misses"
                    print(f"- {label} vs {py_label}, {name}: {ratio:.1f}x faster (median; target >= {target}x: {verdict})")
    print(f"\nusers stored in moto: {stored} (expected {(args.runs + 1) * args.records * len(impls)} incl. warm-up); "
          f"errors: {len(errors)}; load average before/after: "
          f"{'/'.join(f'{x:.2f}' for x in load_before)} -> {'/'.join(f'{x:.2f}' for x in data['machine']['loadavg'])}")
    print(f"raw: {out.relative_to(h.ROOT)}")
    return 1 if errors else 0


def fmt2(s: dict) -> str:
    return f"{h.fmt(s['median'])} / {h.fmt(s['p90'])}"


if __name__ == "__main__":
    sys.exit(main())
