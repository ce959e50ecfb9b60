#!/usr/bin/env bash
# Install herbx with its test dependencies into .venv and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test,offline]'
.venv/bin/ruff check .
.venv/bin/pytest -q "$@"
