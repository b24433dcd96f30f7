"""scripts/redrive.py against moto: dead letters of every kind the template's queues hold are put back
where they belong, keep their identity, and leave their queue empty.

    .venv/bin/python -m unittest discover -s scripts -p 'test_redrive.py' -v

The stack is provisioned into us-west-2 (primary) and us-east-1 of a private moto server. The dead
letters are written as AWS writes them (moto's EventBridge delivers at once or not at all, so it never
dead-letters by itself): a forwarding rule's DLQ message (the event, `TARGET_ARN` the peer bus), a
consumer rule's DLQ message, Lambda's OnFailure record (`requestPayload`), the function's own dead
letter (the event, `eventline.*` attributes), and a message that holds no event.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redrive  # noqa: E402
from stack.deploy import Aws  # noqa: E402
from stack.testing import MotoServer  # noqa: E402
from test_provision import provision_into  # noqa: E402

PRIMARY, PEER = "us-west-2", "us-east-1"


def user_created(user: str, origin: str, home: str) -> dict:
    """A `User Created` event as EventBridge hands it to a target."""
    return {
        "version": "0", "id": f"evt-{user}", "detail-type": "User Created", "source": "user.service",
        "account": "123456789012", "time": "2026-12-07T10:00:00Z", "region": origin, "resources": [],
        "detail": {"user_id": user, "email": f"{user}@example.com", "name": f"Name {user}",
                   "created_at": "2026-12-07T10:00:00Z", "event_key": f"user-created.{user}",
                   "correlation_id": f"corr-{user}", "origin_region": origin, "home_region": home},
    }


def attributes(**values: str) -> dict:
    return {k: {"DataType": "String", "StringValue": v} for k, v in values.items()}


class Redrive(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        work = Path(cls.tmp.name)
        cls.moto = MotoServer(work)
        cls.manifests = provision_into(work, cls.moto.endpoint, regions=f"{PRIMARY},{PEER}")
        cls.paths = [str(work / r / "stack.json") for r in (PRIMARY, PEER)]

    @classmethod
    def tearDownClass(cls):
        cls.moto.close()
        cls.tmp.cleanup()

    def sqs(self, region: str):
        return Aws(self.moto.endpoint, region)("sqs")

    def function(self, region: str, name: str) -> dict:
        return next(f for f in self.manifests[region]["functions"] if f["name"] == name)

    def drain(self, region: str, url: str) -> list[dict]:
        """Every message in `url`, deleted."""
        sqs, out = self.sqs(region), []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get("Messages", [])
            if not got:
                return out
            for m in got:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            out += got

    def count(self, region: str, url: str) -> int:
        a = self.sqs(region).get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                                "ApproximateNumberOfMessagesNotVisible"])
        return sum(int(v) for v in a["Attributes"].values())

    def run_redrive(self, *args: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = redrive.main([a for p in self.paths for a in ("--manifest", p)] + list(args))
        return status, out.getvalue()

    def test_every_kind_of_dead_letter_goes_back_where_it_belongs_keeping_its_identity(self):
        sqs = self.sqs(PRIMARY)
        welcome, profile = self.function(PRIMARY, "welcome-email"), self.function(PRIMARY, "profile-creator")
        peer_profile = self.function(PEER, "profile-creator")
        forwarding_dlq = self.manifests[PRIMARY]["resources"]["ForwardingDLQ"]
        welcome_rule_dlq = welcome["event_sources"][0]["dead_letter_queue_url"]
        welcome_failures = welcome["async_invoke"]["on_failure_queue_url"]
        profile_failures = profile["async_invoke"]["on_failure_queue_url"]
        self.assertTrue(forwarding_dlq and welcome_rule_dlq and welcome_failures and profile_failures)
        taps = {(PRIMARY, "welcome-email"): welcome["event_sources"][0]["tap_queue_url"],
                (PRIMARY, "profile-creator"): profile["event_sources"][0]["tap_queue_url"],
                (PEER, "profile-creator"): peer_profile["event_sources"][0]["tap_queue_url"],
                (PEER, "welcome-email"): self.function(PEER, "welcome-email")["event_sources"][0]["tap_queue_url"]}
        for (region, _), url in taps.items():
            self.drain(region, url)

        peer_bus = f"arn:aws:events:{PEER}:123456789012:event-bus/eventline-local-bus"
        rule = f"arn:aws:events:{PRIMARY}:123456789012:rule/eventline-local-bus/eventline-local-forward-to-{PEER}"
        # A signup forwarded before the peer's bus existed: straight to the ForwardingDLQ.
        forwarded = user_created("u-fwd", PRIMARY, PEER)
        sqs.send_message(QueueUrl=forwarding_dlq, MessageBody=json.dumps(forwarded), MessageAttributes=attributes(
            RULE_ARN=rule, TARGET_ARN=peer_bus, ERROR_CODE="ResourceNotFoundException", RETRY_ATTEMPTS="0"))
        # A rule that could not invoke welcome-email.
        undelivered = user_created("u-rule", PRIMARY, PRIMARY)
        sqs.send_message(QueueUrl=welcome_rule_dlq, MessageBody=json.dumps(undelivered), MessageAttributes=attributes(
            RULE_ARN="arn:aws:events:...:rule/eventline-local-bus/eventline-local-welcome-email",
            TARGET_ARN="arn:aws:lambda:us-west-2:123456789012:function:welcome", ERROR_CODE="ThrottlingException"))
        # Lambda's OnFailure record after the async retries of profile-creator.
        failed = user_created("u-onfailure", PRIMARY, PRIMARY)
        sqs.send_message(QueueUrl=profile_failures, MessageBody=json.dumps({
            "version": "1.0", "timestamp": "2026-12-07T10:01:00.000Z",
            "requestContext": {"requestId": "r-1", "functionArn": "arn:aws:lambda:us-west-2:123456789012:function:p:$LATEST",
                               "condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": failed,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorType": "Timeout", "errorMessage": "..."}}))
        # welcome-email's own dead letter: the event as it was invoked, with its reason.
        rejected = user_created("u-rejected", PRIMARY, PRIMARY)
        sqs.send_message(QueueUrl=welcome_failures, MessageBody=json.dumps(rejected), MessageAttributes=attributes(
            **{"eventline.error_code": "invalid_event", "eventline.function": "welcome-email",
               "eventline.source_message_id": rejected["id"]}))
        # Not an event: stays where it is.
        sqs.send_message(QueueUrl=welcome_failures, MessageBody="not json at all")

        status, out = self.run_redrive()
        self.assertEqual(status, 0, out)
        self.assertIn("redrive: moved 4 event(s)", out)
        self.assertIn("1 message(s) without an event left in place", out)
        self.assertNotIn("@example.com", out)
        self.assertNotIn("Name u-", out)

        # The forwarded event is on the peer's bus (its profile-creator rule delivered it), detail
        # unchanged, and did not come back to the origin: its origin_region is foreign in the peer.
        got = [json.loads(m["Body"]) for m in self.drain(PEER, taps[(PEER, "profile-creator")])]
        self.assertEqual([e["detail"] for e in got], [forwarded["detail"]])
        self.assertEqual(got[0]["time"], forwarded["time"])
        home = [json.loads(m["Body"])["detail"] for m in self.drain(PEER, taps[(PEER, "welcome-email")])]
        self.assertEqual(home, [forwarded["detail"]])
        # The consumers' dead letters are back in their function's path, each the event as it was.
        self.assertCountEqual([json.loads(m["Body"]) for m in self.drain(PRIMARY, taps[(PRIMARY, "welcome-email")])],
                              [undelivered, rejected])
        self.assertEqual([json.loads(m["Body"]) for m in self.drain(PRIMARY, taps[(PRIMARY, "profile-creator")])],
                         [failed])
        # Emptied, except for the message that held no event.
        for url in (forwarding_dlq, welcome_rule_dlq, profile_failures):
            self.assertEqual(self.count(PRIMARY, url), 0, url)
        left = self.drain(PRIMARY, welcome_failures)
        self.assertEqual([m["Body"] for m in left], ["not json at all"])

    def test_a_dry_run_moves_nothing(self):
        sqs = self.sqs(PEER)
        dlq = self.function(PEER, "profile-creator")["event_sources"][0]["dead_letter_queue_url"]
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(user_created("u-dry", PEER, PEER)))
        status, out = self.run_redrive("--dry-run")
        self.assertEqual(status, 0, out)
        self.assertIn("would move Created", out.replace("User Created", "Created"))
        self.assertEqual(self.count(PEER, dlq), 1)
        self.drain(PEER, dlq)


if __name__ == "__main__":
    unittest.main()
