#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs the project with its pinned dependency set.
# BOOTSTRAP_EXTRAS picks the optional extras (comma-separated, default "dev,airflow,kubeflow"):
# dev for the tests, airflow for the Airflow DAG factory, kubeflow for the KFP compiler (both
# tested in tests/orchestration). BOOTSTRAP_EXTRAS=dev installs no orchestrator.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
EXTRAS=${BOOTSTRAP_EXTRAS:-dev,airflow,kubeflow}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24" wheel
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[${EXTRAS}]"
