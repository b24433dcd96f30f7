#!/usr/bin/env python3
"""AWS round trips per batch: how many calls user-processor makes for a 10-record batch, in how many
round trips, and how long the invocation takes when every call costs a network round trip.

    .venv/bin/python bench/roundtrips.py [--backend moto|fixed] [--runs 10] [--warm 2] [--delays 0,10]
    .venv/bin/python bench/roundtrips.py --compare roundtrips.json roundtrips-fixed.json

Two backends answer the function's AWS calls:

- `moto` (default): a private moto server with template.yaml provisioned into it, behind
  bench/latency_proxy.py, which holds every call --delays ms before forwarding it. moto answers one
  request at a time (and spends ~120 ms in a 10-entry PutEvents), so the wall time mostly measures moto.
- `fixed`: bench/backend's fixed-latency-aws (build it with
  `cargo build --release -p eventline-bench-backend`), which answers every call in AWS's shape after
  its operation's latency (--delays ms for a single-item DynamoDB write, more for a transaction, S3 or
  SES, batches by their entries: bench/README.md), all calls concurrently, with no emulator cost: the
  wall time is the code's own critical path (the round trips' latencies + CPU). The function gets the
  same environment as with moto (template.yaml is provisioned into a short-lived moto for the
  manifest, then moto stops). The backend also counts the DynamoDB write units of each batch (from the
  items' sizes). `--fail-entry-rate R` fails a seeded share of SendMessageBatch / PutEvents /
  BatchWriteItem entries; `--conflict-rate R` cancels that share of transactions with
  TransactionConflict; `--throttle-rate R` answers that share of calls with the service's throttling
  error (the SDK retries them).

For each delay, each run spawns the release binary fresh under the fake Lambda Runtime API and gives it
1 + --warm batches of fresh signups, one after the other. Per invocation it records the AWS calls by
operation, the round trips (groups of overlapping calls) and the wall time from the event being handed
out to the response being received. The first invocation of a process is "cold" (connections to the
endpoint are opened then), the others "warm". Provisioning and queue draining are not counted.
Prints Markdown tables; raw numbers go to bench/.out/roundtrips.json (or --json-out).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402

FUNCTION = "user-processor"


def calls_summary(rows: list[dict]) -> dict:
    ops = sorted({op for row in rows for op in row})
    return {
        "total": h.summary([sum(row.values()) for row in rows]),
        "by_operation": {op: h.summary([row.get(op, 0) for row in rows]) for op in ops},
        "distinct_patterns": len({json.dumps(row, sort_keys=True) for row in rows}),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=["moto", "fixed"], default="moto",
                   help="moto behind the latency proxy (default), or the fixed-latency backend")
    p.add_argument("--runs", type=int, default=10, help="processes per delay (default 10)")
    p.add_argument("--warm", type=int, default=2, help="warm batches per process after the cold one (default 2)")
    p.add_argument("--records", type=int, default=10)
    p.add_argument("--delays", default="0,10", help="ms per AWS call, comma-separated (default 0,10)")
    p.add_argument("--fail-entry-rate", type=float, default=0.0,
                   help="fixed backend: share of batch-API entries that fail (default 0)")
    p.add_argument("--conflict-rate", type=float, default=0.0,
                   help="fixed backend: share of TransactWriteItems cancelled with TransactionConflict (default 0)")
    p.add_argument("--throttle-rate", type=float, default=0.0,
                   help="fixed backend: share of calls answered with a throttling error (default 0)")
    p.add_argument("--seed", type=int, default=1, help="fixed backend: seed of those failures (default 1)")
    p.add_argument("--binary", default=str(h.ROOT / "target" / "release" / FUNCTION))
    p.add_argument("--backend-binary", default=str(h.FIXED_BACKEND))
    p.add_argument("--json-out", default="roundtrips.json")
    p.add_argument("--compare", nargs="+", metavar="JSON",
                   help="only print calls, round trips and wall time side by side from earlier runs' JSON "
                        "(names relative to bench/.out/)")
    args = p.parse_args()
    if args.compare:
        compare([json.loads((h.OUT / name).read_text()) for name in args.compare])
        return 0
    binary = Path(args.binary)
    if not binary.is_file():
        h.log(f"{binary} does not exist: cargo build --release --bin {FUNCTION}")
        return 2
    fixed = args.backend == "fixed"
    if fixed and not Path(args.backend_binary).is_file():
        h.log(f"{args.backend_binary} does not exist: cargo build --release -p eventline-bench-backend")
        return 2
    if args.fail_entry_rate and not fixed:
        h.log("--fail-entry-rate needs --backend fixed")
        return 2
    delays = [float(d) for d in args.delays.split(",")]

    load_before = h.machine()["loadavg"]
    moto = None
    results: dict[str, dict] = {}
    errors: list[str] = []
    try:
        if fixed:
            h.log("provisioning template.yaml into a short-lived moto for the functions' environment ...")
            manifest, env_file, tables = h.fixed_stack("roundtrips")
        else:
            moto = h.Moto("roundtrips")
            h.log(f"moto on {moto.url}; provisioning template.yaml ...")
            manifest, env_file = h.provision(moto.url, "roundtrips")
        fn = h.function_entry(manifest, FUNCTION)
        users_table = fn["environment"]["USERS_TABLE"]
        queue_arn = fn["sqs_sources"][0]["queue_arn"]
        api = h.FakeRuntimeApi()
        for delay in delays:
            if fixed:
                server = h.FixedBackend(tables, delay, fail_entry_rate=args.fail_entry_rate, seed=args.seed,
                                        binary=Path(args.backend_binary))
                if args.conflict_rate or args.throttle_rate:
                    server._call(f"/faults?conflicts={args.conflict_rate}&throttles={args.throttle_rate}", "POST")
            else:
                server = h.ProxyProcess(moto.url, delay)
            env = h.lambda_env(manifest, env_file, FUNCTION, endpoint=server.url, extra={"_HANDLER": "bootstrap"})
            cold, warm, stats_cold, stats_warm, failed_records = [], [], [], [], []
            faults = args.fail_entry_rate or args.conflict_rate or args.throttle_rate
            try:
                for i in range(-1, args.runs):  # -1: warm-up process, not recorded
                    per_inv: list[dict] = []
                    problems: list[str] = []

                    def between(k: int) -> None:
                        st = server.stats()
                        per_inv.append(st)
                        # Fixed backend, no failures injected: every record's user was really written.
                        if fixed and not faults and st["items"].get(users_table) != args.records * (k + 1):
                            problems.append(f"invocation {k}: {st['items'].get(users_table)} users stored, "
                                            f"expected {args.records * (k + 1)}")
                        if moto:
                            h.drain_queues(moto.url)
                        server.reset()

                    if moto:
                        h.drain_queues(moto.url)
                        server.reset()
                    else:
                        server.reset(data=True)
                    events = [json.dumps(h.signup_batch(queue_arn, args.records, tag="rt")).encode()
                              for _ in range(1 + args.warm)]
                    r = h.run_process(api, f"roundtrips-{args.backend}-{delay:g}ms", [str(binary)], env, events,
                                      function_arn=fn["function_arn"], deadline_s=fn["timeout_seconds"],
                                      between=between)
                    # Under injected faults a batch whose every record failed (the function's error
                    # AllRecordsFailed) is an outcome to count, not a broken run.
                    if faults and r.error and all(inv["status"] == "response" or "AllRecordsFailed" in inv["body"]
                                                  for inv in r.invocations):
                        r.error = None
                    run_failed: list[int] = []  # records reported failed, per invocation of this process
                    for inv in r.invocations:
                        if r.error is None and faults and inv["status"] != "response":
                            run_failed.append(args.records)
                            continue
                        answer = json.loads(inv["body"] or "null") if r.error is None else None
                        if r.error is None and faults:
                            run_failed.append(len((answer or {}).get("batchItemFailures", [])))
                        elif r.error is None and answer != {"batchItemFailures": []}:
                            r.error = f"unexpected response {inv['body'][:300]}"
                    r.error = r.error or (problems[0] if problems else None)
                    if r.error:
                        errors.append(f"{delay:g} ms run {i}: {r.error}")
                        h.log(f"  {delay:g} ms run {i}: ERROR {r.error}")
                        continue
                    if i < 0:
                        continue
                    failed_records += run_failed
                    cold.append(r.invocations[0]["wall_ms"])
                    warm += [inv["wall_ms"] for inv in r.invocations[1:]]
                    stats_cold.append(per_inv[0])
                    stats_warm += per_inv[1:]
            finally:
                server.close()

            stats_all = stats_cold + stats_warm
            result = {
                "delay_ms": delay,
                "aws_span_ms": h.summary([st["span_ms"] for st in stats_all]),
                "cold_wall_ms": h.summary(cold), "warm_wall_ms": h.summary(warm),
                "calls_cold": calls_summary([st["calls"] for st in stats_cold]),
                "calls_warm": calls_summary([st["calls"] for st in stats_warm]),
                "round_trips_cold": h.summary([st["round_trips"] for st in stats_cold]),
                "round_trips_warm": h.summary([st["round_trips"] for st in stats_warm]),
                # fixed backend: time with a call in flight (the floor the calls set) and the billed units
                "aws_busy_ms_warm": h.summary([st.get("busy_ms") for st in stats_warm]),
                "wru_warm": h.summary([st["units"]["wru"] for st in stats_warm if "units" in st]),
                "units_warm": {u: h.summary([st["units"][u] for st in stats_warm if "units" in st])
                               for u in sorted({u for st in stats_warm for u in st.get("units", {})})},
                "raw": {"cold_wall_ms": cold, "warm_wall_ms": warm, "stats": stats_all},
            }
            if moto:
                moto_ops: dict[str, list[float]] = {}
                for st in stats_all:
                    for op, ms in st["upstream_ms"].items():
                        moto_ops.setdefault(op, []).append(ms / st["calls"][op])
                result["moto_ms_per_batch"] = h.summary([sum(st["upstream_ms"].values()) for st in stats_all])
                result["moto_ms_per_call"] = {op: h.summary(v) for op, v in sorted(moto_ops.items())}
            if faults:
                def counted(values: list) -> dict:
                    return {**h.summary(values), "values": values}

                result["entries_failed"] = counted([sum(st["entries_failed"].values()) for st in stats_all])
                result["throttled"] = counted([sum(st.get("throttled", {}).values()) for st in stats_all])
                result["conflicts"] = counted([sum(st.get("conflicts", {}).values()) for st in stats_all])
                result["failed_records"] = counted(failed_records)
            results[f"{delay:g}"] = result
            h.log(f"  delay {delay:g} ms done")
    finally:
        if moto:
            moto.close()

    data = {
        "benchmark": "roundtrips", "backend": args.backend, "function": FUNCTION, "binary": str(binary),
        "records": args.records, "runs": args.runs, "warm_per_run": args.warm, "errors": errors,
        "fail_entry_rate": args.fail_entry_rate, "conflict_rate": args.conflict_rate,
        "throttle_rate": args.throttle_rate, "seed": args.seed,
        "batch_concurrency": fn["environment"].get("BATCH_CONCURRENCY", "10 (default)"),
        "machine": h.machine(), "loadavg_before": load_before, "git": h.git_rev(),
        "command": " ".join([".venv/bin/python", "bench/roundtrips.py"] + sys.argv[1:]),
        "results": results,
    }
    out = h.write_json(args.json_out, data)
    report(data)
    print(f"errors: {len(errors)}; load average before/after: "
          f"{'/'.join(f'{x:.2f}' for x in load_before)} -> {'/'.join(f'{x:.2f}' for x in data['machine']['loadavg'])}")
    print(f"raw: {out.relative_to(h.ROOT)}")
    return 1 if errors else 0


def compare(runs: list[dict]) -> None:
    """One row per backend, batch size and latency: what each run measured for warm batches."""
    print("\n### AWS calls and round trips per batch, by backend (warm invocations, medians)\n")
    print("| backend | records | ms per call | AWS calls per batch | round trips | WRU per batch "
          "| warm invocation ms | floor: time with a call in flight ms |")
    print("|---|---|---|---|---|---|---|---|")
    for data in runs:
        backend = data.get("backend", "moto")
        for name in ("fail_entry_rate", "conflict_rate", "throttle_rate"):
            if data.get(name):
                backend += f", {name.replace('_', ' ')} {data[name]:g}"
        for key, r in data["results"].items():
            # At 0 ms calls made at once hardly overlap: round trips count only with a latency.
            rt = r.get("round_trips_warm", {}).get("median") if r["delay_ms"] > 0 else None
            # Only the fixed backend's answers all take their latency: there the calls' time is the floor.
            fixed = data.get("backend") == "fixed"
            floor = r.get("aws_busy_ms_warm", {}).get("median") if fixed and r["delay_ms"] > 0 else None
            if fixed and floor is None and rt is not None and r["delay_ms"] > 0:
                floor = rt * r["delay_ms"]  # a run from before the per-operation latency
            wru = r.get("wru_warm", {}).get("median")
            print(f"| {backend} | {data['records']} | {key} | {r['calls_warm']['total']['median']:g} "
                  f"| {'—' if rt is None else f'{rt:g}'} | {'—' if wru is None else f'{wru:g}'} "
                  f"| {h.fmt(r['warm_wall_ms']['median'])} | {h.fmt(floor)} |")


def report(data: dict) -> None:
    results, fixed = data["results"], data["backend"] == "fixed"
    backend = ("fixed-latency backend (bench/backend)" if fixed
               else "moto behind the latency proxy")
    print(f"\n### AWS round trips: {data['function']}, {data['records']}-record batch, {backend}, "
          f"{data['runs']} processes x (1 cold + {data['warm_per_run']} warm) invocations per delay\n")
    if data["fail_entry_rate"] or data.get("conflict_rate") or data.get("throttle_rate"):
        print(f"injected (seed {data['seed']}): {data['fail_entry_rate']:g} of batch-API entries fail, "
              f"{data.get('conflict_rate', 0):g} of transactions conflict, "
              f"{data.get('throttle_rate', 0):g} of calls are throttled\n")

    def med(s: dict) -> str:
        return "—" if s["median"] is None else f"{s['median']:g}"

    print(f"| {'base latency' if fixed else 'injected delay'} per call | AWS calls per batch (cold / warm) "
          "| round trips (cold / warm) | by operation (warm, median) | WRU per batch (warm, median) "
          "| cold invocation ms (median / p90) | warm invocation ms (median / p90) |")
    print("|---|---|---|---|---|---|---|")
    for key, r in results.items():
        ops = ", ".join(f"{op} {med(s)}" for op, s in r["calls_warm"]["by_operation"].items())
        # At 0 ms calls made at once hardly overlap: round trips count only with a latency.
        trips = f"{med(r['round_trips_cold'])} / {med(r['round_trips_warm'])}" if r["delay_ms"] > 0 else "—"
        wru = r.get("wru_warm", {})
        print(f"| {key} ms | {med(r['calls_cold']['total'])} / {med(r['calls_warm']['total'])} "
              f"| {trips} | {ops} | {med(wru) if wru.get('median') is not None else '—'} "
              f"| {h.fmt(r['cold_wall_ms']['median'])} / {h.fmt(r['cold_wall_ms']['p90'])} "
              f"| {h.fmt(r['warm_wall_ms']['median'])} / {h.fmt(r['warm_wall_ms']['p90'])} |")
    if fixed:
        print("\nThe critical path: the time with at least one call in flight is the floor the call structure "
              "sets (each round trip takes its slowest call's latency: a transaction more than a single write); "
              "the rest of the warm wall time is CPU (function, backend, loopback):\n")
        print("| base latency per call | warm round trips (median) | floor ms | warm invocation ms (median) "
              "| above the floor ms | first call -> last answer ms (median) |")
        print("|---|---|---|---|---|---|")
        for key, r in results.items():
            if r["delay_ms"] <= 0:
                continue
            wall = r["warm_wall_ms"]["median"]
            floor = r["aws_busy_ms_warm"]["median"]
            above = None if floor is None or wall is None else wall - floor
            print(f"| {key} ms | {med(r['round_trips_warm'])} | {h.fmt(floor)} | {h.fmt(wall)} | {h.fmt(above)} "
                  f"| {h.fmt(r['aws_span_ms']['median'])} |")
        if "failed_records" in next(iter(results.values()), {}):
            print("\nInjected faults and their outcome, over all invocations (total; mean per batch):\n")
            print("| base latency per call | batches | entries failed | calls throttled | transactions conflicted "
                  "| records reported failed (a batch that failed whole: all its records) |")
            print("|---|---|---|---|---|---|")

            def total(s: dict) -> str:
                n = sum(s["values"]) if "values" in s else None
                return "—" if n is None else f"{n:g} ({n / max(len(s['values']), 1):.2f})"

            for key, r in results.items():
                print(f"| {key} ms | {len(r['failed_records']['values'])} | {total(r['entries_failed'])} "
                      f"| {total(r['throttled'])} | {total(r['conflicts'])} | {total(r['failed_records'])} |")
        print("\nissue 11 targets (fixed backend, 10 ms per call, 10 records): <= 5 calls, <= 3 round trips, "
              "<= 40 ms wall")
    else:
        print("\nWhere the time goes (all invocations). moto wait = time the proxy waited for moto's answer; "
              "with concurrent calls it includes queueing behind the others, so the sum exceeds the wall time:\n")
        print("| injected delay | moto wait summed over the batch's calls, ms (median) "
              "| first call -> last answer ms (median) | moto wait per call by operation, ms (median) |")
        print("|---|---|---|---|")
        for key, r in results.items():
            ops = ", ".join(f"{op} {s['median']:.1f}" for op, s in r["moto_ms_per_call"].items())
            print(f"| {key} ms | {h.fmt(r['moto_ms_per_batch']['median'])} | {h.fmt(r['aws_span_ms']['median'])} "
                  f"| {ops} |")


if __name__ == "__main__":
    sys.exit(main())
