#!/usr/bin/env bash
# The README's main command: set up, then run one npc_response job through Redis on the embedded defaults
# (a local Redis, local-directory storage under ./outputs, a tiny model built on first use) and print the MP4.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
HF_HUB_OFFLINE=1 exec .venv/bin/npc-worker demo "$@"
