#!/usr/bin/env bash
# Refresh the lock, deploy/constraints.txt, on purpose: the pins scripts/setup.sh (developers, CI) and both
# Dockerfiles (`pip install -c`) install. The only way it changes:
#   1. a fresh environment with the newest versions pyproject.toml allows (scripts/setup.sh, NPC_WORKER_LOCK=newest);
#   2. its `pip freeze` as the candidate lock, less torch and its CUDA/Triton wheels (the lock leaves torch to the
#      machine: the pinned CPU build of scripts/setup.sh, the CUDA base image of Dockerfile.cuda, the PyTorch CPU
#      index of Dockerfile) and the repository's own editable installs;
#   3. the whole suite in that environment against the candidate (scripts/test.sh), then the GPU image's versions
#      on top of the candidate (scripts/test-image-versions.sh);
#   4. only when both pass, the candidate replaces deploy/constraints.txt and .venv is brought to it.
# Takes as long as the suite twice (~20-30 min on 2 cores); arguments go to both pytest runs. Nothing is written
# when anything fails, and the scratch environments are removed either way.
#   bash deploy/update-constraints.sh
set -euo pipefail
cd "$(dirname "$0")/.."

target=deploy/constraints.txt
scratch=$(mktemp -d "${TMPDIR:-/tmp}/npc-lock.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
candidate="$scratch/constraints.txt"

echo "update-constraints: 1/4 a fresh environment with the newest allowed versions ($scratch/venv)" >&2
NPC_WORKER_VENV="$scratch/venv" NPC_WORKER_LOCK=newest bash scripts/setup.sh

frozen=$("$scratch/venv/bin/python" -m pip freeze --all --exclude-editable --disable-pip-version-check | grep -v -i "^pip==")
{
    echo "# The lock: every distribution the worker, the client and the dev extras need, at one tested version."
    echo "# scripts/setup.sh (developers, CI) and both Dockerfiles install with it; do not edit by hand. Refresh:"
    echo "#   bash deploy/update-constraints.sh    (newest allowed versions, the whole suite, then this file)"
    echo "# torch, triton, nvidia-* and cuda-* are left out: the machine or the image brings its own torch build."
    grep -v -i -E '^(torch|triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+)==' <<<"$frozen" | LC_ALL=C sort -f
} >"$candidate"
echo "update-constraints: 2/4 candidate lock: $(grep -c -v '^#' "$candidate") pins" >&2

echo "update-constraints: 3/4 the whole suite against the candidate" >&2
NPC_WORKER_VENV="$scratch/venv" NPC_WORKER_LOCK="$candidate" bash scripts/test.sh "$@"
NPC_WORKER_IMAGE_VENV="$scratch/venv-image" NPC_WORKER_LOCK="$candidate" bash scripts/test-image-versions.sh "$@"

echo "update-constraints: 4/4 both passed: writing $target and bringing .venv to it" >&2
changes=$(diff "$target" "$candidate" | grep -E '^[<>] [^#]' || true)
printf '%s\n' "${changes:-update-constraints: no pin changed}" >&2
cp "$candidate" "$target"
bash scripts/setup.sh
