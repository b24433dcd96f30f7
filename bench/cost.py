#!/usr/bin/env python3
"""Cost per million signups of user-processor: eventline (Rust) and its two Python peers (the
seed-style boto3 handler and the Powertools handler, bench/baseline/), from what the fixed-latency
backend counted and public prices, in each of us-east-1, us-west-2 and eu-west-1 at its own prices,
and for the three together.

    .venv/bin/python bench/cost.py [--input bench/.out/coldstart-fixed.json] [--cold-share 0.01]
                                   [--home-region us-east-1] [--mail-transport outbox|ses]
                                   [--entries OPERATION=N ...] [--replicated-writes LABEL=N ...]

Measurements come from a bench/coldstart.py JSON (run with --backend fixed), which holds, per
implementation, the median billable units of a warm batch as bench/backend counted them (DynamoDB write
and read units from the items' sizes, SQS requests per 64 KiB, EventBridge events, S3 requests, SES
emails: its crate docs say how), the median calls by operation, the warm and cold invocation times and
init. Without --input, the first of bench/.out/coldstart-fixed.json and bench/.out/coldstart-10ms.json
that has call counts is used, else the built-in MEASURED figures below (their date and command are
printed with the table). Prices are in PRICES, per region, each with its source and the date it was
checked.

What one signup costs (the common case: a new, valid signup in a full 10-record batch):

- Lambda: one request per batch, and the billed duration at 128 MB arm64: the warm invocation, plus,
  for the share of batches that start a new execution environment (--cold-share), init and the cold
  invocation (Lambda bills INIT for every runtime since 2025-08-01).
- The function's own calls, as the backend counted their units. A run that has only call counts (the
  counting proxy in front of moto, or an older JSON) is priced by operation (OPERATIONS): one unit per
  single-item call; a call that carries several items (PutEvents, SendMessageBatch, BatchWriteItem,
  TransactWriteItems) needs --entries OPERATION=N, the items it carries per record of the batch over
  all its calls (how a sketch of a design is priced before it exists: `--entries
  DynamoDB.TransactWriteItems=2` prices two transactional writes per signup at 2 WRU each).
- The event source mapping's SQS requests: one ReceiveMessage and one DeleteMessageBatch per batch
  (the empty receives of idle pollers depend on traffic, not on the signup, and are left out).
- SES delivery, a line of its own: with MailTransport=ses every signup sends two emails (the
  confirmation from notification-processor and the welcome from welcome-email), billed per email; with
  the default outbox they are S3 objects. --mail-transport ses adds the line to the totals.

What the two extra regions add, per signup (the design of issue 10: users in a global table,
`User Created` forwarded to each peer region's bus, profile-creator in every region), each at the
prices of the region where it is billed:

- replicated writes: every write of the users table is replicated to each peer region, one rWRU per
  KB there, at that region's price (--replicated-writes: users-table writes per signup, read from each
  handler's code);
- cross-region events: each published `User Created` is delivered to each peer bus, billed as a
  custom event in the home region, plus inter-region data transfer for the replicated items and events;
- per-region consumers: profile-creator runs on each forwarded event in each peer region (one
  invocation, 4 writes: its idempotency lock and completion, the profile row and its
  `document_written` mark, and one S3 PUT), at that region's prices. Its duration is an assumption
  (--consumer-ms), not a measurement.

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


REGIONS = ("us-east-1", "us-west-2", "eu-west-1")


def _region(dynamodb_wru: float, dynamodb_rru: float, note: str = "") -> dict[str, Price]:
    """One region's list prices, on-demand, no free tier. Everything but DynamoDB is priced the same
    in the three regions on the pages named (checked 2026-12-02); DynamoDB's request units differ."""
    d = "2026-12-02"
    ddb = "aws.amazon.com/dynamodb/pricing/on-demand" + note
    return {
        "lambda_request": Price(0.20 / 1e6, "request", "aws.amazon.com/lambda/pricing", d),
        "lambda_gb_second_arm64": Price(0.0000133334, "GB-second (arm64, first 7.5 billion GB-s a month)",
                                        "aws.amazon.com/lambda/pricing", d),
        "dynamodb_wru": Price(dynamodb_wru / 1e6, "write request unit (on-demand)", ddb, d),
        "dynamodb_rru": Price(dynamodb_rru / 1e6, "read request unit (on-demand)", ddb, d),
        # since the 2024-11-01 reduction a replicated write costs the same as a single-region one
        "dynamodb_rwru": Price(dynamodb_wru / 1e6, "replicated write request unit (global tables, on-demand)",
                               ddb, d),
        "sqs_request": Price(0.40 / 1e6, "request, standard queue (per 64 KiB chunk)", "aws.amazon.com/sqs/pricing",
                             d),
        "eventbridge_event": Price(1.00 / 1e6, "custom event (per 64 KiB chunk), also each event sent to another bus",
                                   "aws.amazon.com/eventbridge/pricing", d),
        "s3_put": Price(0.005 / 1000, "PUT, COPY, POST, LIST request (S3 Standard)", "aws.amazon.com/s3/pricing", d),
        "s3_get": Price(0.0004 / 1000, "GET and other requests (S3 Standard)", "aws.amazon.com/s3/pricing", d),
        "ses_email": Price(0.10 / 1000, "email sent (each recipient is one), outside the EC2 free allowance",
                           "aws.amazon.com/ses/pricing", d),
        "inter_region_gb": Price(0.02, "GB transferred to another region",
                                 "aws.amazon.com/ec2/pricing/on-demand (data transfer)", d),
    }


# Per region, dated, with sources. us-east-1 and us-west-2 DynamoDB: $0.625 per million WRU and $0.125
# per million RRU since the 2024-11-01 reduction (the page's figures). eu-west-1 DynamoDB: Ireland's
# list price before that reduction ($1.4135 per million WRU, $0.283 per million RRU) halved by it, as
# the reduction's announcement did for every region; an inference from the announcement, not a figure
# read on the page: check it there before quoting it.
PRICES_BY_REGION: dict[str, dict[str, Price]] = {
    "us-east-1": _region(0.625, 0.125),
    "us-west-2": _region(0.625, 0.125),
    "eu-west-1": _region(0.70675, 0.1415, " (Ireland: pre-2024-11 price halved, see cost.py)"),
}
# The home region's prices, for callers that price one region.
PRICES = PRICES_BY_REGION["us-east-1"]

# How a call is priced when the run has only call counts (no units counted by the backend): (unit,
# "call" or "item", units per call or item). "item" rules need --entries (items per record).
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
    "SESv2.SendEmail": ("ses_emails", "call", 1),
    # the names bench/latency_proxy.py used before it took bench/backend's
    "s3.PUT": ("s3_put", "call", 1),
    "s3.GET": ("s3_get", "call", 1),
    "s3.HEAD": ("s3_get", "call", 1),
}

# The backend's unit names (GET /__backend/stats "units") -> Units fields.
COUNTED = {"wru": "wru", "rru": "rru", "sqs_requests": "sqs", "events": "events", "s3_put": "s3_put",
           "s3_get": "s3_get", "ses_emails": "ses_emails"}

# Writes of the users table per signup, from each handler's code: eventline creates the user and
# marks it announced (crates/app/src/user_processor.rs), so does the Powertools peer; the seed-style
# handler puts it once. Unknown labels need --replicated-writes LABEL=N.
USERS_TABLE_WRITES = {"rust": 2, "powertools": 2, "python": 1}

# Payload sizes of the common case, from the messages themselves: a notification body is ~100 bytes,
# a `User Created` entry ~250 bytes (detail ~150 + envelope fields), a user item ~150 bytes. All far
# below a billing chunk; they matter only for the inter-region transfer (and a sketch's SQS chunks).
NOTIFICATION_BYTES = 100
EVENT_BYTES = 250
USER_ITEM_BYTES = 150

ESM_SQS_REQUESTS_PER_BATCH = 2  # the event source mapping's ReceiveMessage + DeleteMessageBatch

# profile-creator per forwarded event, in each peer region (crates/app/src/profile_creator.rs).
CONSUMER_WRU = 4
CONSUMER_S3_PUTS = 1

# With MailTransport=ses: the confirmation (notification-processor) and the welcome (welcome-email).
SES_EMAILS_PER_SIGNUP = 2

# Built-in measurements, used when no coldstart JSON with call counts is found: medians of 10 runs,
# warm batch of 10 new signups, 10 ms per AWS call. Measured on 2026-12-02 16:04 UTC by
# `BENCH_SRC=<export of d4104ba> .venv/bin/python bench/coldstart.py --runs 10 --backend fixed
#  --binary rust=<release build of d4104ba> --json-out coldstart-fixed.json`
# (load average ~2 on 2 cores: other builds and tests shared them). That backend did not count units
# yet: `units` are derived from the calls (every item written is under 1 KB: 1 WRU per single-item
# write; one event per entry; one SQS request per call of small messages).
MEASURED = {
    "source": "built-in: measured on 2026-12-02 by `.venv/bin/python bench/coldstart.py --runs 10 --backend fixed "
              "--json-out coldstart-fixed.json` (fixed-latency backend, 10 ms per AWS call; Rust at d4104ba); "
              "units derived from its calls",
    "implementations": {
        "rust": {"records": 10, "warm_ms": 68.8, "init_ms": 14.3, "cold_ms": 75.1, "calls": {
            "DynamoDB.PutItem": 30, "DynamoDB.UpdateItem": 10, "EventBridge.PutEvents": 1, "SQS.SendMessageBatch": 1},
            "units": {"wru": 40, "events": 10, "sqs_requests": 1}},
        "python": {"records": 10, "warm_ms": 275.0, "init_ms": 406.6, "cold_ms": 290.1, "calls": {
            "DynamoDB.PutItem": 10, "SQS.SendMessage": 10},
            "units": {"wru": 10, "sqs_requests": 10}},
        "powertools": {"records": 10, "warm_ms": 876.1, "init_ms": 508.1, "cold_ms": 877.2, "calls": {
            "DynamoDB.PutItem": 20, "DynamoDB.UpdateItem": 20, "EventBridge.PutEvents": 10, "SQS.SendMessage": 10},
            "units": {"wru": 40, "events": 10, "sqs_requests": 10}},
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
    # median billable units of a warm batch as the backend counted them (its unit names); None: priced
    # from `calls`
    units: dict[str, float] | None = None


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
    ses_emails: float = 0.0
    transfer_gb: float = 0.0

    def scaled(self, factor: float) -> "Units":
        return Units(**{k: v * factor for k, v in asdict(self).items()})

    def plus(self, other: "Units") -> "Units":
        return Units(**{k: v + getattr(other, k) for k, v in asdict(self).items()})


@dataclass
class Settings:
    memory_mb: int = 128
    cold_share: float = 0.01
    home_region: str = "us-east-1"
    peers: tuple[str, ...] = ("us-west-2", "eu-west-1")
    consumer_ms: float = 50.0
    mail_transport: str = "outbox"
    # items per record of multi-item calls, for runs without counted units (--entries)
    entries: dict[str, float] = field(default_factory=dict)
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


def counted_units(counted: dict[str, float]) -> Units:
    """The backend's counted units (GET /__backend/stats "units", or a run's median of them)."""
    u = Units()
    for name, n in counted.items():
        if name not in COUNTED:
            raise ValueError(f"unknown unit {name} counted by the backend: add it to COUNTED in bench/cost.py")
        setattr(u, COUNTED[name], getattr(u, COUNTED[name]) + n)
    return u


def call_units(calls: dict[str, float], records: int, entries: dict[str, float]) -> Units:
    """Units from call counts alone, by OPERATIONS: for runs the backend did not count, and sketches.
    A multi-item call needs `entries[op]`, the items it carries per record over all its calls."""
    u = Units()
    for op, n_calls in calls.items():
        if not n_calls:
            continue
        if op not in OPERATIONS:
            raise ValueError(f"no price rule for operation {op}: add it to OPERATIONS in bench/cost.py")
        unit, per, factor = OPERATIONS[op]
        if per == "item" and op not in entries:
            raise ValueError(f"{op} carries several items and this run has no counted units: "
                             f"pass --entries {op}=N (items per record)")
        if per == "item":
            items = entries[op] * records
            n = items * (chunks(EVENT_BYTES, EVENT_CHUNK) if op == "EventBridge.PutEvents" else factor)
        elif op == "SQS.SendMessageBatch" and op in entries:
            per_call = entries[op] * records / n_calls
            n = n_calls * chunks(per_call * NOTIFICATION_BYTES, SQS_CHUNK)
        else:
            n = n_calls * factor
        setattr(u, unit, getattr(u, unit) + n)
    return u


def batch_units(m: Measured, s: Settings) -> Units:
    """Billable units of one batch of `m.records` signups in one region: what the backend counted
    (else what the calls imply), the Lambda invocation and the pollers' requests."""
    u = Units(lambda_requests=1, gb_seconds=lambda_gb_seconds(m, s), sqs=ESM_SQS_REQUESTS_PER_BATCH)
    aws = counted_units(m.units) if m.units is not None else call_units(m.calls, m.records, s.entries)
    return u.plus(aws)


def mail_units(s: Settings) -> Units:
    """Per signup: SES delivery of its two emails when MailTransport=ses (else nothing)."""
    return Units(ses_emails=SES_EMAILS_PER_SIGNUP) if s.mail_transport == "ses" else Units()


def extra_region_units(label: str, m: Measured, s: Settings) -> tuple[Units, Units, Units]:
    """What each peer region adds per signup (see the module doc): the forwarding billed in the home
    region (events to the peer buses, inter-region transfer, for all peers together); the replicated
    writes billed in one peer; and the consumers run in one peer, the same for any handler that
    publishes `User Created`."""
    if label not in s.replicated_writes:
        raise ValueError(f"users-table writes per signup of {label!r} unknown: pass --replicated-writes {label}=N")
    peers = len(s.peers)
    writes = s.replicated_writes[label]
    # events published per signup: what the backend counted, else one per signup if the handler calls PutEvents
    if m.units is not None:
        events = m.units.get("events", 0) / m.records
    else:
        events = s.entries.get("EventBridge.PutEvents", 1) if m.calls.get("EventBridge.PutEvents") else 0
    item_units = chunks(USER_ITEM_BYTES, WRITE_UNIT)
    forwarding = Units(events=events * peers,
                       transfer_gb=(writes * USER_ITEM_BYTES + events * EVENT_BYTES) * peers / 1e9)
    replica = Units(rwru=writes * item_units)
    consumer = Units(
        lambda_requests=1,
        gb_seconds=billed_ms(s.consumer_ms) / 1000 * s.memory_mb / 1024,
        wru=CONSUMER_WRU,
        s3_put=CONSUMER_S3_PUTS,
    ).scaled(events)
    return forwarding, replica, consumer


def cost_usd(u: Units, region: str = "us-east-1") -> dict[str, float]:
    """Dollars by service for `u` at `region`'s prices."""
    p = {k: v.usd for k, v in PRICES_BY_REGION[region].items()}
    return {
        "lambda_requests": u.lambda_requests * p["lambda_request"],
        "lambda_duration": u.gb_seconds * p["lambda_gb_second_arm64"],
        "dynamodb": u.wru * p["dynamodb_wru"] + u.rru * p["dynamodb_rru"] + u.rwru * p["dynamodb_rwru"],
        "sqs": u.sqs * p["sqs_request"],
        "eventbridge": u.events * p["eventbridge_event"],
        "s3": u.s3_put * p["s3_put"] + u.s3_get * p["s3_get"],
        "ses": u.ses_emails * p["ses_email"],
        "transfer": u.transfer_gb * p["inter_region_gb"],
    }


def per_million_usd(u: Units, region: str) -> dict[str, float]:
    return {k: v * 1e6 for k, v in cost_usd(u, region).items()}


def per_million(label: str, m: Measured, s: Settings) -> dict:
    """Units per signup and dollars per million signups: in each region at its prices, in the home
    region with the SES line, and with the peer regions (each part at the prices where it is billed)."""
    one = batch_units(m, s).scaled(1 / m.records)
    mail = mail_units(s)
    forwarding, replica, consumer = extra_region_units(label, m, s)
    home = s.home_region
    single = per_million_usd(one, home)
    by_region = {r: sum(per_million_usd(one.plus(mail), r).values()) for r in REGIONS}
    ses_line = {r: per_million_usd(Units(ses_emails=SES_EMAILS_PER_SIGNUP), r)["ses"] for r in REGIONS}
    forwarding_usd = sum(per_million_usd(forwarding, home).values())
    replicas_usd = sum(sum(per_million_usd(replica, p).values()) for p in s.peers)
    consumers_usd = sum(sum(per_million_usd(consumer, p).values()) for p in s.peers)
    total_one = sum(single.values()) + sum(per_million_usd(mail, home).values())
    extra = forwarding_usd + replicas_usd + consumers_usd
    extra_units = forwarding.plus(replica.scaled(len(s.peers))).plus(consumer.scaled(len(s.peers)))
    return {
        "units_per_signup": asdict(one),
        "extra_units_per_signup": asdict(extra_units),
        "usd_one_region": single,
        "total_one_region": total_one,
        "total_by_region": by_region,
        "ses_delivery_by_region": ses_line,
        "total_replication_and_forwarding": forwarding_usd + replicas_usd,
        "total_peer_consumers": consumers_usd,
        "total_extra_regions": extra,
        "total_three_regions": total_one + extra,
    }


def from_coldstart(data: dict) -> dict[str, Measured]:
    """The implementations of a bench/coldstart.py JSON that carry call counts (and the units the
    fixed-latency backend counted, when it did)."""
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
            units=t.get("aws_units_by_unit") or None,
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


PEER = "powertools"  # the implementation the others are compared with


def report(source: str, results: dict[str, dict], s: Settings, measured: dict[str, Measured]) -> str:
    home = s.home_region
    peer = results.get(PEER)
    mail = " with SES delivery (MailTransport=ses)" if s.mail_transport == "ses" else ""
    lines = [f"### Cost per million signups, user-processor, {home} prices (USD){mail}\n",
             f"Measurements: {source}. 128 MB arm64; {s.cold_share:.0%} of batches start cold; "
             f"three regions = {home} + {', '.join(s.peers)}, each part at the prices where it is billed.\n",
             "| implementation | Lambda requests | Lambda duration | DynamoDB | SQS | EventBridge | S3 "
             + ("| SES " if s.mail_transport == "ses" else "")
             + f"| **one region** | x {PEER} | + replicated writes, forwarded events "
             "| + profile-creator in the peer regions | **three regions** |",
             "|---|---|---|---|---|---|---|" + ("---|" if s.mail_transport == "ses" else "") + "---|---|---|---|---|"]
    for label, r in results.items():
        c = r["usd_one_region"]
        cells = [usd(c["lambda_requests"]), usd(c["lambda_duration"]), usd(c["dynamodb"]), usd(c["sqs"]),
                 usd(c["eventbridge"]), usd(c["s3"])]
        if s.mail_transport == "ses":
            cells.append(usd(r["total_one_region"] - sum(c.values())))
        ratio = f"{r['total_one_region'] / peer['total_one_region']:.2f}" if peer else "—"
        cells += [f"**{usd(r['total_one_region'])}**", ratio, usd(r["total_replication_and_forwarding"]),
                  usd(r["total_peer_consumers"]), f"**{usd(r['total_three_regions'])}**"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", f"One region, each at its own prices{mail}:", "",
              "| implementation | " + " | ".join(REGIONS) + " |", "|---|" + "---|" * len(REGIONS)]
    for label, r in results.items():
        lines.append(f"| {label} | " + " | ".join(usd(r["total_by_region"][g]) for g in REGIONS) + " |")
    any_r = next(iter(results.values()))
    ses = any_r["ses_delivery_by_region"]
    lines += ["", f"SES delivery with MailTransport=ses: {SES_EMAILS_PER_SIGNUP} emails per signup (confirmation "
              "and welcome, sent by notification-processor and welcome-email, not by user-processor) add "
              + ", ".join(f"${usd(ses[g])}" + f" in {g}" for g in REGIONS)
              + " per million signups" + (" (in the totals above)." if s.mail_transport == "ses"
                                          else "; the default outbox writes them to S3 instead (not above).")]
    lines += ["", "Billable units per signup (one region, as counted: " + ", ".join(
        f"{label} {'by the backend' if measured[label].units is not None else 'from its calls'}"
        for label in results) + "; then what the peer regions add together):", "",
              "| implementation | GB-s | WRU | RRU | SQS requests | events | S3 PUTs | + rWRU | + events "
              "| + consumer invocations | + WRU | + S3 PUTs |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in results.items():
        u, x = r["units_per_signup"], r["extra_units_per_signup"]
        cells = [f"{u['gb_seconds']:.5f}", f"{u['wru']:g}", f"{u['rru']:g}", f"{u['sqs']:.2f}", f"{u['events']:g}",
                 f"{u['s3_put']:g}", f"{x['rwru']:g}", f"{x['events']:g}", f"{x['lambda_requests']:g}",
                 f"{x['wru']:g}", f"{x['s3_put']:g}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Prices (USD; the same in the three regions unless a region is named):", "",
              "| item | " + " | ".join(REGIONS) + " | per | source, checked on |", "|---|" + "---|" * (len(REGIONS) + 2)]
    for name, p in PRICES_BY_REGION[REGIONS[0]].items():
        per_unit = p.usd < 1e-3
        quoted = [PRICES_BY_REGION[g][name].usd * (1e6 if per_unit else 1) for g in REGIONS]
        lines.append(f"| {name} | " + " | ".join(f"{q:.6g}" for q in quoted)
                     + f" | {'million' if per_unit else 'one'}: {p.unit} "
                     f"| {'; '.join(sorted({PRICES_BY_REGION[g][name].source for g in REGIONS}))}, {p.checked_on} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", type=Path, help="a bench/coldstart.py JSON with call counts (default: bench/.out/"
                                               "coldstart-fixed.json, coldstart-10ms.json, else built-in figures)")
    ap.add_argument("--cold-share", type=float, default=0.01,
                    help="share of batches that start a new execution environment (default 0.01: AWS reports "
                         "cold starts in under 1%% of invocations of production workloads)")
    ap.add_argument("--memory-mb", type=int, default=128)
    ap.add_argument("--home-region", choices=REGIONS, default="us-east-1",
                    help="the region the first table is priced in; the other two are its peers (default us-east-1)")
    ap.add_argument("--mail-transport", choices=["outbox", "ses"], default="outbox",
                    help="ses: add SES delivery of the two emails per signup to the totals (default outbox)")
    ap.add_argument("--consumer-ms", type=float, default=50.0,
                    help="assumed billed duration of profile-creator per event in a peer region (default 50: "
                         "four sequential AWS calls and an S3 PUT; not measured)")
    ap.add_argument("--entries", action="append", default=[], metavar="OPERATION=N",
                    help="items per record carried by a multi-item call, for runs without counted units "
                         "(a sketch: e.g. DynamoDB.TransactWriteItems=2)")
    ap.add_argument("--replicated-writes", action="append", default=[], metavar="LABEL=N",
                    help="users-table writes per signup of an implementation (default: USERS_TABLE_WRITES)")
    ap.add_argument("--json-out", default="cost.json", help="file name under bench/.out/")
    args = ap.parse_args(argv)

    s = Settings(memory_mb=args.memory_mb, cold_share=args.cold_share, home_region=args.home_region,
                 peers=tuple(r for r in REGIONS if r != args.home_region), consumer_ms=args.consumer_ms,
                 mail_transport=args.mail_transport)
    for spec in args.entries:
        op, _, n = spec.partition("=")
        s.entries[op] = float(n)
    for spec in args.replicated_writes:
        label, _, n = spec.partition("=")
        s.replicated_writes[label] = int(n)
    source, measured = load(args.input)
    if not measured:
        print("no measurements: run bench/coldstart.py with --backend fixed first", file=sys.stderr)
        return 2
    try:
        results = {label: per_million(label, m, s) for label, m in measured.items()}
    except ValueError as e:
        print(f"cost.py: {e}", file=sys.stderr)
        return 2
    print(report(source, results, s, measured))
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / args.json_out
    out.write_text(json.dumps({
        "source": source, "settings": asdict(s),
        "prices": {g: {k: asdict(v) for k, v in p.items()} for g, p in PRICES_BY_REGION.items()},
        "measured": {k: asdict(v) for k, v in measured.items()}, "results": results,
    }, indent=2) + "\n")
    print(f"\nraw: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
