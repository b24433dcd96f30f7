"""The Powertools peer (bench/baseline/powertools/) has the Rust user-processor's effects on the sample
signups of events/signups.json, against a private moto server, run as coldstart.py runs it.

    .venv/bin/python -m unittest discover -s bench -p 'test_*.py'

Two batches with no user id twice in one batch (within a batch the order of a duplicate's outcome
depends on concurrency in the Rust function): the 8 valid signups and the 2 invalid ones, then the
duplicate of u-2001 and the impostor for u-2002. Skipped when moto_server is not installed; creates
bench/.out/venv-baseline on first use (PyPI).
"""

from __future__ import annotations

import json
import unittest

import harness as h

SIGNUPS = json.loads((h.ROOT / "events" / "signups.json").read_text())


@unittest.skipUnless((h.VENV_BIN / "moto_server").exists(), "moto_server is not installed (make setup)")
class PowertoolsPeer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import boto3

        cls.moto = h.Moto("test-powertools-peer")
        cls.addClassCleanup(cls.moto.close)
        manifest, env_file = h.provision(cls.moto.url, "test-powertools-peer")
        fn = h.function_entry(manifest, "user-processor")
        root = h.BENCH / "baseline" / "powertools"
        env = h.lambda_env(manifest, env_file, "user-processor",
                           extra={"_HANDLER": "handler.handler", "LAMBDA_TASK_ROOT": str(root)})
        batches = [SIGNUPS[:8] + SIGNUPS[10:], SIGNUPS[8:10]]
        events = []
        for bodies in batches:
            event = h.signup_batch(fn["sqs_sources"][0]["queue_arn"], len(bodies))
            for record, body in zip(event["Records"], bodies):
                record["body"] = json.dumps(body, ensure_ascii=False)
            events.append(json.dumps(event).encode())
        cls.result = h.run_process(h.FakeRuntimeApi(), "test-powertools-peer",
                                   [str(h.baseline_python()), str(h.BENCH / "baseline" / "bootstrap.py")], env,
                                   events, cwd=root, function_arn=fn["function_arn"], deadline_s=30)
        kw = {"endpoint_url": cls.moto.url, "region_name": h.REGION, "aws_access_key_id": "test",
              "aws_secret_access_key": "test"}
        cls.ddb, cls.sqs = boto3.client("dynamodb", **kw), boto3.client("sqs", **kw)
        cls.env = fn["environment"]

    def messages(self, queue_url: str) -> list[dict]:
        out = []
        while batch := self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                                MessageAttributeNames=["All"]).get("Messages", []):
            out += batch
            self.sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
        return out

    def test_every_record_succeeds_or_is_dead_lettered(self):
        self.assertIsNone(self.result.error)
        self.assertEqual([json.loads(i["body"]) for i in self.result.invocations],
                         [{"batchItemFailures": []}] * 2)

    def test_each_valid_signup_is_stored_once_and_announced(self):
        items = self.ddb.scan(TableName=self.env["USERS_TABLE"])["Items"]
        users = {i["user_id"]["S"]: (i["email"]["S"], i["name"]["S"]) for i in items}
        self.assertEqual(users, {s["user_id"]: (s["email"], s["name"]) for s in SIGNUPS[:8]})
        self.assertTrue(all("announced_at" in i and "created_at" in i for i in items))
        statuses = [i["status"]["S"] for i in self.ddb.scan(TableName=self.env["IDEMPOTENCY_TABLE"])["Items"]]
        self.assertEqual(statuses, ["COMPLETED"] * 8)

    def test_one_notification_per_user(self):
        bodies = sorted(m["Body"] for m in self.messages(self.env["NOTIFICATION_QUEUE_URL"]))
        expected = sorted(json.dumps({"notification_id": f"signup_confirmation.{s['user_id']}", "user_id": s["user_id"],
                                      "kind": "signup_confirmation"}, separators=(",", ":")) for s in SIGNUPS[:8])
        self.assertEqual(bodies, expected)

    def test_invalid_and_conflicting_signups_go_to_the_dlq_with_their_reason(self):
        letters = {json.loads(m["Body"])["user_id"]: {k: v["StringValue"] for k, v in m["MessageAttributes"].items()}
                   for m in self.messages(self.env["SIGNUP_DLQ_URL"])}
        self.assertEqual(set(letters), {"u-2009", "u 2010", "u-2002"})
        self.assertEqual((letters["u-2009"]["eventline.error_code"], letters["u-2009"]["eventline.error_fields"]),
                         ("InvalidFields", "email"))
        self.assertEqual((letters["u 2010"]["eventline.error_code"], letters["u 2010"]["eventline.error_fields"]),
                         ("InvalidFields", "user_id"))
        self.assertEqual(letters["u-2002"]["eventline.error_code"], "PayloadConflict")
        self.assertTrue(all(a["eventline.function"] == "user-processor" for a in letters.values()))

    def test_one_user_created_event_per_user_reaches_each_rule(self):
        for queue in ("welcome-email-tap", "profile-creator-tap"):
            url = next(u for u in self.sqs.list_queues()["QueueUrls"] if u.endswith(queue))
            events = [json.loads(m["Body"]) for m in self.messages(url)]
            self.assertEqual(sorted(e["detail"]["user_id"] for e in events), sorted(s["user_id"] for s in SIGNUPS[:8]))
            self.assertTrue(all(e["source"] == "user.service" and e["detail-type"] == "User Created" for e in events))


if __name__ == "__main__":
    unittest.main()
