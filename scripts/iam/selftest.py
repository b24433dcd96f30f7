"""--prove-failure: removes one permission user-processor really uses (events:PutEvents) from
the translated template and asserts that the check then reports exactly those calls, nothing
else."""

from __future__ import annotations

import copy
import re
from pathlib import Path

from iam import IamCheckError
from iam.check import run_check
from iam.policies import role_of
from iam.verdict import Report, Violation

# The permission --prove-failure removes: one every end-to-end run exercises.
PROOF_FUNCTION = "user-processor"
PROOF_ACTION = "events:PutEvents"


def drop_permission(translated: dict, role_lid: str, action: str) -> int:
    """Removes `action` from every statement of `role_lid`'s inline policies and of the
    AWS::IAM::Policy resources attached to it. Returns how many statements changed."""
    resources = translated["Resources"]
    docs = [p["PolicyDocument"] for p in (resources[role_lid].get("Properties") or {}).get("Policies") or []]
    docs += [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and {"Ref": role_lid} in (r.get("Properties") or {}).get("Roles", [])
    ]
    changed = 0
    for doc in docs:
        statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        kept = []
        for st in statements:
            actions = st.get("Action")
            actions = [actions] if isinstance(actions, str) else list(actions or [])
            if any("*" in a and re.fullmatch(a.replace("*", ".*"), action, re.I) for a in actions):
                raise IamCheckError(f"{role_lid}: a wildcard action grants {action}; cannot remove it alone")
            left = [a for a in actions if a.lower() != action.lower()]
            if len(left) != len(actions):
                changed += 1
                if not left:
                    continue
                st["Action"] = left
            kept.append(st)
        doc["Statement"] = kept
    return changed


def prove_failure(recording: Path, manifest: dict, translated: dict, baseline: Report) -> list[str]:
    """Removes PROOF_ACTION from PROOF_FUNCTION's role; the check must then report exactly the
    calls that needed it. Returns what went wrong (empty: proven)."""
    fn = next((f for f in manifest["functions"] if f["name"] == PROOF_FUNCTION), None)
    if fn is None:
        return [f"the stack has no function {PROOF_FUNCTION}"]
    expected = {
        Violation(PROOF_FUNCTION, p.action, p.resource, "NEUTRAL")
        for c in baseline.calls
        if c.function == PROOF_FUNCTION
        for p in c.pairs
        if p.action == PROOF_ACTION
    }
    if not expected:
        return [f"the recording has no {PROOF_ACTION} call of {PROOF_FUNCTION}: nothing to prove with"]
    mutated = copy.deepcopy(translated)
    role = role_of(mutated["Resources"][fn["logical_id"]])
    if drop_permission(mutated, role, PROOF_ACTION) == 0:
        return [f"{role} has no statement granting {PROOF_ACTION}"]
    report, _ = run_check(recording, manifest, mutated)
    got = set(report.violations) - set(baseline.violations)
    problems = []
    if got != expected:
        problems.append(
            f"without {PROOF_ACTION} on {role} the check reported {sorted(map(str, got))}, expected exactly {sorted(map(str, expected))}"
        )
    return problems
