"""Create the stack in moto, wait for it, read back what moto made of it, and apply through the
service API what moto's CloudFormation skips but the local runner needs."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
import zipfile
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from . import DUMMY_KEY, REGION, ProvisionError
from .local import Pending
from .resolve import Answers, stack_outputs

CREATE_TIMEOUT_SECONDS = 180


class Aws:
    """boto3 clients for one region of one moto server, and the server's management API."""

    def __init__(self, endpoint: str, region: str = REGION):
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self._clients: dict[str, Any] = {}

    def in_region(self, region: str) -> "Aws":
        """The same server, another region (moto keeps regions apart, as AWS does)."""
        return self if region == self.region else Aws(self.endpoint, region)

    def __call__(self, service: str):
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint,
                region_name=self.region,
                aws_access_key_id=DUMMY_KEY,
                aws_secret_access_key=DUMMY_KEY,
                config=Config(retries={"max_attempts": 2, "mode": "standard"}, s3={"addressing_style": "path"}),
            )
        return self._clients[service]

    def ping(self) -> None:
        try:
            urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=5).read()
        except (urllib.error.URLError, OSError) as e:
            raise ProvisionError(
                f"no moto server answers at {self.endpoint} ({e}). Start one: scripts/moto.sh start [PORT]"
            ) from e

    def reset(self) -> None:
        req = urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST", data=b"")
        urllib.request.urlopen(req, timeout=30).read()


def ensure_absent(aws: Aws, stack_name: str) -> None:
    """Fails before anything is uploaded if the stack is there already (moto cannot update it)."""
    try:
        existing = aws("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
    except ClientError as e:
        if "does not exist" not in str(e):
            raise
        return
    if existing != "DELETE_COMPLETE":
        raise ProvisionError(
            f"stack {stack_name} already exists in moto at {aws.endpoint} ({existing}). Re-run with "
            f"--reset (wipes ALL state of that moto server: POST /moto-api/reset) or use another --stack-name."
        )


def placeholder_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16  # regular file, executable
        z.writestr(
            info,
            "#!/bin/sh\necho 'placeholder: eventline functions run locally under cargo lambda watch' >&2\nexit 1\n",
        )
    return buf.getvalue()


def upload_code(aws: Aws, bucket: str, keys: list[str]) -> None:
    """The objects translate.package_code points the functions at: placeholders, never run."""
    s3 = aws("s3")
    # As S3 itself: outside us-east-1 a bucket needs its region as LocationConstraint.
    where = {} if aws.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": aws.region}}
    try:
        s3.create_bucket(Bucket=bucket, **where)
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    body = placeholder_zip()
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def create_stack(aws: Aws, stack_name: str, translated: dict, parameters: dict[str, str]) -> dict:
    cf = aws("cloudformation")
    try:
        cf.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(translated),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except ClientError as e:
        # moto creates the resources inside the CreateStack call: a resource that fails surfaces here as
        # that service's error, with no resource name, and the stack stays CREATE_IN_PROGRESS.
        raise ProvisionError(
            f"moto's CloudFormation failed while creating the resources: {e}\n"
            f"  moto does not say which resource; its server log has the traceback, and --dump-template PATH "
            f"writes the template that was sent. The stack is left half-created: re-run with --reset."
        ) from e
    deadline = time.monotonic() + CREATE_TIMEOUT_SECONDS
    while True:
        stack = cf.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise ProvisionError(f"stack {stack_name} still {status} after {CREATE_TIMEOUT_SECONDS} s")
        time.sleep(0.2)
    if status != "CREATE_COMPLETE":
        failures = [
            f"  {e['LogicalResourceId']} ({e['ResourceType']}): {e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}"
            for e in cf.describe_stack_events(StackName=stack_name)["StackEvents"]
            if e["ResourceStatus"].endswith("FAILED")
        ]
        raise ProvisionError(
            f"stack {stack_name}: {status} {stack.get('StackStatusReason') or ''}\n"
            + "\n".join(failures or ["  (moto gave no failing resource)"])
        )
    return stack


def answers_of(stack: dict, pending: Pending) -> Answers:
    return Answers(pending.questions, stack_outputs(stack))


def physical_ids(
    aws: Aws, stack_name: str, translated: dict, pending: Pending, answers: Answers
) -> tuple[dict[str, str | None], list[dict]]:
    """LogicalId -> PhysicalId as moto reports it, plus the resources moto's CloudFormation did not
    create. moto lists a resource type its CloudFormation does not support, and a resource whose
    Condition is false, alike: as a nameless entry. The condition's answer tells them apart."""
    listed = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId") or None
        for r in aws("cloudformation").describe_stack_resources(StackName=stack_name)["StackResources"]
        if r.get("LogicalResourceId")
    }
    physical: dict[str, str | None] = {}
    missing = []
    for lid, res in translated["Resources"].items():
        if lid in pending.exists and not answers.holds(pending.exists[lid]):
            continue  # not created, exactly as in AWS
        if lid not in listed:
            missing.append({"logical_id": lid, "type": res["Type"]})
            continue
        pid = listed[lid]
        if not pid and lid in pending.bus_names:
            pid = answers(pending.bus_names[lid])  # in AWS a bus's physical id is its name
        physical[lid] = pid
    return physical, missing


SKIPPED_REASONS = {
    "AWS::S3::BucketPolicy": "moto's CloudFormation skips it. Deliberately not applied through the API: "
    "moto enforces bucket policies, and this one denies every non-TLS request, i.e. all local S3 calls",
    "AWS::SQS::QueuePolicy": "moto's CloudFormation skips it; moto does not need it (EventBridge delivers "
    "to SQS without a queue policy)",
    "AWS::Lambda::Alias": "moto's CloudFormation skips it; its users invoke the function instead (local "
    "rewrite), and the local runner invokes the code cargo lambda watch serves, whatever the version",
    "AWS::CodeDeploy::Application": "no CodeDeploy locally: the local stack deploys AllAtOnce (DeploymentType); "
    "traffic shifting and rollback on alarm happen only in AWS (docs/template.md, Safe deployments)",
    "AWS::CodeDeploy::DeploymentGroup": "no CodeDeploy locally: the local stack deploys AllAtOnce (DeploymentType); "
    "traffic shifting and rollback on alarm happen only in AWS (docs/template.md, Safe deployments)",
}


def apply_skipped_resources(
    aws: Aws, pending: Pending, answers: Answers, physical: dict, missing: list[dict], rewrites: list[str]
) -> tuple[list[dict], list[dict]]:
    """Re-creates, through the service API, the skipped resources the local runner reads back or the
    functions need, with the properties moto resolved. Returns the ones that stay absent or are only
    partly emulated (reported as not emulated), and the global tables made (their replicas' regions)."""
    not_emulated, global_tables = [], []
    for item in missing:
        lid, rtype = item["logical_id"], item["type"]
        if rtype == "AWS::Lambda::EventInvokeConfig":
            p = answers(pending.reapplied[lid])
            kwargs: dict[str, Any] = {"FunctionName": p["FunctionName"], "Qualifier": p.get("Qualifier", "$LATEST")}
            for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
                if key in p:
                    kwargs[key] = int(p[key])
            if "DestinationConfig" in p:
                kwargs["DestinationConfig"] = p["DestinationConfig"]
            aws("lambda").put_function_event_invoke_config(**kwargs)
            physical[lid] = f"{p['FunctionName']}:{kwargs['Qualifier']}"
            rewrites.append(
                f"{lid} ({rtype}): moto's CloudFormation skips this type; applied after CREATE_COMPLETE with "
                f"lambda:PutFunctionEventInvokeConfig and the same properties, as moto resolved them"
            )
        elif rtype == "AWS::DynamoDB::GlobalTable":
            p = answers(pending.reapplied[lid])
            regions = [r["Region"] for r in p.get("Replicas") or []]
            for region in regions:
                create_replica_table(aws.in_region(region), p)
            physical[lid] = p["TableName"]
            global_tables.append({"logical_id": lid, "table_name": p["TableName"], "regions": regions})
            rewrites.append(
                f"{lid} ({rtype}): moto's CloudFormation skips this type; created after CREATE_COMPLETE as one "
                f"dynamodb:CreateTable {p['TableName']} in each replica region ({', '.join(regions)}) with the same "
                f"key schema, attributes, billing mode and stream ({p.get('StreamSpecification', {}).get('StreamViewType')}), "
                f"as moto resolved them; replica settings (PITR, deletion protection) and SSE are not applied"
            )
            not_emulated.append(
                {
                    **item,
                    "reason": "replication between the replicas: moto has no global tables (create_global_table answers "
                    "500); `devstack run`/`devstack replicate` with every region's manifest copies changes between the "
                    "regions' tables from their streams, last writer wins (docs/multi-region.md)",
                }
            )
        else:
            reason = SKIPPED_REASONS.get(rtype, "moto's CloudFormation does not support this resource type")
            not_emulated.append({**item, "reason": reason})
            physical[lid] = None
    return not_emulated, global_tables


def create_replica_table(aws: Aws, p: dict) -> None:
    """One replica of a global table: a regional table with its schema and stream."""
    kwargs: dict[str, Any] = {
        "TableName": p["TableName"],
        "KeySchema": p["KeySchema"],
        "AttributeDefinitions": p["AttributeDefinitions"],
        "BillingMode": p.get("BillingMode", "PAY_PER_REQUEST"),
    }
    view = (p.get("StreamSpecification") or {}).get("StreamViewType")
    if view:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if p.get(key):
            kwargs[key] = [{k: ix[k] for k in ("IndexName", "KeySchema", "Projection") if k in ix} for ix in p[key]]
    try:
        aws("dynamodb").create_table(**kwargs)
    except ClientError as e:
        if e.response["Error"]["Code"] == "ResourceInUseException":
            raise ProvisionError(
                f"table {p['TableName']} already exists in {aws.region}: re-run with --reset"
            ) from e
        raise
    ttl = p.get("TimeToLiveSpecification")
    if ttl and str(ttl.get("Enabled")).lower() == "true":
        aws("dynamodb").update_time_to_live(
            TableName=p["TableName"],
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
