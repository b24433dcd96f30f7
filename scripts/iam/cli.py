"""The command line of scripts/iam_check.py."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import iam
from iam import DEFAULT_MANIFEST, DEFAULT_RECORDING, IamCheckError
from iam.check import run_check
from iam.policies import translated_template
from iam.selftest import PROOF_ACTION, PROOF_FUNCTION, prove_failure
from iam.verdict import render
from stack import ProvisionError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=iam.__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recording", type=Path, default=DEFAULT_RECORDING, help="moto recording (MOTO_RECORDER_FILEPATH)")
    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help="manifest of the stack the functions ran against")
    p.add_argument("--translated", type=Path, help="use this translated template instead of translating template.yaml")
    p.add_argument("--prove-failure", action="store_true", help=f"also show that removing {PROOF_ACTION} from {PROOF_FUNCTION} is caught")
    args = p.parse_args(argv)
    try:
        for path, what in ((args.recording, "recording"), (args.manifest, "manifest")):
            if not path.is_file():
                raise IamCheckError(f"no {what} at {path}: run `make test` (or the end-to-end test with recording on) first")
        manifest = json.loads(args.manifest.read_text())
        translated = json.loads(args.translated.read_text()) if args.translated else translated_template(manifest)
        report, policies = run_check(args.recording, manifest, translated)
        print(render(report, policies))
        status = 0 if report.ok else 1
        print(
            f"iam check {'passed' if report.ok else 'FAILED'}: {len(report.calls)} function calls, {report.pairs_checked} "
            f"(action, resource) checks, {len(report.violations)} not permitted, {len(report.unmapped)} unmapped, "
            f"{len(report.silent_functions)} functions without calls ({args.recording})"
        )
        if args.prove_failure:
            problems = prove_failure(args.recording, manifest, translated, report)
            for problem in problems:
                print(f"iam check self-test FAILED: {problem}")
            if not problems:
                print(f"iam check self-test passed: without {PROOF_ACTION}, {PROOF_FUNCTION}'s calls are reported and nothing else")
            status = status or (1 if problems else 0)
        return status
    except (IamCheckError, ProvisionError) as e:
        print(f"iam_check.py: error: {e}", file=sys.stderr)
        return 1
