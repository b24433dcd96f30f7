"""The classic Python + boto3 SQS handler: the baseline user-processor is compared against.

Clients are created at module level (at init, once per cold start), as the AWS examples do. For each
record: parse the body, store the user, enqueue a notification. Sequential, no condition on the write,
no EventBridge event: it does less than user-processor (see docs/performance.md).
"""

import json
import os
from datetime import datetime, timezone

import boto3

dynamodb = boto3.client("dynamodb")
sqs = boto3.client("sqs")

USERS_TABLE = os.environ["USERS_TABLE"]
NOTIFICATION_QUEUE_URL = os.environ["NOTIFICATION_QUEUE_URL"]


def handler(event, context):
    for record in event["Records"]:
        signup = json.loads(record["body"])
        dynamodb.put_item(
            TableName=USERS_TABLE,
            Item={
                "user_id": {"S": signup["user_id"]},
                "email": {"S": signup["email"]},
                "name": {"S": signup["name"]},
                "created_at": {"S": datetime.now(timezone.utc).isoformat()},
            },
        )
        sqs.send_message(
            QueueUrl=NOTIFICATION_QUEUE_URL,
            MessageBody=json.dumps({
                "notification_id": f"signup_confirmation.{signup['user_id']}",
                "user_id": signup["user_id"],
                "kind": "signup_confirmation",
            }),
        )
    return {"batchItemFailures": []}
