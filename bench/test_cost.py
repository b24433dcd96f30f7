"""The arithmetic of bench/cost.py, on hand-computed cases.

    .venv/bin/python -m unittest discover -s bench -p 'test_*.py'
"""

import unittest

import cost

# A Powertools-style batch of 10: per record a lock PutItem, a user PutItem, SendMessage, PutEvents,
# the announced UpdateItem and the completion UpdateItem; 99.1 ms warm (100 ms billed).
POWERTOOLS = cost.Measured(records=10, warm_ms=99.1, init_ms=800.0, cold_ms=1500.0, calls={
    "DynamoDB.PutItem": 20, "DynamoDB.UpdateItem": 20, "SQS.SendMessage": 10, "EventBridge.PutEvents": 10})
# eventline's issue-11 write path: one transaction (lock + user per record), SendMessageBatch beside
# PutEvents, one transaction of completions and announced_at marks.
RUST = cost.Measured(records=10, warm_ms=40.0, init_ms=5.0, cold_ms=60.0, calls={
    "DynamoDB.TransactWriteItems": 2, "SQS.SendMessageBatch": 1, "EventBridge.PutEvents": 1})
# The seed-style handler: PutItem and SendMessage per record, no event.
SEED = cost.Measured(records=10, warm_ms=50.0, init_ms=300.0, cold_ms=100.0, calls={
    "DynamoDB.PutItem": 10, "SQS.SendMessage": 10})


def warm_only() -> cost.Settings:
    return cost.Settings(cold_share=0.0)


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


class BatchUnits(unittest.TestCase):
    def test_per_record_calls_are_one_unit_each(self):
        u = cost.batch_units(POWERTOOLS, warm_only())
        self.assertEqual(u.lambda_requests, 1)
        self.assertEqual(u.wru, 40)
        self.assertEqual(u.sqs, 10 + cost.ESM_SQS_REQUESTS_PER_BATCH)
        self.assertEqual(u.events, 10)

    def test_a_transactional_write_costs_two_wrus_per_item(self):
        u = cost.batch_units(RUST, warm_only())
        # two transactions: 4 items per record (lock, user; completion, announced_at) x 10 records x 2 WRU
        self.assertEqual(u.wru, 4 * 10 * 2)
        # the sketch, with --entries: 2 items per record in one transaction, the completions
        # in a BatchWriteItem (1 WRU per item)
        s = warm_only()
        s.entries["DynamoDB.TransactWriteItems"] = 2
        sketch = cost.Measured(records=10, warm_ms=40.0, init_ms=5.0, cold_ms=60.0, calls={
            "DynamoDB.TransactWriteItems": 1, "DynamoDB.BatchWriteItem": 1})
        self.assertEqual(cost.batch_units(sketch, s).wru, 2 * 10 * 2 + 10)
        self.assertEqual(u.events, 10)  # 10 entries in one PutEvents are 10 events
        self.assertEqual(u.sqs, 1 + cost.ESM_SQS_REQUESTS_PER_BATCH)  # 10 small messages, one chunk

    def test_a_send_batch_over_64_kib_is_several_requests(self):
        s = warm_only()
        s.entries["SQS.SendMessageBatch"] = 70  # 700 x 100-byte bodies in the one call: 70,000 bytes
        u = cost.batch_units(RUST, s)
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
        self.assertAlmostEqual(c["lambda_duration"], 0.00125 * 13.3334)  # GB-s per signup x $/GB-s x 1e6
        self.assertAlmostEqual(c["dynamodb"], 4 * 0.625)
        self.assertAlmostEqual(c["sqs"], 1.2 * 0.40)
        self.assertAlmostEqual(c["eventbridge"], 1.00)
        self.assertAlmostEqual(c["s3"], 0.0)
        self.assertAlmostEqual(r["total_one_region"], 0.02 + 0.01666675 + 2.5 + 0.48 + 1.0)

    def test_two_more_regions_add_replicas_forwarded_events_and_their_consumers(self):
        r = cost.per_million("powertools", POWERTOOLS, warm_only())
        x = r["usd_extra_regions"]
        # 2 users-table writes x 2 replicas = 4 rWRU; 1 event x 2 peer buses; profile-creator there:
        # 2 invocations of 50 ms, 4 WRU and 1 S3 PUT each; (2 x 150 + 250) bytes x 2 across regions
        self.assertAlmostEqual(x["dynamodb"], 4 * 0.625 + 8 * 0.625)
        self.assertAlmostEqual(x["eventbridge"], 2.00)
        self.assertAlmostEqual(x["lambda_requests"], 0.40)
        self.assertAlmostEqual(x["lambda_duration"], 2 * 0.050 * 0.125 * 13.3334)
        self.assertAlmostEqual(x["s3"], 2 * 5.0)
        self.assertAlmostEqual(x["transfer"], 1100e-9 * 0.02 * 1e6)
        self.assertAlmostEqual(r["total_replication_and_forwarding"], 4 * 0.625 + 2.00 + 1100e-9 * 0.02 * 1e6)
        self.assertAlmostEqual(r["total_peer_consumers"], 8 * 0.625 + 0.40 + 2 * 0.050 * 0.125 * 13.3334 + 10.0)
        self.assertAlmostEqual(r["total_three_regions"], r["total_one_region"] + r["total_extra_regions"])

    def test_a_handler_without_events_has_nothing_to_forward(self):
        x = cost.per_million("python", SEED, warm_only())["extra_units_per_signup"]
        self.assertEqual(x["rwru"], 2)
        self.assertEqual(x["events"], 0)
        self.assertEqual(x["lambda_requests"], 0)

    def test_unknown_replicated_writes_must_be_given(self):
        with self.assertRaisesRegex(ValueError, "--replicated-writes"):
            cost.per_million("rust-opt-s", RUST, warm_only())


class FromColdstart(unittest.TestCase):
    def test_reads_the_warm_median_and_skips_runs_without_call_counts(self):
        def s(median: float) -> dict:  # a summary as coldstart.py writes it
            return {"median": median}

        data = {"records": 10, "results": {
            "rust": {"init_ms": s(5.0), "invocation_ms": s(70.0), "warm_invocation_ms": s(40.0),
                     "aws_calls_by_operation": {"DynamoDB.PutItem": 20}},
            "python": {"init_ms": s(300.0), "invocation_ms": s(100.0), "warm_invocation_ms": s(90.0),
                       "aws_calls_by_operation": None},
        }}
        found = cost.from_coldstart(data)
        self.assertEqual(list(found), ["rust"])
        self.assertEqual(found["rust"], cost.Measured(records=10, warm_ms=40.0, init_ms=5.0, cold_ms=70.0,
                                                      calls={"DynamoDB.PutItem": 20}))


class BuiltInFigures(unittest.TestCase):
    def test_every_built_in_measurement_is_priced(self):
        for label, fields in cost.MEASURED["implementations"].items():
            r = cost.per_million(label, cost.Measured(**fields), cost.Settings())
            self.assertGreater(r["total_one_region"], 0, label)
            self.assertGreater(r["total_three_regions"], r["total_one_region"], label)


if __name__ == "__main__":
    unittest.main()
