#!/usr/bin/env python3
"""Check IAM by behaviour: every AWS call a function really made must be permitted by its role.

    .venv/bin/python scripts/iam_check.py [--recording target/iam/recording.jsonl]
        [--manifest target/e2e/stack.json] [--prove-failure]

Input: a moto request recording (MOTO_ENABLE_RECORDING, written by every moto server that
scripts/test.sh starts) and the manifest provision.py wrote for the end-to-end stack.

1. Calls: each recorded request whose user agent names an app (`app/<function>`, set by the
   functions' SDK config from AWS_LAMBDA_FUNCTION_NAME) is a call of that function. It becomes one
   or more (IAM action, resource ARN) pairs: service from the SigV4 credential scope, operation from
   X-Amz-Target / the query `Action` / the S3 REST method and path. Batch and transaction calls are
   expanded the way IAM authorises them (see `dynamodb_pairs`). A request without an app name
   (provisioning, the local runner, adapter tests) is not a function's call and is ignored.
2. Policies: the SAM translation of template.yaml, made by provision's own translation
   (scripts/stack/translate.py) with the deployed stack's parameters; intrinsics resolved by
   `ManifestResolver` against the stack's physical names (the manifest), so ARNs are the deployed ones.
3. Verdict: moto's IAM policy evaluator (`moto.iam.access_control.IAMPolicy`) decides each pair
   against every policy of the function's role (inline, attached AWS::IAM::Policy, managed). A pair
   is allowed when some policy PERMITS it and none DENIES it.

Fails (exit 1) on: a call not permitted, a call it cannot map to an IAM action, a function of the
stack with no recorded call (a run that recorded nothing proves nothing).

--prove-failure then removes one permission user-processor really uses (events:PutEvents) from the
translated template and asserts that the check reports exactly those calls, nothing else.

docs/iam.md explains what this sees and what it cannot.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import re
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from stack import ProvisionError  # noqa: E402
from stack.local import getatt_target  # noqa: E402
from stack.translate import TEMPLATE, pseudo_parameters, translated_for  # noqa: E402

DEFAULT_RECORDING = ROOT / "target" / "iam" / "recording.jsonl"
DEFAULT_MANIFEST = ROOT / "target" / "e2e" / "stack.json"

# The permission --prove-failure removes: one every end-to-end run exercises.
PROOF_FUNCTION = "user-processor"
PROOF_ACTION = "events:PutEvents"


class IamCheckError(Exception):
    """The check could not be carried out (bad input, unsupported template construct)."""


# ---------------------------------------------------------------------------------------------
# Recording -> calls
# ---------------------------------------------------------------------------------------------


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


def read_recording(path: Path) -> Iterator[dict]:
    """The entries of a moto recording. moto appends one JSON object and then a newline in two
    writes, and several servers (and threads) append to the same file, so two objects can share a
    line: decode the stream object by object instead of line by line."""
    text = path.read_text(encoding="utf-8", errors="replace")
    decoder = json.JSONDecoder()
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            return
        try:
            entry, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            # A torn write (a server killed mid-append): skip to the next line, say so.
            nl = text.find("\n", pos)
            print(f"iam_check: warning: unreadable recording entry at offset {pos}: {e.msg}", file=sys.stderr)
            pos = end if nl < 0 else nl + 1
            continue
        if isinstance(entry, dict):
            yield entry


def header(entry: dict, name: str) -> str | None:
    name = name.lower()
    for key, value in (entry.get("headers") or {}).items():
        if key.lower() == name:
            return value
    return None


_APP = re.compile(r"(?:^|\s)app/([A-Za-z0-9!#$%&'*+.^_`|~-]+)")


def app_name(entry: dict) -> str | None:
    """The SDK app name (`app/<name>` in the user agent headers), if the caller set one."""
    for name in ("x-amz-user-agent", "user-agent"):
        m = _APP.search(header(entry, name) or "")
        if m:
            return m.group(1)
    return None


def credential_scope_service(entry: dict) -> str | None:
    auth = header(entry, "authorization") or ""
    m = re.search(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request", auth)
    if m:
        return m.group(1)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(entry.get("url") or "").query)
    cred = (query.get("X-Amz-Credential") or [""])[0].split("/")
    return cred[3] if len(cred) == 5 else None


def body_bytes(entry: dict) -> bytes:
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8") if isinstance(body, str) else b""


def json_body(entry: dict) -> dict:
    raw = body_bytes(entry)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"body is not JSON ({e})") from e
    if not isinstance(value, dict):
        raise ValueError("body is not a JSON object")
    return value


def query_protocol_body(entry: dict) -> dict[str, str]:
    """Parameters of an AWS query-protocol request (form body), flattened."""
    params = urllib.parse.parse_qs(body_bytes(entry).decode("utf-8", "replace"))
    params.update(urllib.parse.parse_qs(urllib.parse.urlsplit(entry.get("url") or "").query))
    return {k: v[0] for k, v in params.items()}


def table_arn(stack: Stack, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:{stack.partition}:dynamodb:{stack.region}:{stack.account}:table/{name}"


# TransactWriteItems has no IAM action of its own: each item is authorised as the single-item call.
TRANSACT_WRITE_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}


def dynamodb_pairs(op: str, body: dict, stack: Stack) -> list[Pair]:
    if op == "TransactWriteItems":
        pairs = []
        for item in body.get("TransactItems") or []:
            for kind, action in TRANSACT_WRITE_ACTIONS.items():
                if kind in item:
                    pairs.append(Pair(f"dynamodb:{action}", table_arn(stack, item[kind]["TableName"])))
        return pairs
    if op == "TransactGetItems":
        return [Pair("dynamodb:GetItem", table_arn(stack, i["Get"]["TableName"])) for i in body.get("TransactItems") or []]
    if op in ("BatchWriteItem", "BatchGetItem"):
        # Authorised as the batch action itself, on every table the request names.
        return [Pair(f"dynamodb:{op}", table_arn(stack, t)) for t in sorted(body.get("RequestItems") or {})]
    if "TableName" in body:
        arn = table_arn(stack, body["TableName"])
        if op in ("Query", "Scan") and body.get("IndexName"):
            arn = f"{arn}/index/{body['IndexName']}"
        return [Pair(f"dynamodb:{op}", arn)]
    return [Pair(f"dynamodb:{op}", "*")]


# IAM has no separate action for these: the batch call needs the single-message action.
SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def sqs_pairs(op: str, params: dict, stack: Stack) -> list[Pair]:
    action = f"sqs:{SQS_BATCH_ACTIONS.get(op, op)}"
    if params.get("QueueUrl"):
        path = urllib.parse.urlsplit(params["QueueUrl"]).path.strip("/").split("/")
        if len(path) != 2:
            raise ValueError(f"QueueUrl {params['QueueUrl']!r} has no /<account>/<name> path")
        account, name = path
        return [Pair(action, f"arn:{stack.partition}:sqs:{stack.region}:{account}:{name}")]
    if params.get("QueueName"):  # GetQueueUrl, CreateQueue
        account = params.get("QueueOwnerAWSAccountId") or stack.account
        return [Pair(action, f"arn:{stack.partition}:sqs:{stack.region}:{account}:{params['QueueName']}")]
    return [Pair(action, "*")]


def bus_arn(stack: Stack, name: str | None) -> str:
    name = name or "default"
    if name.startswith("arn:"):
        return name
    return f"arn:{stack.partition}:events:{stack.region}:{stack.account}:event-bus/{name}"


def events_pairs(op: str, body: dict, stack: Stack) -> list[Pair]:
    if op == "PutEvents":
        # One authorisation per bus an entry goes to (an entry without EventBusName: the default bus).
        buses = sorted({bus_arn(stack, e.get("EventBusName")) for e in body.get("Entries") or []})
        return [Pair("events:PutEvents", b) for b in buses]
    if "EventBusName" in body:
        return [Pair(f"events:{op}", bus_arn(stack, body["EventBusName"]))]
    return [Pair(f"events:{op}", "*")]


def s3_pairs(entry: dict, stack: Stack) -> list[Pair]:
    url = urllib.parse.urlsplit(entry.get("url") or "")
    query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
    method = (entry.get("method") or "").upper()
    host = (header(entry, "host") or url.netloc).split(":")[0]
    path = url.path.lstrip("/")
    # Path style (what the SDK uses against an endpoint override), else virtual-hosted style.
    if re.fullmatch(r"[\d.]+|localhost", host) or ".s3." not in f".{host}":
        bucket, _, key = path.partition("/")
    else:
        bucket, key = host.split(".s3.", 1)[0], path
    key = urllib.parse.unquote(key)
    if not bucket:
        raise ValueError("no bucket in the request")
    bucket_arn = f"arn:{stack.partition}:s3:::{bucket}"
    subresources = set(query) - {"x-id", "partNumber", "uploadId", "versionId"}
    if key:
        object_arn = f"{bucket_arn}/{key}"
        if subresources - {"uploads"}:
            raise ValueError(f"S3 object subresource {sorted(subresources)} is not mapped")
        if "uploadId" in query and method == "DELETE":
            return [Pair("s3:AbortMultipartUpload", object_arn)]
        if "uploadId" in query and method == "GET":
            return [Pair("s3:ListMultipartUploadParts", object_arn)]
        action = {"PUT": "PutObject", "POST": "PutObject", "GET": "GetObject", "HEAD": "GetObject", "DELETE": "DeleteObject"}.get(method)
        if not action:
            raise ValueError(f"S3 method {method} on an object is not mapped")
        pairs = [Pair(f"s3:{action}", object_arn)]
        copy_source = header(entry, "x-amz-copy-source")
        if copy_source:
            src = urllib.parse.unquote(copy_source.split("?", 1)[0].lstrip("/"))
            pairs.append(Pair("s3:GetObject", f"arn:{stack.partition}:s3:::{src}"))
        return pairs
    if not subresources and method in ("GET", "HEAD"):
        return [Pair("s3:ListBucket", bucket_arn)]
    if subresources <= {"list-type", "prefix", "delimiter", "continuation-token", "max-keys", "start-after", "encoding-type"} and method == "GET":
        return [Pair("s3:ListBucket", bucket_arn)]
    raise ValueError(f"S3 {method} on bucket with {sorted(subresources)} is not mapped")


def ses_pairs(entry: dict, stack: Stack) -> list[Pair]:
    path = urllib.parse.urlsplit(entry.get("url") or "").path
    if (entry.get("method") or "").upper() == "POST" and path.rstrip("/") == "/v2/email/outbound-emails":
        sender = json_body(entry).get("FromEmailAddress") or ""
        address = re.sub(r"^.*<([^>]*)>.*$", r"\1", sender).strip()
        if not address:
            raise ValueError("SendEmail without FromEmailAddress")
        return [Pair("ses:SendEmail", f"arn:{stack.partition}:ses:{stack.region}:{stack.account}:identity/{address}")]
    raise ValueError(f"SES {entry.get('method')} {path} is not mapped")


def call_of(entry: dict, function: str, stack: Stack) -> Call:
    """Maps one recorded request to the IAM (action, resource) pairs it needs."""
    service = credential_scope_service(entry)
    target = header(entry, "x-amz-target") or ""
    op = target.rsplit(".", 1)[-1] if target else ""
    call = Call(function=function, operation=f"{service}.{op or entry.get('method')}")
    try:
        if service == "dynamodb" and op:
            call.pairs = dynamodb_pairs(op, json_body(entry), stack)
        elif service == "sqs":
            if op:
                params = json_body(entry)
            else:
                params = query_protocol_body(entry)
                op = params.get("Action", "")
                call.operation = f"sqs.{op}"
            if not op:
                raise ValueError("no SQS operation in the request")
            call.pairs = sqs_pairs(op, params, stack)
        elif service == "events" and op:
            call.pairs = events_pairs(op, json_body(entry), stack)
        elif service == "s3":
            call.pairs = s3_pairs(entry, stack)
        elif service == "ses":
            call.pairs = ses_pairs(entry, stack)
        else:
            raise ValueError(f"service {service!r} (target {target!r}) is not mapped")
        if not call.pairs:
            raise ValueError("the request names no resource")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        call.pairs = []
        call.unmapped = f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e)
    return call


def function_calls(entries: Iterator[dict], functions: dict[str, str], stack: Stack) -> tuple[list[Call], dict[str, int]]:
    """Calls made by the stack's functions. `functions` maps every name a function's calls can carry
    as app name (the binary name under cargo lambda watch, the deployed name in AWS) to the
    function's name in the report. Returns the calls and the count of app names not in the stack."""
    calls: list[Call] = []
    foreign: dict[str, int] = {}
    for entry in entries:
        app = app_name(entry)
        if app is None:
            continue
        if app not in functions:
            foreign[app] = foreign.get(app, 0) + 1
            continue
        calls.append(call_of(entry, functions[app], stack))
    return calls, foreign


# ---------------------------------------------------------------------------------------------
# Template -> policies per function
# ---------------------------------------------------------------------------------------------


def translated_template(manifest: dict, template_path: Path = TEMPLATE) -> dict:
    """template.yaml through provision's SAM translation, with the deployed stack's parameters."""
    return translated_for(manifest["stack_name"], manifest.get("parameters") or {}, template_path)


NO_VALUE = object()


class ManifestResolver:
    """The one evaluation of CloudFormation intrinsics outside moto. provision asks moto's
    CloudFormation for every value it needs (scripts/stack/resolve.py), but this check runs after the end-to-end moto
    server is gone, on template.yaml as it is now (so a policy edited since the run is checked
    without redeploying), whose policy documents moto never resolved. Nor can moto's copy of the
    deployed roles stand in: its CloudFormation stores inline policy documents as Python text and
    does not attach managed policies. Refs and attributes come from the deployed stack's physical
    names in the manifest; ARNs are built from them."""

    def __init__(self, translated: dict, manifest: dict, stack: Stack):
        self.resources = translated.get("Resources") or {}
        self.conditions = translated.get("Conditions") or {}
        declared = translated.get("Parameters") or {}
        pseudo = pseudo_parameters(manifest["stack_name"])
        pseudo.update({"AWS::Region": stack.region, "AWS::AccountId": stack.account, "AWS::Partition": stack.partition})
        pseudo["AWS::StackId"] = f"arn:{stack.partition}:cloudformation:{stack.region}:{stack.account}:stack/{manifest['stack_name']}/local"
        self.params = {**pseudo, **{k: str(v) for k, v in (manifest.get("parameters") or {}).items() if k in declared}}
        for name, spec in declared.items():
            self.params.setdefault(name, str(spec.get("Default")))
        self.physical = manifest.get("resources") or {}
        self.stack = stack
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
        if self.physical.get(name):
            return self.physical[name]
        raise IamCheckError(f"cannot resolve Ref {name}: the manifest has no physical id for it")

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
            ((k, a),) = v.items()
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
                raise IamCheckError(f"cannot resolve {k} in a policy")
        return {k: r for k, x in v.items() if (r := self.resolve(x)) is not NO_VALUE}

    def getatt(self, lid: str, attr: str) -> Any:
        rtype = self.resources.get(lid, {}).get("Type")
        pid = self.physical.get(lid)
        if not pid:
            raise IamCheckError(f"cannot resolve {lid}.{attr}: the manifest has no physical id for {lid}")
        s = self.stack
        arn = None
        if rtype == "AWS::SQS::Queue":
            name = pid.rsplit("/", 1)[-1]
            account = pid.rstrip("/").split("/")[-2]
            arn = f"arn:{s.partition}:sqs:{s.region}:{account}:{name}"
            extra = {"QueueName": name, "QueueUrl": pid}
        elif rtype == "AWS::DynamoDB::Table":
            arn, extra = table_arn(s, pid), {}
        elif rtype == "AWS::S3::Bucket":
            arn, extra = f"arn:{s.partition}:s3:::{pid}", {}
        elif rtype == "AWS::Events::EventBus":
            arn, extra = bus_arn(s, pid), {"Name": pid}
        elif rtype == "AWS::IAM::Role":
            arn, extra = f"arn:{s.partition}:iam::{s.account}:role/{pid}", {}
        elif rtype == "AWS::Lambda::Function":
            arn, extra = f"arn:{s.partition}:lambda:{s.region}:{s.account}:function:{pid}", {}
        else:
            extra = {}
        values = {"Arn": arn, **extra} if arn else extra
        if attr not in values:
            raise IamCheckError(f"cannot resolve Fn::GetAtt {lid}.{attr} ({rtype}) from the manifest")
        return values[attr]


@dataclass
class RolePolicies:
    role: str  # logical id
    documents: list[tuple[str, dict]]  # (where it comes from, resolved policy document)


def aws_managed_policy(arn: str) -> dict:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    data = json.loads(aws_managed_policies_data)
    name = arn.rsplit("/", 1)[-1]
    if name not in data:
        raise IamCheckError(f"AWS managed policy {arn} is unknown to moto's copy of the managed policies")
    return data[name]["Document"]


def role_of(function_res: dict) -> str:
    role = (function_res.get("Properties") or {}).get("Role")
    ga = getatt_target(role)
    if not ga or ga[1] != "Arn":
        raise IamCheckError(f"function role {json.dumps(role)} is not a role of this template (Fn::GetAtt X.Arn)")
    return ga[0]


def policies_by_function(translated: dict, manifest: dict, stack: Stack) -> dict[str, RolePolicies]:
    resolver = ManifestResolver(translated, manifest, stack)
    resources = translated["Resources"]
    out = {}
    for fn in manifest["functions"]:
        res = resources[fn["logical_id"]]
        role_lid = role_of(res)
        role = resources[role_lid]
        props = role.get("Properties") or {}
        if "PermissionsBoundary" in props:
            raise IamCheckError(f"{role_lid}: PermissionsBoundary is not evaluated by this check")
        docs: list[tuple[str, dict]] = []
        try:
            docs += [(f"{role_lid} inline {p.get('PolicyName')}", resolver.resolve(p["PolicyDocument"])) for p in props.get("Policies") or []]
            managed = resolver.resolve(props.get("ManagedPolicyArns") or [])
        except IamCheckError as e:
            raise IamCheckError(
                f"{role_lid}: {e}. Was the stack deployed from this template.yaml? Run the end-to-end test again."
            ) from e
        for arn in managed:
            if re.fullmatch(r"arn:[^:]+:iam::aws:policy/.+", str(arn)):
                docs.append((f"{role_lid} managed {arn}", aws_managed_policy(arn)))
            else:
                lid = next((k for k, v in resolver.physical.items() if v == arn and resources.get(k, {}).get("Type") == "AWS::IAM::ManagedPolicy"), None)
                if not lid:
                    raise IamCheckError(f"{role_lid}: managed policy {arn} is neither AWS managed nor in the template")
        for lid, pres in resources.items():
            if pres.get("Type") not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                continue
            if "Condition" in pres and not resolver.condition(pres["Condition"]):
                continue
            pprops = pres.get("Properties") or {}
            if {"Ref": role_lid} in (pprops.get("Roles") or []):
                docs.append((f"{lid} ({pres['Type']})", resolver.resolve(pprops["PolicyDocument"])))
        for where, doc in docs:
            statements = doc.get("Statement")
            for st in statements if isinstance(statements, list) else [statements]:
                unsupported = {"NotResource", "NotPrincipal"} & set(st)
                if unsupported:
                    # moto's evaluator reads a statement without Resource as matching every resource.
                    raise IamCheckError(f"{where}: {sorted(unsupported)} is not supported by the evaluator")
        out[fn["name"]] = RolePolicies(role_lid, docs)
    return out


# ---------------------------------------------------------------------------------------------
# Verdict
# ---------------------------------------------------------------------------------------------


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
        lines.append(f"UNMAPPED: {c.function} {c.operation}: {c.unmapped} (extend scripts/iam_check.py)")
    for fn in report.silent_functions:
        lines.append(
            f"NO CALLS: {fn} made no recorded call. Is its SDK app name set from AWS_LAMBDA_FUNCTION_NAME, and did "
            f"the end-to-end run record (MOTO_ENABLE_RECORDING)?"
        )
    for app, n in sorted(report.foreign_apps.items()):
        lines.append(f"note: {n} request(s) with app name {app!r}, not a function of this stack: ignored")
    return "\n".join(lines)


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


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def run_check(recording: Path, manifest: dict, translated: dict) -> tuple[Report, dict[str, RolePolicies]]:
    stack = Stack(region=manifest["region"], account=manifest["account_id"])
    names: dict[str, str] = {}
    for fn in manifest["functions"]:
        names[fn["name"]] = fn["name"]
        names[fn["function_name"]] = fn["name"]
    calls, foreign = function_calls(read_recording(recording), names, stack)
    policies = policies_by_function(translated, manifest, stack)
    return evaluate(calls, policies, foreign), policies


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recording", type=Path, default=DEFAULT_RECORDING, help="moto recording (MOTO_RECORDER_FILEPATH)")
    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help="manifest of the stack the functions ran against")
    p.add_argument("--translated", type=Path, help="use this translated template instead of translating template.yaml")
    p.add_argument("--prove-failure", action="store_true", help=f"also show that removing {PROOF_ACTION} from {PROOF_FUNCTION} is caught")
    args = p.parse_args(argv)
    try:
        for path, what in ((args.recording, "recording"), (args.manifest, "manifest")):
            if not path.is_file():
                raise IamCheckError(f"no {what} at {path}: run `make test` (or the end-to-end test with recording on) first")
        manifest = json.loads(args.manifest.read_text())
        translated = json.loads(args.translated.read_text()) if args.translated else translated_template(manifest)
        report, policies = run_check(args.recording, manifest, translated)
        print(render(report, policies))
        status = 0 if report.ok else 1
        print(
            f"iam check {'passed' if report.ok else 'FAILED'}: {len(report.calls)} function calls, {report.pairs_checked} "
            f"(action, resource) checks, {len(report.violations)} not permitted, {len(report.unmapped)} unmapped, "
            f"{len(report.silent_functions)} functions without calls ({args.recording})"
        )
        if args.prove_failure:
            problems = prove_failure(args.recording, manifest, translated, report)
            for problem in problems:
                print(f"iam check self-test FAILED: {problem}")
            if not problems:
                print(f"iam check self-test passed: without {PROOF_ACTION}, {PROOF_FUNCTION}'s calls are reported and nothing else")
            status = status or (1 if problems else 0)
        return status
    except (IamCheckError, ProvisionError) as e:
        print(f"iam_check.py: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
