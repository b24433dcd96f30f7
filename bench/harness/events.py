"""SQS signup events as Lambda receives them."""

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

from .common import *  # noqa: F401,F403



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


