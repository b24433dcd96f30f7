"""template.yaml -> CloudFormation, offline: what `sam package` and the SAM transform make of it.

provision deploys the result (after the local rewrites); iam_check reads the roles' policies from it.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from pathlib import Path

from . import ACCOUNT_ID, PARTITION, REGION, ROOT, ProvisionError

TEMPLATE = ROOT / "template.yaml"

# Short timeouts for a fast local loop; `--parameter` overrides any of them. Only parameters the
# template declares are passed (so a template without one of these still provisions).
LOCAL_PARAMETER_DEFAULTS = {
    "Stage": "local",
    "FunctionTimeout": "3",
    "QueueVisibilityTimeout": "3",  # AWS refuses an SQS trigger whose visibility timeout is below the function timeout
    "MaxReceiveCount": "3",
    # No CodeDeploy locally: the alias simply points at the one published version.
    "DeploymentType": "AllAtOnce",
}


def load_template(path: Path = TEMPLATE) -> dict:
    from samcli.yamlhelper import yaml_parse  # understands !Sub, !GetAtt, !Ref, !If ...

    return json.loads(json.dumps(yaml_parse(path.read_text())))  # plain dicts, no OrderedDict


def resolve_parameters(template: dict, overrides: list[str]) -> dict[str, str]:
    """The local defaults the template declares, then `Key=Value` overrides; every effective value
    checked like CloudFormation does (moto's CloudFormation does not)."""
    declared = template.get("Parameters") or {}
    values = {k: v for k, v in LOCAL_PARAMETER_DEFAULTS.items() if k in declared}
    for item in overrides:
        if "=" not in item:
            raise ProvisionError(f"--parameter {item!r}: expected Key=Value")
        key, value = item.split("=", 1)
        if key not in declared:
            raise ProvisionError(f"--parameter {key}: template.yaml declares no such parameter ({', '.join(declared)})")
        values[key] = value
    for key, spec in declared.items():
        value = values.get(key, spec.get("Default"))
        if value is None:
            raise ProvisionError(f"parameter {key} has no default: pass --parameter {key}=...")
        value = str(value)
        problems = []
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            problems.append(f"not one of {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            problems.append(f"does not match {spec['AllowedPattern']}")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                problems.append("not a number")
            else:
                if "MinValue" in spec and number < float(spec["MinValue"]):
                    problems.append(f"below MinValue {spec['MinValue']}")
                if "MaxValue" in spec and number > float(spec["MaxValue"]):
                    problems.append(f"above MaxValue {spec['MaxValue']}")
        if problems:
            raise ProvisionError(f"parameter {key}={value!r}: {'; '.join(problems)}")
    return values


def pseudo_parameters(stack_name: str, region: str = REGION) -> dict[str, str]:
    # Mirrors samcli (IntrinsicsSymbolTable.DEFAULT_PSEUDO_PARAM_VALUES, used by `sam validate`), with
    # the real stack name and region and moto's URL suffix.
    return {
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::Partition": PARTITION,
        "AWS::Region": region,
        "AWS::StackName": stack_name,
        "AWS::StackId": f"arn:{PARTITION}:cloudformation:{region}:{ACCOUNT_ID}:stack/{stack_name}/local",
        "AWS::URLSuffix": "amazonaws.com",
    }


def artifacts_bucket(stack_name: str, region: str | None = None) -> str:
    """Where `package_code` points the code (one name per stack, so iam_check can translate alike).
    S3 bucket names are global: a stack deployed in several regions (`region` given) gets one per region."""
    name = f"{stack_name}-{region}-artifacts" if region else f"{stack_name}-artifacts"
    return re.sub(r"[^a-z0-9-]", "-", name.lower())[:63]


def package_code(template: dict, bucket: str, rewrites: list[str]) -> list[str]:
    """What `sam package` does to the template: every artifact property points at an S3 object
    (the translator refuses a local path). Returns the object keys; uploading them is the deploy's
    business (moto cannot run the code: the real binaries run under `cargo lambda watch`)."""
    keys = []
    for logical_id, res in (template.get("Resources") or {}).items():
        if not isinstance(res, dict):
            continue
        rtype, props = res.get("Type"), res.setdefault("Properties", {})
        if rtype == "AWS::Serverless::Function":
            if props.get("PackageType") == "Image" or "InlineCode" in props:
                continue
            prop = "CodeUri"
        elif rtype == "AWS::Serverless::LayerVersion":
            prop = "ContentUri"
        else:
            continue
        name = ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary") or logical_id
        key = f"{name}.zip"
        keys.append(key)
        before = props.get(prop, "<Globals or default '.'>")
        props[prop] = f"s3://{bucket}/{key}"
        rewrites.append(
            f"{logical_id}.{prop}: {json.dumps(before)} -> s3://{bucket}/{key} (placeholder zip with a "
            f"'bootstrap' file, as `sam package` would upload the built artifact; the code never runs in moto)"
        )
    return keys


def translate(template: dict, parameters: dict[str, str], stack_name: str, region: str = REGION) -> dict:
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    class StaticManagedPolicyLoader:
        """Offline: no iam:ListPolicies. SAM builds the ARNs of the policies it attaches itself; a
        template naming a managed policy by bare name in `Policies` would need an entry here."""

        def load(self) -> dict[str, str]:
            return {}

    # DeploymentPreference asks the translator's feature toggles, which are empty offline: one
    # "not available in Feature Toggle Config" warning per function, about nothing we use.
    logging.getLogger("samtranslator.feature_toggle.feature_toggle").setLevel(logging.ERROR)
    values = {**pseudo_parameters(stack_name, region), **parameters}
    try:
        return transform(copy.deepcopy(template), copy.deepcopy(values), StaticManagedPolicyLoader())
    except InvalidDocumentException as e:
        causes = "\n  ".join(str(c) for c in e.causes)
        raise ProvisionError(f"SAM translation failed: {e}\n  {causes}") from e


def translated_for(stack_name: str, parameters: dict[str, str], path: Path = TEMPLATE) -> dict:
    """The template at `path` translated as provision translated it for a stack deployed with these
    parameter values (iam_check: the deployed stack's manifest gives them)."""
    template = load_template(path)
    declared = template.get("Parameters") or {}
    params = resolve_parameters(template, [f"{k}={v}" for k, v in parameters.items() if k in declared])
    package_code(template, artifacts_bucket(stack_name), [])
    return translate(template, params, stack_name)
