#!/usr/bin/env bash
# Installs what the project needs on a fresh machine; cheap to re-run (it
# skips what is already there). Needs: a Rust toolchain (rustup) and python3.
#   - rustfmt and clippy
#   - .venv/ with moto server, cargo-lambda, AWS SAM CLI, cfn-lint and zig
#     (versions pinned in tools/requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }
command -v python3 >/dev/null || { echo "setup: python3 not found" >&2; exit 1; }

if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

want=$(sha256sum tools/requirements.txt | cut -d' ' -f1)
if [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$want" ]; then
  echo "setup: installing moto, cargo-lambda, aws-sam-cli, cfn-lint, ziglang into .venv (about a minute)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
  echo "$want" >.venv/.requirements.sha256
fi
