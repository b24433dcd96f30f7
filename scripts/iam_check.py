#!/usr/bin/env python3
"""Check IAM by behaviour: every AWS call a function really made must be permitted by its role.

    .venv/bin/python scripts/iam_check.py [--recording target/iam/recording.jsonl]
        [--manifest target/e2e/stack.json] [--translated FILE] [--prove-failure]

Input: a moto request recording (MOTO_ENABLE_RECORDING, written by every moto server that
scripts/test.sh starts) and the manifest provision.py wrote for the end-to-end stack. The check
itself is the package scripts/iam/ (its __init__ lists the parts); docs/iam.md explains it.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from iam.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
