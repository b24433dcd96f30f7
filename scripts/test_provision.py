"""Specification of scripts/provision.py and its package, scripts/stack/.

    .venv/bin/python -m unittest discover -s scripts -p 'test_provision.py' -v

Each test class starts a moto server of its own and deploys into it, as provision.py does: moto's
behaviour is what these tests pin down (it resolves the expressions provision needs).
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

import provision  # noqa: E402
from stack import ProvisionError, deploy  # noqa: E402
from stack.resolve import Answers, Questions, stack_outputs  # noqa: E402
from stack.testing import MotoServer  # noqa: E402


class MotoResolvesTheQuestions(unittest.TestCase):
    """Questions go into a stack as outputs; moto's answers come back with the stack."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.moto = MotoServer(Path(cls.tmp.name))
        cls.aws = deploy.Aws(cls.moto.endpoint)

    @classmethod
    def tearDownClass(cls):
        cls.moto.close()
        cls.tmp.cleanup()

    def deploy(self, name: str, resources: dict, ask) -> tuple[Answers, object]:
        template = {
            "Parameters": {"Mode": {"Type": "String", "Default": "a"}},
            "Conditions": {"IsA": {"Fn::Equals": [{"Ref": "Mode"}, "a"]}, "IsB": {"Fn::Equals": [{"Ref": "Mode"}, "b"]}},
            "Resources": resources,
        }
        q = Questions()
        asked = ask(q)
        q.attach(template, [])
        stack = deploy.create_stack(self.aws, name, template, {})
        return Answers(q, stack_outputs(stack)), asked

    def test_values_conditions_and_no_value_are_answered_by_moto(self):
        resources = {
            "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "answers-bus"}},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "answers-q"}},
        }
        answers, asked = self.deploy(
            "answers",
            resources,
            lambda q: {
                "a": q.holds("IsA"),
                "b": q.holds("IsB"),
                "props": q.ask(
                    {
                        "Name": {"Fn::GetAtt": ["Bus", "Name"]},
                        "Resource": [{"Fn::Sub": "${Queue.Arn}/x"}, {"Fn::If": ["IsA", {"Ref": "AWS::NoValue"}, "z"]}],
                        "Retries": 2,
                    }
                ),
            },
        )
        self.assertTrue(answers.holds(asked["a"]))
        self.assertFalse(answers.holds(asked["b"]))
        self.assertEqual(
            answers(asked["props"]),
            {"Name": "answers-bus", "Resource": ["arn:aws:sqs:us-east-1:123456789012:answers-q/x"], "Retries": 2},
        )

    def test_a_moto_object_instead_of_a_value_is_an_error_naming_the_fix(self):
        resources = {"Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "object-bus"}}}
        answers, asked = self.deploy("objects", resources, lambda q: q.ask({"Ref": "Bus"}))
        with self.assertRaisesRegex(ProvisionError, "Fn::GetAtt <Bus>.Name"):
            answers(asked)


def provision_into(work: Path, endpoint: str, *parameters: str) -> dict:
    args = ["--endpoint", endpoint, "--reset", "--out", str(work / "stack.json"), "--env-out", str(work / "functions.env")]
    for p in parameters:
        args += ["--parameter", p]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if provision.main(args) != 0:
            raise RuntimeError("provision.py failed")
    return json.loads((work / "stack.json").read_text())


class TheManifestIsReadBackFromMoto(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.work = Path(cls.tmp.name)
        cls.moto = MotoServer(cls.work)
        cls.manifest = provision_into(cls.work, cls.moto.endpoint)

    @classmethod
    def tearDownClass(cls):
        cls.moto.close()
        cls.tmp.cleanup()

    def function(self, name: str) -> dict:
        return next(f for f in self.manifest["functions"] if f["name"] == name)

    def test_it_holds_only_what_its_readers_read(self):
        self.assertEqual(
            set(self.manifest),
            {"endpoint", "region", "account_id", "stack_name", "parameters", "functions", "resources", "not_emulated", "local_rewrites"},
        )
        self.assertEqual(
            set(self.function("welcome-email")),
            {"name", "logical_id", "function_name", "function_arn", "timeout_seconds", "environment", "sqs_sources",
             "event_sources", "async_invoke", "log_group"},
        )

    def test_event_invoke_config_skipped_by_moto_is_applied_with_the_properties_moto_resolved(self):
        resources = self.manifest["resources"]
        self.assertEqual(
            self.function("welcome-email")["async_invoke"],
            {"maximum_retry_attempts": 2, "on_failure_queue_url": resources["WelcomeEmailFailureQueue"]},
        )

    def test_a_bus_moto_reports_without_a_physical_id_gets_its_name(self):
        self.assertEqual(self.manifest["resources"]["EventBus"], "eventline-local-bus")
        self.assertEqual(
            [es["event_bus_name"] for es in self.function("profile-creator")["event_sources"]], ["eventline-local-bus"]
        )

    def test_the_log_group_is_the_templates_although_moto_drops_logging_config(self):
        self.assertEqual(self.function("user-processor")["log_group"], self.manifest["resources"]["UserProcessorLogGroup"])

    def test_a_resource_whose_condition_is_false_is_absent_not_unemulated(self):
        self.assertNotIn("SesSendPolicy", self.manifest["resources"])
        self.assertNotIn("SesSendPolicy", [r["logical_id"] for r in self.manifest["not_emulated"]])
        self.assertIn("BucketPolicy", [r["logical_id"] for r in self.manifest["not_emulated"]])

    def test_a_resource_whose_condition_holds_is_created(self):
        with tempfile.TemporaryDirectory() as d:
            ses = provision_into(Path(d), self.moto.endpoint, "MailTransport=ses")
        self.assertTrue(ses["resources"]["SesSendPolicy"])


if __name__ == "__main__":
    unittest.main()
