#!/usr/bin/env bash
# Sets up the environment and runs the whole test suite (unit tests, doctests,
# data-prep tests, a --debug run of every hparams file, resume tests).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
source tools/setup_env.sh
python -m pytest -q "$@"
