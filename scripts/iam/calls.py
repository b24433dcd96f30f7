"""Recording -> calls: each recorded request whose user agent names an app (`app/<function>`,
set by the functions' SDK config from AWS_LAMBDA_FUNCTION_NAME) is a call of that function, its
service from the SigV4 credential scope, its operation from X-Amz-Target, the query `Action` or
the S3 REST method and path. A request without an app name (provisioning, the local runner,
adapter tests) is not a function's call and is ignored."""

from __future__ import annotations

from typing import Iterator

from iam import Call, Stack
from iam.recording import app_name, credential_scope_service, header, json_body, query_protocol_body
from iam.services import dynamodb_pairs, events_pairs, s3_pairs, ses_pairs, sqs_pairs


def call_of(entry: dict, function: str, stack: Stack) -> Call:
    """Maps one recorded request to the IAM (action, resource) pairs it needs."""
    service = credential_scope_service(entry)
    target = header(entry, "x-amz-target") or ""
    op = target.rsplit(".", 1)[-1] if target else ""
    call = Call(function=function, operation=f"{service}.{op or entry.get('method')}")
    try:
        if service == "dynamodb" and op:
            call.pairs = dynamodb_pairs(op, json_body(entry), stack)
        elif service == "sqs":
            if op:
                params = json_body(entry)
            else:
                params = query_protocol_body(entry)
                op = params.get("Action", "")
                call.operation = f"sqs.{op}"
            if not op:
                raise ValueError("no SQS operation in the request")
            call.pairs = sqs_pairs(op, params, stack)
        elif service == "events" and op:
            call.pairs = events_pairs(op, json_body(entry), stack)
        elif service == "s3":
            call.pairs = s3_pairs(entry, stack)
        elif service == "ses":
            call.pairs = ses_pairs(entry, stack)
        else:
            raise ValueError(f"service {service!r} (target {target!r}) is not mapped")
        if not call.pairs:
            raise ValueError("the request names no resource")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        call.pairs = []
        call.unmapped = f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e)
    return call


def function_calls(entries: Iterator[dict], functions: dict[str, str], stack: Stack) -> tuple[list[Call], dict[str, int]]:
    """Calls made by the stack's functions. `functions` maps every name a function's calls can carry
    as app name (the binary name under cargo lambda watch, the deployed name in AWS) to the
    function's name in the report. Returns the calls and the count of app names not in the stack."""
    calls: list[Call] = []
    foreign: dict[str, int] = {}
    for entry in entries:
        app = app_name(entry)
        if app is None:
            continue
        if app not in functions:
            foreign[app] = foreign.get(app, 0) + 1
            continue
        calls.append(call_of(entry, functions[app], stack))
    return calls, foreign
