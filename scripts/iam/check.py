"""The check end to end: a recording and a stack's manifest and translated template in, a
report out."""

from __future__ import annotations

from pathlib import Path

from iam import Stack
from iam.calls import function_calls
from iam.policies import RolePolicies, policies_by_function
from iam.recording import read_recording
from iam.verdict import Report, evaluate


def run_check(recording: Path, manifest: dict, translated: dict) -> tuple[Report, dict[str, RolePolicies]]:
    stack = Stack(region=manifest["region"], account=manifest["account_id"])
    names: dict[str, str] = {}
    for fn in manifest["functions"]:
        names[fn["name"]] = fn["name"]
        names[fn["function_name"]] = fn["name"]
    calls, foreign = function_calls(read_recording(recording), names, stack)
    policies = policies_by_function(translated, manifest, stack)
    return evaluate(calls, policies, foreign), policies
