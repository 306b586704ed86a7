#!/usr/bin/env bash
# The whole test suite, after setting up what it needs (scripts/setup.sh: the locked .venv): lint, types, then
# pytest (GPU tests skip on CPU). Arguments go to pytest. NPC_WORKER_VENV and NPC_WORKER_LOCK pick another
# environment, as deploy/update-constraints.sh does; tests/deploy/test_constraints.py checks the environment
# against the same lock.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${NPC_WORKER_VENV:-.venv}"
export NPC_WORKER_LOCK="${NPC_WORKER_LOCK:-deploy/constraints.txt}"
export HF_HUB_OFFLINE=1
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy"
"$VENV/bin/lint-imports" --no-cache >/dev/null || "$VENV/bin/lint-imports" --no-cache
"$VENV/bin/pytest" -q "$@"
