#!/usr/bin/env bash
# The GPU image's versions, tested on this CPU: a second environment (.venv-image) that holds the lock
# (deploy/constraints.txt) except the distributions deploy/constraints-gpu-image.txt pins (the GPU node's
# transformers, huggingface_hub, tokenizers, accelerate, safetensors; the oldest peft and numpy pyproject.toml
# allows), and the tests of the models, pipelines, speed settings and bench run in it. Version drift between the
# suite and the node then shows up in CI instead of on the device. CI runs it after scripts/test.sh (.ci/run);
# arguments go to pytest.
#   NPC_WORKER_IMAGE_VENV  the environment (default .venv-image)
#   NPC_WORKER_LOCK        the lock it starts from (default deploy/constraints.txt; deploy/update-constraints.sh
#                          passes its candidate)
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests that exercise the ML stack: the models (speed settings: tests/models/test_speed.py), the pipelines,
# the bench. One list, to move with the folders.
IMAGE_TESTS=(tests/models tests/pipelines tests/bench)

VENV="${NPC_WORKER_IMAGE_VENV:-.venv-image}"
LOCK="${NPC_WORKER_LOCK:-deploy/constraints.txt}"
IMAGE_PINS=deploy/constraints-gpu-image.txt

# The lock less every distribution the image pins, then the image's pins: one constraints file, as pip needs.
# Names compare as PEP 503 spells them (huggingface_hub and huggingface-hub are one distribution).
mkdir -p "$VENV"
merged="$VENV/constraints.txt"
canonical() { sed -E 's/[[:space:]]*#.*//; /^$/d; s/==.*//; s/[-_.]+/-/g' | tr '[:upper:]' '[:lower:]'; }
overridden=$(canonical <"$IMAGE_PINS" | paste -sd'|')
{
    echo "# $LOCK less what $IMAGE_PINS pins, then its pins (written by scripts/test-image-versions.sh)"
    while IFS= read -r line; do
        name=$(canonical <<<"$line")
        [[ -n "$name" && "$name" =~ ^($overridden)$ ]] || printf '%s\n' "$line"
    done <"$LOCK"
    sed -E 's/[[:space:]]*#.*//; /^$/d' "$IMAGE_PINS"
} >"$merged.tmp"
mv "$merged.tmp" "$merged"

NPC_WORKER_VENV="$VENV" NPC_WORKER_LOCK="$merged" bash scripts/setup.sh
"$VENV/bin/python" - "$IMAGE_PINS" <<'PY' >&2
import importlib.metadata, re, sys
names = [re.split(r"[=\s#]", line, maxsplit=1)[0] for line in open(sys.argv[1]) if line.strip()[:1] not in ("", "#")]
versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in ["torch", *names])
print(f"test-image-versions: {versions}")
PY
HF_HUB_OFFLINE=1 "$VENV/bin/pytest" -q "${IMAGE_TESTS[@]}" "$@"
