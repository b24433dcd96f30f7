"""The arithmetic of bench/cost.py, on hand-computed cases.

    .venv/bin/python -m unittest discover -s bench -p 'test_*.py'
"""

import unittest

import cost

# A Powertools-style batch of 10, as the fixed-latency backend counts it: per record a lock PutItem, a
# user PutItem, SendMessage, PutEvents, the announced UpdateItem and the completion UpdateItem, all
# items under 1 KB; 99.1 ms warm (100 ms billed).
POWERTOOLS = cost.Measured(records=10, warm_ms=99.1, init_ms=800.0, cold_ms=1500.0, calls={
    "DynamoDB.PutItem": 20, "DynamoDB.UpdateItem": 20, "SQS.SendMessage": 10, "EventBridge.PutEvents": 10},
    units={"wru": 40, "sqs_requests": 10, "events": 10})
# eventline's issue-11 write path as counted: two transactions of 20 items each (lock + user, then
# completion + announced_at per record; 2 WRU per item), SendMessageBatch beside PutEvents.
RUST = cost.Measured(records=10, warm_ms=40.0, init_ms=5.0, cold_ms=60.0, calls={
    "DynamoDB.TransactWriteItems": 2, "SQS.SendMessageBatch": 1, "EventBridge.PutEvents": 1},
    units={"wru": 80, "sqs_requests": 1, "events": 10})
# The seed-style handler: PutItem and SendMessage per record, no event; only call counts (a moto run).
SEED = cost.Measured(records=10, warm_ms=50.0, init_ms=300.0, cold_ms=100.0, calls={
    "DynamoDB.PutItem": 10, "SQS.SendMessage": 10})

GB_S_PRICE = 0.0000133334  # arm64, every region here


def warm_only(**kw) -> cost.Settings:
    return cost.Settings(cold_share=0.0, **kw)


class Chunks(unittest.TestCase):
    def test_a_payload_is_billed_in_64_kib_chunks_and_at_least_one(self):
        self.assertEqual(cost.chunks(0, cost.SQS_CHUNK), 1)
        self.assertEqual(cost.chunks(64 * 1024, cost.SQS_CHUNK), 1)
        self.assertEqual(cost.chunks(64 * 1024 + 1, cost.SQS_CHUNK), 2)
        self.assertEqual(cost.chunks(256 * 1024, cost.EVENT_CHUNK), 4)

    def test_lambda_rounds_each_phase_up_to_the_millisecond(self):
        self.assertEqual(cost.billed_ms(99.1), 100)
        self.assertEqual(cost.billed_ms(100.0), 100)


class LambdaDuration(unittest.TestCase):
    def test_warm_batches_bill_the_invocation_at_128_mb(self):
        gb_s = cost.lambda_gb_seconds(POWERTOOLS, warm_only())
        self.assertAlmostEqual(gb_s, 0.100 * 0.125)

    def test_cold_batches_add_init_and_the_cold_invocation(self):
        m = cost.Measured(records=10, warm_ms=100.2, init_ms=10.3, cold_ms=200.0, calls={})
        gb_s = cost.lambda_gb_seconds(m, cost.Settings(cold_share=0.5))
        # 0.5 x 101 ms + 0.5 x (11 + 200) ms = 156 ms
        self.assertAlmostEqual(gb_s, 0.156 * 0.125)


class CountedUnits(unittest.TestCase):
    def test_a_run_is_priced_by_the_units_the_backend_counted_not_its_calls(self):
        u = cost.batch_units(RUST, warm_only())
        self.assertEqual(u.lambda_requests, 1)
        self.assertEqual(u.wru, 80)  # as counted: 2 WRU per transactional item
        self.assertEqual(u.events, 10)
        self.assertEqual(u.sqs, 1 + cost.ESM_SQS_REQUESTS_PER_BATCH)
        # --entries does not override what was counted
        s = warm_only(entries={"DynamoDB.TransactWriteItems": 1})
        self.assertEqual(cost.batch_units(RUST, s).wru, 80)

    def test_read_units_halves_and_emails_are_kept(self):
        u = cost.counted_units({"wru": 3, "rru": 1.5, "s3_put": 2, "s3_get": 1, "ses_emails": 2})
        self.assertEqual((u.wru, u.rru, u.s3_put, u.s3_get, u.ses_emails), (3, 1.5, 2, 1, 2))

    def test_a_unit_without_a_rule_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "kinesis_records"):
            cost.counted_units({"kinesis_records": 1})


class CallUnits(unittest.TestCase):
    def test_single_item_calls_are_one_unit_each(self):
        u = cost.batch_units(SEED, warm_only())
        self.assertEqual(u.wru, 10)
        self.assertEqual(u.sqs, 10 + cost.ESM_SQS_REQUESTS_PER_BATCH)

    def test_a_multi_item_call_without_counted_units_needs_its_entries(self):
        calls_only = cost.Measured(records=10, warm_ms=40.0, init_ms=5.0, cold_ms=60.0,
                                   calls={"DynamoDB.TransactWriteItems": 1, "DynamoDB.BatchWriteItem": 1})
        with self.assertRaisesRegex(ValueError, "--entries DynamoDB"):
            cost.batch_units(calls_only, warm_only())
        # the sketch: 2 items per record in one transaction (2 WRU each), the completions in a
        # BatchWriteItem (1 WRU per item)
        s = warm_only(entries={"DynamoDB.TransactWriteItems": 2, "DynamoDB.BatchWriteItem": 1})
        self.assertEqual(cost.batch_units(calls_only, s).wru, 2 * 10 * 2 + 10)

    def test_a_send_batch_over_64_kib_is_several_requests(self):
        calls_only = cost.Measured(records=10, warm_ms=1, init_ms=1, cold_ms=1, calls={"SQS.SendMessageBatch": 1})
        # 700 x 100-byte bodies in the one call: 70,000 bytes
        u = cost.batch_units(calls_only, warm_only(entries={"SQS.SendMessageBatch": 70}))
        self.assertEqual(u.sqs, 2 + cost.ESM_SQS_REQUESTS_PER_BATCH)

    def test_an_operation_without_a_price_rule_is_an_error(self):
        m = cost.Measured(records=10, warm_ms=1, init_ms=1, cold_ms=1, calls={"Kinesis.PutRecord": 1})
        with self.assertRaisesRegex(ValueError, "Kinesis.PutRecord"):
            cost.batch_units(m, warm_only())


class PerMillion(unittest.TestCase):
    def test_one_region_dollars_by_service(self):
        r = cost.per_million("powertools", POWERTOOLS, warm_only())
        c = r["usd_one_region"]
        self.assertAlmostEqual(c["lambda_requests"], 0.02)  # 0.1 request per signup x $0.20/M
        self.assertAlmostEqual(c["lambda_duration"], 0.00125 * GB_S_PRICE * 1e6)  # GB-s per signup x $/GB-s x 1e6
        self.assertAlmostEqual(c["dynamodb"], 4 * 0.625)
        self.assertAlmostEqual(c["sqs"], 1.2 * 0.40)
        self.assertAlmostEqual(c["eventbridge"], 1.00)
        self.assertAlmostEqual(c["s3"], 0.0)
        self.assertAlmostEqual(c["ses"], 0.0)
        self.assertAlmostEqual(r["total_one_region"], 0.02 + 0.01666675 + 2.5 + 0.48 + 1.0)

    def test_each_region_is_priced_at_its_own_prices(self):
        r = cost.per_million("rust", RUST, warm_only())
        by = r["total_by_region"]
        self.assertAlmostEqual(by["us-east-1"], r["total_one_region"])
        self.assertAlmostEqual(by["us-west-2"], by["us-east-1"])
        # 8 WRU per signup: only DynamoDB differs in eu-west-1
        self.assertAlmostEqual(by["eu-west-1"] - by["us-east-1"], 8 * (0.70675 - 0.625))
        eu = cost.per_million("rust", RUST, warm_only(home_region="eu-west-1", peers=("us-east-1", "us-west-2")))
        self.assertAlmostEqual(eu["usd_one_region"]["dynamodb"], 8 * 0.70675)

    def test_ses_delivery_is_a_line_of_two_emails_per_signup(self):
        outbox = cost.per_million("rust", RUST, warm_only())
        ses = cost.per_million("rust", RUST, warm_only(mail_transport="ses"))
        self.assertAlmostEqual(outbox["ses_delivery_by_region"]["us-east-1"], 2 * 0.10 / 1000 * 1e6)
        self.assertAlmostEqual(ses["total_one_region"] - outbox["total_one_region"], 200.0)
        self.assertAlmostEqual(ses["total_by_region"]["eu-west-1"] - outbox["total_by_region"]["eu-west-1"], 200.0)
        # the peer regions' consumers send no mail
        self.assertAlmostEqual(ses["total_extra_regions"], outbox["total_extra_regions"])

    def test_two_more_regions_add_replicas_forwarded_events_and_their_consumers_at_their_prices(self):
        r = cost.per_million("powertools", POWERTOOLS, warm_only())
        # 2 users-table writes replicated to us-west-2 and eu-west-1; 1 event to each peer bus and the
        # transfer, billed in us-east-1; (2 x 150 + 250) bytes x 2 across regions
        transfer = 1100e-9 * 0.02 * 1e6
        replicas = 2 * 0.625 + 2 * 0.70675
        self.assertAlmostEqual(r["total_replication_and_forwarding"], replicas + 2.00 + transfer)
        # profile-creator in each peer: 1 invocation of 50 ms, 4 WRU at that region's price, 1 S3 PUT
        consumer = 0.20 + 0.050 * 0.125 * GB_S_PRICE * 1e6 + 5.0
        self.assertAlmostEqual(r["total_peer_consumers"], 2 * consumer + 4 * 0.625 + 4 * 0.70675)
        self.assertAlmostEqual(r["total_three_regions"], r["total_one_region"] + r["total_extra_regions"])
        x = r["extra_units_per_signup"]
        self.assertEqual((x["rwru"], x["events"], x["lambda_requests"], x["wru"]), (4, 2, 2, 8))

    def test_a_handler_without_events_has_nothing_to_forward(self):
        x = cost.per_million("python", SEED, warm_only())["extra_units_per_signup"]
        self.assertEqual(x["rwru"], 2)
        self.assertEqual(x["events"], 0)
        self.assertEqual(x["lambda_requests"], 0)

    def test_unknown_replicated_writes_must_be_given(self):
        with self.assertRaisesRegex(ValueError, "--replicated-writes"):
            cost.per_million("rust-opt-s", RUST, warm_only())


class FromColdstart(unittest.TestCase):
    def test_reads_the_warm_median_and_counted_units_and_skips_runs_without_call_counts(self):
        def s(median: float) -> dict:  # a summary as coldstart.py writes it
            return {"median": median}

        data = {"records": 10, "results": {
            "rust": {"init_ms": s(5.0), "invocation_ms": s(70.0), "warm_invocation_ms": s(40.0),
                     "aws_calls_by_operation": {"DynamoDB.PutItem": 20}, "aws_units_by_unit": {"wru": 20}},
            "moto": {"init_ms": s(5.0), "invocation_ms": s(70.0), "warm_invocation_ms": s(40.0),
                     "aws_calls_by_operation": {"DynamoDB.PutItem": 20}},
            "python": {"init_ms": s(300.0), "invocation_ms": s(100.0), "warm_invocation_ms": s(90.0),
                       "aws_calls_by_operation": None},
        }}
        found = cost.from_coldstart(data)
        self.assertEqual(list(found), ["rust", "moto"])
        self.assertEqual(found["rust"], cost.Measured(records=10, warm_ms=40.0, init_ms=5.0, cold_ms=70.0,
                                                      calls={"DynamoDB.PutItem": 20}, units={"wru": 20}))
        self.assertIsNone(found["moto"].units)


class BuiltInFigures(unittest.TestCase):
    def test_every_built_in_measurement_is_priced(self):
        for label, fields in cost.MEASURED["implementations"].items():
            r = cost.per_million(label, cost.Measured(**fields), cost.Settings())
            self.assertGreater(r["total_one_region"], 0, label)
            self.assertGreater(r["total_three_regions"], r["total_one_region"], label)

    def test_the_report_prints_every_region_and_the_ses_line(self):
        measured = {k: cost.Measured(**v) for k, v in cost.MEASURED["implementations"].items()}
        s = cost.Settings()
        text = cost.report("test", {k: cost.per_million(k, m, s) for k, m in measured.items()}, s, measured)
        for needle in ("us-east-1", "us-west-2", "eu-west-1", "SES delivery", "x powertools"):
            self.assertIn(needle, text)


if __name__ == "__main__":
    unittest.main()
