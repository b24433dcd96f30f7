"""Check IAM by behaviour: every AWS call a function really made must be permitted by its role.
`scripts/iam_check.py` is the command; the check is split by role:

    recording  the moto request recording (MOTO_ENABLE_RECORDING) read back, request by request
    services   one decoder per service (DynamoDB, SQS, EventBridge, S3, SES): request -> IAM pairs
    calls      each function's calls (by the `app/<function>` user agent), as (action, resource) pairs
    resolver   CloudFormation intrinsics resolved against the deployed stack's manifest
    policies   every policy of each function's role, from the SAM translation of template.yaml
    verdict    moto's IAM evaluator on each pair, the report and its rendering
    check      the three steps above, end to end
    selftest   --prove-failure: one permission removed must be caught, and nothing else

Fails on: a call not permitted, a call it cannot map to an IAM action, a function of the stack
with no recorded call (a run that recorded nothing proves nothing). docs/iam.md explains what
this sees and what it cannot.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# The provisioning package (scripts/stack) is imported as `stack`.
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

DEFAULT_RECORDING = ROOT / "target" / "iam" / "recording.jsonl"
DEFAULT_MANIFEST = ROOT / "target" / "e2e" / "stack.json"


class IamCheckError(Exception):
    """The check could not be carried out (bad input, unsupported template construct)."""


@dataclass(frozen=True)
class Pair:
    """What IAM authorises: one action on one resource."""

    action: str
    resource: str


@dataclass
class Call:
    """One recorded request made by a function."""

    function: str
    operation: str  # e.g. "dynamodb.TransactWriteItems"
    pairs: list[Pair] = field(default_factory=list)
    unmapped: str | None = None  # why it could not be mapped to IAM actions


@dataclass(frozen=True)
class Stack:
    """Where the deployed stack lives: ARNs are built with these."""

    region: str
    account: str
    partition: str = "aws"
