#!/usr/bin/env bash
# Run the whole test suite (sets up .venv and Debian packages first when missing).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/python -m pytest -q -n 2 "$@"
