"""The verdict: moto's IAM policy evaluator (`moto.iam.access_control.IAMPolicy`) decides each
pair against every policy of the function's role. A pair is allowed when some policy PERMITS it
and none DENIES it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from iam import Call, Pair
from iam.policies import RolePolicies


def decide(policies: RolePolicies, pair: Pair) -> str:
    """PERMITTED, DENIED or NEUTRAL, across all of the role's policies (explicit deny wins)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    permitted = False
    for _, doc in policies.documents:
        result = IAMPolicy(json.dumps(doc)).is_action_permitted(pair.action, pair.resource)
        if result == PermissionResult.DENIED:
            return "DENIED"
        permitted = permitted or result == PermissionResult.PERMITTED
    return "PERMITTED" if permitted else "NEUTRAL"


@dataclass(frozen=True)
class Violation:
    function: str
    action: str
    resource: str
    verdict: str


@dataclass
class Report:
    calls: list[Call]
    violations: dict[Violation, list[str]]  # -> operations that needed it
    unmapped: list[Call]
    silent_functions: list[str]
    foreign_apps: dict[str, int]
    pairs_checked: int

    @property
    def ok(self) -> bool:
        return not (self.violations or self.unmapped or self.silent_functions)


def evaluate(calls: list[Call], policies: dict[str, RolePolicies], foreign: dict[str, int] | None = None) -> Report:
    violations: dict[Violation, list[str]] = {}
    verdicts: dict[tuple[str, Pair], str] = {}
    checked = 0
    for call in calls:
        for pair in call.pairs:
            key = (call.function, pair)
            if key not in verdicts:
                verdicts[key] = decide(policies[call.function], pair)
            checked += 1
            if verdicts[key] != "PERMITTED":
                violations.setdefault(Violation(call.function, pair.action, pair.resource, verdicts[key]), []).append(call.operation)
    seen = {c.function for c in calls}
    return Report(
        calls=calls,
        violations=violations,
        unmapped=[c for c in calls if c.unmapped],
        silent_functions=sorted(f for f in policies if f not in seen),
        foreign_apps=foreign or {},
        pairs_checked=checked,
    )


def render(report: Report, policies: dict[str, RolePolicies]) -> str:
    lines = []
    for fn, pol in policies.items():
        mine = [c for c in report.calls if c.function == fn]
        distinct = sorted({(p.action, p.resource) for c in mine for p in c.pairs})
        lines.append(f"{fn} (role {pol.role}): {len(mine)} calls, {len(distinct)} distinct (action, resource)")
        for action, resource in distinct:
            bad = any(v.function == fn and v.action == action and v.resource == resource for v in report.violations)
            lines.append(f"  {'NOT PERMITTED' if bad else 'ok':<13} {action} on {resource}")
    for v, ops in sorted(report.violations.items(), key=lambda kv: (kv[0].function, kv[0].action, kv[0].resource)):
        lines.append(
            f"VIOLATION: {v.function} made {len(ops)} call(s) needing {v.action} on {v.resource} "
            f"({', '.join(sorted(set(ops)))}); its role's policies give {v.verdict}"
        )
    for c in report.unmapped:
        lines.append(f"UNMAPPED: {c.function} {c.operation}: {c.unmapped} (extend scripts/iam/services.py)")
    for fn in report.silent_functions:
        lines.append(
            f"NO CALLS: {fn} made no recorded call. Is its SDK app name set from AWS_LAMBDA_FUNCTION_NAME, and did "
            f"the end-to-end run record (MOTO_ENABLE_RECORDING)?"
        )
    for app, n in sorted(report.foreign_apps.items()):
        lines.append(f"note: {n} request(s) with app name {app!r}, not a function of this stack: ignored")
    return "\n".join(lines)
