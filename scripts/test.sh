#!/usr/bin/env bash
# The project's test command: import contracts, then the whole pytest suite (slow tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system_packages.sh
.venv/bin/lint-imports
.venv/bin/python -m pytest -q --durations=40 "$@"
