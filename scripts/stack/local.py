"""The rewrites the translated template needs before moto can hold it, and the questions that make
moto resolve what the manifest needs from the template (see resolve.py). Each rewrite is recorded
(manifest `local_rewrites`, docs/local.md "Local rewrites"); template.yaml is never touched.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from . import ProvisionError
from .resolve import Questions

LAMBDA_DEFAULT_TIMEOUT = 3

# Resource types moto's CloudFormation skips that provision applies through the service API after
# CREATE_COMPLETE (deploy.apply_skipped_resources), because the local runner reads them back or the
# functions need them: a global table becomes one table per replica region (devstack replicates).
REAPPLIED_TYPES = {"AWS::Lambda::EventInvokeConfig", "AWS::DynamoDB::GlobalTable"}


@dataclass(frozen=True)
class Tap:
    """An EventBridge rule target that was a Lambda function and is now an SQS queue."""

    rule_id: str
    target_id: str | None
    function_id: str
    tap_id: str


@dataclass
class Pending:
    """What the manifest needs from the template, as expressions moto will resolve (resolve.Answer)."""

    exists: dict[str, Any] = field(default_factory=dict)  # resource with a Condition -> whether it holds
    bus_names: dict[str, Any] = field(default_factory=dict)  # AWS::Events::EventBus -> its name (moto reports no physical id)
    rule_buses: dict[str, Any] = field(default_factory=dict)  # AWS::Events::Rule -> its bus (DescribeRule needs it)
    esm_enabled: dict[str, Any] = field(default_factory=dict)  # EventSourceMapping -> Enabled as the template wants it
    log_groups: dict[str, Any] = field(default_factory=dict)  # AWS::Lambda::Function -> LoggingConfig.LogGroup (moto drops it)
    reapplied: dict[str, Any] = field(default_factory=dict)  # a REAPPLIED_TYPES resource -> its properties
    questions: Questions = field(default_factory=Questions)


def getatt_target(value: Any) -> tuple[str, str] | None:
    if isinstance(value, dict) and len(value) == 1 and "Fn::GetAtt" in value:
        arg = value["Fn::GetAtt"]
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        if isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, str) for a in arg):
            return arg[0], arg[1]
    return None


def lambda_function_of_target(arn: Any, resources: dict) -> str | None:
    """Logical id of the stack's Lambda function a rule target Arn points at, if any."""
    ga = getatt_target(arn)
    if ga and ga[1] == "Arn" and resources.get(ga[0], {}).get("Type") == "AWS::Lambda::Function":
        return ga[0]
    if isinstance(arn, dict) and set(arn) == {"Ref"}:  # AutoPublishAlias / versions: Ref gives the ARN
        res = resources.get(arn["Ref"], {})
        if res.get("Type") in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
            fn = (res.get("Properties") or {}).get("FunctionName")
            if isinstance(fn, dict) and "Ref" in fn:
                return fn["Ref"]
            ga = getatt_target(fn)
            if ga:
                return ga[0]
    return None


def tap_eventbridge_lambda_targets(translated: dict, rewrites: list[str]) -> list[Tap]:
    """moto 5.2 raises NotImplementedError when it dispatches an event to a Lambda target, which
    makes every PutEvents on the bus fail (HTTP 500). Replace each Lambda target by an SQS "tap"
    queue target; the local runner drains the tap and invokes the function like EventBridge would."""
    resources = translated["Resources"]
    taps = []
    for rule_id, rule in list(resources.items()):
        if rule.get("Type") != "AWS::Events::Rule":
            continue
        props = rule.get("Properties") or {}
        lambda_targets = [
            (t, fn) for t in props.get("Targets") or [] if (fn := lambda_function_of_target(t.get("Arn"), resources))
        ]
        for n, (target, function_id) in enumerate(lambda_targets):
            suffix = "" if len(lambda_targets) == 1 else str(n + 1)
            tap_id = f"{rule_id}Tap{suffix}"
            if tap_id in resources:
                raise ProvisionError(f"local rewrite: logical id {tap_id} already exists in the template")
            if "Name" in props:
                queue_name = {"Fn::Join": ["", [props["Name"], f"-tap{suffix and '-' + suffix}"]]}
            else:
                queue_name = {"Fn::Sub": f"${{AWS::StackName}}-{rule_id}-tap{suffix and '-' + suffix}"}
            fn_props = resources[function_id].get("Properties") or {}
            resources[tap_id] = {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": queue_name,
                    # Stands in for Lambda's internal async-invoke queue: a tapped event must not
                    # reappear while the runner is still invoking the function.
                    "VisibilityTimeout": copy.deepcopy(fn_props.get("Timeout", LAMBDA_DEFAULT_TIMEOUT)),
                },
            }
            old_arn = target["Arn"]
            target["Arn"] = {"Fn::GetAtt": [tap_id, "Arn"]}
            kept = [k for k in target if k != "Arn"]
            taps.append(Tap(rule_id, target.get("Id"), function_id, tap_id))
            rewrites.append(
                f"{rule_id} (AWS::Events::Rule) target {target.get('Id')}: Arn {json.dumps(old_arn)} -> "
                f"{tap_id}.Arn, a new AWS::SQS::Queue (moto 5.2 cannot dispatch to Lambda targets: PutEvents "
                f"would fail with HTTP 500); kept {', '.join(kept)}; the runner drains {tap_id} and invokes "
                f"{function_id}"
            )
    return taps


def disable_event_source_mappings(translated: dict, rewrites: list[str]) -> dict[str, Any]:
    """moto polls a queue itself whenever a message is sent to it and an enabled event source
    mapping points at it: it receives a batch (raising ApproximateReceiveCount of every visible
    message), tries to invoke the function (impossible without Docker) and makes the batch visible
    again. A burst of sends thereby pushes messages into the DLQ before the local runner sees
    them. So every mapping is created disabled in moto; the runner takes its place. Returns the
    intended `Enabled` value of each mapping (reported in the manifest)."""
    intended = {}
    for lid, res in translated["Resources"].items():
        if res.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        props = res.setdefault("Properties", {})
        intended[lid] = props.get("Enabled", True)
        props["Enabled"] = False
        rewrites.append(
            f"{lid} (AWS::Lambda::EventSourceMapping): Enabled {json.dumps(intended[lid])} -> false (moto would "
            f"otherwise receive from the queue on every SendMessage and fail to invoke the function, raising the "
            f"receive count until messages reach the DLQ unseen); the runner polls the queue instead"
        )
    return intended


def replace_refs(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        if node == {"Ref": old}:
            return {"Ref": new}
        return {k: replace_refs(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [replace_refs(v, old, new) for v in node]
    return node


def invoke_functions_not_aliases(translated: dict, rewrites: list[str]) -> None:
    """AutoPublishAlias: SAM points event source mappings, rule targets, permissions and the
    EventInvokeConfig at the alias. moto 5.2's CloudFormation skips AWS::Lambda::Alias, so a Ref to
    it resolves to nothing and the mapping fails ("Missing FunctionName"). Locally the alias could
    only point at the one version published, which is $LATEST's code, so its users point at the
    function instead (rule targets were already tapped). The alias and CodeDeploy resources stay in
    the template and are reported as not emulated."""
    resources = translated["Resources"]
    for alias_id, alias in list(resources.items()):
        if alias.get("Type") != "AWS::Lambda::Alias":
            continue
        props = alias.get("Properties") or {}
        fn = props.get("FunctionName")
        if not (isinstance(fn, dict) and set(fn) == {"Ref"} and fn["Ref"] in resources):
            raise ProvisionError(f"local rewrite: alias {alias_id} does not Ref a function of the stack")
        function_id, alias_name = fn["Ref"], props.get("Name")
        users = []
        for lid, res in resources.items():
            if lid == alias_id:
                continue
            before = json.dumps(res, sort_keys=True)
            res = resources[lid] = replace_refs(res, alias_id, function_id)
            depends = res.get("DependsOn")
            if depends == alias_id or (isinstance(depends, list) and alias_id in depends):
                rest = [d for d in ([depends] if isinstance(depends, str) else depends) if d != alias_id]
                if rest:
                    res["DependsOn"] = rest
                else:
                    del res["DependsOn"]
            p = res.get("Properties") or {}
            if res["Type"] == "AWS::Lambda::EventInvokeConfig" and p.get("Qualifier") == alias_name and p.get("FunctionName") == {"Ref": function_id}:
                p["Qualifier"] = "$LATEST"
            if json.dumps(res, sort_keys=True) != before:
                users.append(f"{lid} ({res['Type']})")
        rewrites.append(
            f"{alias_id} (AWS::Lambda::Alias {alias_name!r} of {function_id}): its users {', '.join(users) or '(none)'} "
            f"invoke {function_id} ($LATEST) instead (moto 5.2's CloudFormation skips AWS::Lambda::Alias, so a Ref "
            f"to it resolves to nothing; locally the alias would point at the only version, $LATEST's code)"
        )


def ask_moto(translated: dict, esm_enabled: dict[str, Any], rewrites: list[str]) -> Pending:
    """Adds to the template the outputs that make moto resolve what the manifest needs from it."""
    pending = Pending()
    q = pending.questions
    for lid, res in translated["Resources"].items():
        cond, props, rtype = res.get("Condition"), res.get("Properties") or {}, res["Type"]
        if cond:
            pending.exists[lid] = q.holds(cond)
        if rtype == "AWS::Events::EventBus":
            pending.bus_names[lid] = q.ask({"Fn::GetAtt": [lid, "Name"]}, cond)
        elif rtype == "AWS::Events::Rule":
            pending.rule_buses[lid] = q.ask(props.get("EventBusName", "default"), cond)
        elif rtype == "AWS::Lambda::EventSourceMapping":
            pending.esm_enabled[lid] = q.ask(esm_enabled[lid], cond)
        elif rtype == "AWS::Lambda::Function":
            pending.log_groups[lid] = q.ask((props.get("LoggingConfig") or {}).get("LogGroup"), cond)
        elif rtype in REAPPLIED_TYPES:
            pending.reapplied[lid] = q.ask(props, cond)
    q.attach(translated, rewrites)
    return pending
