"""template.yaml's guards for a multi-region deploy and for deleting a stack, checked offline:

    .venv/bin/python -m unittest discover -s scripts -p 'test_template.py' -v

- the `Rules` refuse a peer deployed without `PrimaryRegion` (it would declare a second global table);
- the region parameters' `AllowedPattern` refuses regions outside the commercial partition, where a
  rule's cross-region bus target (the forwarding rules) is not supported;
- every stateful resource (tables, queues, bucket, log groups) states its `DeletionPolicy` and
  `UpdateReplacePolicy`, and records are the ones retained;
- `SignupsEnabled=false` switches the signup event source off (against moto).

The Rules are evaluated here (CloudFormation evaluates them before any change; cfn-lint does not
apply parameter values to a SAM template), with the few intrinsic functions they use.
"""

from __future__ import annotations

import re
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack.testing import MOTO_SERVER, MotoServer  # noqa: E402
from stack.translate import load_template  # noqa: E402

TEMPLATE = load_template()
REGION_PARAMETERS = ("PrimaryRegion", "PeerRegion1", "PeerRegion2")
STATEFUL = {"AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable", "AWS::S3::Bucket",
            "AWS::Logs::LogGroup"}
RECORDS = {"UsersTable", "UsersGlobalTable", "ProfilesTable", "Bucket"}


def evaluate(expr, values: dict[str, str]):
    """A Rules expression with `values` for the parameters (defaults for the rest)."""
    if isinstance(expr, dict) and len(expr) == 1:
        (fn, arg), = expr.items()
        if fn == "Ref":
            return values.get(arg, TEMPLATE["Parameters"].get(arg, {}).get("Default"))
        args = [evaluate(a, values) for a in arg]
        if fn == "Fn::Equals":
            return args[0] == args[1]
        if fn == "Fn::Not":
            return not args[0]
        if fn == "Fn::Or":
            return any(args)
        if fn == "Fn::And":
            return all(args)
        raise AssertionError(f"no evaluator for {fn}")
    return expr


def refused(values: dict[str, str]) -> list[str]:
    """The AssertDescriptions of the Rules `values` break: what CloudFormation would refuse with."""
    broken = []
    for rule in TEMPLATE.get("Rules", {}).values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], values):
            continue
        broken += [a["AssertDescription"] for a in rule["Assertions"] if not evaluate(a["Assert"], values)]
    return broken


class RegionRules(unittest.TestCase):
    def test_a_peer_without_the_primary_is_refused(self):
        broken = refused({"PeerRegion1": "us-west-2", "PeerRegion2": "eu-west-1"})
        self.assertEqual(len(broken), 1, broken)
        self.assertIn("PrimaryRegion", broken[0])
        self.assertTrue(refused({"PeerRegion2": "us-east-1"}))

    def test_the_same_peer_twice_is_refused(self):
        self.assertTrue(refused({"PrimaryRegion": "us-west-2", "PeerRegion1": "us-west-2", "PeerRegion2": "us-west-2"}))

    def test_the_samconfig_region_set_and_a_single_region_stack_pass(self):
        self.assertEqual(refused({}), [])
        for peers in (("us-east-1", "eu-west-1"), ("us-west-2", "eu-west-1"), ("us-west-2", "us-east-1")):
            values = {"PrimaryRegion": "us-west-2", "PeerRegion1": peers[0], "PeerRegion2": peers[1]}
            self.assertEqual(refused(values), [], values)


class RegionNames(unittest.TestCase):
    def patterns(self):
        for name in REGION_PARAMETERS:
            yield name, re.compile(TEMPLATE["Parameters"][name]["AllowedPattern"])

    def test_other_partitions_are_refused(self):
        for name, pattern in self.patterns():
            for region in ("us-gov-west-1", "us-gov-east-1", "cn-north-1", "cn-northwest-1", "us-iso-east-1",
                           "us-isob-east-1", "eusc-de-east-1", "not-a-region"):
                self.assertIsNone(pattern.fullmatch(region), f"{name} accepts {region}")

    def test_commercial_regions_and_empty_are_accepted(self):
        for name, pattern in self.patterns():
            for region in ("", "us-east-1", "us-west-2", "eu-west-1", "eu-central-2", "ap-southeast-7",
                           "ap-northeast-3", "ca-west-1", "sa-east-1", "me-central-1", "il-central-1",
                           "af-south-1", "mx-central-1"):
                self.assertIsNotNone(pattern.fullmatch(region), f"{name} refuses {region!r}")


class DeletionPolicies(unittest.TestCase):
    def test_every_stateful_resource_states_both_policies(self):
        stateful = {lid: r for lid, r in TEMPLATE["Resources"].items() if r["Type"] in STATEFUL}
        self.assertGreaterEqual(len(stateful), 18)
        for lid, resource in stateful.items():
            want = "Retain" if lid in RECORDS else "Delete"
            self.assertEqual(resource.get("DeletionPolicy"), want, lid)
            self.assertEqual(resource.get("UpdateReplacePolicy"), want, lid)


@unittest.skipUnless(MOTO_SERVER.exists(), "moto_server is not installed (make setup)")
class SignupsEnabled(unittest.TestCase):
    """SignupsEnabled=false switches user-processor's signup event source off (the first pass of a
    multi-region deploy); the local runner reads `enabled` from the manifest and honours it."""

    def test_the_signup_event_source_follows_the_parameter(self):
        from test_provision import provision_into

        with tempfile.TemporaryDirectory() as tmp:
            moto = MotoServer(Path(tmp))
            try:
                for value, enabled in (("false", False), ("true", True)):
                    manifest = provision_into(Path(tmp), moto.endpoint, f"SignupsEnabled={value}")
                    up = next(f for f in manifest["functions"] if f["name"] == "user-processor")
                    self.assertEqual(up["sqs_sources"][0]["enabled"], enabled, value)
                    np = next(f for f in manifest["functions"] if f["name"] == "notification-processor")
                    self.assertTrue(np["sqs_sources"][0]["enabled"])
            finally:
                moto.close()


if __name__ == "__main__":
    unittest.main()
