#!/usr/bin/env bash
# Set up everything the worker, its demo and its tests need on a fresh Debian/Ubuntu machine:
# redis-server (when missing), a virtual environment in .venv, torch, and the package with dev extras, every
# distribution at the version the lock deploy/constraints.txt pins (deploy/update-constraints.sh refreshes it).
# Without an NVIDIA GPU it installs the CPU build of torch (pinned, fast); with one, the default CUDA build (the
# lock leaves torch out). Re-running is cheap: finished steps are skipped; a changed lock or pyproject.toml
# installs again.
#
# The scripts that build other environments set (developers and CI leave them alone):
#   NPC_WORKER_VENV       the virtual environment (default .venv)
#   NPC_WORKER_LOCK       the constraints file installs are held to (default deploy/constraints.txt); "newest":
#                         the newest versions pyproject.toml allows (deploy/update-constraints.sh only)
#   NPC_WORKER_CPU_TORCH  torch without a GPU (default torch==2.13.0: a CPU build lies on this kind of machine's
#                         disk; elsewhere pip may take PyPI's CUDA build of it)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${NPC_WORKER_VENV:-.venv}"
LOCK="${NPC_WORKER_LOCK:-deploy/constraints.txt}"
CPU_TORCH="${NPC_WORKER_CPU_TORCH:-torch==2.13.0}"

if ! command -v redis-server >/dev/null 2>&1; then
    echo "setup: installing redis-server" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server >/dev/null
fi

# promtool checks and unit-tests deploy/prometheus (tests/deploy); Debian ships it in `prometheus`. Only the
# tool is wanted: where the package's install started the Prometheus service, it is stopped and disabled.
if ! command -v promtool >/dev/null 2>&1; then
    echo "setup: installing prometheus (for promtool)" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
        $SUDO systemctl disable --now prometheus >/dev/null 2>&1 \
            || echo "setup: the prometheus service is running; stop it with: systemctl disable --now prometheus" >&2
    fi
fi

# Node.js runs the TypeScript client's tests and the Ajv check of docs/schema (tests/contract).
if ! command -v node >/dev/null 2>&1; then
    echo "setup: installing nodejs and npm" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# The TypeScript client's packages, exactly as package-lock.json pins them; again whenever the lock file changes.
if [ ! -f clients/typescript/node_modules/.package-lock.json ] \
    || [ clients/typescript/package-lock.json -nt clients/typescript/node_modules/.package-lock.json ]; then
    echo "setup: npm ci in clients/typescript" >&2
    (cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
pip_install() {  # pip's output goes to a log, shown only when the install fails
    "${PIP[@]}" install "$@" >"$VENV/pip-install.log" 2>&1 || { cat "$VENV/pip-install.log" >&2; exit 1; }
}

if [ "$LOCK" = newest ]; then
    held=()
elif [ -f "$LOCK" ]; then
    held=(-c "$LOCK")
else
    echo "setup: NPC_WORKER_LOCK=$LOCK is not a file; leave it unset for deploy/constraints.txt" >&2
    exit 2
fi

# torch: a CUDA build where a GPU is (unpinned: the lock leaves torch to the machine), else the pinned CPU build.
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    torch_spec=torch
else
    torch_spec="$CPU_TORCH"
fi

# One pip run for torch, the client and the worker, held to the lock. The stamp records what it installed from;
# any change to the lock, either pyproject.toml or the torch wanted installs again (pip keeps what already fits).
wanted=$(cat pyproject.toml clients/python/pyproject.toml; echo "lock: $LOCK"; [ "$LOCK" = newest ] || cat "$LOCK"
    echo "torch: $torch_spec")
wanted=$(printf '%s' "$wanted" | sha256sum | cut -d' ' -f1)
stamp="$VENV/.npc-worker-installed"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "setup: installing $torch_spec and npc-video-worker with dev extras (${held[*]:-newest allowed versions})" >&2
    pip_install "${held[@]}" "$torch_spec" -e clients/python -e ".[dev]"
    echo "$wanted" >"$stamp"
fi
