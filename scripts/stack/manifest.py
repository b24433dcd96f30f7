"""What provision writes for its readers, read back from moto after the deploy:

- the manifest (`.local/stack.json`): tools/devstack (runner, state), tests/support, bench/harness/,
  `provision.py --check` and scripts/iam_check.py read it. Only fields one of them reads are written,
  plus `not_emulated` and `local_rewrites`, the record of how the local stack differs from AWS;
- the env file (`.local/functions.env`) for `cargo lambda watch --env-file`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from botocore.exceptions import ClientError

from . import ACCOUNT_ID, DUMMY_KEY, ProvisionError
from .deploy import Aws
from .local import LAMBDA_DEFAULT_TIMEOUT, Pending, Tap
from .resolve import Answers

# Variables that are per-function labels by design (one value per function, all four set them). They
# cannot go into the single shared env file and are left out of it; the manifest keeps each
# function's value. Any other variable with different values in two functions is an error.
PER_FUNCTION_LABELS = {"POWERTOOLS_SERVICE_NAME"}


class QueueIndex:
    """Queue URLs by ARN, and queue attributes, asked of moto once each."""

    def __init__(self, aws: Aws, translated: dict, physical: dict):
        self.aws = aws
        self.by_arn: dict[str, str] = {}
        self.attrs: dict[str, dict] = {}
        for lid, res in translated["Resources"].items():
            if res["Type"] == "AWS::SQS::Queue" and physical.get(lid):
                self.by_arn[self.attributes(physical[lid])["QueueArn"]] = physical[lid]

    def attributes(self, url: str) -> dict:
        if url not in self.attrs:
            self.attrs[url] = self.aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return self.attrs[url]

    def url(self, arn: str | None) -> str | None:
        if not arn or ":sqs:" not in arn:
            return None
        if arn not in self.by_arn:
            _, _, _, _, account, name = arn.split(":", 5)
            self.by_arn[arn] = self.aws("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return self.by_arn[arn]


def build(
    aws: Aws,
    stack: dict,
    translated: dict,
    physical: dict,
    taps: list[Tap],
    pending: Pending,
    answers: Answers,
    not_emulated: list[dict],
    rewrites: list[str],
    global_tables: list[dict] | None = None,
) -> tuple[dict, list[str]]:
    """The manifest, and warnings about what AWS would treat differently. `global_tables`: those this
    stack declared (written only when there are some; regions.py shares them with the replicas' stacks)."""
    lam = aws("lambda")
    queues = QueueIndex(aws, translated, physical)
    esm_lid = {physical[lid]: lid for lid in pending.esm_enabled if physical.get(lid)}
    functions, warnings = [], []
    for lid, res in translated["Resources"].items():
        if res["Type"] != "AWS::Lambda::Function" or not physical.get(lid):
            continue
        name = physical[lid]
        conf = lam.get_function_configuration(FunctionName=name)
        binary = ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary") or lid
        timeout = conf.get("Timeout", LAMBDA_DEFAULT_TIMEOUT)
        # Lambda's variables are strings; moto hands a Ref to a Number parameter back as a number.
        environment = {k: env_string(v) for k, v in ((conf.get("Environment") or {}).get("Variables") or {}).items()}
        sqs_sources = [
            sqs_source(m, queues, pending, answers, esm_lid, binary, timeout, warnings)
            for m in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
            if ":sqs:" in m.get("EventSourceArn", "")
        ]
        log_group = read_log_group(aws, answers(pending.log_groups.get(lid)), binary, warnings)
        functions.append(
            {
                "name": binary,
                "logical_id": lid,
                "function_name": name,
                "function_arn": conf["FunctionArn"],
                "timeout_seconds": timeout,
                "environment": environment,
                "sqs_sources": sqs_sources,
                "event_sources": [
                    event_source(aws, tap, physical, pending, answers, queues) for tap in taps if tap.function_id == lid
                ],
                "async_invoke": async_invoke(lam, name, queues),
                "log_group": log_group,
            }
        )
        warnings += environment_warnings(binary, environment, timeout)

    manifest = {
        "endpoint": aws.endpoint,
        "region": aws.region,
        "account_id": ACCOUNT_ID,
        "stack_name": stack["StackName"],
        "parameters": {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters") or []},
        "functions": functions,
        "resources": physical,
        "not_emulated": not_emulated,
        "local_rewrites": rewrites,
    }
    if global_tables:
        manifest["global_tables"] = global_tables
    return manifest, warnings


def sqs_source(
    mapping: dict, queues: QueueIndex, pending: Pending, answers: Answers, esm_lid: dict, function: str,
    timeout: int, warnings: list[str],
) -> dict:
    url = queues.url(mapping["EventSourceArn"])
    attrs = queues.attributes(url)
    redrive = json.loads(attrs["RedrivePolicy"]) if attrs.get("RedrivePolicy") else {}
    visibility = int(attrs.get("VisibilityTimeout", 30))
    if visibility < timeout:
        warnings.append(
            f"warning: {url.rsplit('/', 1)[-1]} visibility timeout {visibility} s < {function} timeout {timeout} s: AWS "
            f"Lambda would reject this event source mapping (moto accepts it); a slow batch can be redelivered while it "
            f"is still running"
        )
    lid = esm_lid.get(mapping.get("UUID"))
    return {
        "queue_url": url,
        "queue_arn": mapping["EventSourceArn"],
        "batch_size": mapping.get("BatchSize", 10),
        "maximum_batching_window_seconds": mapping.get("MaximumBatchingWindowInSeconds", 0),
        "report_batch_item_failures": "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or []),
        "dead_letter_queue_url": queues.url(redrive.get("deadLetterTargetArn")),
        # As the template wants it (the runner honours it); moto's copy is always disabled.
        "enabled": lid is None or str(answers(pending.esm_enabled[lid])).lower() == "true",
    }


def event_source(aws: Aws, tap: Tap, physical: dict, pending: Pending, answers: Answers, queues: QueueIndex) -> dict:
    events = aws("events")
    bus, rule_name = answers(pending.rule_buses[tap.rule_id]), physical[tap.rule_id]
    rule = events.describe_rule(Name=rule_name, EventBusName=bus)
    target = next(t for t in events.list_targets_by_rule(Rule=rule_name, EventBusName=bus)["Targets"] if t["Id"] == tap.target_id)
    return {
        "event_bus_name": bus,
        "tap_queue_url": physical[tap.tap_id],
        "pattern": json.loads(rule["EventPattern"]) if rule.get("EventPattern") else None,
        "dead_letter_queue_url": queues.url((target.get("DeadLetterConfig") or {}).get("Arn")),
    }


def async_invoke(lam, function_name: str, queues: QueueIndex) -> dict | None:
    try:
        eic = lam.get_function_event_invoke_config(FunctionName=function_name, Qualifier="$LATEST")
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return None
    on_failure = (((eic.get("DestinationConfig") or {}).get("OnFailure")) or {}).get("Destination")
    return {"maximum_retry_attempts": eic.get("MaximumRetryAttempts", 2), "on_failure_queue_url": queues.url(on_failure)}


def read_log_group(aws: Aws, name: Any, function: str, warnings: list[str]) -> str | None:
    """The function's `LoggingConfig.LogGroup` (moto's Lambda drops `LoggingConfig`, so the name is the
    template's, as moto resolved it); warns if CloudWatch Logs does not have it."""
    if not isinstance(name, str):
        return None
    groups = aws("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    if not any(g["logGroupName"] == name for g in groups):
        warnings.append(f"warning: {function}: log group {name} was not created in moto")
    return name


def environment_warnings(function: str, env: dict[str, str], timeout: int) -> list[str]:
    out = []
    # The code cannot learn its timeout from Lambda, so the template passes it; both must agree, and
    # the functions refuse at cold start an idempotency TTL that cannot cover an invocation.
    if "FUNCTION_TIMEOUT_SECONDS" in env and env["FUNCTION_TIMEOUT_SECONDS"] != str(timeout):
        out.append(
            f"warning: {function}: FUNCTION_TIMEOUT_SECONDS={env['FUNCTION_TIMEOUT_SECONDS']} but its timeout is {timeout} s"
        )
    try:
        ttl, declared = int(env["IDEMPOTENCY_TTL_SECONDS"]), int(env["FUNCTION_TIMEOUT_SECONDS"])
    except (KeyError, ValueError):
        return out
    if ttl <= declared:
        out.append(
            f"warning: {function}: IDEMPOTENCY_TTL_SECONDS={ttl} does not exceed FUNCTION_TIMEOUT_SECONDS={declared}: "
            f"the function will refuse to start (raise IdempotencyTtlSeconds)"
        )
    return out


def env_string(value: Any) -> str:
    """An environment value as Lambda stores it (CloudFormation turns numbers and booleans into text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def env_file_text(manifest: dict, default_region: bool = False) -> str:
    """One env file for all functions (`cargo lambda watch --env-file` serves them all with it).
    `default_region`: also set AWS_DEFAULT_REGION (a stack of several regions, so that no tool in the
    function's process can fall back to another region than its own)."""
    merged: dict[str, tuple[str, str]] = {}
    for fn in manifest["functions"]:
        for key, value in fn["environment"].items():
            if key in PER_FUNCTION_LABELS:
                continue
            if key in merged and merged[key][0] != value:
                raise ProvisionError(
                    f"environment variable {key} differs between functions: {merged[key][1]}={merged[key][0]!r}, "
                    f"{fn['name']}={value!r}. One --env-file cannot serve both; give them distinct names."
                )
            merged[key] = (value, fn["name"])
    env = {k: v for k, (v, _) in sorted(merged.items())}
    env.update(
        {
            "AWS_ENDPOINT_URL": manifest["endpoint"],
            "AWS_REGION": manifest["region"],
            **({"AWS_DEFAULT_REGION": manifest["region"]} if default_region else {}),
            "AWS_ACCESS_KEY_ID": DUMMY_KEY,
            "AWS_SECRET_ACCESS_KEY": DUMMY_KEY,
        }
    )
    lines = []
    for key, value in env.items():
        value = str(value)
        if re.search(r"[\s#\"'\\$]", value) or value == "":
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def summary(manifest: dict, translated: dict, artifacts_bucket: str, elapsed: float, show_region: bool = False) -> str:
    physical = manifest["resources"]

    def named(rtype: str) -> str:
        return ", ".join(
            (physical[lid] or "?").rsplit("/", 1)[-1] for lid in physical if translated["Resources"][lid]["Type"] == rtype
        )

    where = f" in {manifest['region']}" if show_region else ""
    lines = [
        f"stack {manifest['stack_name']}{where}: CREATE_COMPLETE in moto at {manifest['endpoint']} "
        f"({len(physical)} resources, {elapsed:.1f} s)",
        f"  parameters: {', '.join(f'{k}={v}' for k, v in manifest['parameters'].items())}",
        f"  functions : {', '.join(f['name'] for f in manifest['functions'])}",
        f"  queues    : {named('AWS::SQS::Queue')}",
        f"  tables    : {named('AWS::DynamoDB::Table')}",
        f"  buckets   : {named('AWS::S3::Bucket')} (code placeholders: {artifacts_bucket})",
        f"  buses     : {named('AWS::Events::EventBus')}",
        f"  rules     : {named('AWS::Events::Rule')}",
        f"  local rewrites: {len(manifest['local_rewrites'])} (see manifest / docs/local.md)",
    ]
    for table in manifest.get("global_tables") or []:
        lines.append(f"  global table: {table['table_name']} (replicas in {', '.join(table['regions'])})")
    if manifest["not_emulated"]:
        lines.append("  not emulated: " + ", ".join(f"{r['logical_id']} ({r['type']})" for r in manifest["not_emulated"]))
    return "\n".join(lines)
