#!/usr/bin/env python3
"""Cost per million signups of user-processor: eventline (Rust) and its two Python peers (the
seed-style boto3 handler and the Powertools handler, bench/baseline/), from measured AWS calls and
durations and public us-east-1 prices, in one region and in three.

    .venv/bin/python bench/cost.py [--input bench/.out/coldstart-fixed.json] [--cold-share 0.01]
                                   [--entries OPERATION=N ...] [--replicated-writes LABEL=N ...]

Measurements come from a bench/coldstart.py JSON with call counts (run with --backend fixed, or
behind the counting proxy with --delay-ms), which holds, per implementation, the median AWS calls of
a warm batch by operation, the warm and cold invocation times and init. The fixed-latency backend's
durations are the fair ones: against moto a batch's time is mostly moto's. Without --input, the
first of bench/.out/coldstart-fixed.json and bench/.out/coldstart-10ms.json that has call counts is
used, else the built-in MEASURED figures below (their date and command are printed with the table).
Prices are in PRICES, each with its source and the date it was checked.

What one signup costs (the common case: a new, valid signup in a full 10-record batch):

- Lambda: one request per batch, and the billed duration at 128 MB arm64: the warm invocation, plus,
  for the share of batches that start a new execution environment (--cold-share), init and the cold
  invocation (Lambda bills INIT for every runtime since 2025-08-01).
- The function's own calls, priced by operation (OPERATIONS): DynamoDB writes in write request units
  (1 per item up to 1 KB; a TransactWriteItems item costs 2), reads in read request units, SQS
  requests (each 64 KiB chunk of a call's payload is one), EventBridge events (each 64 KiB chunk of
  an entry is one), S3 requests. A call that carries several items (PutEvents, SendMessageBatch,
  BatchWriteItem, TransactWriteItems) carries --entries items per record of the batch, over all its
  calls: the proxy counts calls, not items (eventline's two transactions carry 4 items per signup,
  8 WRU, where single-item writes of the same 4 items cost 4 WRU in 40 calls per batch).
- The event source mapping's SQS requests: one ReceiveMessage and one DeleteMessageBatch per batch
  (the empty receives of idle pollers depend on traffic, not on the signup, and are left out).

What the two extra regions add, per signup (the design of issue 10: users in a global table,
`User Created` forwarded to each peer region's bus, profile-creator in every region):

- replicated writes: every write of the users table is replicated to each peer region, one rWRU per
  KB there (--replicated-writes: users-table writes per signup, read from each handler's code);
- cross-region events: each published `User Created` is delivered to each peer bus, billed as a
  custom event, plus inter-region data transfer for the replicated items and events;
- per-region consumers: profile-creator runs on each forwarded event (one invocation, 4 writes: its
  idempotency lock and completion, the profile row and its `document_written` mark, and one S3 PUT).
  Its duration is an assumption (--consumer-ms), not a measurement.

Prints Markdown tables; numbers go to bench/.out/cost.json. Unit tests: bench/test_cost.py.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH / ".out"
ROOT = BENCH.parent

KIB = 1024
SQS_CHUNK = 64 * KIB  # SQS bills each 64 KiB chunk of a request's payload as one request
EVENT_CHUNK = 64 * KIB  # EventBridge bills each 64 KiB chunk of an entry as one event
WRITE_UNIT = KIB  # one write request unit writes an item of up to 1 KB
READ_UNIT = 4 * KIB  # one read request unit reads an item of up to 4 KB, strongly consistent


@dataclass(frozen=True)
class Price:
    usd: float  # per unit
    unit: str
    source: str
    checked_on: str


# us-east-1 list prices, on-demand, no free tier, from the AWS pricing pages named, checked on
# 2026-12-02 (against those pages' published text and summaries of them). The DynamoDB figures are
# those of the 2024-11-01 reduction, which made replicated writes cost the same as single-region ones.
PRICES = {
    "lambda_request": Price(0.20 / 1e6, "request", "aws.amazon.com/lambda/pricing", "2026-12-02"),
    "lambda_gb_second_arm64": Price(0.0000133334, "GB-second (arm64, first 7.5 billion GB-s a month)",
                                    "aws.amazon.com/lambda/pricing", "2026-12-02"),
    "dynamodb_wru": Price(0.625 / 1e6, "write request unit (on-demand)", "aws.amazon.com/dynamodb/pricing/on-demand",
                          "2026-12-02"),
    "dynamodb_rru": Price(0.125 / 1e6, "read request unit (on-demand)", "aws.amazon.com/dynamodb/pricing/on-demand",
                          "2026-12-02"),
    "dynamodb_rwru": Price(0.625 / 1e6, "replicated write request unit (global tables, on-demand)",
                           "aws.amazon.com/dynamodb/pricing/on-demand", "2026-12-02"),
    "sqs_request": Price(0.40 / 1e6, "request, standard queue (per 64 KiB chunk)", "aws.amazon.com/sqs/pricing",
                         "2026-12-02"),
    "eventbridge_event": Price(1.00 / 1e6, "custom event (per 64 KiB chunk), also each event sent to another bus",
                               "aws.amazon.com/eventbridge/pricing", "2026-12-02"),
    "s3_put": Price(0.005 / 1000, "PUT, COPY, POST, LIST request (S3 Standard)", "aws.amazon.com/s3/pricing",
                    "2026-12-02"),
    "s3_get": Price(0.0004 / 1000, "GET and other requests (S3 Standard)", "aws.amazon.com/s3/pricing", "2026-12-02"),
    "inter_region_gb": Price(0.02, "GB transferred from us-east-1 to another region",
                             "aws.amazon.com/ec2/pricing/on-demand (data transfer)", "2026-12-02"),
}

# How each operation the proxy counts is billed: (unit, how many per call or item). "item" rules are
# billed per item carried (entries per record x records); "call" rules per call.
OPERATIONS = {
    "DynamoDB.PutItem": ("wru", "call", 1),
    "DynamoDB.UpdateItem": ("wru", "call", 1),
    "DynamoDB.DeleteItem": ("wru", "call", 1),
    "DynamoDB.BatchWriteItem": ("wru", "item", 1),
    "DynamoDB.TransactWriteItems": ("wru", "item", 2),  # a transactional write costs 2 WRUs per item
    "DynamoDB.GetItem": ("rru", "call", 1),  # strongly consistent: 1 RRU per 4 KB (eventual: half)
    "DynamoDB.BatchGetItem": ("rru", "item", 1),
    "DynamoDB.TransactGetItems": ("rru", "item", 2),
    "DynamoDB.Query": ("rru", "call", 1),  # items of one user: a page under 4 KB
    "SQS.SendMessage": ("sqs", "call", 1),
    "SQS.SendMessageBatch": ("sqs", "call", 1),  # one request per 64 KiB of the batch's payload
    "SQS.ReceiveMessage": ("sqs", "call", 1),
    "SQS.DeleteMessage": ("sqs", "call", 1),
    "SQS.DeleteMessageBatch": ("sqs", "call", 1),
    "SQS.ChangeMessageVisibility": ("sqs", "call", 1),
    "SQS.ChangeMessageVisibilityBatch": ("sqs", "call", 1),
    "EventBridge.PutEvents": ("events", "item", 1),
    "S3.PutObject": ("s3_put", "call", 1),
    "S3.GetObject": ("s3_get", "call", 1),
    "S3.HeadObject": ("s3_get", "call", 1),
    # the names bench/latency_proxy.py used before it took bench/backend's
    "s3.PUT": ("s3_put", "call", 1),
    "s3.GET": ("s3_get", "call", 1),
    "s3.HEAD": ("s3_get", "call", 1),
}

# Items per record that multi-item calls carry in a full batch of new signups, over all the calls of
# that operation (the proxy counts calls, not items): one event and one notification per signup; one
# completion per record in a BatchWriteItem; in TransactWriteItems, eventline's write path
# (crates/app/src/user_processor.rs): the idempotency lock and the user in the first transaction, the
# lock's completion and the user's announced_at in the second, 4 items per record at 2 WRU each
# (OPERATIONS). Override with --entries OPERATION=N.
ENTRIES_PER_RECORD = {
    "EventBridge.PutEvents": 1,
    "SQS.SendMessageBatch": 1,
    "DynamoDB.BatchWriteItem": 1,
    "DynamoDB.TransactWriteItems": 4,
    "DynamoDB.BatchGetItem": 1,
    "DynamoDB.TransactGetItems": 1,
}

# Writes of the users table per signup, from each handler's code: eventline creates the user and
# marks it announced (crates/app/src/user_processor.rs), so does the Powertools peer; the seed-style
# handler puts it once. Unknown labels need --replicated-writes LABEL=N.
USERS_TABLE_WRITES = {"rust": 2, "powertools": 2, "python": 1}

# Payload sizes of the common case, from the messages themselves: a notification body is ~100 bytes,
# a `User Created` entry ~250 bytes (detail ~150 + envelope fields), a user item ~150 bytes. All far
# below a billing chunk; they matter only for the inter-region transfer.
NOTIFICATION_BYTES = 100
EVENT_BYTES = 250
USER_ITEM_BYTES = 150

ESM_SQS_REQUESTS_PER_BATCH = 2  # the event source mapping's ReceiveMessage + DeleteMessageBatch

# profile-creator per forwarded event, in each peer region (crates/app/src/profile_creator.rs).
CONSUMER_WRU = 4
CONSUMER_S3_PUTS = 1

# Built-in measurements, used when no coldstart JSON with call counts is found: medians of 10 runs,
# warm batch of 10 new signups, 10 ms per AWS call. Measured on 2026-12-02 16:04 UTC by
# `BENCH_SRC=<export of d4104ba> .venv/bin/python bench/coldstart.py --runs 10 --backend fixed
#  --binary rust=<release build of d4104ba> --json-out coldstart-fixed.json`
# (load average ~2 on 2 cores: other builds and tests shared them).
MEASURED = {
    "source": "built-in: measured on 2026-12-02 by `.venv/bin/python bench/coldstart.py --runs 10 --backend fixed "
              "--json-out coldstart-fixed.json` (fixed-latency backend, 10 ms per AWS call; Rust at d4104ba)",
    "implementations": {
        "rust": {"records": 10, "warm_ms": 68.8, "init_ms": 14.3, "cold_ms": 75.1, "calls": {
            "DynamoDB.PutItem": 30, "DynamoDB.UpdateItem": 10, "EventBridge.PutEvents": 1, "SQS.SendMessageBatch": 1}},
        "python": {"records": 10, "warm_ms": 275.0, "init_ms": 406.6, "cold_ms": 290.1, "calls": {
            "DynamoDB.PutItem": 10, "SQS.SendMessage": 10}},
        "powertools": {"records": 10, "warm_ms": 876.1, "init_ms": 508.1, "cold_ms": 877.2, "calls": {
            "DynamoDB.PutItem": 20, "DynamoDB.UpdateItem": 20, "EventBridge.PutEvents": 10, "SQS.SendMessage": 10}},
    },
}


@dataclass
class Measured:
    """What cost.py needs of one implementation: one warm batch of `records` new signups."""
    records: int
    warm_ms: float
    init_ms: float
    cold_ms: float  # the first invocation of a fresh process
    calls: dict[str, float]  # median calls of a warm batch, by operation


@dataclass
class Units:
    """Billable units, per batch or per signup."""
    lambda_requests: float = 0.0
    gb_seconds: float = 0.0
    wru: float = 0.0
    rru: float = 0.0
    rwru: float = 0.0
    sqs: float = 0.0
    events: float = 0.0
    s3_put: float = 0.0
    s3_get: float = 0.0
    transfer_gb: float = 0.0

    def scaled(self, factor: float) -> "Units":
        return Units(**{k: v * factor for k, v in asdict(self).items()})

    def plus(self, other: "Units") -> "Units":
        return Units(**{k: v + getattr(other, k) for k, v in asdict(self).items()})


@dataclass
class Settings:
    memory_mb: int = 128
    cold_share: float = 0.01
    peer_regions: int = 2
    consumer_ms: float = 50.0
    entries: dict[str, float] = field(default_factory=lambda: dict(ENTRIES_PER_RECORD))
    replicated_writes: dict[str, int] = field(default_factory=lambda: dict(USERS_TABLE_WRITES))


def chunks(size_bytes: float, chunk: int) -> int:
    """Billing chunks of a payload: at least one."""
    return max(1, math.ceil(size_bytes / chunk))


def billed_ms(ms: float) -> int:
    """Lambda rounds each phase's duration up to the next millisecond."""
    return math.ceil(ms)


def lambda_gb_seconds(m: Measured, s: Settings) -> float:
    """GB-seconds per batch: the warm invocation, or for --cold-share of batches init + the cold one."""
    warm = billed_ms(m.warm_ms)
    cold = billed_ms(m.init_ms) + billed_ms(m.cold_ms)
    ms = (1 - s.cold_share) * warm + s.cold_share * cold
    return ms / 1000 * s.memory_mb / 1024


def batch_units(m: Measured, s: Settings) -> Units:
    """Billable units of one batch of `m.records` signups in one region."""
    u = Units(lambda_requests=1, gb_seconds=lambda_gb_seconds(m, s), sqs=ESM_SQS_REQUESTS_PER_BATCH)
    for op, calls in m.calls.items():
        if not calls:
            continue
        if op not in OPERATIONS:
            raise ValueError(f"no price rule for operation {op}: add it to OPERATIONS in bench/cost.py")
        unit, per, factor = OPERATIONS[op]
        if per == "item":
            items = s.entries.get(op, 1) * m.records
            if op == "EventBridge.PutEvents":
                n = items * chunks(EVENT_BYTES, EVENT_CHUNK)
            else:
                n = items * factor
        elif op == "SQS.SendMessageBatch":
            entries = s.entries.get(op, 1) * m.records / calls
            n = calls * chunks(entries * NOTIFICATION_BYTES, SQS_CHUNK)
        else:
            n = calls * factor
        setattr(u, unit, getattr(u, unit) + n)
    return u


def extra_region_units(label: str, m: Measured, s: Settings) -> tuple[Units, Units]:
    """What `s.peer_regions` more regions add per signup (see the module doc): replication and
    forwarding, which depend on the handler's writes and events; and the consumers in the peer
    regions, the same for any handler that publishes `User Created`."""
    if label not in s.replicated_writes:
        raise ValueError(f"users-table writes per signup of {label!r} unknown: pass --replicated-writes {label}=N")
    peers = s.peer_regions
    writes = s.replicated_writes[label]
    # events published per signup: nothing to forward for a handler that publishes none
    events = s.entries.get("EventBridge.PutEvents", 1) if m.calls.get("EventBridge.PutEvents") else 0
    item_units = chunks(USER_ITEM_BYTES, WRITE_UNIT)
    consumer = Units(
        lambda_requests=1,
        gb_seconds=billed_ms(s.consumer_ms) / 1000 * s.memory_mb / 1024,
        wru=CONSUMER_WRU,
        s3_put=CONSUMER_S3_PUTS,
    )
    transport = Units(
        rwru=writes * item_units * peers,
        events=events * peers,
        transfer_gb=(writes * USER_ITEM_BYTES + events * EVENT_BYTES) * peers / 1e9,
    )
    return transport, consumer.scaled(events * peers)


def cost_usd(u: Units) -> dict[str, float]:
    """Dollars by service for `u`."""
    p = {k: v.usd for k, v in PRICES.items()}
    return {
        "lambda_requests": u.lambda_requests * p["lambda_request"],
        "lambda_duration": u.gb_seconds * p["lambda_gb_second_arm64"],
        "dynamodb": u.wru * p["dynamodb_wru"] + u.rru * p["dynamodb_rru"] + u.rwru * p["dynamodb_rwru"],
        "sqs": u.sqs * p["sqs_request"],
        "eventbridge": u.events * p["eventbridge_event"],
        "s3": u.s3_put * p["s3_put"] + u.s3_get * p["s3_get"],
        "transfer": u.transfer_gb * p["inter_region_gb"],
    }


def per_million(label: str, m: Measured, s: Settings) -> dict:
    """Units per signup and dollars per million signups, one region and with the extra regions."""
    one = batch_units(m, s).scaled(1 / m.records)
    transport, consumers = extra_region_units(label, m, s)
    extra = transport.plus(consumers)
    single = {k: v * 1e6 for k, v in cost_usd(one).items()}
    added = {k: v * 1e6 for k, v in cost_usd(extra).items()}
    return {
        "units_per_signup": asdict(one),
        "extra_units_per_signup": asdict(extra),
        "usd_one_region": single,
        "usd_extra_regions": added,
        "total_one_region": sum(single.values()),
        "total_replication_and_forwarding": sum(cost_usd(transport).values()) * 1e6,
        "total_peer_consumers": sum(cost_usd(consumers).values()) * 1e6,
        "total_extra_regions": sum(added.values()),
        "total_three_regions": sum(single.values()) + sum(added.values()),
    }


def from_coldstart(data: dict) -> dict[str, Measured]:
    """The implementations of a bench/coldstart.py JSON that carry call counts."""
    out = {}
    for label, t in data["results"].items():
        if not t.get("aws_calls_by_operation"):
            continue
        warm = t.get("warm_invocation_ms") or {}
        out[label] = Measured(
            records=data["records"],
            warm_ms=warm.get("median") or t["invocation_ms"]["median"],
            init_ms=t["init_ms"]["median"],
            cold_ms=t["invocation_ms"]["median"],
            calls=t["aws_calls_by_operation"],
        )
    return out


def load(path: Path | None) -> tuple[str, dict[str, Measured]]:
    """The measurements: `path`, else the first default run with call counts, else MEASURED."""
    if path is not None and not path.is_file():
        raise SystemExit(f"{path}: no such file")
    for p in [path] if path else [OUT / "coldstart-fixed.json", OUT / "coldstart-10ms.json"]:
        if not p.is_file():
            continue
        data = json.loads(p.read_text())
        found = from_coldstart(data)
        if found:
            rel = p.relative_to(ROOT) if p.is_relative_to(ROOT) else p
            return f"{rel}: `{data.get('command', '?')}` at {data.get('git', '?')}", found
        if path is not None:
            raise SystemExit(f"{p}: no implementation with AWS call counts "
                             "(run coldstart.py with --backend fixed or --delay-ms)")
    return MEASURED["source"], {k: Measured(**v) for k, v in MEASURED["implementations"].items()}


def usd(v: float) -> str:
    if v == 0:
        return "0"
    return f"{v:,.2f}" if v >= 0.995 else f"{v:.3f}"


def report(source: str, results: dict[str, dict], s: Settings) -> str:
    lines = [f"### Cost per million signups, user-processor, us-east-1 prices (USD)\n",
             f"Measurements: {source}. 128 MB arm64; {s.cold_share:.0%} of batches start cold; "
             f"three regions = this region + {s.peer_regions} peers.\n",
             "| implementation | Lambda requests | Lambda duration | DynamoDB | SQS | EventBridge | S3 | **one region** "
             "| + replicated writes, forwarded events | + profile-creator in the peer regions | **three regions** |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in results.items():
        c = r["usd_one_region"]
        cells = [c["lambda_requests"], c["lambda_duration"], c["dynamodb"], c["sqs"], c["eventbridge"], c["s3"],
                 r["total_one_region"], r["total_replication_and_forwarding"], r["total_peer_consumers"],
                 r["total_three_regions"]]
        lines.append(f"| {label} | " + " | ".join(usd(v) for v in cells) + " |")
    lines += ["", "Billable units per signup (one region; then what the extra regions add):", "",
              "| implementation | GB-s | WRU | RRU | SQS requests | events | S3 PUTs | + rWRU | + events "
              "| + consumer invocations | + WRU | + S3 PUTs |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in results.items():
        u, x = r["units_per_signup"], r["extra_units_per_signup"]
        cells = [f"{u['gb_seconds']:.5f}", f"{u['wru']:g}", f"{u['rru']:g}", f"{u['sqs']:.2f}", f"{u['events']:g}",
                 f"{u['s3_put']:g}", f"{x['rwru']:g}", f"{x['events']:g}", f"{x['lambda_requests']:g}",
                 f"{x['wru']:g}", f"{x['s3_put']:g}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Prices:", "", "| item | USD | per | source, checked on |", "|---|---|---|---|"]
    for name, p in PRICES.items():
        quoted, per = (f"{p.usd * 1e6:.6g}", "million") if p.usd < 1e-3 else (f"{p.usd:g}", "one")
        lines.append(f"| {name} | {quoted} | {per}: {p.unit} | {p.source}, {p.checked_on} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", type=Path, help="a bench/coldstart.py JSON with call counts (default: bench/.out/"
                                               "coldstart-fixed.json, coldstart-10ms.json, else built-in figures)")
    ap.add_argument("--cold-share", type=float, default=0.01,
                    help="share of batches that start a new execution environment (default 0.01: AWS reports "
                         "cold starts in under 1%% of invocations of production workloads)")
    ap.add_argument("--memory-mb", type=int, default=128)
    ap.add_argument("--peer-regions", type=int, default=2, help="regions beside this one (default 2)")
    ap.add_argument("--consumer-ms", type=float, default=50.0,
                    help="assumed billed duration of profile-creator per event in a peer region (default 50: "
                         "four sequential AWS calls and an S3 PUT; not measured)")
    ap.add_argument("--entries", action="append", default=[], metavar="OPERATION=N",
                    help="items per record carried by a multi-item call (default: ENTRIES_PER_RECORD)")
    ap.add_argument("--replicated-writes", action="append", default=[], metavar="LABEL=N",
                    help="users-table writes per signup of an implementation (default: USERS_TABLE_WRITES)")
    ap.add_argument("--json-out", default="cost.json", help="file name under bench/.out/")
    args = ap.parse_args(argv)

    s = Settings(memory_mb=args.memory_mb, cold_share=args.cold_share, peer_regions=args.peer_regions,
                 consumer_ms=args.consumer_ms)
    for spec in args.entries:
        op, _, n = spec.partition("=")
        s.entries[op] = float(n)
    for spec in args.replicated_writes:
        label, _, n = spec.partition("=")
        s.replicated_writes[label] = int(n)
    source, measured = load(args.input)
    if not measured:
        print("no measurements: run bench/coldstart.py with --delay-ms first", file=sys.stderr)
        return 2
    results = {label: per_million(label, m, s) for label, m in measured.items()}
    print(report(source, results, s))
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / args.json_out
    out.write_text(json.dumps({
        "source": source, "settings": asdict(s), "prices": {k: asdict(v) for k, v in PRICES.items()},
        "measured": {k: asdict(v) for k, v in measured.items()}, "results": results,
    }, indent=2) + "\n")
    print(f"\nraw: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
