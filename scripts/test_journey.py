"""Tests for journey.py on log lines in the shape the functions write (JSON mode, logging.rs)."""

import json
import tempfile
import unittest
from pathlib import Path

import journey

SIGNUP = "d926175b-2b4d-4c90-9455-20cb697c2ec1"
OTHER = "b50d2625-2494-467c-acde-a855e6775d25"


def line(time, function, message, correlation, request="r-1", **fields):
    return json.dumps({
        "level": "INFO", "timestamp": f"2026-12-07T23:23:{time}Z", "message": message,
        "service": function, "cold_start": False, "function_name": function,
        "function_request_id": request, "correlation_id": correlation, **fields,
    })


def settled(time, function, correlation, outcome="succeeded", duration=12, request="r-1", **fields):
    return line(time, function, "record settled", correlation, request,
                outcome=outcome, duration_ms=duration, **fields)


EAST = [
    "    Finished `dev` profile [unoptimized + debuginfo] target(s) in 0.28s",
    '{"_aws":{"CloudWatchMetrics":[]},"service":"user-processor","ColdStart":1}',
    line("31.900", "user-processor", "user created", OTHER, user_id="u-2002", message_id=OTHER),
    line("31.938", "user-processor", "user created", SIGNUP, user_id="u-2001", message_id=SIGNUP),
    settled("32.433", "user-processor", SIGNUP, duration=495, message_id=SIGNUP),
    settled("32.440", "user-processor", OTHER, message_id=OTHER),
    settled("33.100", "notification-processor", SIGNUP, "failed", 30, "r-2", message_id="n-1"),
    settled("34.100", "notification-processor", SIGNUP, "succeeded", 20, "r-3", message_id="n-1"),
    settled("33.200", "welcome-email", SIGNUP, event_id="e-1"),
]
WEST = [settled("33.300", "profile-creator", SIGNUP, duration=8, event_id="e-2")]


class JourneyTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        root = Path(self.dir.name)
        for region, lines in (("us-east-1", EAST), ("us-west-2", WEST)):
            (root / region).mkdir()
            (root / region / "watch.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (root / "us-east-1" / "functions.env").write_text("AWS_REGION=us-east-1\n", encoding="utf-8")
        self.paths = [root / "us-east-1" / "watch.log", root / "us-west-2" / "watch.log"]
        self.lines = [l for p in self.paths for l in journey.read_lines(p, journey.region_of(p))]

    def tearDown(self):
        self.dir.cleanup()

    def test_other_lines_are_skipped(self):
        self.assertEqual(len(self.lines), 8)

    def test_region_from_functions_env_else_folder(self):
        self.assertEqual([journey.region_of(p) for p in self.paths], ["us-east-1", "us-west-2"])

    def test_default_is_the_first_signup_user_processor_handled(self):
        self.assertEqual(journey.correlation_ids(self.lines, None), [OTHER])

    def test_a_user_id_finds_its_signups_and_a_correlation_id_itself(self):
        self.assertEqual(journey.correlation_ids(self.lines, "u-2001"), [SIGNUP])
        self.assertEqual(journey.correlation_ids(self.lines, SIGNUP), [SIGNUP])
        self.assertEqual(journey.correlation_ids(self.lines, "u-9999"), [])

    def test_hops_in_time_order_with_attempts_across_regions(self):
        rows = journey.journey(self.lines, [SIGNUP])
        self.assertEqual(
            [(r["region"], r["function"], r["attempt"], r["outcome"], r["duration_ms"]) for r in rows],
            [
                ("us-east-1", "user-processor", 1, "succeeded", 495),
                ("us-east-1", "notification-processor", 1, "failed", 30),
                ("us-east-1", "welcome-email", 1, "succeeded", 12),
                ("us-west-2", "profile-creator", 1, "succeeded", 8),
                ("us-east-1", "notification-processor", 2, "succeeded", 20),
            ],
        )

    def test_table_offsets_are_milliseconds_from_the_first_hop(self):
        text = journey.table(journey.journey(self.lines, [SIGNUP]))
        rows = text.splitlines()
        self.assertEqual(rows[0].split(), ["+ms", "region", "function", "attempt", "outcome", "duration", "ms"])
        self.assertEqual(rows[1].split(), ["0", "us-east-1", "user-processor", "1", "succeeded", "495"])
        self.assertEqual(rows[5].split(), ["1667", "us-east-1", "notification-processor", "2", "succeeded", "20"])

    def test_main_prints_the_journey_and_fails_on_an_unknown_id(self):
        import contextlib
        import io
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(journey.main(["--id", "u-2001", "--logs", *map(str, self.paths)]), 0)
        self.assertIn("journey of u-2001", out.getvalue())
        self.assertIn("profile-creator", out.getvalue())
        with contextlib.redirect_stderr(io.StringIO()):
            self.assertEqual(journey.main(["--id", "nobody", "--logs", *map(str, self.paths)]), 1)


if __name__ == "__main__":
    unittest.main()
