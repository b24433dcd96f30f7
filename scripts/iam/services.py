"""One decoder per service the functions call: a recorded request becomes the (IAM action,
resource ARN) pairs IAM authorises it as. Batch and transaction calls are expanded the way IAM
authorises them (each item as its single-item action)."""

from __future__ import annotations

import re
import urllib.parse

from iam import Pair, Stack
from iam.recording import header, json_body


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
