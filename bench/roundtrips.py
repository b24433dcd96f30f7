#!/usr/bin/env python3
"""AWS round trips per batch: how many calls user-processor makes for a 10-record batch, and how long
the invocation takes when every call costs a network round trip.

    .venv/bin/python bench/roundtrips.py [--runs 10] [--warm 2] [--delays 0,10]

Starts a private moto server, provisions template.yaml into it, and puts bench/latency_proxy.py in
front of it (the function's AWS_ENDPOINT_URL points at the proxy; provisioning and the harness talk to
moto directly, so they are not counted). For each injected delay, each run spawns the release binary
fresh under the fake Lambda Runtime API and gives it 1 + --warm batches of 10 fresh signups, one after
the other. Per invocation it records the AWS calls by operation (proxy counters) and the wall time
from the event being handed out to the response being received. The first invocation of a process
is "cold" (connections to the endpoint are opened then), the others "warm".
Prints Markdown tables; raw numbers go to bench/.out/roundtrips.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402

FUNCTION = "user-processor"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10, help="processes per delay (default 10)")
    p.add_argument("--warm", type=int, default=2, help="warm batches per process after the cold one (default 2)")
    p.add_argument("--records", type=int, default=10)
    p.add_argument("--delays", default="0,10", help="injected ms per AWS call, comma-separated (default 0,10)")
    p.add_argument("--binary", default=str(h.ROOT / "target" / "release" / FUNCTION))
    p.add_argument("--json-out", default="roundtrips.json")
    args = p.parse_args()
    binary = Path(args.binary)
    if not binary.is_file():
        h.log(f"{binary} does not exist: cargo build --release --bin {FUNCTION}")
        return 2
    delays = [float(d) for d in args.delays.split(",")]

    load_before = h.machine()["loadavg"]
    moto = h.Moto("roundtrips")
    results: dict[str, dict] = {}
    errors: list[str] = []
    try:
        h.log(f"moto on {moto.url}; provisioning template.yaml ...")
        manifest, env_file = h.provision(moto.url, "roundtrips")
        fn = h.function_entry(manifest, FUNCTION)
        queue_arn = fn["sqs_sources"][0]["queue_arn"]
        api = h.FakeRuntimeApi()
        for delay in delays:
            proxy = h.ProxyProcess(moto.url, delay)
            env = h.lambda_env(manifest, env_file, FUNCTION, endpoint=proxy.url, extra={"_HANDLER": "bootstrap"})
            cold, warm, calls_cold, calls_warm, stats_all = [], [], [], [], []
            try:
                for i in range(-1, args.runs):  # -1: warm-up process, not recorded
                    per_inv: list[dict] = []

                    def between(_k: int) -> None:
                        per_inv.append(proxy.stats())
                        h.drain_queues(moto.url)
                        proxy.reset()

                    h.drain_queues(moto.url)
                    proxy.reset()
                    events = [json.dumps(h.signup_batch(queue_arn, args.records, tag="rt")).encode()
                              for _ in range(1 + args.warm)]
                    r = h.run_process(api, f"roundtrips-{delay:g}ms", [str(binary)], env, events,
                                      function_arn=fn["function_arn"], deadline_s=fn["timeout_seconds"],
                                      between=between)
                    for inv in r.invocations:
                        if r.error is None and json.loads(inv["body"] or "null") != {"batchItemFailures": []}:
                            r.error = f"unexpected response {inv['body'][:300]}"
                    if r.error:
                        errors.append(f"{delay:g} ms run {i}: {r.error}")
                        h.log(f"  {delay:g} ms run {i}: ERROR {r.error}")
                        continue
                    if i < 0:
                        continue
                    cold.append(r.invocations[0]["wall_ms"])
                    warm += [inv["wall_ms"] for inv in r.invocations[1:]]
                    calls_cold.append(per_inv[0]["calls"])
                    calls_warm += [st["calls"] for st in per_inv[1:]]
                    stats_all += per_inv
            finally:
                proxy.close()

            def calls_summary(rows: list[dict]) -> dict:
                ops = sorted({op for row in rows for op in row})
                return {
                    "total": h.summary([sum(row.values()) for row in rows]),
                    "by_operation": {op: h.summary([row.get(op, 0) for row in rows]) for op in ops},
                    "distinct_patterns": len({json.dumps(row, sort_keys=True) for row in rows}),
                }

            moto_ops: dict[str, list[float]] = {}
            for st in stats_all:
                for op, ms in st["upstream_ms"].items():
                    moto_ops.setdefault(op, []).append(ms / st["calls"][op])
            results[f"{delay:g}"] = {
                "delay_ms": delay,
                "moto_ms_per_batch": h.summary([sum(st["upstream_ms"].values()) for st in stats_all]),
                "moto_ms_per_call": {op: h.summary(v) for op, v in sorted(moto_ops.items())},
                "aws_span_ms": h.summary([st["span_ms"] for st in stats_all]),
                "cold_wall_ms": h.summary(cold), "warm_wall_ms": h.summary(warm),
                "calls_cold": calls_summary(calls_cold), "calls_warm": calls_summary(calls_warm),
                "raw": {"cold_wall_ms": cold, "warm_wall_ms": warm, "proxy_stats": stats_all},
            }
            h.log(f"  delay {delay:g} ms done")
    finally:
        moto.close()

    data = {
        "benchmark": "roundtrips", "function": FUNCTION, "binary": str(binary), "records": args.records,
        "runs": args.runs, "warm_per_run": args.warm, "errors": errors,
        "batch_concurrency": fn["environment"].get("BATCH_CONCURRENCY", "10 (default)"),
        "machine": h.machine(), "loadavg_before": load_before, "git": h.git_rev(),
        "command": " ".join([".venv/bin/python", "bench/roundtrips.py"] + sys.argv[1:]),
        "results": results,
    }
    out = h.write_json(args.json_out, data)

    print(f"\n### AWS round trips: {FUNCTION}, {args.records}-record batch, {args.runs} processes x "
          f"(1 cold + {args.warm} warm) invocations per delay\n")
    print("| injected delay per call | AWS calls per batch (cold / warm) | by operation (warm, median) "
          "| cold invocation ms (median / p90) | warm invocation ms (median / p90) |")
    print("|---|---|---|---|---|")
    for key, r in results.items():
        ops = ", ".join(f"{op} {s['median']:g}" for op, s in r["calls_warm"]["by_operation"].items())
        print(f"| {key} ms | {r['calls_cold']['total']['median']:g} / {r['calls_warm']['total']['median']:g} | {ops} "
              f"| {h.fmt(r['cold_wall_ms']['median'])} / {h.fmt(r['cold_wall_ms']['p90'])} "
              f"| {h.fmt(r['warm_wall_ms']['median'])} / {h.fmt(r['warm_wall_ms']['p90'])} |")
    print("\nWhere the time goes (all invocations). moto wait = time the proxy waited for moto's answer; with "
          "concurrent calls it includes queueing behind the others, so the sum exceeds the wall time:\n")
    print("| injected delay | moto wait summed over the batch's calls, ms (median) | first call -> last answer ms (median) "
          "| moto wait per call by operation, ms (median) |")
    print("|---|---|---|---|")
    for key, r in results.items():
        ops = ", ".join(f"{op} {s['median']:.1f}" for op, s in r["moto_ms_per_call"].items())
        print(f"| {key} ms | {h.fmt(r['moto_ms_per_batch']['median'])} | {h.fmt(r['aws_span_ms']['median'])} | {ops} |")
    print("\nissue targets: <= 12 AWS calls per 10 records; <= 45 ms wall at 10 ms per call")
    print(f"errors: {len(errors)}; load average before/after: "
          f"{'/'.join(f'{x:.2f}' for x in load_before)} -> {'/'.join(f'{x:.2f}' for x in data['machine']['loadavg'])}")
    print(f"raw: {out.relative_to(h.ROOT)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
