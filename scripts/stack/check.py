"""`provision.py --check`: probes the deployed stack a manifest describes. It sends synthetic
messages, so run it before a runner is attached to the stack."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from . import ProvisionError, log
from .deploy import Aws


def synthesize(pattern: Any) -> Any:
    """An event fragment matching a pattern made of plain value lists (the first value of each);
    None if the pattern uses content filters (prefix, numeric, exists, ...)."""
    if isinstance(pattern, list):
        plain = [v for v in pattern if isinstance(v, (str, int, float, bool))]
        return plain[0] if plain and len(plain) == len(pattern) else None
    if isinstance(pattern, dict):
        out = {}
        for k, v in pattern.items():
            s = synthesize(v)
            if s is None:
                return None
            out[k] = s
        return out
    return None


def queue_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def check(manifest_path: Path, endpoint: str | None) -> int:
    if not manifest_path.is_file():
        raise ProvisionError(f"no manifest at {manifest_path}: provision first (or pass --out)")
    manifest = json.loads(manifest_path.read_text())
    aws = Aws(endpoint or manifest["endpoint"], manifest["region"])
    aws.ping()
    failures: list[str] = []
    checked = check_sqs_sources(aws, manifest, failures) + check_taps(aws, manifest, failures)
    checked += check_log_groups(aws, manifest, failures)
    for f in failures:
        log(f"check FAILED: {f}")
    if not failures:
        print(f"check passed ({checked} checks) against {aws.endpoint}")
    return 1 if failures else 0


def check_sqs_sources(aws: Aws, manifest: dict, failures: list[str]) -> int:
    """Every SQS event source has a working redrive to an existing DLQ, and nobody else receives
    from it (e.g. moto itself, through an enabled event source mapping)."""
    sqs, checked = aws("sqs"), 0
    for fn in manifest["functions"]:
        for src in fn["sqs_sources"]:
            if not src.get("enabled", True):
                continue
            url, name = src["queue_url"], queue_name(src["queue_url"])
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            redrive = json.loads(attrs.get("RedrivePolicy") or "{}")
            if not redrive.get("deadLetterTargetArn"):
                failures.append(f"{url}: no RedrivePolicy")
                continue
            dlq_name = redrive["deadLetterTargetArn"].rsplit(":", 1)[-1]
            try:
                sqs.get_queue_url(QueueName=dlq_name)
            except ClientError:
                failures.append(f"{url}: DLQ {dlq_name} does not exist")
            checked += 1
            # A message sent to the source queue is receivable, and nobody received it before:
            # ApproximateReceiveCount is 1.
            check_id = str(uuid.uuid4())
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"eventline_check_id": check_id}))
            got = receive_probe(sqs, url, check_id)
            if not got:
                failures.append(f"{name}: a message sent to it could not be received")
            elif got["Attributes"].get("ApproximateReceiveCount") != "1":
                failures.append(
                    f"{name}: first receive has ApproximateReceiveCount {got['Attributes'].get('ApproximateReceiveCount')} "
                    f"(something else received it first; is an event source mapping enabled in moto?)"
                )
            else:
                print(f"check ok: {name} -> SendMessage/ReceiveMessage, redrive to {dlq_name} after {redrive.get('maxReceiveCount')} receives")
                checked += 1
    return checked


def check_taps(aws: Aws, manifest: dict, failures: list[str]) -> int:
    """PutEvents onto each tapped bus succeeds and reaches every tap whose rule matches."""
    sqs, events, checked = aws("sqs"), aws("events"), 0
    taps = [(fn["name"], es) for fn in manifest["functions"] for es in fn["event_sources"]]
    probes: dict[str, dict] = {}
    for fn_name, es in taps:
        fragment = synthesize(es["pattern"] or {})
        if fragment is None or not isinstance(fragment, dict):
            log(f"check: {queue_name(es['tap_queue_url'])}: its rule's pattern uses content filters; not probed")
            continue
        fragment.setdefault("source", "eventline.check")
        fragment.setdefault("detail-type", "eventline check")
        detail = fragment.get("detail") if isinstance(fragment.get("detail"), dict) else {}
        key = json.dumps([es["event_bus_name"], fragment], sort_keys=True)
        probe = probes.setdefault(key, {"bus": es["event_bus_name"], "fragment": fragment, "detail": detail, "taps": []})
        probe["taps"].append((fn_name, es))
    for probe in probes.values():
        check_id = str(uuid.uuid4())
        entry = {
            "Source": probe["fragment"]["source"],
            "DetailType": probe["fragment"]["detail-type"],
            "Detail": json.dumps({**probe["detail"], "eventline_check_id": check_id}),
            "EventBusName": probe["bus"],
        }
        try:
            resp = events.put_events(Entries=[entry])
        except ClientError as e:
            failures.append(f"PutEvents {entry['DetailType']!r} on {probe['bus']} failed: {e}")
            continue
        if resp.get("FailedEntryCount"):
            failures.append(f"PutEvents {entry['DetailType']!r} on {probe['bus']}: {resp['Entries']}")
            continue
        for fn_name, es in probe["taps"]:
            if receive_probe(sqs, es["tap_queue_url"], check_id) is not None:
                print(f"check ok: {entry['DetailType']!r} on {probe['bus']} -> {queue_name(es['tap_queue_url'])} ({fn_name})")
                checked += 1
            else:
                failures.append(f"{entry['DetailType']!r} on {probe['bus']} did not arrive on {es['tap_queue_url']} ({fn_name})")
    # Drop probes that broader rules delivered to other taps.
    for _, es in taps:
        receive_probe(sqs, es["tap_queue_url"], None, timeout=0)
    return checked


def check_log_groups(aws: Aws, manifest: dict, failures: list[str]) -> int:
    """Every function's log group exists with a retention (the template pre-creates them)."""
    checked = 0
    for fn in manifest["functions"]:
        name = fn.get("log_group")
        if not name:
            continue
        groups = aws("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        group = next((g for g in groups if g["logGroupName"] == name), None)
        if group is None:
            failures.append(f"{fn['name']}: log group {name} does not exist")
        elif not group.get("retentionInDays"):
            failures.append(f"{fn['name']}: log group {name} has no retention (never expires)")
        else:
            print(f"check ok: {fn['name']} -> log group {name}, retention {group['retentionInDays']} days")
            checked += 1
    return checked


def receive_probe(sqs, url: str, check_id: str | None, timeout: float = 5.0) -> dict | None:
    """Delete probe messages from `url` and return the one carrying check_id (None if it did not come
    within `timeout`). Messages that are not probes are made visible again at once (this does count
    as a receive for them: run --check on a fresh stack)."""
    deadline = time.monotonic() + timeout
    found = None
    while True:
        msgs = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0 if timeout == 0 else 1,
            AttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        for m in msgs:
            try:
                body = json.loads(m["Body"])
                probe_id = body.get("eventline_check_id") or (body.get("detail") or {}).get("eventline_check_id")
            except (ValueError, AttributeError):
                probe_id = None
            if probe_id:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                if probe_id == check_id:
                    found = m
            else:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        if found or time.monotonic() > deadline or (timeout == 0 and not msgs):
            return found
