#!/usr/bin/env bash
# Scans template.yaml with checkov (infrastructure-as-code security checks); exits non-zero on any
# failed check. Cheap to re-run: the tool is installed once.
#
#   scripts/checkov.sh            # or: make checkov
#
# Two scans, in one checkov run (framework cloudformation):
#   1. template.yaml itself: checkov reads SAM resources (AWS::Serverless::Function + Globals).
#   2. The CloudFormation that SAM translates it to, as AWS would receive it (not the moto-rewritten
#      copy of scripts/provision.py): it adds what only exists after the transform, i.e. the
#      Lambda permissions, event source mappings, rules and EventInvokeConfigs. Written to
#      .local/checkov/template.translated.json.
# checkov's `serverless` framework is for serverless.yml (Serverless Framework) and finds nothing
# in a SAM template.
#
# A check that does not apply is skipped in template.yaml itself, on the resource:
#   Metadata: {checkov: {skip: [{id: CKV_AWS_xx, comment: "why"}]}}
# SAM copies a function's Metadata onto the generated AWS::Lambda::Function, so one skip covers
# both scans. Every skip and its reason is listed in docs/template.md ("checkov").
#
# checkov lives in its own virtualenv, .venv-checkov (pinned in tools/requirements-checkov.txt):
# its dependency pins conflict with aws-sam-cli's and moto's in .venv. It runs offline
# (--skip-download: no Prisma Cloud guideline download, no update check).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-checkov
requirements=tools/requirements-checkov.txt
out=.local/checkov

want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  echo "checkov: installing checkov into $venv (about a minute)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" >"$venv/.requirements.sha256"
fi

# The SAM translator is in .venv (aws-sam-cli); scripts/setup.sh installs it and is a no-op when
# everything is there already.
[ -x .venv/bin/python ] && .venv/bin/python -c 'import samtranslator' 2>/dev/null || scripts/setup.sh

mkdir -p "$out"
rm -f "$out/template.translated.json" "$out/results_json.json"

# Translate offline with the same code provision uses (scripts/stack/translate.py): `sam package`'s
# CodeUri rewrite, pseudo parameters, the static managed-policy map. No parameter values: the
# template's defaults, as AWS would receive it.
.venv/bin/python - "$out/template.translated.json" <<'PY'
import json, sys
sys.path.insert(0, "scripts")
from stack import ProvisionError
from stack.translate import artifacts_bucket, load_template, package_code, translate

try:
    template = load_template()
    package_code(template, artifacts_bucket("eventline"), [])
    translated = translate(template, {}, "eventline")
except ProvisionError as e:
    sys.exit(f"checkov: {e}")
with open(sys.argv[1], "w") as f:
    json.dump(translated, f, indent=2)
    f.write("\n")
PY

# checkov's own exit code is 1 on a failed check, but 0 when it scanned nothing (e.g. a file it
# could not parse), so the JSON report decides.
set +e
CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE "$venv/bin/checkov" \
  --file template.yaml "$out/template.translated.json" \
  --framework cloudformation --skip-download --compact \
  --output json --output-file-path "$out" >"$out/checkov.log" 2>&1
rc=$?
set -e

"$venv/bin/python" - "$out/results_json.json" "$rc" "$out/checkov.log" template.yaml "$out/template.translated.json" <<'PY'
import json, os, sys
from collections import defaultdict

report, rc, log, *files = sys.argv[1:]
if not os.path.exists(report):
    sys.stdout.write(open(log).read())
    sys.exit(f"checkov: no report (exit code {rc}); its output is above")
data = json.load(open(report))
reports = data if isinstance(data, list) else [data]
results = defaultdict(lambda: {"passed": [], "failed": [], "skipped": []})
version, parsing_errors = "?", 0
for r in reports:
    version = r.get("summary", {}).get("checkov_version", version)
    parsing_errors += r.get("summary", {}).get("parsing_errors", 0)
    for kind in ("passed", "failed", "skipped"):
        for c in r.get("results", {}).get(f"{kind}_checks", []):
            results[os.path.abspath(c["file_abs_path"])][kind].append(c)

problems = []
print(f"checkov {version} (framework cloudformation)")
for f in files:
    res = results.get(os.path.abspath(f))
    if not res:
        problems.append(f"{f}: no check ran on it (not parsed as CloudFormation?)")
        continue
    print(f"  {f}: passed {len(res['passed'])}, failed {len(res['failed'])}, skipped {len(res['skipped'])}")
    for c in res["failed"]:
        lines = "-".join(str(n) for n in c["file_line_range"])
        problems.append(f"FAILED {c['check_id']} {c['resource']} ({f}:{lines}): {c['check_name']}")
    skipped = defaultdict(list)
    for c in res["skipped"]:
        skipped[c["check_id"]].append(c["resource"].split(".", 1)[-1])
    for check_id, resources in sorted(skipped.items()):
        print(f"    skipped {check_id}: {', '.join(resources)}")
if parsing_errors:
    problems.append(f"{parsing_errors} file(s) could not be parsed; see {log}")
if problems:
    print("\n".join(problems))
    print("checkov: failed. Fix the resource, or skip the check on it with a reason "
          "(Metadata: checkov: skip, and docs/template.md)")
    sys.exit(1)
if rc != "0":
    sys.stdout.write(open(log).read())
    sys.exit(f"checkov: exit code {rc} although no check failed; its output is above")
print("checkov: passed (every skip is justified on its resource in template.yaml)")
PY
