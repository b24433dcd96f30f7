#!/usr/bin/env python3
"""Put dead-lettered events back where they belong (`make redrive`; docs/reliability.md, "Redrive").

    .venv/bin/python scripts/redrive.py                          # the local stack(s) of the running moto: .local/stack.json, .local/*/stack.json
    .venv/bin/python scripts/redrive.py --manifest .local/us-west-2/stack.json [--manifest ...]
    .venv/bin/python scripts/redrive.py --stack eventline-dev --region us-west-2 [--region us-east-1 ...]   # AWS
    ... [--dry-run]

SQS's own redrive (StartMessageMoveTask) moves messages between queues only; an event that EventBridge
or Lambda dead-lettered has to be put back with PutEvents or Invoke. Each queue this reads, and where
its events go:

| Queue | Holds | Put back |
|---|---|---|
| ForwardingDLQ | events a forwarding rule could not put on a peer bus (body: the event; `TARGET_ARN`: that bus) | PutEvents onto the peer bus |
| <function> rule DLQ | events a rule could not deliver to the function (body: the event) | into the function: async Invoke (AWS), its rule's tap queue (local) |
| <function> failure queue | Lambda's OnFailure records (`requestPayload`: the event) and the function's own dead letters (body: the event, `eventline.*` attributes) | the same |

An event keeps its identity: source, detail-type, time and the detail unchanged (`event_key`,
`correlation_id`, `origin_region`), so the consumers deduplicate a copy they already processed and a
peer does not forward a forwarded event again. Invoke (and the local tap) get the event exactly as
it was. A message is deleted only once its event is put back; one that holds no event is left in
its queue and reported. Prints what it moved, never an email or a name.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ROOT = Path(__file__).resolve().parent.parent
# Hidden from other readers while this run handles them; a message left in place comes back after it.
VISIBILITY_S = 60


@dataclass
class Route:
    """One dead-letter queue and how its events are put back."""

    queue_url: str
    label: str
    sqs: Any
    # event -> description of where it went; raises on failure. None: a forwarding DLQ (PutEvents
    # onto the bus its message names).
    deliver: Callable[[dict], str] | None
    events_for: Callable[[str], Any] = field(repr=False, default=None)  # region -> events client


@dataclass
class Moved:
    moved: int = 0
    left: int = 0
    failed: int = 0


def dead_event(message: dict) -> tuple[dict, str] | None:
    """The event in a dead-lettered message and why it was dead-lettered, or None if it holds none."""
    try:
        body = json.loads(message.get("Body", ""))
    except ValueError:
        return None
    attributes = {k: v.get("StringValue", "") for k, v in (message.get("MessageAttributes") or {}).items()}
    if isinstance(body, dict) and "requestContext" in body and "requestPayload" in body:
        why = f"OnFailure: {body['requestContext'].get('condition', '?')}"
        body = body["requestPayload"]
    elif "eventline.error_code" in attributes:
        why = f"rejected by {attributes.get('eventline.function', 'the function')}: {attributes['eventline.error_code']}"
    else:
        why = attributes.get("ERROR_CODE", "dead-lettered")
    if not (isinstance(body, dict) and {"source", "detail-type", "detail"} <= body.keys()):
        return None
    return body, why


def describe(event: dict) -> str:
    """What identifies an event, without personal data."""
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    keys = ("user_id", "event_key", "correlation_id", "origin_region")
    ids = " ".join(f"{k}={detail[k]}" for k in keys if k in detail)
    return f"{event.get('detail-type')} {ids}".strip()


def put_on_bus(events_for: Callable[[str], Any], bus_arn: str, event: dict) -> str:
    """PutEvents of `event` onto the bus `bus_arn` (in its region), source, type, time and detail kept."""
    parts = bus_arn.split(":")
    if len(parts) < 6 or parts[2] != "events" or not parts[5].startswith("event-bus/"):
        raise ValueError(f"not an event bus ARN: {bus_arn!r}")
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "EventBusName": bus_arn,
        "Resources": event.get("resources") or [],
    }
    if event.get("time"):
        entry["Time"] = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    answer = events_for(parts[3]).put_events(Entries=[entry])
    if answer.get("FailedEntryCount"):
        raise RuntimeError(f"PutEvents refused it: {answer['Entries'][0].get('ErrorMessage')}")
    return f"bus {parts[5].split('/', 1)[1]} in {parts[3]}"


def redrive(route: Route, dry_run: bool, say: Callable[[str], None]) -> Moved:
    """Moves every event of `route`'s queue back; returns the counts."""
    counts, seen, kept = Moved(), set(), []
    while True:
        answer = route.sqs.receive_message(
            QueueUrl=route.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
            VisibilityTimeout=0 if dry_run else VISIBILITY_S, MessageAttributeNames=["All"],
        )
        messages = [m for m in answer.get("Messages", []) if m["MessageId"] not in seen]
        if not messages:
            # What stays is visible again at once, not after this run's visibility timeout.
            for handle in kept:
                route.sqs.change_message_visibility(QueueUrl=route.queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
            return counts
        for message in messages:
            seen.add(message["MessageId"])
            found = dead_event(message)
            if found is None:
                counts.left += 1
                kept.append(message["ReceiptHandle"])
                say(f"redrive: {route.label}: message {message['MessageId']} holds no event; left in place")
                continue
            event, why = found
            attributes = message.get("MessageAttributes") or {}
            try:
                if route.deliver is None:
                    target = (attributes.get("TARGET_ARN") or {}).get("StringValue", "")
                    if dry_run:
                        where = f"bus {target}"
                    else:
                        where = put_on_bus(route.events_for, target, event)
                else:
                    where = "(dry run)" if dry_run else route.deliver(event)
            except Exception as e:  # noqa: BLE001 - reported, the message stays for the next run
                counts.failed += 1
                kept.append(message["ReceiptHandle"])
                say(f"redrive: {route.label}: {describe(event)}: NOT moved ({e}); left in place")
                continue
            if not dry_run:
                route.sqs.delete_message(QueueUrl=route.queue_url, ReceiptHandle=message["ReceiptHandle"])
            counts.moved += 1
            verb = "would move" if dry_run else "moved"
            say(f"redrive: {route.label} -> {where}: {verb} {describe(event)} ({why})")


def client(service: str, region: str, endpoint: str | None):
    if endpoint is None:
        return boto3.client(service, region_name=region)
    return boto3.client(
        service, region_name=region, endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 2, "mode": "standard"}),
    )


def local_routes(manifest: dict) -> list[Route]:
    """The dead-letter queues of a local stack (a manifest of provision.py) and their way back: a
    consumer's events go onto its rule's tap queue, which the local runner invokes it from."""
    endpoint, region = manifest["endpoint"], manifest["region"]
    sqs = client("sqs", region, endpoint)

    def events_for(r: str):
        return client("events", r, endpoint)

    routes = []
    forwarding = (manifest.get("resources") or {}).get("ForwardingDLQ")
    if forwarding:
        routes.append(Route(forwarding, f"{region} ForwardingDLQ", sqs, None, events_for))
    for fn in manifest["functions"]:
        taps = fn.get("event_sources") or []
        if not taps:
            continue

        def onto(tap_url: str, name: str = fn["name"]) -> Callable[[dict], str]:
            def deliver(event: dict) -> str:
                sqs.send_message(QueueUrl=tap_url, MessageBody=json.dumps(event))
                return f"{name} (its rule's tap)"
            return deliver

        for tap in taps:
            if tap.get("dead_letter_queue_url"):
                routes.append(Route(tap["dead_letter_queue_url"], f"{region} {fn['name']} rule DLQ", sqs,
                                    onto(tap["tap_queue_url"])))
        on_failure = (fn.get("async_invoke") or {}).get("on_failure_queue_url")
        if on_failure:
            routes.append(Route(on_failure, f"{region} {fn['name']} failure queue", sqs, onto(taps[0]["tap_queue_url"])))
    return routes


def aws_routes(stack: str, region: str) -> list[Route]:
    """The dead-letter queues of a deployed stack, from its outputs: `<Function>RuleDLQUrl` and
    `<Function>FailureQueueUrl` go back to `<Function>FunctionArn` (async Invoke, as EventBridge
    invokes it), `ForwardingDLQUrl` onto the peer buses."""
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in client("cloudformation", region, None).describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])}
    sqs, lam = client("sqs", region, None), client("lambda", region, None)
    routes = []
    if outputs.get("ForwardingDLQUrl"):
        routes.append(Route(outputs["ForwardingDLQUrl"], f"{region} ForwardingDLQ", sqs, None,
                            lambda r: client("events", r, None)))
    for key, arn in sorted(outputs.items()):
        if not key.endswith("FunctionArn"):
            continue
        function = key[: -len("FunctionArn")]

        def invoke(event: dict, arn: str = arn, function: str = function) -> str:
            answer = lam.invoke(FunctionName=arn, InvocationType="Event", Payload=json.dumps(event).encode())
            if answer.get("StatusCode") != 202:
                raise RuntimeError(f"Invoke answered {answer.get('StatusCode')}")
            return f"{function} (async Invoke)"

        for suffix, what in (("RuleDLQUrl", "rule DLQ"), ("FailureQueueUrl", "failure queue")):
            if outputs.get(function + suffix):
                routes.append(Route(outputs[function + suffix], f"{region} {function} {what}", sqs, invoke))
    return routes


def running_local_stacks() -> list[Path]:
    """The manifests in .local/ (one stack, or one per region) of the moto server scripts/moto.sh runs
    (.local/moto.url): older manifests there may name a server that is gone."""
    url_file = ROOT / ".local" / "moto.url"
    running = url_file.read_text().strip() if url_file.is_file() else None
    found = [ROOT / ".local" / "stack.json", *sorted((ROOT / ".local").glob("*/stack.json"))]
    return [m for m in found if m.is_file() and json.loads(m.read_text()).get("endpoint") == running]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", action="append", default=[], help="a local stack's manifest (repeatable)")
    p.add_argument("--stack", help="a deployed stack's name (AWS, default credentials)")
    p.add_argument("--region", action="append", default=[], help="with --stack: a region running it (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print what would move; change nothing")
    args = p.parse_args(argv)

    routes: list[Route] = []
    if args.stack:
        if not args.region:
            p.error("--stack needs --region (one per region running the stack)")
        for region in args.region:
            routes += aws_routes(args.stack, region)
    else:
        manifests = [Path(m) for m in args.manifest] or running_local_stacks()
        if not manifests:
            print("redrive: no local stack of a running moto in .local/: run `KEEP=1 make demo` or `make provision`, "
                  "or give --manifest, or --stack and --region", file=sys.stderr)
            return 2
        for m in manifests:
            try:
                routes += local_routes(json.loads(m.read_text()))
            except (OSError, ValueError, KeyError) as e:
                print(f"redrive: {m} is not a manifest of provision.py ({e!r})", file=sys.stderr)
                return 2

    total = Moved()
    for route in routes:
        try:
            counts = redrive(route, args.dry_run, print)
        except (BotoCoreError, ClientError) as e:
            print(f"redrive: {route.label}: cannot read {route.queue_url} ({e}); skipped")
            counts = Moved(failed=1)
        total.moved, total.left, total.failed = total.moved + counts.moved, total.left + counts.left, total.failed + counts.failed
    verb = "would move" if args.dry_run else "moved"
    print(f"redrive: {verb} {total.moved} event(s) from {len(routes)} queue(s); "
          f"{total.left} message(s) without an event left in place; {total.failed} failed")
    return 1 if total.failed else 0


if __name__ == "__main__":
    sys.exit(main())
