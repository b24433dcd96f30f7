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
from stack import ROOT, ProvisionError, deploy, local, translate  # noqa: E402
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

    def test_an_if_with_object_branches_is_asked_branch_by_branch(self):
        # As UsersGlobalTable's Replicas: a stack output holds a string, not an object; and the branch
        # not taken may name a resource its condition left out (moto must not resolve it).
        resources = {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "branches-q"}},
            "OnlyInB": {"Type": "AWS::SQS::Queue", "Condition": "IsB", "Properties": {"QueueName": "branches-b"}},
        }
        answers, asked = self.deploy(
            "branches",
            resources,
            lambda q: q.ask(
                [
                    {"Fn::If": ["IsA", {"Region": {"Ref": "AWS::Region"}, "Mode": {"Ref": "Mode"}}, {"Ref": "AWS::NoValue"}]},
                    {"Fn::If": ["IsB", {"Arn": {"Fn::GetAtt": ["OnlyInB", "Arn"]}}, {"Ref": "AWS::NoValue"}]},
                    {"Fn::If": ["IsB", {"Ref": "AWS::NoValue"}, {"Name": {"Fn::GetAtt": ["Queue", "QueueName"]}}]},
                ],
                "IsA",
            ),
        )
        self.assertEqual(answers(asked), [{"Region": "us-east-1", "Mode": "a"}, {"Name": "branches-q"}])

    def test_a_moto_object_instead_of_a_value_is_an_error_naming_the_fix(self):
        resources = {"Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "object-bus"}}}
        answers, asked = self.deploy("objects", resources, lambda q: q.ask({"Ref": "Bus"}))
        with self.assertRaisesRegex(ProvisionError, "Fn::GetAtt <Bus>.Name"):
            answers(asked)


def provision_into(work: Path, endpoint: str, *parameters: str, regions: str | None = None) -> dict:
    """The manifest provision.py wrote (with `regions`: by region)."""
    args = ["--endpoint", endpoint, "--reset", "--out", str(work / "stack.json"), "--env-out", str(work / "functions.env")]
    for p in parameters:
        args += ["--parameter", p]
    if regions:
        args += ["--regions", regions]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        if provision.main(args) != 0:
            raise RuntimeError(f"provision.py failed: {err.getvalue()}")
    if regions:
        return {r: json.loads((work / r / "stack.json").read_text()) for r in regions.split(",")}
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

    def test_the_aliases_and_codedeploy_are_reported_not_emulated_and_the_mappings_exist(self):
        not_emulated = {r["logical_id"]: r["type"] for r in self.manifest["not_emulated"]}
        self.assertEqual(list(not_emulated.values()).count("AWS::Lambda::Alias"), 4)
        self.assertEqual(list(not_emulated.values()).count("AWS::CodeDeploy::DeploymentGroup"), 4)
        self.assertEqual(self.manifest["parameters"]["DeploymentType"], "AllAtOnce")
        self.assertEqual(len(self.function("user-processor")["sqs_sources"]), 1)
        self.assertEqual(len(self.function("notification-processor")["sqs_sources"]), 1)

    def test_a_resource_whose_condition_holds_is_created(self):
        with tempfile.TemporaryDirectory() as d:
            ses = provision_into(Path(d), self.moto.endpoint, "MailTransport=ses")
        self.assertTrue(ses["resources"]["SesSendPolicy"])


class SafeDeployments(unittest.TestCase):
    """template.yaml's AutoPublishAlias and DeploymentPreference as SAM translates them (offline), and
    the local rewrite that lets moto hold them (docs/template.md, "Safe deployments")."""

    ALARMS = {
        "UserProcessorFunction": {"UserProcessorErrorsAlarm", "SignupDLQAlarm"},
        "NotificationProcessorFunction": {"NotificationProcessorErrorsAlarm", "NotificationDLQAlarm"},
        "WelcomeEmailFunction": {"WelcomeEmailErrorsAlarm", "WelcomeEmailFailureQueueAlarm", "WelcomeEmailRuleDLQAlarm"},
        "ProfileCreatorFunction": {"ProfileCreatorErrorsAlarm", "ProfileCreatorFailureQueueAlarm", "ProfileCreatorRuleDLQAlarm"},
    }

    @staticmethod
    def translated(*overrides: str) -> dict:
        template = translate.load_template()
        translate.package_code(template, "bucket", [])
        with contextlib.redirect_stdout(io.StringIO()):  # samtranslator prints feature-toggle notes
            return translate.translate(template, translate.resolve_parameters(template, list(overrides)), "eventline-test")

    @classmethod
    def setUpClass(cls):
        cls.resources = cls.translated("DeploymentType=Canary10Percent5Minutes")["Resources"]

    def of_type(self, rtype: str) -> dict:
        return {lid: r for lid, r in self.resources.items() if r["Type"] == rtype}

    def alias_of(self, function_id: str) -> str:
        (alias,) = [
            lid for lid, r in self.of_type("AWS::Lambda::Alias").items()
            if r["Properties"]["FunctionName"] == {"Ref": function_id}
        ]
        self.assertEqual(self.resources[alias]["Properties"]["Name"], "live")
        return alias

    def test_every_function_has_a_live_alias_shifted_by_codedeploy_on_its_alarms(self):
        self.assertEqual(set(self.of_type("AWS::Lambda::Function")), set(self.ALARMS))
        for function_id, alarms in self.ALARMS.items():
            with self.subTest(function_id):
                update = self.resources[self.alias_of(function_id)]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
                group = self.resources[update["DeploymentGroupName"]["Ref"]]["Properties"]
                self.assertEqual({a["Name"]["Ref"] for a in group["AlarmConfiguration"]["Alarms"]}, alarms)
                self.assertTrue(group["AlarmConfiguration"]["Enabled"])
                self.assertIn("DEPLOYMENT_STOP_ON_ALARM", group["AutoRollbackConfiguration"]["Events"])
                self.assertEqual(group["DeploymentConfigName"]["Fn::Sub"][1], {"ConfigName": "Canary10Percent5Minutes"})
                for alarm in alarms:  # alarms the template declares, not names
                    self.assertEqual(self.resources[alarm]["Type"], "AWS::CloudWatch::Alarm")

    def test_event_sources_invoke_the_alias_not_latest(self):
        sources = 0
        for lid, r in self.resources.items():
            p = r.get("Properties") or {}
            if r["Type"] in ("AWS::Lambda::EventSourceMapping", "AWS::Lambda::Permission"):
                targets = [p["FunctionName"]]
            elif r["Type"] == "AWS::Events::Rule":
                targets = [t["Arn"] for t in p.get("Targets") or [] if "Ref" in t["Arn"] and "Function" in t["Arn"]["Ref"]]
            else:
                continue
            for target in targets:
                sources += 1
                self.assertEqual(self.resources[target["Ref"]]["Type"], "AWS::Lambda::Alias", lid)
        self.assertEqual(sources, 6)  # 2 SQS mappings, 2 rule targets, their 2 invoke permissions

    def test_the_local_stack_deploys_all_at_once(self):
        groups = self.translated()["Resources"]
        for lid, r in groups.items():
            if r["Type"] == "AWS::CodeDeploy::DeploymentGroup":
                self.assertEqual(r["Properties"]["DeploymentConfigName"]["Fn::Sub"][1], {"ConfigName": "AllAtOnce"}, lid)

    def test_locally_the_aliases_users_invoke_the_function(self):
        translated = self.translated()
        rewrites: list[str] = []
        local.tap_eventbridge_lambda_targets(translated, rewrites)
        local.invoke_functions_not_aliases(translated, rewrites)
        aliases = set(self.of_type("AWS::Lambda::Alias"))
        text = json.dumps({k: v for k, v in translated["Resources"].items() if k not in aliases})
        for alias in aliases:
            self.assertNotIn(f'"{alias}"', text)
        mapping = translated["Resources"]["UserProcessorFunctionSignups"]["Properties"]
        self.assertEqual(mapping["FunctionName"], {"Ref": "UserProcessorFunction"})
        eic = translated["Resources"]["WelcomeEmailFunctionEventInvokeConfig"]
        self.assertEqual(eic["Properties"]["Qualifier"], "$LATEST")
        self.assertEqual(len([r for r in rewrites if "(AWS::Lambda::Alias" in r]), 4)


class TagsForCostAllocation(unittest.TestCase):
    """application, stage and region on every resource of the translation whose type takes Tags
    (per cfn-lint's copy of the CloudFormation resource schemas), in a multi-region stack so that the
    conditional resources are there too (docs/template.md, "Tags")."""

    WANTED = {"application": {"Ref": "AppName"}, "stage": {"Ref": "Stage"}}

    @staticmethod
    def taggable(rtype: str) -> bool:
        import cfnlint

        schemas = Path(cfnlint.__file__).parent / "data" / "schemas"
        ids = json.loads((schemas / "providers" / "us-east-1.json").read_text())
        schema = json.loads((schemas / "resources" / f"{ids[rtype]}.json").read_text())
        return "Tags" in schema.get("properties", {})

    @staticmethod
    def tags_of(props: dict) -> dict:
        tags = props.get("Tags") or {}
        return {t["Key"]: t["Value"] for t in tags} if isinstance(tags, list) else tags

    def test_every_taggable_resource_carries_application_stage_and_region(self):
        resources = SafeDeployments.translated("PeerRegion1=us-west-2", "AlarmEmail=ops@example.com")["Resources"]
        tagged, by_stack_tags = 0, []
        for lid, res in resources.items():
            if not self.taggable(res["Type"]):
                continue
            props = res.get("Properties") or {}
            if res["Type"] == "AWS::DynamoDB::GlobalTable":  # tagged per replica
                for replica in props["Replicas"]:
                    replica = replica["Fn::If"][1] if "Fn::If" in replica else replica
                    self.assertEqual(self.tags_of(replica)["region"], replica["Region"], lid)
                tagged += 1
                continue
            tags = self.tags_of(props)
            if not tags and res["Type"] in ("AWS::Lambda::EventSourceMapping", "AWS::Events::Rule"):
                by_stack_tags.append(lid)  # generated by SAM from a function's Events, which take no Tags
                continue
            with self.subTest(lid):
                self.assertEqual({k: tags.get(k) for k in self.WANTED}, self.WANTED)
                self.assertEqual(tags.get("region"), {"Ref": "AWS::Region"})
                tagged += 1
        self.assertGreater(tagged, 50)
        self.assertEqual(
            sorted(by_stack_tags),
            ["NotificationProcessorFunctionNotifications", "ProfileCreatorFunctionUserCreated",
             "UserProcessorFunctionSignups", "WelcomeEmailFunctionUserCreated"],
        )

    def test_every_deploy_environment_sets_the_stack_tags_the_generated_resources_get(self):
        import tomllib

        config = tomllib.loads((ROOT / "samconfig.toml").read_text())
        for env, commands in config.items():
            if not isinstance(commands, dict) or "deploy" not in commands:
                continue
            with self.subTest(env):
                tags = dict(t.split("=", 1) for t in commands["deploy"]["parameters"]["tags"].split())
                self.assertEqual(set(tags) - {"region"}, {"application", "stage"})
                if env != "default":
                    self.assertEqual(tags["region"], env)


class DevelopmentSwitchesStayOutOfTheTemplate(unittest.TestCase):
    """Powertools' switches for tests and local runs are never deployed (docs/observability.md,
    "Powertools conventions"): the functions also refuse POWERTOOLS_IDEMPOTENCY_DISABLED in Lambda."""

    def test_no_function_sets_a_development_switch(self):
        template = translate.load_template()
        environments = [(template.get("Globals") or {}).get("Function", {}).get("Environment", {})]
        environments += [
            (res.get("Properties") or {}).get("Environment", {})
            for res in template["Resources"].values()
            if res["Type"] == "AWS::Serverless::Function"
        ]
        self.assertEqual(len(environments), 5)
        for env in environments:
            names = set((env or {}).get("Variables") or {})
            self.assertFalse(
                names & {"POWERTOOLS_IDEMPOTENCY_DISABLED", "POWERTOOLS_DEV", "POWERTOOLS_METRICS_DISABLED"}, names
            )


class ThreeRegionsInOneMoto(unittest.TestCase):
    """`--regions`: the same template once per region, the first the primary (docs/multi-region.md)."""

    REGIONS = ["us-west-2", "us-east-1", "eu-west-1"]

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.work = Path(cls.tmp.name)
        cls.moto = MotoServer(cls.work)
        cls.manifests = provision_into(cls.work, cls.moto.endpoint, regions=",".join(cls.REGIONS))

    @classmethod
    def tearDownClass(cls):
        cls.moto.close()
        cls.tmp.cleanup()

    def aws(self, region: str) -> deploy.Aws:
        return deploy.Aws(self.moto.endpoint, region)

    def test_each_region_names_the_primary_and_its_two_peers(self):
        for region, manifest in self.manifests.items():
            self.assertEqual(manifest["region"], region)
            params = manifest["parameters"]
            self.assertEqual(params["PrimaryRegion"], "us-west-2")
            self.assertEqual({params["PeerRegion1"], params["PeerRegion2"]}, set(self.REGIONS) - {region})
            queue = manifest["functions"][0]["sqs_sources"][0]["queue_url"]
            self.assertIn(f"sqs.{region}.amazonaws.com", queue)

    def test_the_global_table_is_one_table_with_a_stream_in_every_region(self):
        expected = {"logical_id": "UsersGlobalTable", "table_name": "eventline-local-users", "regions": self.REGIONS}
        for region, manifest in self.manifests.items():
            self.assertEqual(manifest["global_tables"], [expected], region)
            table = self.aws(region)("dynamodb").describe_table(TableName="eventline-local-users")["Table"]
            self.assertEqual(table["KeySchema"], [{"AttributeName": "user_id", "KeyType": "HASH"}])
            self.assertEqual(table["StreamSpecification"], {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        primary = self.manifests["us-west-2"]
        self.assertEqual(primary["resources"]["UsersGlobalTable"], "eventline-local-users")
        self.assertIn("UsersGlobalTable", [r["logical_id"] for r in primary["not_emulated"]])
        self.assertTrue(any(r.startswith("UsersGlobalTable (AWS::DynamoDB::GlobalTable)") for r in primary["local_rewrites"]))
        # Only the primary's stack declares it, as on AWS.
        self.assertNotIn("UsersGlobalTable", self.manifests["eu-west-1"]["resources"])
        self.assertNotIn("UsersTable", self.manifests["eu-west-1"]["resources"])

    def test_each_env_file_is_its_regions(self):
        for region in self.REGIONS:
            env = dict(
                line.split("=", 1) for line in (self.work / region / "functions.env").read_text().splitlines()
            )
            self.assertEqual((env["AWS_REGION"], env["AWS_DEFAULT_REGION"]), (region, region))
            self.assertEqual(sorted(env["REGIONS"].split(",")), sorted(self.REGIONS))

    def test_each_bus_forwards_to_the_two_peer_buses(self):
        for region in self.REGIONS:
            events = self.aws(region)("events")
            targets = set()
            for rule in events.list_rules(EventBusName="eventline-local-bus")["Rules"]:
                if "-forward-to-" in rule["Name"]:
                    for t in events.list_targets_by_rule(Rule=rule["Name"], EventBusName="eventline-local-bus")["Targets"]:
                        targets.add(t["Arn"])
            self.assertEqual(
                targets,
                {f"arn:aws:events:{peer}:123456789012:event-bus/eventline-local-bus" for peer in self.REGIONS if peer != region},
            )

    def test_the_code_placeholders_have_a_bucket_per_region(self):
        for region in self.REGIONS:
            s3 = self.aws(region)("s3")
            where = s3.get_bucket_location(Bucket=f"eventline-local-{region}-artifacts")["LocationConstraint"]
            self.assertEqual(where or "us-east-1", region)

    def test_a_region_set_the_template_cannot_hold_is_refused(self):
        for bad in ("us-west-2", "us-west-2,us-east-1,eu-west-1,ap-south-1", "us-west-2,us-west-2"):
            with self.assertRaises(RuntimeError, msg=bad):
                provision_into(self.work / "bad", self.moto.endpoint, regions=bad)
        # Refused before the reset: the stacks are still there.
        self.aws("eu-west-1")("cloudformation").describe_stacks(StackName="eventline-local")


if __name__ == "__main__":
    unittest.main()
