#!/usr/bin/env bash
# Creates .venv (if missing) and installs the pinned stack and this package into it.
# Sourced by tools/demo.sh and tools/test.sh; safe to rerun (pip skips what is installed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
echo "[setup] installing requirements.txt (first time: a few minutes, about 5 GB with torch)"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -r requirements.txt
python -m pip install --quiet --no-deps -e .
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1  # nothing here may reach a model hub
