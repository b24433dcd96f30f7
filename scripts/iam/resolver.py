"""CloudFormation intrinsics resolved against the deployed stack's physical names (the
manifest), so the policies' ARNs are the deployed ones."""

from __future__ import annotations

import re
from typing import Any

from iam import IamCheckError, Stack
from iam.services import bus_arn, table_arn
from stack.translate import pseudo_parameters


NO_VALUE = object()


class ManifestResolver:
    """The one evaluation of CloudFormation intrinsics outside moto. provision asks moto's
    CloudFormation for every value it needs (scripts/stack/resolve.py), but this check runs after the end-to-end moto
    server is gone, on template.yaml as it is now (so a policy edited since the run is checked
    without redeploying), whose policy documents moto never resolved. Nor can moto's copy of the
    deployed roles stand in: its CloudFormation stores inline policy documents as Python text and
    does not attach managed policies. Refs and attributes come from the deployed stack's physical
    names in the manifest; ARNs are built from them."""

    def __init__(self, translated: dict, manifest: dict, stack: Stack):
        self.resources = translated.get("Resources") or {}
        self.conditions = translated.get("Conditions") or {}
        declared = translated.get("Parameters") or {}
        pseudo = pseudo_parameters(manifest["stack_name"])
        pseudo.update({"AWS::Region": stack.region, "AWS::AccountId": stack.account, "AWS::Partition": stack.partition})
        pseudo["AWS::StackId"] = f"arn:{stack.partition}:cloudformation:{stack.region}:{stack.account}:stack/{manifest['stack_name']}/local"
        self.params = {**pseudo, **{k: str(v) for k, v in (manifest.get("parameters") or {}).items() if k in declared}}
        for name, spec in declared.items():
            self.params.setdefault(name, str(spec.get("Default")))
        self.physical = manifest.get("resources") or {}
        self.stack = stack
        self._cond_cache: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._cond_cache:
            self._cond_cache[name] = bool(self.resolve(self.conditions[name]))
        return self._cond_cache[name]

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.params:
            return self.params[name]
        if self.physical.get(name):
            return self.physical[name]
        raise IamCheckError(f"cannot resolve Ref {name}: the manifest has no physical id for it")

    def sub(self, text: str, variables: dict) -> str:
        def one(m: re.Match) -> str:
            expr = m.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(self.resolve(variables[expr]))
            if "." in expr and not expr.startswith("AWS::"):
                return str(self.getatt(*expr.split(".", 1)))
            return str(self.ref(expr))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, v: Any) -> Any:
        if isinstance(v, list):
            return [x for x in (self.resolve(i) for i in v) if x is not NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            ((k, a),) = v.items()
            if k == "Ref":
                return self.ref(a)
            if k == "Fn::GetAtt":
                lid, attr = a.split(".", 1) if isinstance(a, str) else a
                return self.getatt(lid, self.resolve(attr))
            if k == "Fn::Sub":
                return self.sub(a, {}) if isinstance(a, str) else self.sub(a[0], a[1])
            if k == "Fn::Join":
                return a[0].join(str(x) for x in self.resolve(a[1]))
            if k == "Fn::Select":
                return self.resolve(a[1])[int(self.resolve(a[0]))]
            if k == "Fn::Split":
                return str(self.resolve(a[1])).split(a[0])
            if k == "Fn::If":
                return self.resolve(a[1] if self.condition(a[0]) else a[2])
            if k == "Fn::Equals":
                x, y = self.resolve(a)
                return str(x) == str(y)
            if k == "Fn::Not":
                return not self.resolve(a[0])
            if k == "Fn::And":
                return all(self.resolve(a))
            if k == "Fn::Or":
                return any(self.resolve(a))
            if k == "Condition":
                return self.condition(a)
            if k.startswith("Fn::"):
                raise IamCheckError(f"cannot resolve {k} in a policy")
        return {k: r for k, x in v.items() if (r := self.resolve(x)) is not NO_VALUE}

    def getatt(self, lid: str, attr: str) -> Any:
        rtype = self.resources.get(lid, {}).get("Type")
        pid = self.physical.get(lid)
        if not pid:
            raise IamCheckError(f"cannot resolve {lid}.{attr}: the manifest has no physical id for {lid}")
        s = self.stack
        arn = None
        if rtype == "AWS::SQS::Queue":
            name = pid.rsplit("/", 1)[-1]
            account = pid.rstrip("/").split("/")[-2]
            arn = f"arn:{s.partition}:sqs:{s.region}:{account}:{name}"
            extra = {"QueueName": name, "QueueUrl": pid}
        elif rtype == "AWS::DynamoDB::Table":
            arn, extra = table_arn(s, pid), {}
        elif rtype == "AWS::S3::Bucket":
            arn, extra = f"arn:{s.partition}:s3:::{pid}", {}
        elif rtype == "AWS::Events::EventBus":
            arn, extra = bus_arn(s, pid), {"Name": pid}
        elif rtype == "AWS::IAM::Role":
            arn, extra = f"arn:{s.partition}:iam::{s.account}:role/{pid}", {}
        elif rtype == "AWS::Lambda::Function":
            arn, extra = f"arn:{s.partition}:lambda:{s.region}:{s.account}:function:{pid}", {}
        else:
            extra = {}
        values = {"Arn": arn, **extra} if arn else extra
        if attr not in values:
            raise IamCheckError(f"cannot resolve Fn::GetAtt {lid}.{attr} ({rtype}) from the manifest")
        return values[attr]
