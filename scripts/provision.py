#!/usr/bin/env python3
"""Deploy the stack described by template.yaml into a running moto server.

    .venv/bin/python scripts/provision.py --endpoint http://127.0.0.1:PORT [--reset]
        [--stack-name eventline-local] [--parameter Key=Value ...]
        [--out .local/stack.json] [--env-out .local/functions.env]
    .venv/bin/python scripts/provision.py --check [--out .local/stack.json] [--endpoint URL]

The stack comes FROM template.yaml, through the real SAM translator (samtranslator), so a resource
added to the template appears locally with no other edit. Only the local rewrites listed in
docs/local.md ("Provisioning from template.yaml") are applied on top, and every one of them is
recorded in the manifest under "local_rewrites".

Steps: load template.yaml -> upload a placeholder code zip per function (what `sam package` does)
-> translate -> local rewrites (EventBridge Lambda targets become SQS "tap" queues) -> create the
stack in moto's CloudFormation -> apply what moto's CloudFormation skips but the local runner needs
(EventInvokeConfig) -> read everything back from moto into the manifest and the env file.

--check sends one synthetic event per tapped rule onto its bus and verifies that it arrives on
every tap queue (and that each SQS event source has a DLQ redrive, and each function's log group
exists with a retention). Run it before a runner is
attached to the stack: it sends synthetic messages.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
PARTITION = "aws"
DUMMY_KEY = "test"

# Short timeouts for a fast local loop; `--parameter` overrides any of them. Only parameters the
# template declares are passed (so a template without one of these still provisions).
LOCAL_PARAMETER_DEFAULTS = {
    "Stage": "local",
    "FunctionTimeout": "3",
    "QueueVisibilityTimeout": "3",  # AWS refuses an SQS trigger whose visibility timeout is below the function timeout
    "MaxReceiveCount": "3",
}

# Lambda's defaults when a rule target / function has no explicit RetryPolicy / EventInvokeConfig.
EVENTBRIDGE_DEFAULT_RETRY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
LAMBDA_DEFAULT_TIMEOUT = 3

# Variables that are per-function labels by design (one value per function, all four set them). They
# cannot go into the single shared env file and are left out of it; the manifest keeps each
# function's value. Any other variable with different values in two functions is an error.
PER_FUNCTION_LABELS = {"POWERTOOLS_SERVICE_NAME"}

# Everything below talks only to the local emulator, with dummy credentials.
os.environ["AWS_DEFAULT_REGION"] = REGION  # samtranslator requires a region on its boto3 session
os.environ["AWS_REGION"] = REGION
os.environ["AWS_ACCESS_KEY_ID"] = DUMMY_KEY
os.environ["AWS_SECRET_ACCESS_KEY"] = DUMMY_KEY
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_SESSION_TOKEN", None)

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402


class ProvisionError(Exception):
    pass


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# moto plumbing
# ---------------------------------------------------------------------------------------------


class Aws:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint.rstrip("/")
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str):
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint,
                region_name=REGION,
                aws_access_key_id=DUMMY_KEY,
                aws_secret_access_key=DUMMY_KEY,
                config=Config(retries={"max_attempts": 2, "mode": "standard"}, s3={"addressing_style": "path"}),
            )
        return self._clients[service]

    def ping(self) -> None:
        try:
            urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=5).read()
        except (urllib.error.URLError, OSError) as e:
            raise ProvisionError(
                f"no moto server answers at {self.endpoint} ({e}). Start one: scripts/moto.sh start [PORT]"
            ) from e

    def reset(self) -> None:
        req = urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST", data=b"")
        urllib.request.urlopen(req, timeout=30).read()


# ---------------------------------------------------------------------------------------------
# Template, parameters, translation
# ---------------------------------------------------------------------------------------------


def load_template(path: Path) -> dict:
    from samcli.yamlhelper import yaml_parse  # understands !Sub, !GetAtt, !Ref, !If ...

    return json.loads(json.dumps(yaml_parse(path.read_text())))  # plain dicts, no OrderedDict


def resolve_parameters(template: dict, overrides: list[str]) -> dict[str, str]:
    declared = template.get("Parameters") or {}
    values = {k: v for k, v in LOCAL_PARAMETER_DEFAULTS.items() if k in declared}
    for item in overrides:
        if "=" not in item:
            raise ProvisionError(f"--parameter {item!r}: expected Key=Value")
        key, value = item.split("=", 1)
        if key not in declared:
            raise ProvisionError(f"--parameter {key}: template.yaml declares no such parameter ({', '.join(declared)})")
        values[key] = value
    # Check every effective value like CloudFormation does (moto's CloudFormation does not).
    for key, spec in declared.items():
        value = values.get(key, spec.get("Default"))
        if value is None:
            raise ProvisionError(f"parameter {key} has no default: pass --parameter {key}=...")
        value = str(value)
        problems = []
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            problems.append(f"not one of {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            problems.append(f"does not match {spec['AllowedPattern']}")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                problems.append("not a number")
            else:
                if "MinValue" in spec and number < float(spec["MinValue"]):
                    problems.append(f"below MinValue {spec['MinValue']}")
                if "MaxValue" in spec and number > float(spec["MaxValue"]):
                    problems.append(f"above MaxValue {spec['MaxValue']}")
        if problems:
            raise ProvisionError(f"parameter {key}={value!r}: {'; '.join(problems)}")
    return values


def pseudo_parameters(stack_name: str) -> dict[str, str]:
    # Mirrors samcli (IntrinsicsSymbolTable.DEFAULT_PSEUDO_PARAM_VALUES, used by `sam validate`), with
    # the real stack name and moto's URL suffix.
    return {
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::Partition": PARTITION,
        "AWS::Region": REGION,
        "AWS::StackName": stack_name,
        "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{stack_name}/local",
        "AWS::URLSuffix": "amazonaws.com",
    }


def placeholder_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16  # regular file, executable
        z.writestr(
            info,
            "#!/bin/sh\necho 'placeholder: eventline functions run locally under cargo lambda watch' >&2\nexit 1\n",
        )
    return buf.getvalue()


def package_code(template: dict, aws: Aws, bucket: str, rewrites: list[str]) -> None:
    """What `sam package` does: point every artifact property at an S3 object. The object is a
    placeholder: moto cannot run the code, the real binaries run under `cargo lambda watch`."""
    s3 = aws("s3")
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    body = placeholder_zip()
    for logical_id, res in (template.get("Resources") or {}).items():
        if not isinstance(res, dict):
            continue
        rtype, props = res.get("Type"), res.setdefault("Properties", {})
        if rtype == "AWS::Serverless::Function":
            if props.get("PackageType") == "Image" or "InlineCode" in props:
                continue
            prop = "CodeUri"
        elif rtype == "AWS::Serverless::LayerVersion":
            prop = "ContentUri"
        else:
            continue
        name = ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary") or logical_id
        key = f"{name}.zip"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        before = props.get(prop, "<Globals or default '.'>")
        props[prop] = f"s3://{bucket}/{key}"
        rewrites.append(
            f"{logical_id}.{prop}: {json.dumps(before)} -> s3://{bucket}/{key} (placeholder zip with a "
            f"'bootstrap' file, as `sam package` would upload the built artifact; the code never runs in moto)"
        )


def translate(template: dict, parameters: dict[str, str], stack_name: str) -> dict:
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    class StaticManagedPolicyLoader:
        """Offline: no iam:ListPolicies. SAM builds the ARNs of the policies it attaches itself; a
        template naming a managed policy by bare name in `Policies` would need an entry here."""

        def load(self) -> dict[str, str]:
            return {}

    values = {**pseudo_parameters(stack_name), **parameters}
    try:
        return transform(copy.deepcopy(template), copy.deepcopy(values), StaticManagedPolicyLoader())
    except InvalidDocumentException as e:
        causes = "\n  ".join(str(c) for c in e.causes)
        raise ProvisionError(f"SAM translation failed: {e}\n  {causes}") from e


# ---------------------------------------------------------------------------------------------
# Local rewrites of the translated template
# ---------------------------------------------------------------------------------------------


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


def tap_eventbridge_lambda_targets(translated: dict, rewrites: list[str]) -> list[dict]:
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
            kept = [k for k in target if k not in ("Arn",)]
            taps.append({"rule_id": rule_id, "target_id": target.get("Id"), "function_id": function_id, "tap_id": tap_id})
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


# ---------------------------------------------------------------------------------------------
# Resolving template expressions against the deployed stack
# ---------------------------------------------------------------------------------------------

NO_VALUE = object()


class Resolver:
    """Enough of CloudFormation's intrinsics to re-create, through the service APIs, the resources
    moto's CloudFormation skips, and to find physical names moto does not report."""

    def __init__(self, template: dict, parameters: dict[str, str], physical: dict[str, str | None], aws: Aws):
        self.resources = template.get("Resources") or {}
        self.conditions = template.get("Conditions") or {}
        self.params = {**parameters}
        for name, spec in (template.get("Parameters") or {}).items():
            self.params.setdefault(name, str(spec.get("Default")))
        self.physical = physical
        self.aws = aws
        self._cond_cache: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._cond_cache:
            self._cond_cache[name] = bool(self.resolve(self.conditions[name]))
        return self._cond_cache[name]

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.params:
            return self.params[name]
        if name in self.physical and self.physical[name]:
            return self.physical[name]
        raise ProvisionError(f"cannot resolve Ref {name} locally")

    def getatt(self, lid: str, attr: str) -> Any:
        rtype = self.resources.get(lid, {}).get("Type")
        pid = self.physical.get(lid)
        if not pid:
            raise ProvisionError(f"cannot resolve {lid}.{attr}: moto reports no physical id for it")
        if rtype == "AWS::SQS::Queue":
            attrs = self.aws("sqs").get_queue_attributes(QueueUrl=pid, AttributeNames=["QueueArn"])["Attributes"]
            return {"Arn": attrs["QueueArn"], "QueueName": pid.rsplit("/", 1)[-1], "QueueUrl": pid}[attr]
        if rtype == "AWS::Lambda::Function" and attr == "Arn":
            return self.aws("lambda").get_function_configuration(FunctionName=pid)["FunctionArn"]
        if rtype == "AWS::S3::Bucket" and attr == "Arn":
            return f"arn:{PARTITION}:s3:::{pid}"
        if rtype == "AWS::DynamoDB::Table" and attr in ("Arn", "StreamArn"):
            table = self.aws("dynamodb").describe_table(TableName=pid)["Table"]
            return table["TableArn"] if attr == "Arn" else table["LatestStreamArn"]
        if rtype == "AWS::IAM::Role" and attr == "Arn":
            return self.aws("iam").get_role(RoleName=pid)["Role"]["Arn"]
        if rtype == "AWS::Events::EventBus" and attr in ("Arn", "Name"):
            return self.aws("events").describe_event_bus(Name=pid)[attr]
        if rtype == "AWS::Events::Rule" and attr == "Arn":
            bus = self.resolve((self.resources[lid].get("Properties") or {}).get("EventBusName", "default"))
            return self.aws("events").describe_rule(Name=pid, EventBusName=bus)["Arn"]
        raise ProvisionError(f"cannot resolve Fn::GetAtt {lid}.{attr} ({rtype}) locally")

    def sub(self, text: str, variables: dict) -> str:
        def one(m: re.Match) -> str:
            expr = m.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(self.resolve(variables[expr]))
            if "." in expr and not expr.startswith("AWS::"):
                return str(self.getatt(*expr.split(".", 1)))
            return str(self.ref(expr))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, v: Any) -> Any:
        if isinstance(v, list):
            return [x for x in (self.resolve(i) for i in v) if x is not NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, a), = v.items()
            if k == "Ref":
                return self.ref(a)
            if k == "Fn::GetAtt":
                lid, attr = a.split(".", 1) if isinstance(a, str) else a
                return self.getatt(lid, self.resolve(attr))
            if k == "Fn::Sub":
                return self.sub(a, {}) if isinstance(a, str) else self.sub(a[0], a[1])
            if k == "Fn::Join":
                return a[0].join(str(x) for x in self.resolve(a[1]))
            if k == "Fn::Select":
                return self.resolve(a[1])[int(self.resolve(a[0]))]
            if k == "Fn::Split":
                return str(self.resolve(a[1])).split(a[0])
            if k == "Fn::If":
                return self.resolve(a[1] if self.condition(a[0]) else a[2])
            if k == "Fn::Equals":
                x, y = self.resolve(a)
                return str(x) == str(y)
            if k == "Fn::Not":
                return not self.resolve(a[0])
            if k == "Fn::And":
                return all(self.resolve(a))
            if k == "Fn::Or":
                return any(self.resolve(a))
            if k == "Condition":
                return self.condition(a)
            if k.startswith("Fn::"):
                raise ProvisionError(f"cannot resolve {k} locally")
        return {k: r for k, x in v.items() if (r := self.resolve(x)) is not NO_VALUE}


# ---------------------------------------------------------------------------------------------
# Stack creation
# ---------------------------------------------------------------------------------------------


def create_stack(aws: Aws, stack_name: str, translated: dict, parameters: dict[str, str]) -> dict:
    cf = aws("cloudformation")
    try:
        cf.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(translated),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except ClientError as e:
        # moto creates the resources inside the CreateStack call: a resource that fails surfaces here as
        # that service's error, with no resource name, and the stack stays CREATE_IN_PROGRESS.
        raise ProvisionError(
            f"moto's CloudFormation failed while creating the resources: {e}\n"
            f"  moto does not say which resource; its server log has the traceback, and --dump-template PATH "
            f"writes the template that was sent. The stack is left half-created: re-run with --reset."
        ) from e
    deadline = time.monotonic() + 180
    while True:
        stack = cf.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise ProvisionError(f"stack {stack_name} still {status} after 180 s")
        time.sleep(0.2)
    if status != "CREATE_COMPLETE":
        failures = [
            f"  {e['LogicalResourceId']} ({e['ResourceType']}): {e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}"
            for e in cf.describe_stack_events(StackName=stack_name)["StackEvents"]
            if e["ResourceStatus"].endswith("FAILED")
        ]
        raise ProvisionError(
            f"stack {stack_name}: {status} {stack.get('StackStatusReason') or ''}\n" + "\n".join(failures or ["  (moto gave no failing resource)"])
        )
    return stack


def physical_ids(aws: Aws, stack_name: str, translated: dict, parameters: dict[str, str]) -> tuple[dict, list[dict]]:
    """LogicalId -> PhysicalId as moto reports it, plus the resources moto's CloudFormation did not
    create. moto lists a resource type its CloudFormation does not support (and a resource whose
    Condition is false) as a nameless entry."""
    listed = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId") or None
        for r in aws("cloudformation").describe_stack_resources(StackName=stack_name)["StackResources"]
        if r.get("LogicalResourceId")
    }
    resolver = Resolver(translated, parameters, listed, aws)
    physical: dict[str, str | None] = {}
    missing = []
    for lid, res in translated["Resources"].items():
        if "Condition" in res and not resolver.condition(res["Condition"]):
            continue  # not created, exactly as in AWS
        if lid not in listed:
            missing.append({"logical_id": lid, "type": res["Type"]})
            continue
        pid = listed[lid]
        if not pid and res["Type"] == "AWS::Events::EventBus":
            # moto reports an empty physical id for a bus; in AWS it is the bus name.
            pid = resolver.resolve((res.get("Properties") or {}).get("Name"))
        physical[lid] = pid
    return physical, missing


def apply_skipped_resources(
    aws: Aws, translated: dict, parameters: dict[str, str], physical: dict, missing: list[dict], rewrites: list[str]
) -> list[dict]:
    """Re-create, through the service API, the skipped resources the local runner reads back.
    Returns the ones that stay absent (reported as not emulated)."""
    resolver = Resolver(translated, parameters, physical, aws)
    not_emulated = []
    for item in missing:
        lid, rtype = item["logical_id"], item["type"]
        props = translated["Resources"][lid].get("Properties") or {}
        if rtype == "AWS::Lambda::EventInvokeConfig":
            p = resolver.resolve(props)
            kwargs: dict[str, Any] = {"FunctionName": p["FunctionName"], "Qualifier": p.get("Qualifier", "$LATEST")}
            for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
                if key in p:
                    kwargs[key] = int(p[key])
            if "DestinationConfig" in p:
                kwargs["DestinationConfig"] = p["DestinationConfig"]
            aws("lambda").put_function_event_invoke_config(**kwargs)
            physical[lid] = f"{p['FunctionName']}:{kwargs['Qualifier']}"
            rewrites.append(
                f"{lid} (AWS::Lambda::EventInvokeConfig): moto's CloudFormation skips this type; applied after "
                f"CREATE_COMPLETE with lambda:PutFunctionEventInvokeConfig and the same resolved properties"
            )
        else:
            reason = {
                "AWS::S3::BucketPolicy": "moto's CloudFormation skips it. Deliberately not applied through the API: "
                "moto enforces bucket policies, and this one denies every non-TLS request, i.e. all local S3 calls",
                "AWS::SQS::QueuePolicy": "moto's CloudFormation skips it; moto does not need it (EventBridge delivers "
                "to SQS without a queue policy)",
            }.get(rtype, "moto's CloudFormation does not support this resource type")
            not_emulated.append({**item, "reason": reason})
            physical[lid] = None
    return not_emulated


# ---------------------------------------------------------------------------------------------
# Manifest (read back from moto)
# ---------------------------------------------------------------------------------------------


class QueueIndex:
    def __init__(self, aws: Aws, translated: dict, physical: dict):
        self.aws = aws
        self.by_arn: dict[str, str] = {}
        self.attrs: dict[str, dict] = {}
        for lid, res in translated["Resources"].items():
            if res["Type"] == "AWS::SQS::Queue" and physical.get(lid):
                a = self.attributes(physical[lid])
                self.by_arn[a["QueueArn"]] = physical[lid]

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


def build_manifest(
    aws: Aws,
    stack_name: str,
    stack: dict,
    translated: dict,
    parameters: dict,
    physical: dict,
    taps: list[dict],
    esm_enabled: dict[str, Any],
    not_emulated: list[dict],
    rewrites: list[str],
    artifacts_bucket: str,
) -> dict:
    lam, events = aws("lambda"), aws("events")
    queues = QueueIndex(aws, translated, physical)
    resolver = Resolver(translated, parameters, physical, aws)
    esm_lid = {pid: lid for lid, pid in physical.items() if lid in esm_enabled}
    functions = []
    for lid, res in translated["Resources"].items():
        if res["Type"] != "AWS::Lambda::Function" or not physical.get(lid):
            continue
        name = physical[lid]
        conf = lam.get_function_configuration(FunctionName=name)
        binary = ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary") or lid

        sqs_sources = []
        for m in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]:
            arn = m.get("EventSourceArn", "")
            if ":sqs:" not in arn:
                continue
            url = queues.url(arn)
            qa = queues.attributes(url)
            redrive = json.loads(qa["RedrivePolicy"]) if qa.get("RedrivePolicy") else {}
            sqs_sources.append(
                {
                    "queue_url": url,
                    "queue_arn": arn,
                    "batch_size": m.get("BatchSize", 10),
                    "maximum_batching_window_seconds": m.get("MaximumBatchingWindowInSeconds", 0),
                    "report_batch_item_failures": "ReportBatchItemFailures" in (m.get("FunctionResponseTypes") or []),
                    "visibility_timeout_seconds": int(qa.get("VisibilityTimeout", 30)),
                    "max_receive_count": int(redrive["maxReceiveCount"]) if redrive else None,
                    "dead_letter_queue_url": queues.url(redrive.get("deadLetterTargetArn")),
                    "dead_letter_queue_arn": redrive.get("deadLetterTargetArn"),
                    "maximum_concurrency": (m.get("ScalingConfig") or {}).get("MaximumConcurrency"),
                    # As the template wants it (the runner honours it); moto's copy is always disabled.
                    "enabled": str(resolver.resolve(esm_enabled.get(esm_lid.get(m.get("UUID")), True))).lower() == "true",
                    "emulator_state": m.get("State"),
                    "logical_id": esm_lid.get(m.get("UUID")),
                    "uuid": m.get("UUID"),
                }
            )

        event_sources = []
        for tap in (t for t in taps if t["function_id"] == lid):
            rule_props = translated["Resources"][tap["rule_id"]].get("Properties") or {}
            bus = resolver.resolve(rule_props.get("EventBusName", "default"))
            rule_name = physical[tap["rule_id"]]
            rule = events.describe_rule(Name=rule_name, EventBusName=bus)
            target = next(
                t for t in events.list_targets_by_rule(Rule=rule_name, EventBusName=bus)["Targets"] if t["Id"] == tap["target_id"]
            )
            retry = {**EVENTBRIDGE_DEFAULT_RETRY, **(target.get("RetryPolicy") or {})}
            dlq_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
            event_sources.append(
                {
                    "rule_name": rule_name,
                    "rule_arn": rule["Arn"],
                    "event_bus_name": bus,
                    "target_id": target["Id"],
                    "tap_queue_url": physical[tap["tap_id"]],
                    "tap_queue_arn": target["Arn"],
                    "tap_visibility_timeout_seconds": int(queues.attributes(physical[tap["tap_id"]])["VisibilityTimeout"]),
                    "pattern": json.loads(rule["EventPattern"]) if rule.get("EventPattern") else None,
                    "state": rule.get("State"),
                    "maximum_retry_attempts": retry["MaximumRetryAttempts"],
                    "maximum_event_age_seconds": retry["MaximumEventAgeInSeconds"],
                    "dead_letter_queue_url": queues.url(dlq_arn),
                    "dead_letter_queue_arn": dlq_arn,
                    "input_transformation": {k: target[k] for k in ("Input", "InputPath", "InputTransformer") if k in target} or None,
                }
            )

        try:
            eic = lam.get_function_event_invoke_config(FunctionName=name, Qualifier="$LATEST")
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            eic = None
        async_invoke = None
        if eic:
            dest = eic.get("DestinationConfig") or {}
            on_failure = (dest.get("OnFailure") or {}).get("Destination")
            on_success = (dest.get("OnSuccess") or {}).get("Destination")
            async_invoke = {
                "maximum_retry_attempts": eic.get("MaximumRetryAttempts", 2),
                "maximum_event_age_seconds": eic.get("MaximumEventAgeInSeconds", 21600),
                "on_failure_queue_url": queues.url(on_failure),
                "on_failure_arn": on_failure,
                "on_success_queue_url": queues.url(on_success),
                "on_success_arn": on_success,
            }

        log_group = read_log_group(aws, resolver, res)

        functions.append(
            {
                "name": binary,
                "logical_id": lid,
                "function_name": name,
                "function_arn": conf["FunctionArn"],
                "timeout_seconds": conf.get("Timeout", LAMBDA_DEFAULT_TIMEOUT),
                "memory_mb": conf.get("MemorySize"),
                # Lambda's variables are strings; moto hands a Ref to a Number parameter back as a number.
                "environment": {
                    k: env_string(v) for k, v in ((conf.get("Environment") or {}).get("Variables") or {}).items()
                },
                "sqs_sources": sqs_sources,
                "event_sources": event_sources,
                "async_invoke": async_invoke,
                "log_group": log_group,
            }
        )

    return {
        "endpoint": aws.endpoint,
        "region": REGION,
        "account_id": ACCOUNT_ID,
        "stack_name": stack_name,
        "parameters": {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters") or []} or parameters,
        "artifacts_bucket": artifacts_bucket,
        "functions": functions,
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []},
        "resources": physical,
        "resource_types": {lid: translated["Resources"][lid]["Type"] for lid in physical},
        "not_emulated": not_emulated,
        "env_file_omits": sorted({k for f in functions for k in f["environment"] if k in PER_FUNCTION_LABELS}),
        "local_rewrites": rewrites,
    }


def env_string(value: Any) -> str:
    """An environment value as Lambda stores it (CloudFormation turns numbers and booleans into text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_log_group(aws: Aws, resolver: Resolver, function: dict) -> dict | None:
    """The function's `LoggingConfig.LogGroup`, as the template wants it and as moto holds it. moto's
    Lambda ignores `LoggingConfig` (GetFunctionConfiguration has none), so the name comes from the
    template and the group itself, with its retention, from CloudWatch Logs."""
    wanted = ((function.get("Properties") or {}).get("LoggingConfig") or {}).get("LogGroup")
    if wanted is None:
        return None
    name = resolver.resolve(wanted)
    groups = aws("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    group = next((g for g in groups if g["logGroupName"] == name), None)
    return {
        "name": name,
        "exists": group is not None,
        "retention_days": int(group["retentionInDays"]) if group and group.get("retentionInDays") else None,
    }


def env_file_text(manifest: dict) -> str:
    """One env file for all functions (`cargo lambda watch --env-file` serves them all with it)."""
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


def summary(manifest: dict, elapsed: float) -> str:
    types = manifest["resource_types"]

    def named(t: str) -> list[str]:
        out = []
        for lid, ty in types.items():
            if ty == t:
                pid = manifest["resources"][lid] or "?"
                out.append(pid.rsplit("/", 1)[-1])
        return out

    lines = [
        f"stack {manifest['stack_name']}: CREATE_COMPLETE in moto at {manifest['endpoint']} "
        f"({len(types)} resources, {elapsed:.1f} s)",
        f"  parameters: {', '.join(f'{k}={v}' for k, v in manifest['parameters'].items())}",
        f"  functions : {', '.join(f['name'] for f in manifest['functions'])}",
        f"  queues    : {', '.join(named('AWS::SQS::Queue'))}",
        f"  tables    : {', '.join(named('AWS::DynamoDB::Table'))}",
        f"  buckets   : {', '.join(named('AWS::S3::Bucket'))} (code placeholders: {manifest['artifacts_bucket']})",
        f"  buses     : {', '.join(named('AWS::Events::EventBus'))}",
        f"  rules     : {', '.join(named('AWS::Events::Rule'))}",
        f"  local rewrites: {len(manifest['local_rewrites'])} (see manifest / docs/local.md)",
    ]
    if manifest["not_emulated"]:
        lines.append("  not emulated: " + ", ".join(f"{r['logical_id']} ({r['type']})" for r in manifest["not_emulated"]))
    return "\n".join(lines)


def warnings_for(manifest: dict) -> list[str]:
    out = []
    for fn in manifest["functions"]:
        env = fn["environment"]
        # The code cannot learn its timeout from Lambda, so the template passes it; both must agree, and
        # the functions refuse at cold start an idempotency TTL that cannot cover an invocation.
        if "FUNCTION_TIMEOUT_SECONDS" in env and str(env["FUNCTION_TIMEOUT_SECONDS"]) != str(fn["timeout_seconds"]):
            out.append(
                f"warning: {fn['name']}: FUNCTION_TIMEOUT_SECONDS={env['FUNCTION_TIMEOUT_SECONDS']} but its timeout "
                f"is {fn['timeout_seconds']} s"
            )
        try:
            ttl, timeout = int(env["IDEMPOTENCY_TTL_SECONDS"]), int(env["FUNCTION_TIMEOUT_SECONDS"])
        except (KeyError, ValueError):
            pass
        else:
            if ttl <= timeout:
                out.append(
                    f"warning: {fn['name']}: IDEMPOTENCY_TTL_SECONDS={ttl} does not exceed FUNCTION_TIMEOUT_SECONDS="
                    f"{timeout}: the function will refuse to start (raise IdempotencyTtlSeconds)"
                )
        if fn.get("log_group") and not fn["log_group"]["exists"]:
            out.append(f"warning: {fn['name']}: log group {fn['log_group']['name']} was not created in moto")
        for src in fn["sqs_sources"]:
            if src["visibility_timeout_seconds"] < fn["timeout_seconds"]:
                out.append(
                    f"warning: {src['queue_url'].rsplit('/', 1)[-1]} visibility timeout {src['visibility_timeout_seconds']} s "
                    f"< {fn['name']} timeout {fn['timeout_seconds']} s: AWS Lambda would reject this event source "
                    f"mapping (moto accepts it); a slow batch can be redelivered while it is still running"
                )
    return out


def provision(args: argparse.Namespace) -> int:
    started = time.monotonic()
    aws = Aws(args.endpoint)
    template = load_template(Path(args.template))
    parameters = resolve_parameters(template, args.parameter)  # bad input fails before anything is reset
    aws.ping()
    if args.reset:
        aws.reset()
        log(f"moto at {aws.endpoint}: state reset")
    rewrites: list[str] = []
    artifacts_bucket = re.sub(r"[^a-z0-9-]", "-", f"{args.stack_name}-artifacts".lower())[:63]
    # Fail before uploading anything if the stack is there already.
    try:
        existing = aws("cloudformation").describe_stacks(StackName=args.stack_name)["Stacks"][0]["StackStatus"]
        if existing != "DELETE_COMPLETE":
            raise ProvisionError(
                f"stack {args.stack_name} already exists in moto at {aws.endpoint} ({existing}). Re-run with "
                f"--reset (wipes ALL state of that moto server: POST /moto-api/reset) or use another --stack-name."
            )
    except ClientError as e:
        if "does not exist" not in str(e):
            raise
    package_code(template, aws, artifacts_bucket, rewrites)
    translated = translate(template, parameters, args.stack_name)
    taps = tap_eventbridge_lambda_targets(translated, rewrites)
    esm_enabled = disable_event_source_mappings(translated, rewrites)
    if args.dump_template:
        Path(args.dump_template).parent.mkdir(parents=True, exist_ok=True)
        Path(args.dump_template).write_text(json.dumps(translated, indent=2) + "\n")

    stack = create_stack(aws, args.stack_name, translated, parameters)
    physical, missing = physical_ids(aws, args.stack_name, translated, parameters)
    not_emulated = apply_skipped_resources(aws, translated, parameters, physical, missing, rewrites)
    manifest = build_manifest(
        aws, args.stack_name, stack, translated, parameters, physical, taps, esm_enabled, not_emulated, rewrites,
        artifacts_bucket,
    )
    env_text = env_file_text(manifest)

    for path, text in ((args.out, json.dumps(manifest, indent=2) + "\n"), (args.env_out, env_text)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    print(summary(manifest, time.monotonic() - started))
    print(f"  manifest  : {args.out}\n  env file  : {args.env_out}")
    for w in warnings_for(manifest):
        log(w)
    return 0


# ---------------------------------------------------------------------------------------------
# --check
# ---------------------------------------------------------------------------------------------


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


def check(args: argparse.Namespace) -> int:
    if not Path(args.out).is_file():
        raise ProvisionError(f"no manifest at {args.out}: provision first (or pass --out)")
    manifest = json.loads(Path(args.out).read_text())
    aws = Aws(args.endpoint or manifest["endpoint"])
    aws.ping()
    sqs, events = aws("sqs"), aws("events")
    failures: list[str] = []
    checked = 0

    # 1. Every SQS event source has a working redrive to an existing DLQ.
    for fn in manifest["functions"]:
        for src in fn["sqs_sources"]:
            if not src.get("enabled", True):
                continue
            attrs = sqs.get_queue_attributes(QueueUrl=src["queue_url"], AttributeNames=["All"])["Attributes"]
            redrive = json.loads(attrs.get("RedrivePolicy") or "{}")
            if not redrive.get("deadLetterTargetArn"):
                failures.append(f"{src['queue_url']}: no RedrivePolicy")
                continue
            dlq_name = redrive["deadLetterTargetArn"].rsplit(":", 1)[-1]
            try:
                sqs.get_queue_url(QueueName=dlq_name)
            except ClientError:
                failures.append(f"{src['queue_url']}: DLQ {dlq_name} does not exist")
            checked += 1
            # A message sent to the source queue is receivable, and nobody (e.g. moto itself, through an
            # enabled event source mapping) received it before: ApproximateReceiveCount is 1.
            check_id = str(uuid.uuid4())
            sqs.send_message(QueueUrl=src["queue_url"], MessageBody=json.dumps({"eventline_check_id": check_id}))
            got = receive_probe(sqs, src["queue_url"], check_id)
            name = src["queue_url"].rsplit("/", 1)[-1]
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

    # 2. PutEvents onto each tapped bus succeeds and reaches every tap whose rule matches.
    taps = [(fn["name"], es) for fn in manifest["functions"] for es in fn["event_sources"]]
    probes: dict[str, dict] = {}
    for fn_name, es in taps:
        fragment = synthesize(es["pattern"] or {})
        if fragment is None or not isinstance(fragment, dict):
            log(f"check: {es['rule_name']}: pattern uses content filters; its tap is not probed")
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
                print(f"check ok: {entry['DetailType']!r} on {probe['bus']} -> {es['tap_queue_url'].rsplit('/', 1)[-1]} ({fn_name})")
                checked += 1
            else:
                failures.append(f"{entry['DetailType']!r} on {probe['bus']} did not arrive on {es['tap_queue_url']} ({fn_name})")
    # Drop probes that broader rules delivered to other taps.
    for _, es in taps:
        receive_probe(sqs, es["tap_queue_url"], None, timeout=0)

    # 3. Every function's log group exists with a retention (the template pre-creates them).
    for fn in manifest["functions"]:
        lg = fn.get("log_group")
        if not lg:
            continue
        groups = aws("logs").describe_log_groups(logGroupNamePrefix=lg["name"])["logGroups"]
        group = next((g for g in groups if g["logGroupName"] == lg["name"]), None)
        if group is None:
            failures.append(f"{fn['name']}: log group {lg['name']} does not exist")
        elif not group.get("retentionInDays"):
            failures.append(f"{fn['name']}: log group {lg['name']} has no retention (never expires)")
        else:
            print(f"check ok: {fn['name']} -> log group {lg['name']}, retention {group['retentionInDays']} days")
            checked += 1

    for f in failures:
        log(f"check FAILED: {f}")
    if not failures:
        print(f"check passed ({checked} checks) against {aws.endpoint}")
    return 1 if failures else 0


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", help="moto server URL, e.g. http://127.0.0.1:5055 (--check: default from the manifest)")
    p.add_argument("--stack-name", default="eventline-local")
    p.add_argument("--parameter", action="append", default=[], metavar="Key=Value", help="template parameter (repeatable)")
    p.add_argument("--out", default=str(ROOT / ".local" / "stack.json"), help="manifest path")
    p.add_argument("--env-out", default=str(ROOT / ".local" / "functions.env"), help="env file for cargo lambda watch")
    p.add_argument("--reset", action="store_true", help="POST /moto-api/reset first (wipes ALL state of that moto server)")
    p.add_argument("--template", default=str(TEMPLATE), help=argparse.SUPPRESS)
    p.add_argument("--dump-template", metavar="PATH", help="also write the translated, locally rewritten template")
    p.add_argument("--check", action="store_true", help="only verify the provisioned stack described by --out")
    args = p.parse_args(argv)
    try:
        if args.check:
            return check(args)
        if not args.endpoint:
            p.error("--endpoint is required")
        return provision(args)
    except ProvisionError as e:
        log(f"provision.py: error: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
