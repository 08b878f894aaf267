#!/usr/bin/env bash
# Creates .venv (if missing) and installs the pinned stack and this package into it.
# Sourced by tools/demo.sh and tools/test.sh; safe to rerun (nothing to do when up to date).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
# pip takes seconds even with everything installed: it runs again only when a file that
# defines the environment changed since its last complete install (or the stamp is gone).
stamp=".venv/installed-$(cat requirements.txt pyproject.toml setup.cfg | cksum | cut -d' ' -f1)"
if [ ! -e "$stamp" ]; then
    echo "[setup] installing requirements.txt (first time: a few minutes, about 5 GB with torch)"
    python -m pip install --quiet --upgrade pip
    python -m pip install --quiet -r requirements.txt
    python -m pip install --quiet --no-deps -e .
    rm -f .venv/installed-*
    touch "$stamp"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1  # nothing here may reach a model hub
