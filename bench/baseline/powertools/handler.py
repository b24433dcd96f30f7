"""user-processor written with Powertools for AWS Lambda (Python) 3.x, the way its documentation shows:
the peer a team would pick instead of eventline, measured beside it by bench/coldstart.py and priced
by bench/cost.py.

Same input, same environment variables (USERS_TABLE, NOTIFICATION_QUEUE_URL, EVENT_BUS_NAME,
SIGNUP_DLQ_URL, IDEMPOTENCY_TABLE, IDEMPOTENCY_TTL_SECONDS, POWERTOOLS_*) and same effects as the Rust
user-processor:

- `BatchProcessor(event_type=EventType.SQS)` + `process_partial_response`: a record that raises is
  listed in `batchItemFailures` and retried.
- The signup body is validated against a JSON Schema (`validate`, schemas.py); `id` is accepted as an
  alias of `user_id`. A record that can never succeed (invalid, a different signup for a taken id, a
  payload that conflicts with the idempotency record) goes to SIGNUP_DLQ_URL at once, body unchanged,
  with the same `eventline.*` message attributes as the Rust dead-letter sink, and is not retried.
- `@idempotent_function` on `DynamoDBPersistenceLayer` (table key `id`, TTL `expiration`), keyed by
  the signup's `user_id`, with `email` and `name` validated against the stored payload.
- Inside it: the user is stored create-if-absent (`attribute_not_exists(user_id)`); if it is already
  there, the same signup is a replay and continues with the stored user, a different one is a
  conflict. Then `SendMessage` of the `signup_confirmation` notification, `PutEvents` of `User Created`
  (source `user.service`), and `announced_at` set on the user, so a duplicate of any age causes no
  second notification or event.
- Logger (JSON, Lambda context injected; user ids only, never emails or names) and Metrics (EMF,
  cold start, RecordsProcessed / RecordsFailed).

Records are processed one after the other, each with its own calls: 6 per record in the common case
(idempotency PutItem, users PutItem, SendMessage, PutEvents, users UpdateItem, idempotency
UpdateItem). Standard queues only (no FIFO group handling). Powertools' standalone `validate`
compiles the schema on every call (fastjsonschema; ~1-3 ms a record here): kept, as that is its
documented use. Within one batch the first of two records with the same user id wins, in order; the
Rust function runs records concurrently, so there either may win and the other is deferred.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError
from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate
from botocore.exceptions import ClientError

from schemas import SIGNUP

FUNCTION = "user-processor"  # the `eventline.function` of dead letters, as the Rust sink names it
USERS_TABLE = os.environ["USERS_TABLE"]
NOTIFICATION_QUEUE_URL = os.environ["NOTIFICATION_QUEUE_URL"]
EVENT_BUS_NAME = os.environ["EVENT_BUS_NAME"]
SIGNUP_DLQ_URL = os.environ["SIGNUP_DLQ_URL"]

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "eventline"))
processor = BatchProcessor(event_type=EventType.SQS)

dynamodb = boto3.client("dynamodb")
sqs = boto3.client("sqs")
events = boto3.client("events")

persistence_layer = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"], boto3_client=dynamodb)
idempotency_config = IdempotencyConfig(
    event_key_jmespath="user_id",
    payload_validation_jmespath="[email, name]",
    expires_after_seconds=int(os.environ.get("IDEMPOTENCY_TTL_SECONDS", "3600")),
)


class Rejected(Exception):
    """A record that can never succeed: dead-lettered with `code` and the JSON `fields` involved."""

    def __init__(self, code: str, fields: list[str] | None = None):
        super().__init__(code)
        self.code = code
        self.fields = fields or []


def parse_signup(body: str) -> dict:
    """The validated signup of a record body: `id` resolved to `user_id`, `email` and `name` trimmed,
    the email's domain lower-cased (as crates/domain/src/signup.rs stores them)."""
    try:
        signup = json.loads(body)
    except ValueError:
        raise Rejected("InvalidJson") from None
    if not isinstance(signup, dict):
        raise Rejected("WrongShape")
    if "id" in signup:
        if "user_id" in signup and signup["user_id"] != signup["id"]:
            raise Rejected("InvalidFields", ["user_id"])
        signup["user_id"] = signup.pop("id")
    for key in ("email", "name"):
        if isinstance(signup.get(key), str):
            signup[key] = signup[key].strip()
    try:
        validate(event=signup, schema=SIGNUP)
    except SchemaValidationError as e:
        if e.rule == "required":
            fields = [f for f in SIGNUP["required"] if f not in signup]
        else:
            fields = [str(e.path[-1])] if e.path else []
        raise Rejected("InvalidFields", fields) from None
    local, _, domain = signup["email"].partition("@")
    return {"user_id": signup["user_id"], "email": f"{local}@{domain.lower()}", "name": signup["name"]}


def rfc3339(t: datetime | None = None) -> str:
    """UTC, milliseconds, as the Rust Timestamp prints it: 2026-11-27T09:24:26.123Z."""
    t = t or datetime.now(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def store_user(signup: dict) -> dict:
    """Creates the user, or returns the one already stored under its id if it is the same signup."""
    user = {**signup, "created_at": rfc3339()}
    try:
        dynamodb.put_item(
            TableName=USERS_TABLE,
            Item={k: {"S": v} for k, v in user.items()},
            ConditionExpression="attribute_not_exists(user_id)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        logger.info("user created", user_id=user["user_id"])
        return user
    except ClientError as e:
        if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        item = e.response.get("Item") or dynamodb.get_item(
            TableName=USERS_TABLE, Key={"user_id": {"S": signup["user_id"]}}, ConsistentRead=True)["Item"]
    stored = {k: v["S"] for k, v in item.items()}
    if (stored["email"], stored["name"]) != (signup["email"], signup["name"]):
        raise Rejected("UserIdConflict", ["user_id"])
    logger.info("signup already stored", user_id=stored["user_id"])
    return stored


@idempotent_function(data_keyword_argument="signup", config=idempotency_config, persistence_store=persistence_layer)
def announce_signup(signup: dict) -> dict:
    user = store_user(signup)
    if "announced_at" in user:
        logger.info("signup already announced; nothing to do", user_id=user["user_id"])
        return {"user_id": user["user_id"]}
    user_id = user["user_id"]
    notification_id = f"signup_confirmation.{user_id}"
    sqs.send_message(
        QueueUrl=NOTIFICATION_QUEUE_URL,
        MessageBody=json.dumps({"notification_id": notification_id, "user_id": user_id,
                                "kind": "signup_confirmation"}, separators=(",", ":")),
    )
    detail = {k: user[k] for k in ("user_id", "email", "name", "created_at")}
    result = events.put_events(Entries=[{
        "EventBusName": EVENT_BUS_NAME,
        "Source": "user.service",
        "DetailType": "User Created",
        "Detail": json.dumps(detail, ensure_ascii=False, separators=(",", ":")),
    }])
    if result.get("FailedEntryCount"):
        raise RuntimeError(f"PutEvents refused the event: {result['Entries'][0].get('ErrorCode')}")
    dynamodb.update_item(
        TableName=USERS_TABLE,
        Key={"user_id": {"S": user_id}},
        UpdateExpression="SET announced_at = if_not_exists(announced_at, :now)",
        ExpressionAttributeValues={":now": {"S": rfc3339()}},
    )
    logger.info("user announced", user_id=user_id)
    return {"user_id": user_id}


def dead_letter(record: SQSRecord, rejection: Rejected) -> None:
    """Sends the record's body, unchanged, to the DLQ with why (codes and names, never a value)."""
    first_ms = record.attributes.approximate_first_receive_timestamp
    first_seen = datetime.fromtimestamp(int(first_ms) / 1000, timezone.utc) if first_ms else None
    attributes = {
        "eventline.error_code": rejection.code,
        "eventline.function": FUNCTION,
        "eventline.first_seen": rfc3339(first_seen),
        "eventline.source_message_id": record.message_id,
    }
    if rejection.fields:
        attributes["eventline.error_fields"] = ",".join(rejection.fields)
    sqs.send_message(
        QueueUrl=SIGNUP_DLQ_URL,
        MessageBody=record.body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )
    logger.warning("rejected; sent to the dead-letter queue", code=rejection.code, fields=rejection.fields)


def record_handler(record: SQSRecord) -> None:
    try:
        announce_signup(signup=parse_signup(record.body))
    except IdempotencyValidationError:
        dead_letter(record, Rejected("PayloadConflict"))
    except Rejected as rejection:
        dead_letter(record, rejection)


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict, context) -> dict:
    idempotency_config.register_lambda_context(context)
    response = process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)
    failed = len(response["batchItemFailures"])
    metrics.add_metric(name="RecordsProcessed", unit=MetricUnit.Count, value=len(event["Records"]) - failed)
    metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=failed)
    return response
