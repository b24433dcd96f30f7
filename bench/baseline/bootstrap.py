"""A minimal Lambda Python runtime: the Runtime API loop over urllib.

Like the managed Python runtime, it imports the handler module (`_HANDLER`, default
`handler.handler`) at init, posting to /runtime/init/error if that fails, then loops:
GET /invocation/next -> handler(event, context) -> POST /invocation/{id}/response (or /error).
Lighter than the real runtime (awslambdaric), so it slightly flatters the Python baseline.
"""

import importlib
import json
import os
import sys
import time
import traceback
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"


def post(path, payload):
    req = urllib.request.Request(API + path, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()


def error_payload(e):
    return {"errorMessage": str(e), "errorType": type(e).__name__,
            "stackTrace": traceback.format_tb(e.__traceback__)}


class Context:
    def __init__(self, request_id, deadline_ms, arn):
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


def main():
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", os.path.dirname(os.path.abspath(__file__))))
    module, _, function = os.environ.get("_HANDLER", "handler.handler").rpartition(".")
    try:
        handler = getattr(importlib.import_module(module), function)
    except Exception as e:  # noqa: BLE001 - reported to the Runtime API, as Lambda does
        post("/init/error", error_payload(e))
        sys.exit(1)
    while True:
        with urllib.request.urlopen(API + "/invocation/next") as r:
            event = json.loads(r.read())
            request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
            deadline_ms = int(r.headers["Lambda-Runtime-Deadline-Ms"])
            arn = r.headers["Lambda-Runtime-Invoked-Function-Arn"]
            trace = r.headers.get("Lambda-Runtime-Trace-Id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        try:
            result = handler(event, Context(request_id, deadline_ms, arn))
        except Exception as e:  # noqa: BLE001
            post(f"/invocation/{request_id}/error", error_payload(e))
            continue
        post(f"/invocation/{request_id}/response", result)


if __name__ == "__main__":
    main()
