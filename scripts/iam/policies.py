"""Template -> policies per function: the SAM translation of template.yaml, made by provision's
own translation (scripts/stack/translate.py) with the deployed stack's parameters; every policy
of each function's role (inline, attached AWS::IAM::Policy, managed), resolved."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from iam import IamCheckError, Stack
from iam.resolver import ManifestResolver
from stack.local import getatt_target
from stack.translate import TEMPLATE, translated_for


def translated_template(manifest: dict, template_path: Path = TEMPLATE) -> dict:
    """template.yaml through provision's SAM translation, with the deployed stack's parameters."""
    return translated_for(manifest["stack_name"], manifest.get("parameters") or {}, template_path)


@dataclass
class RolePolicies:
    role: str  # logical id
    documents: list[tuple[str, dict]]  # (where it comes from, resolved policy document)


def aws_managed_policy(arn: str) -> dict:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    data = json.loads(aws_managed_policies_data)
    name = arn.rsplit("/", 1)[-1]
    if name not in data:
        raise IamCheckError(f"AWS managed policy {arn} is unknown to moto's copy of the managed policies")
    return data[name]["Document"]


def role_of(function_res: dict) -> str:
    role = (function_res.get("Properties") or {}).get("Role")
    ga = getatt_target(role)
    if not ga or ga[1] != "Arn":
        raise IamCheckError(f"function role {json.dumps(role)} is not a role of this template (Fn::GetAtt X.Arn)")
    return ga[0]


def policies_by_function(translated: dict, manifest: dict, stack: Stack) -> dict[str, RolePolicies]:
    resolver = ManifestResolver(translated, manifest, stack)
    resources = translated["Resources"]
    out = {}
    for fn in manifest["functions"]:
        res = resources[fn["logical_id"]]
        role_lid = role_of(res)
        role = resources[role_lid]
        props = role.get("Properties") or {}
        if "PermissionsBoundary" in props:
            raise IamCheckError(f"{role_lid}: PermissionsBoundary is not evaluated by this check")
        docs: list[tuple[str, dict]] = []
        try:
            docs += [(f"{role_lid} inline {p.get('PolicyName')}", resolver.resolve(p["PolicyDocument"])) for p in props.get("Policies") or []]
            managed = resolver.resolve(props.get("ManagedPolicyArns") or [])
        except IamCheckError as e:
            raise IamCheckError(
                f"{role_lid}: {e}. Was the stack deployed from this template.yaml? Run the end-to-end test again."
            ) from e
        for arn in managed:
            if re.fullmatch(r"arn:[^:]+:iam::aws:policy/.+", str(arn)):
                docs.append((f"{role_lid} managed {arn}", aws_managed_policy(arn)))
            else:
                lid = next((k for k, v in resolver.physical.items() if v == arn and resources.get(k, {}).get("Type") == "AWS::IAM::ManagedPolicy"), None)
                if not lid:
                    raise IamCheckError(f"{role_lid}: managed policy {arn} is neither AWS managed nor in the template")
        for lid, pres in resources.items():
            if pres.get("Type") not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                continue
            if "Condition" in pres and not resolver.condition(pres["Condition"]):
                continue
            pprops = pres.get("Properties") or {}
            if {"Ref": role_lid} in (pprops.get("Roles") or []):
                docs.append((f"{lid} ({pres['Type']})", resolver.resolve(pprops["PolicyDocument"])))
        for where, doc in docs:
            statements = doc.get("Statement")
            for st in statements if isinstance(statements, list) else [statements]:
                unsupported = {"NotResource", "NotPrincipal"} & set(st)
                if unsupported:
                    # moto's evaluator reads a statement without Resource as matching every resource.
                    raise IamCheckError(f"{where}: {sorted(unsupported)} is not supported by the evaluator")
        out[fn["name"]] = RolePolicies(role_lid, docs)
    return out
