"""moto's CloudFormation as the one resolver of template expressions.

provision reads the deployed stack back from moto's APIs. A few values only the template holds:
the properties of a resource moto's CloudFormation skips, a property moto's Lambda drops
(`LoggingConfig`), the name of a bus (moto reports no physical id for it), whether a `Condition`
held (moto lists a resource of a false condition like a skipped one: nameless). Rather than
evaluate intrinsics a second time here, each such expression goes along as an extra stack output;
moto resolves it with the rest of the stack, and the answer is read back with the outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import ProvisionError

OUTPUT_PREFIX = "EventlineLocal"
NO_VALUE = object()  # an expression that resolved to AWS::NoValue (its output is absent)

# Functions that return a list: a stack output holds a string, so moto would hand back its repr.
LIST_FUNCTIONS = {"Fn::Split", "Fn::GetAZs", "Fn::Cidr"}


@dataclass(frozen=True)
class Answer:
    """Stands for the resolved value of one expression, until the stack exists."""

    key: str


@dataclass(frozen=True)
class Choice:
    """An `Fn::If` whose branches are objects or lists (a stack output holds a string only): whether
    its condition holds, and each branch asked on its own, under the condition that selects it."""

    holds: Answer
    then: Any
    otherwise: Any


def intrinsic(value: Any) -> bool:
    if not (isinstance(value, dict) and len(value) == 1):
        return False
    (key,) = value
    return key == "Ref" or key.startswith("Fn::")


class Questions:
    """Expressions to resolve, as the stack outputs that ask moto for them."""

    def __init__(self) -> None:
        self.outputs: dict[str, dict] = {}
        self.conditions: dict[str, dict] = {}  # added to the template: a branch's condition and the resource's
        self._conditions: dict[str, Answer] = {}

    def _output(self, body: dict) -> Answer:
        key = f"{OUTPUT_PREFIX}{len(self.outputs) + 1}"
        self.outputs[key] = body
        return Answer(key)

    def ask(self, value: Any, condition: str | None = None) -> Any:
        """`value` with each intrinsic function in it replaced by an Answer. `condition`: the
        condition of the resource it belongs to (moto does not evaluate an output whose condition is
        false, so it never resolves a reference to a resource that was not created)."""
        if intrinsic(value) and "Fn::If" in value and any(isinstance(b, (dict, list)) and not intrinsic(b) for b in value["Fn::If"][1:]):
            cond, then, otherwise = value["Fn::If"]
            return Choice(
                self.holds(cond),
                self.ask(then, self._branch(condition, cond, negate=False)),
                self.ask(otherwise, self._branch(condition, cond, negate=True)),
            )
        if intrinsic(value):
            if next(iter(value)) in LIST_FUNCTIONS:
                raise ProvisionError(f"cannot resolve {json.dumps(value)} through a stack output: it is a list")
            return self._output({"Value": value, **({"Condition": condition} if condition else {})})
        if isinstance(value, list):
            return [self.ask(v, condition) for v in value]
        if isinstance(value, dict):
            return {k: self.ask(v, condition) for k, v in value.items()}
        return value

    def _branch(self, resource: str | None, cond: str, negate: bool) -> str:
        """A condition under which one branch of `Fn::If [cond, ...]` is evaluated, so that moto never
        resolves a branch that refers to a resource its condition left out."""
        expr: dict = {"Condition": cond}
        if negate:
            expr = {"Fn::Not": [expr]}
        if resource:
            expr = {"Fn::And": [{"Condition": resource}, expr]}
        elif not negate:
            return cond
        name = f"{OUTPUT_PREFIX}Branch{len(self.conditions) + 1}"
        self.conditions[name] = expr
        return name

    def holds(self, condition: str) -> Answer:
        """Whether `condition` is true: its output exists."""
        if condition not in self._conditions:
            self._conditions[condition] = self._output({"Condition": condition, "Value": "true"})
        return self._conditions[condition]

    def attach(self, translated: dict, rewrites: list[str]) -> None:
        if not self.outputs:
            return
        outputs = translated.setdefault("Outputs", {})
        clash = sorted(set(outputs) & set(self.outputs))
        if clash:
            raise ProvisionError(f"local rewrite: the template already has outputs named {', '.join(clash)}")
        outputs.update(self.outputs)
        conditions = translated.setdefault("Conditions", {})
        clash = sorted(set(conditions) & set(self.conditions))
        if clash:
            raise ProvisionError(f"local rewrite: the template already has conditions named {', '.join(clash)}")
        conditions.update(self.conditions)
        keys = list(self.outputs)
        rewrites.append(
            f"Outputs: added {keys[0]}..{keys[-1]} ({len(keys)}), the template expressions the manifest needs that "
            f"moto's APIs do not answer (skipped resources' properties, LoggingConfig, bus names, conditions), so "
            f"that moto's CloudFormation resolves them and nothing else evaluates intrinsics"
            + (
                f"; conditions {', '.join(self.conditions)} added, under which each branch of an Fn::If with object "
                f"branches is asked"
                if self.conditions
                else ""
            )
        )


class Answers:
    """The resolved values, from the created stack's outputs."""

    def __init__(self, questions: Questions, stack_outputs: dict[str, str]):
        self.questions = questions
        self.outputs = stack_outputs

    def holds(self, answer: Answer) -> bool:
        return answer.key in self.outputs

    def __call__(self, value: Any) -> Any:
        """`value` with every Answer replaced by the value moto resolved (NO_VALUE ones dropped)."""
        if isinstance(value, Choice):
            return self(value.then) if self.holds(value.holds) else self(value.otherwise)
        if isinstance(value, Answer):
            if value.key not in self.outputs:
                return NO_VALUE
            resolved = self.outputs[value.key]
            if resolved.startswith("<moto."):
                expr = json.dumps(self.questions.outputs[value.key]["Value"])
                raise ProvisionError(
                    f"moto's CloudFormation resolved {expr} to a Python object ({resolved}), not a value; a Ref to an "
                    f"AWS::Events::EventBus does that: use Fn::GetAtt <Bus>.Name"
                )
            return resolved
        if isinstance(value, list):
            return [r for r in (self(v) for v in value) if r is not NO_VALUE]
        if isinstance(value, dict):
            return {k: r for k, v in value.items() if (r := self(v)) is not NO_VALUE}
        return value


def stack_outputs(stack: dict) -> dict[str, str]:
    """A created stack's outputs (the template's own and the questions' answers)."""
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
