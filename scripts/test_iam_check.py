"""Specification of scripts/iam_check.py and its package scripts/iam/.

    .venv/bin/python -m unittest discover -s scripts -p 'test_iam_check.py' -v

The recorded tests start a moto server of their own with recording on, deploy template.yaml into it
with provision.py, make calls with boto3 under a function's app name (as the functions' SDK config
does with AWS_LAMBDA_FUNCTION_NAME) and check what moto recorded: the same path as `make test`,
without building the Rust functions.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import provision  # noqa: E402
from iam import Pair, Stack, calls, check, cli, policies, recording, selftest, verdict  # noqa: E402
from stack.testing import MotoServer  # noqa: E402

STACK = Stack(region="us-east-1", account="123456789012")


def entry(service: str, target: str | None, body: dict | bytes, app: str | None = "user-processor", method="POST", url="http://127.0.0.1:1/") -> dict:
    headers = {
        "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0",
        "X-Amz-User-Agent": "aws-sdk-rust/1.3 ua/2.1 api/x/1 os/linux lang/rust/1.94" + (f" app/{app}" if app else ""),
    }
    if target:
        headers["X-Amz-Target"] = target
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return {"headers": headers, "method": method, "url": url, "body": base64.b64encode(raw).decode(), "body_encoded": True}


class MapsRequestsToIamActions(unittest.TestCase):
    def test_transact_write_items_needs_each_items_own_action_on_its_table(self):
        call = calls.call_of(
            entry(
                "dynamodb",
                "DynamoDB_20120810.TransactWriteItems",
                {
                    "TransactItems": [
                        {"Put": {"TableName": "users", "Item": {}}},
                        {"ConditionCheck": {"TableName": "mail", "Key": {}}},
                        {"Delete": {"TableName": "idem", "Key": {}}},
                        {"Update": {"TableName": "users", "Key": {}}},
                    ]
                },
            ),
            "user-processor",
            STACK,
        )
        t = "arn:aws:dynamodb:us-east-1:123456789012:table/"
        self.assertEqual(
            call.pairs,
            [
                Pair("dynamodb:PutItem", t + "users"),
                Pair("dynamodb:ConditionCheckItem", t + "mail"),
                Pair("dynamodb:DeleteItem", t + "idem"),
                Pair("dynamodb:UpdateItem", t + "users"),
            ],
        )

    def test_batch_write_item_needs_the_batch_action_on_every_table_it_names(self):
        call = calls.call_of(
            entry("dynamodb", "DynamoDB_20120810.BatchWriteItem", {"RequestItems": {"b": [], "a": []}}), "f", STACK
        )
        t = "arn:aws:dynamodb:us-east-1:123456789012:table/"
        self.assertEqual(call.pairs, [Pair("dynamodb:BatchWriteItem", t + "a"), Pair("dynamodb:BatchWriteItem", t + "b")])

    def test_send_message_batch_needs_send_message_on_the_queue_of_its_url(self):
        call = calls.call_of(
            entry("sqs", "AmazonSQS.SendMessageBatch", {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/210987654321/q", "Entries": []}),
            "f",
            STACK,
        )
        self.assertEqual(call.pairs, [Pair("sqs:SendMessage", "arn:aws:sqs:us-east-1:210987654321:q")])

    def test_put_events_needs_put_events_on_each_entrys_bus(self):
        call = calls.call_of(
            entry("events", "AWSEvents.PutEvents", {"Entries": [{"EventBusName": "bus"}, {}, {"EventBusName": "bus"}]}), "f", STACK
        )
        self.assertEqual(
            call.pairs,
            [
                Pair("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/bus"),
                Pair("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/default"),
            ],
        )

    def test_s3_put_object_path_style_needs_put_object_on_the_decoded_key(self):
        call = calls.call_of(
            entry("s3", None, b"{}", method="PUT", url="http://127.0.0.1:1/bkt/outbox/welcome/a%2Fb.json?x-id=PutObject"), "f", STACK
        )
        self.assertEqual(call.pairs, [Pair("s3:PutObject", "arn:aws:s3:::bkt/outbox/welcome/a/b.json")])

    def test_an_unknown_service_is_reported_unmapped_not_skipped(self):
        call = calls.call_of(entry("kinesis", "Kinesis_20131202.PutRecord", {}), "f", STACK)
        self.assertEqual(call.pairs, [])
        self.assertIn("kinesis", call.unmapped)

    def test_requests_without_an_app_name_are_not_function_calls(self):
        e1 = entry("sqs", "AmazonSQS.ReceiveMessage", {"QueueUrl": "http://h/1/q"}, app=None)
        e2 = entry("sqs", "AmazonSQS.SendMessage", {"QueueUrl": "http://h/1/q"}, app="welcome-email")
        e3 = entry("sqs", "AmazonSQS.SendMessage", {"QueueUrl": "http://h/1/q"}, app="someone-else")
        found, foreign = calls.function_calls(iter([e1, e2, e3]), {"welcome-email": "welcome-email"}, STACK)
        self.assertEqual([(c.function, c.operation) for c in found], [("welcome-email", "sqs.SendMessage")])
        self.assertEqual(foreign, {"someone-else": 1})

    def test_entries_that_share_a_line_are_all_read(self):
        # moto writes an entry and its newline separately: concurrent writers can glue two entries.
        a, b = entry("sqs", "AmazonSQS.SendMessage", {}), entry("sqs", "AmazonSQS.DeleteMessage", {})
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "rec"
            path.write_text(json.dumps(a) + json.dumps(b) + "\n\n" + json.dumps(a) + "\n")
            self.assertEqual(len(list(recording.read_recording(path))), 3)


class RecordedStack:
    """A private moto server with recording on and the stack deployed into it."""

    def __init__(self, work: Path):
        self.work = work
        self.recording = work / "recording.jsonl"
        self.manifest_path = work / "stack.json"
        self.moto = MotoServer(work, {"MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(self.recording)})
        self.endpoint = self.moto.endpoint
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rc = provision.main(["--endpoint", self.endpoint, "--out", str(self.manifest_path), "--env-out", str(work / "functions.env")])
        if rc != 0:
            self.close()
            raise RuntimeError("provision.py failed")
        self.manifest = json.loads(self.manifest_path.read_text())
        self.env = dict(line.split("=", 1) for line in (work / "functions.env").read_text().splitlines() if "=" in line)

    def client(self, service: str, app: str | None):
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(user_agent_appid=app, s3={"addressing_style": "path"}),
        )

    def close(self) -> None:
        self.moto.close()


class ChecksRecordedCallsAgainstTheTranslatedTemplate(unittest.TestCase):
    """One stack, one set of calls made under the functions' app names, several verdicts."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.stack = RecordedStack(Path(cls.tmp.name))
        env = cls.stack.env
        up = "user-processor"
        cls.stack.client("dynamodb", up).put_item(TableName=env["USERS_TABLE"], Item={"user_id": {"S": "u-1"}})
        # The user item holds its lock and its announcement (no idempotency record any more).
        cls.stack.client("dynamodb", up).update_item(
            TableName=env["USERS_TABLE"], Key={"user_id": {"S": "u-1"}},
            UpdateExpression="SET announced_at = :t", ExpressionAttributeValues={":t": {"S": "2026-12-08T00:00:00Z"}},
        )
        cls.stack.client("sqs", up).send_message_batch(
            QueueUrl=env["NOTIFICATION_QUEUE_URL"], Entries=[{"Id": "1", "MessageBody": "{}"}]
        )
        cls.stack.client("events", up).put_events(
            Entries=[{"Source": "user.service", "DetailType": "User Created", "Detail": "{}", "EventBusName": env["EVENT_BUS_NAME"]}]
        )
        cls.stack.client("s3", "profile-creator").put_object(Bucket=env["BUCKET_NAME"], Key="profiles/u-1.json", Body=b"{}")
        for fn in ("notification-processor", "welcome-email"):
            cls.stack.client("dynamodb", fn).get_item(TableName=env["IDEMPOTENCY_TABLE"], Key={"id": {"S": "k"}})
        # Not a function's call (no app name): a test or the local runner reading the table.
        cls.stack.client("dynamodb", None).scan(TableName=env["USERS_TABLE"])
        cls.translated = policies.translated_template(cls.stack.manifest)

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()
        cls.tmp.cleanup()

    def check(self, translated=None, recording=None):
        return check.run_check(recording or self.stack.recording, self.stack.manifest, translated or self.translated)[0]

    def test_the_template_permits_every_recorded_call(self):
        report = self.check()
        self.assertEqual(report.violations, {})
        self.assertEqual(report.unmapped, [])
        self.assertEqual(report.silent_functions, [])
        self.assertEqual(len(report.calls), 7)  # the Scan without an app name is not among them
        up = {p for c in report.calls if c.function == "user-processor" for p in c.pairs}
        self.assertIn(Pair("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/eventline-local-bus"), up)
        self.assertIn(Pair("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:eventline-local-notifications"), up)

    def test_a_removed_permission_is_reported_as_exactly_the_calls_that_needed_it(self):
        mutated = copy.deepcopy(self.translated)
        self.assertGreater(selftest.drop_permission(mutated, "UserProcessorRole", "sqs:SendMessage"), 0)
        report = self.check(mutated)
        self.assertEqual(
            set(report.violations),
            {
                verdict.Violation(
                    "user-processor", "sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:eventline-local-notifications", "NEUTRAL"
                )
            },
        )
        self.assertEqual(list(report.violations.values()), [["sqs.SendMessageBatch"]])

    def test_prove_failure_catches_the_missing_put_events(self):
        baseline = self.check()
        self.assertEqual(selftest.prove_failure(self.stack.recording, self.stack.manifest, self.translated, baseline), [])

    def test_a_call_outside_the_roles_resources_is_a_violation(self):
        # profile-creator may write profiles/*, not outbox/*: IAM resources are really compared.
        self.stack.client("s3", "profile-creator").put_object(Bucket=self.stack.env["BUCKET_NAME"], Key="outbox/x.json", Body=b"{}")
        try:
            report = self.check()
            self.assertEqual(
                [(v.function, v.action, v.resource) for v in report.violations],
                [("profile-creator", "s3:PutObject", f"arn:aws:s3:::{self.stack.env['BUCKET_NAME']}/outbox/x.json")],
            )
        finally:
            # Keep the shared recording as the other tests expect it: drop the last entry.
            lines = self.stack.recording.read_text().splitlines(keepends=True)
            self.stack.recording.write_text("".join(lines[:-1]))

    def test_a_recording_without_function_calls_fails(self):
        empty = Path(self.tmp.name) / "empty.jsonl"
        empty.write_text("")
        report = self.check(recording=empty)
        self.assertFalse(report.ok)
        self.assertEqual(report.silent_functions, sorted(f["name"] for f in self.stack.manifest["functions"]))

    def test_the_command_exits_non_zero_on_a_violation(self):
        mutated = copy.deepcopy(self.translated)
        selftest.drop_permission(mutated, "UserProcessorRole", "sqs:SendMessage")
        path = Path(self.tmp.name) / "mutated.json"
        path.write_text(json.dumps(mutated))
        with contextlib.redirect_stdout(io.StringIO()) as out:
            rc = cli.main(["--recording", str(self.stack.recording), "--manifest", str(self.stack.manifest_path), "--translated", str(path)])
        self.assertEqual(rc, 1)
        self.assertIn("VIOLATION: user-processor made 1 call(s) needing sqs:SendMessage", out.getvalue())


if __name__ == "__main__":
    unittest.main()
