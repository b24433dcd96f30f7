#!/usr/bin/env python3
"""Deploy the stack described by template.yaml into a running moto server.

    .venv/bin/python scripts/provision.py --endpoint http://127.0.0.1:PORT [--reset]
        [--stack-name eventline-local] [--parameter Key=Value ...]
        [--out .local/stack.json] [--env-out .local/functions.env] [--dump-template PATH]
    .venv/bin/python scripts/provision.py --endpoint URL --reset --regions us-west-2,us-east-1,eu-west-1
    .venv/bin/python scripts/provision.py --check [--out .local/stack.json] [--endpoint URL]

The stack comes FROM template.yaml, through the real SAM translator (samtranslator), so a resource
added to the template appears locally with no other edit. Only the local rewrites listed in
docs/local.md ("Provisioning from template.yaml") are applied on top, and every one of them is
recorded in the manifest under "local_rewrites".

Steps (each a module of scripts/stack/): translate (template.yaml -> CloudFormation, code pointed at
placeholder zips) -> local (rewrites for moto, and the template expressions moto is asked to
resolve as extra outputs) -> deploy (create the stack in moto, read it back, apply what moto's
CloudFormation skips) -> manifest (the manifest and the env file).

--regions deploys the same template once per region of one moto server (regions.py): the first region
is the primary, whose users global table becomes one table per region (devstack replicates between
them); each region's manifest and env file go to <dir of --out>/<region>/.

--check sends one synthetic event per tapped rule onto its bus and verifies that it arrives on
every tap queue (and that each SQS event source has a DLQ redrive, and each function's log group
exists with a retention). Run it before a runner is attached to the stack: it sends synthetic
messages.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

from stack import REGION, ROOT, ProvisionError, deploy, local, log, manifest, regions, translate
from stack.check import check


def provision(args: argparse.Namespace) -> int:
    started = time.monotonic()
    template = translate.load_template(Path(args.template))
    # Bad input fails before anything is reset.
    if args.regions:
        set_ = regions.parse(args.regions)
        plan = {r: translate.resolve_parameters(template, regions.parameters(set_, r, args.parameter)) for r in set_}
    else:
        plan = {REGION: translate.resolve_parameters(template, args.parameter)}
    aws = deploy.Aws(args.endpoint)
    aws.ping()
    if args.reset:
        aws.reset()
        log(f"moto at {aws.endpoint}: state reset")
    for region in plan:
        deploy.ensure_absent(aws.in_region(region), args.stack_name)

    manifests, reports = {}, []
    for region, parameters in plan.items():  # the primary first: its global table makes every replica
        manifests[region], report = deploy_stack(
            aws.in_region(region), copy.deepcopy(template), parameters, args, regional=bool(args.regions)
        )
        reports.append(report)
    regions.share_global_tables(manifests)

    for (region, stack_manifest), (summary, warnings) in zip(manifests.items(), reports):
        out, env_out = Path(args.out), Path(args.env_out)
        if args.regions:
            out, env_out = regions.path_for(args.out, region), regions.path_for(args.env_out, region)
        for path, text in (
            (out, json.dumps(stack_manifest, indent=2) + "\n"),
            (env_out, manifest.env_file_text(stack_manifest, default_region=bool(args.regions))),
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        print(summary)
        print(f"  manifest  : {out}\n  env file  : {env_out}")
        for w in warnings:
            log(w)
    if args.regions:
        print(f"{len(plan)} regions provisioned in {time.monotonic() - started:.1f} s (primary: {next(iter(plan))})")
    return 0


def deploy_stack(
    aws: deploy.Aws, template: dict, parameters: dict[str, str], args: argparse.Namespace, regional: bool
) -> tuple[dict, tuple[str, list[str]]]:
    """One region's stack: translated, rewritten, deployed and read back. Returns its manifest, and
    its summary and warnings to print."""
    started = time.monotonic()
    rewrites: list[str] = []
    bucket = translate.artifacts_bucket(args.stack_name, aws.region if regional else None)
    code = translate.package_code(template, bucket, rewrites)
    translated = translate.translate(template, parameters, args.stack_name, aws.region)
    taps = local.tap_eventbridge_lambda_targets(translated, rewrites)
    local.invoke_functions_not_aliases(translated, rewrites)  # after the taps: they name the function
    esm_enabled = local.disable_event_source_mappings(translated, rewrites)
    pending = local.ask_moto(translated, esm_enabled, rewrites)
    if args.dump_template:
        dump = regions.path_for(args.dump_template, aws.region) if regional else Path(args.dump_template)
        dump.parent.mkdir(parents=True, exist_ok=True)
        dump.write_text(json.dumps(translated, indent=2) + "\n")

    deploy.upload_code(aws, bucket, code)
    stack = deploy.create_stack(aws, args.stack_name, translated, parameters)
    answers = deploy.answers_of(stack, pending)
    physical, missing = deploy.physical_ids(aws, args.stack_name, translated, pending, answers)
    not_emulated, global_tables = deploy.apply_skipped_resources(aws, pending, answers, physical, missing, rewrites)
    stack_manifest, warnings = manifest.build(
        aws, stack, translated, physical, taps, pending, answers, not_emulated, rewrites, global_tables
    )
    summary = manifest.summary(stack_manifest, translated, bucket, time.monotonic() - started, show_region=regional)
    return stack_manifest, (summary, warnings)


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
    p.add_argument(
        "--regions",
        metavar="R1,R2[,R3]",
        help="one stack per region, the first the primary (PrimaryRegion, PeerRegion1/2 set for each); manifest and "
        "env file of each region under <dir of --out>/<region>/ (docs/multi-region.md, 'Local run')",
    )
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
