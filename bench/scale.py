#!/usr/bin/env python3
"""Throughput of the whole pipeline at scale, on the fixed-latency backend: the four release binaries
process N signups end to end, and the script reports time, calls, round trips, memory and cost per
million signups for each N; --sweep measures how MaximumConcurrency and BatchSize change it.

    .venv/bin/python bench/scale.py [--sizes 100,1000,10000] [--quick] [--concurrency 5] [--batch-size 10]
                                    [--event-concurrency 10] [--latency-ms 10] [--plot PATH.svg]
    .venv/bin/python bench/scale.py --sweep [--signups 1000] [--sweep-concurrency 1,2,5,10]
                                    [--sweep-batch-sizes 1,5,10]
    (either: [--bin-dir target/release] [--backend-binary target/release/fixed-latency-aws])

Every AWS call goes to bench/backend's fixed-latency-aws (`cargo build --release -p
eventline-bench-backend`), which answers after --latency-ms (default 10), all calls concurrently,
keeps DynamoDB items and S3 objects, and keeps what is sent to each SQS queue and EventBridge bus
until it is drained. It delivers nothing itself, so this script plays Lambda and its pollers, the
way the harness's fake Runtime API (bench/harness/runtime_api.py) does for one process:

- signups: N fresh valid signups, cut into SQS events of --batch-size records, are handed to up to
  --concurrency concurrent user-processor instances (the SQS mapping's MaximumConcurrency);
- notifications: after each user-processor invocation, what it sent to NotificationQueue is drained
  from the backend and handed, in SQS events of --batch-size records, to up to --concurrency
  notification-processor instances (no batching window: a partial batch goes at once, as with
  MaximumBatchingWindowInSeconds 0);
- events: what it put on the bus is drained too and matched against each function's rule pattern
  (from the provisioned manifest); each match is one EventBridge event to up to --event-concurrency
  instances of welcome-email and of profile-creator (async invokes are not capped by the template).

Instances are spawned and ready (asking for their first event) before the clock starts; the wall time
runs from the first signup batch handed out to the last answer. Then the end state is checked, so a
broken run cannot report a speed: every batch answered with no failed record, every event answered
without error, and exactly N users, N profiles, N notifications, N events, N confirmation emails, N
welcome emails and N profile documents, nothing in any dead-letter queue. A run that fails the check
stops the script with the reason.

Reported per run: wall time, signups/s, AWS calls (and per signup), round trips per invocation of
each function (the backend folds each invocation's calls on their own: the functions' SDK sends the
invocation's X-Ray trace id), peak RSS per function (VmHWM, the largest instance), DynamoDB write
units per signup and per invocation of each function, and the cost per million signups at
bench/cost.py's prices (us-east-1 by service, and each of us-east-1, us-west-2, eu-west-1 in total):
the Lambda requests, each invocation's wall time billed at 128 MB arm64 (init of the instances left
out), the billable units the backend counted (write and read units from item sizes, SQS requests,
events, S3 requests, emails), and the SQS pollers' ReceiveMessage + DeleteMessageBatch per SQS
batch; with the SES line that MailTransport=ses would add (two emails per signup) when the run used
the outbox. Prints Markdown; raw numbers go to bench/.out/scale.json (or
--json-out), and a plot of time and cost against signups to --plot (default bench/.out/scale.svg).
"""

from __future__ import annotations

import argparse
import json
import math
import queue
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cost  # noqa: E402
import harness as h  # noqa: E402

SQS_FUNCTIONS = ("user-processor", "notification-processor")
EVENT_FUNCTIONS = ("welcome-email", "profile-creator")
FUNCTIONS = SQS_FUNCTIONS + EVENT_FUNCTIONS
SHORT = {"user-processor": "up", "notification-processor": "np", "welcome-email": "we", "profile-creator": "pc"}
STALL_S = 60.0  # no answer at all for this long: the run is broken


@dataclass
class Settings:
    signups: int
    batch_size: int = 10
    concurrency: int = 5
    event_concurrency: int = 10
    latency_ms: float = 10.0


@dataclass
class Stage:
    """One function's invocations in a run."""
    invocations: int = 0
    wall_ms: list[float] = field(default_factory=list)
    first_sent: float | None = None
    last_done: float | None = None

    def record(self, inv: h.Invocation) -> None:
        self.invocations += 1
        self.wall_ms.append((inv.t_done - inv.t_sent) * 1000)
        self.first_sent = inv.t_sent if self.first_sent is None else min(self.first_sent, inv.t_sent)
        self.last_done = inv.t_done if self.last_done is None else max(self.last_done, inv.t_done)


def chunked(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def sqs_event(messages: list[dict], queue_arn: str) -> bytes:
    """An SQS event of drained messages (ReceiveMessage's shape) as Lambda delivers them."""
    records = []
    for m in messages:
        system = {k: v for k, v in m.get("Attributes", {}).items() if k != "SentTimestamp"}
        attrs = {name: {"dataType": a["DataType"], "stringValue": a.get("StringValue"),
                        "binaryValue": a.get("BinaryValue"), "stringListValues": [], "binaryListValues": []}
                 for name, a in m.get("MessageAttributes", {}).items()}
        records.append(h.sqs_record(m["Body"], queue_arn, message_id=m["MessageId"],
                                    sent_ms=int(m["Attributes"]["SentTimestamp"]), attributes=system,
                                    message_attributes=attrs))
    return json.dumps({"Records": records}).encode()


def eventbridge_event(entry: dict, account: str) -> dict:
    """The event EventBridge hands a rule's Lambda target for one PutEvents entry."""
    return {
        "version": "0",
        "id": entry["EventId"],
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": account,
        "time": entry.get("Time") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": h.REGION,
        "resources": entry.get("Resources") or [],
        "detail": json.loads(entry["Detail"]),
    }


def matches(pattern: dict, event: dict) -> bool:
    """An EventBridge pattern of exact values on top-level fields (what template.yaml's rules use)."""
    for key, allowed in pattern.items():
        if not isinstance(allowed, list) or not all(isinstance(v, str) for v in allowed):
            raise ValueError(f"rule pattern field {key!r}: only lists of exact strings are emulated")
        if event.get(key) not in allowed:
            return False
    return True


def mode_of_histogram(hist: dict[str, int]) -> int | None:
    """The most common value (the smallest of equally common ones)."""
    if not hist:
        return None
    value, _ = min(hist.items(), key=lambda kv: (-kv[1], int(kv[0])))
    return int(value)


def median_of_histogram(hist: dict[str, int]) -> float | None:
    values = sorted((int(k), n) for k, n in hist.items())
    total = sum(n for _, n in values)
    if not total:
        return None
    expanded = [k for k, n in values for _ in range(n)]
    return statistics.median(expanded)


def mean_of_histogram(hist: dict[str, int]) -> float | None:
    total = sum(hist.values())
    return sum(float(k) * n for k, n in hist.items()) / total if total else None


def pipeline_cost(stats: dict, stages: dict[str, Stage], sqs_batches: int, signups: int,
                  memory_mb: int = 128, region: str = "us-east-1") -> dict:
    """Dollars per million signups by service at `region`'s prices, and in total in each region: the
    billable units the backend counted (stats "units"; a backend that did not count them: the calls,
    batch calls by the items they carried), the Lambda side and the pollers from the run. `ses` is what
    MailTransport=ses adds when the run wrote its mail to the outbox (0 when it sent the mail)."""
    if "units" in stats:
        units = cost.counted_units(stats["units"])
    else:
        # one "batch" of one record holding every call: each batch operation by the items it carried
        units = cost.call_units(stats["calls"], 1, {op: float(n) for op, n in stats.get("entries", {}).items()})
    units.lambda_requests = sum(s.invocations for s in stages.values())
    units.gb_seconds = sum(cost.billed_ms(ms) for s in stages.values() for ms in s.wall_ms) / 1000 * memory_mb / 1024
    units.sqs += cost.ESM_SQS_REQUESTS_PER_BATCH * sqs_batches
    per_signup = units.scaled(1 / signups)
    usd = cost.per_million_usd(per_signup, region)
    mail = cost.Units() if per_signup.ses_emails else cost.Units(ses_emails=cost.SES_EMAILS_PER_SIGNUP)
    return {
        "units_per_signup": per_signup.__dict__, "usd_per_million": usd, "total": sum(usd.values()),
        "total_by_region": {r: sum(cost.per_million_usd(per_signup, r).values()) for r in cost.REGIONS},
        "ses": cost.per_million_usd(mail, region)["ses"],
    }


def run_pipeline(cfg: Settings, stack: tuple[dict, dict[str, str], dict[str, list[str]]],
                 binaries: dict[str, Path], backend_binary: Path = h.FIXED_BACKEND) -> dict:
    """One run of `cfg.signups` signups through the four functions; the measurements, or RuntimeError
    if the run or its end state is wrong."""
    manifest, env_file, tables = stack
    fns = {name: h.function_entry(manifest, name) for name in FUNCTIONS}
    apps = {fns[name]["function_name"]: name for name in FUNCTIONS}  # the SDK app name is the function name
    up_env = fns["user-processor"]["environment"]
    notification_queue = up_env["NOTIFICATION_QUEUE_URL"]
    bus = up_env["EVENT_BUS_NAME"]
    signup_arn = fns["user-processor"]["sqs_sources"][0]["queue_arn"]
    notification_arn = fns["notification-processor"]["sqs_sources"][0]["queue_arn"]
    account = manifest["account_id"]
    rules = {name: [src["pattern"] for src in fns[name]["event_sources"] if src["event_bus_name"] == bus]
             for name in EVENT_FUNCTIONS}

    backend = h.FixedBackend(tables, cfg.latency_ms, binary=backend_binary)
    completed: queue.Queue[h.Invocation] = queue.Queue()
    pools: dict[str, h.InstancePool] = {}
    stages = {name: Stage() for name in FUNCTIONS}
    owner: dict[str, str] = {}  # request id -> function
    counts = {"notifications": 0, "events": 0, "sqs_batches": 0}
    try:
        for name in FUNCTIONS:
            size = cfg.concurrency if name in SQS_FUNCTIONS else cfg.event_concurrency
            env = h.lambda_env(manifest, env_file, name, endpoint=backend.url, extra={"_HANDLER": "bootstrap"})
            pools[name] = h.InstancePool(f"scale-{name}", [str(binaries[name])], env, size, completed,
                                         function_arn=fns[name]["function_arn"],
                                         deadline_s=fns[name]["timeout_seconds"])
        for pool in pools.values():
            pool.wait_ready()
        backend.reset(data=True)
        # CPU used from here on: each function's instances, the backend, and this process (the Lambda
        # stand-in: Runtime APIs, pollers, delivery).
        cpu_start = {name: pool.cpu_seconds() for name, pool in pools.items()}
        cpu_start["backend"] = h.cpu_seconds(backend.proc.pid) or 0.0
        cpu_start["bench"] = time.process_time()

        def push(name: str, payload: bytes) -> None:
            owner[pools[name].push(payload).request_id] = name
            if name in SQS_FUNCTIONS:
                counts["sqs_batches"] += 1

        t0 = time.perf_counter()
        for batch in chunked(h.signup_bodies(cfg.signups, tag="scale"), cfg.batch_size):
            push("user-processor", json.dumps({"Records": [h.sqs_record(b, signup_arn) for b in batch]}).encode())
        answered = 0
        while answered < len(owner):
            try:
                inv = completed.get(timeout=STALL_S)
            except queue.Empty:
                for pool in pools.values():
                    pool.check()
                raise RuntimeError(f"no invocation answered for {STALL_S:g} s "
                                   f"({len(owner) - answered} outstanding)") from None
            answered += 1
            name = owner[inv.request_id]
            stages[name].record(inv)
            if inv.status != "response":
                raise RuntimeError(f"{name} invocation failed: {inv.body[:300]!r}")
            if name in SQS_FUNCTIONS and json.loads(inv.body or b"null") != {"batchItemFailures": []}:
                raise RuntimeError(f"{name} reported failed records: {inv.body[:300]!r}")
            if name != "user-processor":
                continue
            # What this invocation (and any finished beside it) sent, delivered as Lambda would.
            notes = backend.drain_queue(notification_queue)
            counts["notifications"] += len(notes)
            for batch in chunked(notes, cfg.batch_size):
                push("notification-processor", sqs_event(batch, notification_arn))
            for entry in backend.drain_bus(bus):
                counts["events"] += 1
                event = eventbridge_event(entry, account)
                for target, patterns in rules.items():
                    if any(matches(p, event) for p in patterns):
                        push(target, json.dumps(event).encode())
        wall_s = time.perf_counter() - t0
        cpu = {name: pool.cpu_seconds() - cpu_start[name] for name, pool in pools.items()}
        cpu["backend"] = (h.cpu_seconds(backend.proc.pid) or 0.0) - cpu_start["backend"]
        cpu["bench"] = time.process_time() - cpu_start["bench"]
        stats = backend.stats()
        rss = {name: max(pool.peak_rss_kib(), default=None) for name, pool in pools.items()}
        verify(cfg.signups, counts, stats, backend, fns)
    finally:
        for pool in pools.values():
            pool.close()
        backend.close()

    by_function = {}
    for app, inv in stats.get("invocations", {}).items():
        name = apps.get(app)
        if name:
            by_function[name] = {
                "invocations_seen": inv["count"],
                "round_trips_mode": mode_of_histogram(inv["round_trips"]),
                "round_trips_median": median_of_histogram(inv["round_trips"]),
                "round_trips_mean": mean_of_histogram(inv["round_trips"]),
                "calls_mean": mean_of_histogram(inv["calls"]),
                "round_trips": inv["round_trips"],
                "wru_mean": mean_of_histogram(inv.get("wru", {})),
            }
    calls_by_function = {apps.get(app, app): sum(ops.values()) for app, ops in stats["by_app"].items()}
    return {
        "settings": cfg.__dict__,
        "wall_s": wall_s,
        "signups_per_s": cfg.signups / wall_s,
        "calls": stats["total"],
        "calls_per_signup": stats["total"] / cfg.signups,
        "calls_by_operation": stats["calls"],
        "entries_by_operation": stats.get("entries", {}),
        "calls_by_function": calls_by_function,
        "errors": stats["errors"],
        "round_trips_all": stats["round_trips"],
        "per_invocation": by_function,
        "peak_rss_kib": rss,
        "cpu_s": cpu,
        "stages": {name: {
            "invocations": s.invocations,
            "span_s": (s.last_done - s.first_sent) if s.invocations else None,
            "invocation_ms": h.summary(s.wall_ms),
        } for name, s in stages.items()},
        "sqs_batches": counts["sqs_batches"],
        "cost": pipeline_cost(stats, stages, counts["sqs_batches"], cfg.signups),
    }


def verify(n: int, counts: dict, stats: dict, backend: h.FixedBackend, fns: dict[str, dict]) -> None:
    """The end state of a correct run of `n` new signups; RuntimeError naming every difference."""
    env = {k: v for f in fns.values() for k, v in f["environment"].items()}
    bucket = env["BUCKET_NAME"]
    expected = {
        "notifications sent": (counts["notifications"], n),
        "User Created events put": (counts["events"], n),
        "users stored": (stats["items"].get(env["USERS_TABLE"], 0), n),
        "profiles stored": (stats["items"].get(env["PROFILES_TABLE"], 0), n),
        "confirmation emails in the outbox": (backend.objects("outbox/signup_confirmation.", bucket), n),
        "welcome emails in the outbox": (backend.objects("outbox/welcome.", bucket), n),
        "profile documents": (backend.objects("profiles/", bucket), n),
    }
    for var in ("SIGNUP_DLQ_URL", "NOTIFICATION_DLQ_URL", "WELCOME_EMAIL_DLQ_URL", "PROFILE_CREATOR_DLQ_URL"):
        expected[f"messages in {var}"] = (len(backend.drain_queue(env[var])), 0)
    expected["messages or events left undelivered"] = (
        sum(stats["pending"]["queues"].values()) + sum(stats["pending"]["buses"].values()), 0)
    wrong = [f"{what}: {got}, expected {want}" for what, (got, want) in expected.items() if got != want]
    if wrong:
        raise RuntimeError("end state wrong: " + "; ".join(wrong))


# ---------------------------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------------------------


def per_function(r: dict, fmt_one) -> str:
    return " / ".join(fmt_one(name) for name in FUNCTIONS)


def trips(r: dict, name: str) -> str:
    """Round trips per invocation: the most common count (the call chain's depth) and the mean (CPU
    contention spreads a wave's calls, splitting or merging its round trips)."""
    f = r["per_invocation"].get(name)
    if not f or f["round_trips_mode"] is None:
        return "—"
    return f"{f['round_trips_mode']} ({f['round_trips_mean']:.1f})"


def wru(r: dict, name: str) -> str:
    """Write units per invocation of a function, as the backend counted them (mean)."""
    f = r["per_invocation"].get(name)
    return "—" if not f or f.get("wru_mean") is None else f"{f['wru_mean']:.1f}"


def rss_mib(r: dict, name: str) -> str:
    kib = r["peak_rss_kib"].get(name)
    return "—" if kib is None else f"{kib / 1024:.1f}"


def usd(v: float) -> str:
    return cost.usd(v)


def report_sizes(runs: list[dict]) -> None:
    s = runs[0]["settings"]
    print(f"\n### Scale: the whole pipeline on the fixed-latency backend ({s['latency_ms']:g} ms per call), "
          f"BatchSize {s['batch_size']}, MaximumConcurrency {s['concurrency']} (SQS), "
          f"{s['event_concurrency']} concurrent instances per EventBridge function\n")
    print("| signups | wall s | signups/s | AWS calls | calls per signup "
          "| round trips per invocation, most common (mean): up / np / we / pc | peak RSS MiB (up / np / we / pc) "
          "| WRU per signup | WRU per invocation (mean): up / np / we / pc | cost per million signups, USD |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['settings']['signups']:,} | {r['wall_s']:.2f} | {r['signups_per_s']:,.0f} | {r['calls']:,} "
              f"| {r['calls_per_signup']:.1f} | {per_function(r, lambda n: trips(r, n))} "
              f"| {per_function(r, lambda n: rss_mib(r, n))} | {r['cost']['units_per_signup']['wru']:g} "
              f"| {per_function(r, lambda n: wru(r, n))} | {usd(r['cost']['total'])} |")
    print("\nup = user-processor (one SQS batch), np = notification-processor (one SQS batch), "
          "we = welcome-email and pc = profile-creator (one event each).\n")
    print("Each function's stage (first event handed out → last answer) and its invocations:\n")
    print("| signups | function | invocations | stage s | invocation ms, median / p90 | AWS calls "
          "| calls per invocation |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        for name in FUNCTIONS:
            st = r["stages"][name]
            calls = r["calls_by_function"].get(name, 0)
            per = calls / st["invocations"] if st["invocations"] else None
            print(f"| {r['settings']['signups']:,} | {name} | {st['invocations']:,} | {h.fmt(st['span_s'], 2)} "
                  f"| {h.fmt(st['invocation_ms']['median'])} / {h.fmt(st['invocation_ms']['p90'])} "
                  f"| {calls:,} | {h.fmt(per)} |")
    print("\nWhere the CPU went, ms per signup (user + system time of the processes during the run; "
          "\"bench\" is this script playing Lambda: Runtime APIs, pollers, delivery):\n")
    print("| signups | up | np | we | pc | functions | backend | bench | total | cores busy (CPU s / wall s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        n, cpu = r["settings"]["signups"], r["cpu_s"]
        ms = {k: v * 1000 / n for k, v in cpu.items()}
        fn_ms = sum(ms[name] for name in FUNCTIONS)
        total = sum(ms.values())
        print(f"| {n:,} | " + " | ".join(f"{ms[name]:.2f}" for name in FUNCTIONS)
              + f" | {fn_ms:.2f} | {ms['backend']:.2f} | {ms['bench']:.2f} | {total:.2f} "
              f"| {sum(cpu.values()) / r['wall_s']:.2f} |")
    print("\nCost per million signups by service (USD, us-east-1 prices of bench/cost.py, 128 MB arm64, the "
          "units the backend counted), the total in each region at its own prices, and the SES delivery "
          "MailTransport=ses adds (two emails per signup; this run wrote them to the outbox):\n")
    services = ["lambda_requests", "lambda_duration", "dynamodb", "sqs", "eventbridge", "s3", "ses"]
    print("| signups | " + " | ".join(services) + " | **total** | " + " | ".join(cost.REGIONS)
          + " | + SES delivery |")
    print("|---|" + "---|" * (len(services) + 2 + len(cost.REGIONS)))
    for r in runs:
        c = r["cost"]["usd_per_million"]
        by_region = r["cost"].get("total_by_region", {})
        print(f"| {r['settings']['signups']:,} | " + " | ".join(usd(c.get(k, 0.0)) for k in services)
              + f" | **{usd(r['cost']['total'])}** | "
              + " | ".join(usd(by_region[g]) if g in by_region else "—" for g in cost.REGIONS)
              + f" | {usd(r['cost'].get('ses', 0.0))} |")


def report_sweep(runs: list[dict]) -> None:
    s = runs[0]["settings"]
    print(f"\n### Scaling controls: {s['signups']:,} signups, {s['latency_ms']:g} ms per call, "
          f"{s['event_concurrency']} concurrent instances per EventBridge function\n")
    print("| MaximumConcurrency | BatchSize | user-processor stage s | signups/s through user-processor "
          "| notification-processor stage s | pipeline wall s | pipeline signups/s | SQS batches "
          "| up invocation ms (median) | cores busy | cost per million, USD |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        st = r["settings"]
        up, np_ = r["stages"]["user-processor"], r["stages"]["notification-processor"]
        print(f"| {st['concurrency']} | {st['batch_size']} | {h.fmt(up['span_s'], 2)} "
              f"| {st['signups'] / up['span_s']:,.0f} | {h.fmt(np_['span_s'], 2)} | {r['wall_s']:.2f} "
              f"| {r['signups_per_s']:,.0f} | {r['sqs_batches']:,} | {h.fmt(up['invocation_ms']['median'])} "
              f"| {sum(r['cpu_s'].values()) / r['wall_s']:.2f} | {usd(r['cost']['total'])} |")


# ---------------------------------------------------------------------------------------------
# the plot: plain SVG text, no plotting library
# ---------------------------------------------------------------------------------------------


def log_ticks(lo: float, hi: float, multiples: tuple[int, ...] = (1, 2, 5)) -> list[float]:
    """`multiples` of the powers of ten between lo and hi."""
    out = []
    for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        out += [m * 10 ** e for m in multiples if lo <= m * 10 ** e <= hi]
    return out


def tick_label(v: float) -> str:
    return f"{v:,.0f}" if v >= 1 else f"{v:g}"


# The cost panel's lines: a name, the services of cost_usd it sums, and a colour.
COST_LINES = [
    ("total", None, "#1f77b4"),
    ("S3", ("s3",), "#2ca02c"),
    ("DynamoDB", ("dynamodb",), "#d62728"),
    ("SQS + EventBridge", ("sqs", "eventbridge"), "#9467bd"),
    ("Lambda", ("lambda_requests", "lambda_duration"), "#ff7f0e"),
]


def svg_plot(runs: list[dict], title: str) -> str:
    """Two panels against signups (log axis): wall time (log axis), and cost per million signups by
    service. Plain SVG text."""
    xs = [r["settings"]["signups"] for r in runs]
    walls = [r["wall_s"] for r in runs]
    totals = [r["cost"]["total"] for r in runs]
    width, height, top, bottom, left, gap = 860, 360, 56, 56, 70, 110
    pw, ph = (width - 2 * left - gap + 40) / 2, height - top - bottom
    x_lo, x_hi = min(xs) / 2, max(xs) * 2
    x_ticks = log_ticks(x_lo, x_hi, (1,) if x_hi / x_lo > 300 else (1, 2, 5))
    w_lo, w_hi = min(walls) / 2, max(walls) * 2
    # a round step giving about five gridlines, the axis ending on one
    # (room above the lines for the legend)
    raw = max(totals) * 1.7 / 5 or 1.0
    step = min(m * 10 ** math.floor(math.log10(raw)) for m in (1, 2, 5, 10)
               if m * 10 ** math.floor(math.log10(raw)) >= raw)
    c_hi = step * math.ceil(max(totals) * 1.7 / step)

    def frac_log(v: float, lo: float, hi: float) -> float:
        return (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    def xpos(panel: int, v: float) -> float:
        return left + panel * (pw + gap) + frac_log(v, x_lo, x_hi) * pw

    def ywall(v: float) -> float:
        return top + ph - frac_log(v, w_lo, w_hi) * ph

    def ycost(v: float) -> float:
        return top + ph - v / c_hi * ph

    def line(points: list[tuple[float, float]], colour: str, width_px: float, dash: str = "") -> str:
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        return (f'<polyline fill="none" stroke="{colour}" stroke-width="{width_px}"{dashed} points="'
                + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>')

    def label(x: float, y: float, text: str, anchor: str = "start", colour: str = "black") -> str:
        return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{colour}">{text}</text>'

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">{title}</text>']
    panels = [("wall time, s (log)", ywall, [(v, tick_label(v)) for v in log_ticks(w_lo, w_hi)]),
              ("cost per million signups, USD", ycost,
               [(step * i, f"{step * i:g}") for i in range(round(c_hi / step) + 1)])]
    for panel, (heading, yfun, y_ticks) in enumerate(panels):
        x0 = left + panel * (pw + gap)
        out.append(f'<rect x="{x0}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
        out.append(label(x0 + pw / 2, top - 10, heading, "middle"))
        for v, text in y_ticks:
            out.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{yfun(v):.1f}" y2="{yfun(v):.1f}" stroke="#ddd"/>')
            out.append(label(x0 - 6, yfun(v) + 4, text, "end"))
        for v in x_ticks:
            x = xpos(panel, v)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="#eee"/>')
            out.append(label(x, top + ph + 16, tick_label(v), "middle"))
        out.append(label(x0 + pw / 2, top + ph + 36, "signups (log)", "middle"))

    # wall time, with time proportional to the work from the first point for reference
    ref = [(xpos(0, x), ywall(walls[0] * x / xs[0])) for x in (xs[0], max(xs))]
    if len(xs) > 1 and all(top <= y <= top + ph for _, y in ref):
        out.append(line(ref, "#999", 1, "4 4"))
        out.append(label(ref[1][0] - 8, ref[1][1] - 10, "proportional to signups", "end", "#777"))
    points = [(xpos(0, x), ywall(y)) for x, y in zip(xs, walls)]
    out.append(line(points, "#1f77b4", 2))
    for i, ((px, py), r) in enumerate(zip(points, runs)):
        out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="#1f77b4"/>')
        last = i == len(points) - 1 and i > 0
        out.append(label(px + (-8 if last else 8), py + (14 if last else -6),
                         f"{r['wall_s']:.1f} s, {r['signups_per_s']:,.0f}/s", "end" if last else "start"))

    # cost, in total and by service; the legend gives each at the largest size
    legend_x = left + pw + gap + 10
    for row, (name, services, colour) in enumerate(COST_LINES):
        ys = totals if services is None else [sum(r["cost"]["usd_per_million"][k] for k in services) for r in runs]
        points = [(xpos(1, x), ycost(y)) for x, y in zip(xs, ys)]
        out.append(line(points, colour, 2 if services is None else 1.2))
        for px, py in points:
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{3 if services is None else 2}" fill="{colour}"/>')
        y = top + 16 + 15 * row
        out.append(line([(legend_x, y - 4), (legend_x + 18, y - 4)], colour, 2))
        out.append(label(legend_x + 24, y, f"{name}: ${ys[-1]:.2f} at {xs[-1]:,}"))
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100,1000,10000", help="signups per run, comma-separated")
    p.add_argument("--quick", action="store_true", help="100 signups only")
    p.add_argument("--batch-size", type=int, default=10, help="SQS BatchSize of both mappings (default 10)")
    p.add_argument("--concurrency", type=int, default=5,
                   help="MaximumConcurrency of both SQS mappings: instances of each SQS function (default 5)")
    p.add_argument("--event-concurrency", type=int, default=10,
                   help="instances of each EventBridge function (default 10)")
    p.add_argument("--latency-ms", type=float, default=10.0, help="the backend's latency per call (default 10)")
    p.add_argument("--sweep", action="store_true",
                   help="instead of --sizes: --signups through each --sweep-concurrency at --batch-size, "
                        "and each --sweep-batch-sizes at --concurrency")
    p.add_argument("--signups", type=int, default=1000, help="signups per sweep run (default 1000)")
    p.add_argument("--sweep-concurrency", default="1,2,5,10")
    p.add_argument("--sweep-batch-sizes", default="1,5,10")
    p.add_argument("--plot", type=Path, help="SVG of time and cost against signups (default bench/.out/scale.svg)")
    p.add_argument("--backend-binary", type=Path, default=h.FIXED_BACKEND)
    p.add_argument("--bin-dir", type=Path, default=h.ROOT / "target" / "release",
                   help="where the four function binaries are (default target/release; another build, e.g. of "
                        "an earlier commit with BENCH_SRC set to its tree, to compare in one sitting)")
    p.add_argument("--json-out", help="file name under bench/.out/ (default scale.json, scale-sweep.json)")
    args = p.parse_args()

    binaries = {name: args.bin_dir / name for name in FUNCTIONS}
    missing = [str(b) for b in list(binaries.values()) + [args.backend_binary] if not Path(b).is_file()]
    if missing:
        h.log("missing: " + ", ".join(missing) + " (cargo build --release --bin <function>; "
              "cargo build --release -p eventline-bench-backend)")
        return 2

    if args.sweep:
        plans = [Settings(args.signups, args.batch_size, c, args.event_concurrency, args.latency_ms)
                 for c in ints(args.sweep_concurrency)]
        plans += [Settings(args.signups, b, args.concurrency, args.event_concurrency, args.latency_ms)
                  for b in ints(args.sweep_batch_sizes)
                  if (b, args.concurrency) not in {(x.batch_size, x.concurrency) for x in plans}]
    else:
        sizes = [100] if args.quick else ints(args.sizes)
        plans = [Settings(n, args.batch_size, args.concurrency, args.event_concurrency, args.latency_ms)
                 for n in sizes]

    load_before = h.machine()["loadavg"]
    h.log("provisioning template.yaml into a short-lived moto for the functions' environment ...")
    stack = h.fixed_stack("scale")
    runs = []
    for cfg in plans:
        h.log(f"  {cfg.signups:,} signups, BatchSize {cfg.batch_size}, MaximumConcurrency {cfg.concurrency}, "
              f"{cfg.event_concurrency} per EventBridge function ...")
        try:
            r = run_pipeline(cfg, stack, binaries, args.backend_binary)
        except RuntimeError as e:
            h.log(f"  FAILED: {e}")
            return 1
        h.log(f"    {r['wall_s']:.2f} s, {r['signups_per_s']:,.0f} signups/s, end state checked")
        runs.append(r)

    data = {
        "benchmark": "scale-sweep" if args.sweep else "scale",
        "machine": h.machine(), "loadavg_before": load_before, "git": h.git_rev(),
        "binaries": {k: str(v) for k, v in binaries.items()},
        "command": " ".join([".venv/bin/python", "bench/scale.py"] + sys.argv[1:]),
        "runs": runs,
    }
    out = h.write_json(args.json_out or ("scale-sweep.json" if args.sweep else "scale.json"), data)
    if args.sweep:
        report_sweep(runs)
    else:
        report_sizes(runs)
        plot = (args.plot or h.OUT / "scale.svg").resolve()
        plot.parent.mkdir(parents=True, exist_ok=True)
        s = runs[0]["settings"]
        plot.write_text(svg_plot(runs, f"the whole pipeline, fixed-latency backend at {s['latency_ms']:g} ms per "
                                       f"call; BatchSize {s['batch_size']}, MaximumConcurrency {s['concurrency']}"))
        print(f"\nplot: {plot.relative_to(h.ROOT) if plot.is_relative_to(h.ROOT) else plot}")
    print(f"\nmachine: {data['machine']['nproc']} cores; load average before/after: "
          f"{'/'.join(f'{x:.2f}' for x in load_before)} -> "
          f"{'/'.join(f'{x:.2f}' for x in data['machine']['loadavg'])}; source {data['git']}")
    print(f"raw: {out.relative_to(h.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
