"""Unit tests of bench/scale.py's pieces that need no process: what it hands the functions (SQS and
EventBridge events built from what the backend kept), rule matching, the cost of a run, the plot.

    .venv/bin/python -m unittest bench/test_scale.py
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cost  # noqa: E402
import harness as h  # noqa: E402
import scale  # noqa: E402

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:eventline-local-notifications"


class Deliveries(unittest.TestCase):
    def test_drained_messages_become_the_sqs_event_lambda_delivers(self):
        body = '{"notification_id":"n-1","user_id":"u-1","kind":"signup_confirmation"}'
        drained = [{
            "MessageId": "m-1", "MD5OfBody": hashlib.md5(body.encode()).hexdigest(), "Body": body,
            "Attributes": {"SentTimestamp": "1795771466123", "MessageGroupId": "u-1"},
            "MessageAttributes": {"correlation_id": {"DataType": "String", "StringValue": "c-1"}},
        }]
        event = json.loads(scale.sqs_event(drained, QUEUE_ARN))
        (record,) = event["Records"]
        self.assertEqual(record["messageId"], "m-1")
        self.assertEqual(record["body"], body)
        self.assertEqual(record["md5OfBody"], drained[0]["MD5OfBody"])
        self.assertEqual(record["eventSourceARN"], QUEUE_ARN)
        self.assertEqual(record["attributes"]["SentTimestamp"], "1795771466123")
        self.assertEqual(record["attributes"]["MessageGroupId"], "u-1")
        self.assertEqual(record["attributes"]["ApproximateReceiveCount"], "1")
        self.assertEqual(record["messageAttributes"]["correlation_id"]["stringValue"], "c-1")
        self.assertEqual(record["messageAttributes"]["correlation_id"]["dataType"], "String")

    def test_a_kept_entry_becomes_the_event_a_rule_target_gets(self):
        entry = {"EventId": "e-1", "EventBusName": "bus", "Source": "user.service",
                 "DetailType": "User Created", "Detail": '{"user_id":"u-1"}', "Resources": [], "Time": None}
        event = scale.eventbridge_event(entry, "123456789012")
        self.assertEqual(event["id"], "e-1")
        self.assertEqual(event["detail-type"], "User Created")
        self.assertEqual(event["detail"], {"user_id": "u-1"})
        self.assertEqual(event["account"], "123456789012")
        self.assertRegex(event["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        pattern = {"source": ["user.service"], "detail-type": ["User Created"]}
        self.assertTrue(scale.matches(pattern, event))
        self.assertFalse(scale.matches({"source": ["other"]}, event))
        with self.assertRaises(ValueError):
            scale.matches({"detail": {"user_id": [{"prefix": "u"}]}}, event)

    def test_batches_are_cut_at_the_batch_size(self):
        self.assertEqual(scale.chunked(list(range(7)), 3), [[0, 1, 2], [3, 4, 5], [6]])


class Figures(unittest.TestCase):
    def test_histograms_give_median_and_mean(self):
        hist = {"5": 3, "6": 1}
        self.assertEqual(scale.median_of_histogram(hist), 5)
        self.assertEqual(scale.mode_of_histogram({"6": 3, "5": 3, "9": 1}), 5)
        self.assertIsNone(scale.mode_of_histogram({}))
        self.assertEqual(scale.mean_of_histogram(hist), 5.25)
        self.assertIsNone(scale.median_of_histogram({}))

    def test_a_run_is_priced_by_the_units_the_backend_counted(self):
        # 10 signups as counted: 50 WRU (10 puts, a 20-item transaction at 2 each), 10 events, one SQS
        # request, 2 S3 PUTs, 1 strongly consistent read; two invocations of 10.2 and 20 ms.
        stats = {
            "calls": {"DynamoDB.PutItem": 10, "DynamoDB.TransactWriteItems": 1, "EventBridge.PutEvents": 1,
                      "SQS.SendMessageBatch": 1, "S3.PutObject": 2, "DynamoDB.GetItem": 1},
            "units": {"wru": 50, "rru": 1, "sqs_requests": 1, "events": 10, "s3_put": 2, "s3_get": 0,
                      "ses_emails": 0},
        }
        stage = scale.Stage(invocations=2, wall_ms=[10.2, 20.0])
        got = scale.pipeline_cost(stats, {"user-processor": stage}, sqs_batches=1, signups=10)
        units = got["units_per_signup"]
        self.assertAlmostEqual(units["wru"], 5.0)
        self.assertAlmostEqual(units["rru"], 0.1)
        self.assertAlmostEqual(units["events"], 1.0)
        self.assertAlmostEqual(units["sqs"], (1 + cost.ESM_SQS_REQUESTS_PER_BATCH) / 10)
        self.assertAlmostEqual(units["s3_put"], 0.2)
        self.assertAlmostEqual(units["lambda_requests"], 0.2)
        self.assertAlmostEqual(units["gb_seconds"], (11 + 20) / 1000 * 128 / 1024 / 10)
        p = {k: v.usd for k, v in cost.PRICES.items()}
        self.assertAlmostEqual(got["usd_per_million"]["dynamodb"], (5 * p["dynamodb_wru"] + 0.1 * p["dynamodb_rru"]) * 1e6)
        self.assertAlmostEqual(got["total"], sum(got["usd_per_million"].values()))
        self.assertAlmostEqual(got["total_by_region"]["us-east-1"], got["total"])
        eu = cost.PRICES_BY_REGION["eu-west-1"]
        self.assertAlmostEqual(got["total_by_region"]["eu-west-1"] - got["total"],
                               5 * (eu["dynamodb_wru"].usd - p["dynamodb_wru"]) * 1e6
                               + 0.1 * (eu["dynamodb_rru"].usd - p["dynamodb_rru"]) * 1e6)
        # the outbox was used: MailTransport=ses would add two emails per signup
        self.assertAlmostEqual(got["ses"], 2 * p["ses_email"] * 1e6)

    def test_a_backend_without_units_prices_batch_calls_by_their_items(self):
        stats = {
            "calls": {"DynamoDB.PutItem": 10, "DynamoDB.TransactWriteItems": 1, "EventBridge.PutEvents": 1},
            "entries": {"DynamoDB.TransactWriteItems": 20, "EventBridge.PutEvents": 10},
        }
        stage = scale.Stage(invocations=1, wall_ms=[10.0])
        got = scale.pipeline_cost(stats, {"user-processor": stage}, sqs_batches=1, signups=10)
        self.assertAlmostEqual(got["units_per_signup"]["wru"], (10 + 20 * 2) / 10)  # a transactional write costs 2
        self.assertAlmostEqual(got["units_per_signup"]["events"], 1.0)

    def test_the_report_prints_write_units_and_each_region(self):
        stats = {"calls": {"DynamoDB.PutItem": 20}, "units": {"wru": 20, "sqs_requests": 2}}
        stages = {name: scale.Stage(invocations=2, wall_ms=[10.0, 12.0]) for name in scale.FUNCTIONS}
        run = {
            "settings": {"signups": 10, "latency_ms": 10.0, "batch_size": 10, "concurrency": 5,
                         "event_concurrency": 10},
            "wall_s": 1.0, "signups_per_s": 10.0, "calls": 20, "calls_per_signup": 2.0,
            "per_invocation": {name: {"round_trips_mode": 2, "round_trips_mean": 2.0, "wru_mean": 2.5}
                               for name in scale.FUNCTIONS},
            "peak_rss_kib": dict.fromkeys(scale.FUNCTIONS, 10240),
            "stages": {name: {"invocations": 2, "span_s": 0.5, "invocation_ms": h.summary([10.0, 12.0])}
                       for name in scale.FUNCTIONS},
            "calls_by_function": dict.fromkeys(scale.FUNCTIONS, 5),
            "cpu_s": {**dict.fromkeys(scale.FUNCTIONS, 0.01), "backend": 0.01, "bench": 0.01},
            "cost": scale.pipeline_cost(stats, stages, sqs_batches=2, signups=10),
        }
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            scale.report_sizes([run])
        text = out.getvalue()
        self.assertIn("| WRU per signup |", text)
        self.assertIn("| 2 | 2.5 / 2.5 / 2.5 / 2.5 |", text)  # 20 WRU over 10 signups; per invocation
        for region in cost.REGIONS:
            self.assertIn(region, text)
        self.assertIn("+ SES delivery", text)

    def test_the_plot_is_well_formed_svg_with_a_point_per_run(self):
        services = ["lambda_requests", "lambda_duration", "dynamodb", "sqs", "eventbridge", "s3"]
        runs = [{"settings": {"signups": n}, "wall_s": n / 100, "signups_per_s": 100.0,
                 "cost": {"total": 27.3, "usd_per_million": dict.fromkeys(services, 27.3 / 6)}}
                for n in (100, 1000, 10000)]
        root = ET.fromstring(scale.svg_plot(runs, "title"))
        circles = root.findall("{http://www.w3.org/2000/svg}circle")
        # three runs: one point each for the wall time and for each line of the cost panel
        self.assertEqual(len(circles), 3 * (1 + len(scale.COST_LINES)))


class Harness(unittest.TestCase):
    def test_signup_bodies_are_valid_and_distinct(self):
        bodies = [json.loads(b) for b in h.signup_bodies(50, tag="t")]
        self.assertEqual(len({b["user_id"] for b in bodies}), 50)
        self.assertTrue(all(b["email"] == f"{b['user_id']}@example.com" for b in bodies))


if __name__ == "__main__":
    unittest.main()
