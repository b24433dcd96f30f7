#!/usr/bin/env python3
"""Deploy the stack described by template.yaml into a running moto server.

    .venv/bin/python scripts/provision.py --endpoint http://127.0.0.1:PORT [--reset]
        [--stack-name eventline-local] [--parameter Key=Value ...]
        [--out .local/stack.json] [--env-out .local/functions.env] [--dump-template PATH]
    .venv/bin/python scripts/provision.py --check [--out .local/stack.json] [--endpoint URL]

The stack comes FROM template.yaml, through the real SAM translator (samtranslator), so a resource
added to the template appears locally with no other edit. Only the local rewrites listed in
docs/local.md ("Provisioning from template.yaml") are applied on top, and every one of them is
recorded in the manifest under "local_rewrites".

Steps (each a module of scripts/stack/): translate (template.yaml -> CloudFormation, code pointed at
placeholder zips) -> local (rewrites for moto, and the template expressions moto is asked to
resolve as extra outputs) -> deploy (create the stack in moto, read it back, apply what moto's
CloudFormation skips) -> manifest (the manifest and the env file).

--check sends one synthetic event per tapped rule onto its bus and verifies that it arrives on
every tap queue (and that each SQS event source has a DLQ redrive, and each function's log group
exists with a retention). Run it before a runner is attached to the stack: it sends synthetic
messages.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from stack import ROOT, ProvisionError, deploy, local, log, manifest, translate
from stack.check import check


def provision(args: argparse.Namespace) -> int:
    started = time.monotonic()
    aws = deploy.Aws(args.endpoint)
    template = translate.load_template(Path(args.template))
    parameters = translate.resolve_parameters(template, args.parameter)  # bad input fails before anything is reset
    aws.ping()
    if args.reset:
        aws.reset()
        log(f"moto at {aws.endpoint}: state reset")
    deploy.ensure_absent(aws, args.stack_name)

    rewrites: list[str] = []
    bucket = translate.artifacts_bucket(args.stack_name)
    code = translate.package_code(template, bucket, rewrites)
    translated = translate.translate(template, parameters, args.stack_name)
    taps = local.tap_eventbridge_lambda_targets(translated, rewrites)
    esm_enabled = local.disable_event_source_mappings(translated, rewrites)
    pending = local.ask_moto(translated, esm_enabled, rewrites)
    if args.dump_template:
        Path(args.dump_template).parent.mkdir(parents=True, exist_ok=True)
        Path(args.dump_template).write_text(json.dumps(translated, indent=2) + "\n")

    deploy.upload_code(aws, bucket, code)
    stack = deploy.create_stack(aws, args.stack_name, translated, parameters)
    answers = deploy.answers_of(stack, pending)
    physical, missing = deploy.physical_ids(aws, args.stack_name, translated, pending, answers)
    not_emulated = deploy.apply_skipped_resources(aws, pending, answers, physical, missing, rewrites)
    stack_manifest, warnings = manifest.build(
        aws, stack, translated, physical, taps, pending, answers, not_emulated, rewrites
    )

    for path, text in (
        (args.out, json.dumps(stack_manifest, indent=2) + "\n"),
        (args.env_out, manifest.env_file_text(stack_manifest)),
    ):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    print(manifest.summary(stack_manifest, translated, bucket, time.monotonic() - started))
    print(f"  manifest  : {args.out}\n  env file  : {args.env_out}")
    for w in warnings:
        log(w)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", help="moto server URL, e.g. http://127.0.0.1:5055 (--check: default from the manifest)")
    p.add_argument("--stack-name", default="eventline-local")
    p.add_argument("--parameter", action="append", default=[], metavar="Key=Value", help="template parameter (repeatable)")
    p.add_argument("--out", default=str(ROOT / ".local" / "stack.json"), help="manifest path")
    p.add_argument("--env-out", default=str(ROOT / ".local" / "functions.env"), help="env file for cargo lambda watch")
    p.add_argument("--reset", action="store_true", help="POST /moto-api/reset first (wipes ALL state of that moto server)")
    p.add_argument("--template", default=str(translate.TEMPLATE), help=argparse.SUPPRESS)
    p.add_argument("--dump-template", metavar="PATH", help="also write the translated, locally rewritten template")
    p.add_argument("--check", action="store_true", help="only verify the provisioned stack described by --out")
    args = p.parse_args(argv)
    try:
        if args.check:
            return check(Path(args.out), args.endpoint)
        if not args.endpoint:
            p.error("--endpoint is required")
        return provision(args)
    except ProvisionError as e:
        log(f"provision.py: error: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
