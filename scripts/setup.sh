#!/usr/bin/env bash
# Set up everything the worker, its demo and its tests need on a fresh Debian/Ubuntu machine:
# redis-server (when missing), a virtual environment in .venv, torch, and the package with dev extras.
# Without an NVIDIA GPU it installs the CPU build of torch (pinned, fast); with one, the default CUDA build.
# Re-running is cheap: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
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

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
pip_install() {  # pip's output goes to a log, shown only when the install fails
    "${PIP[@]}" install "$@" >.venv/pip-install.log 2>&1 || { cat .venv/pip-install.log >&2; exit 1; }
}

if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        echo "setup: GPU found: installing the default (CUDA) torch build" >&2
        pip_install torch
    else
        echo "setup: no GPU: installing $CPU_TORCH (CPU build)" >&2
        pip_install "$CPU_TORCH"
    fi
fi

stamp=.venv/.npc-worker-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ clients/python/pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing npc-video-worker with dev extras" >&2
    pip_install -e clients/python -e ".[dev]"
    touch "$stamp"
fi
