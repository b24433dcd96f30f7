"""Deploying template.yaml into moto, split by role (scripts/provision.py is the command):

    translate  template.yaml -> CloudFormation, offline (`sam package` + the SAM transform)
    local      the rewrites moto needs, and the expressions moto is asked to resolve
    resolve    how moto's CloudFormation resolves them (extra stack outputs)
    deploy     create the stack in moto, wait, read it back, apply what moto's CloudFormation skips
    manifest   what the local runner, the tests, the benches and iam_check read (.local/stack.json)
    regions    `provision.py --regions`: one stack per region, their parameters and files
    check      `provision.py --check`: probe the deployed stack

docs/local.md ("Provisioning from template.yaml") describes each step.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
REGION = "us-east-1"  # the region of a single-region stack
ACCOUNT_ID = "123456789012"
PARTITION = "aws"
DUMMY_KEY = "test"

# Everything here talks only to the local emulator, with dummy credentials; samtranslator also
# requires a region on its boto3 session.
os.environ["AWS_DEFAULT_REGION"] = REGION
os.environ["AWS_REGION"] = REGION
os.environ["AWS_ACCESS_KEY_ID"] = DUMMY_KEY
os.environ["AWS_SECRET_ACCESS_KEY"] = DUMMY_KEY
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_SESSION_TOKEN", None)


class ProvisionError(Exception):
    """Provisioning cannot go on; the message says what to do."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
