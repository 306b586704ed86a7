#!/usr/bin/env bash
# Download the wheels an air-gapped GPU node lacks into .whl/ (ignored by git), for scripts/gpu-check.sh to
# install there: the distributions of scripts/gpu/wheels.txt at the versions installed in .venv, as CPython 3.12
# manylinux x86_64 wheels (the node's Python); the speed packages pinned in that list go to .whl/speed (installed
# apart, so only the speed rows see them), fallbacks to .whl/fallback (installed only when the node's copy is old).
# Prints each wheel, the total and the working tree's size; fails when the two pass 64 MiB (what the runner that
# copies them to the node takes).
#   scripts/gpu-wheels.sh          download (run where PyPI is reachable)
#   scripts/gpu-wheels.sh --list   print KIND NAME==VERSION per wheel, download nothing
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_PYTHON="${VENV_PYTHON:-.venv/bin/python}"
DEST=.whl
LIMIT_MIB=64  # the working tree and the wheels together, as copied to the node
REDIS_PACKAGES=(redis-server redis-tools liblzf1 libjemalloc2)  # Redis 7 for the queue stage, and what it links
PLATFORMS=(manylinux_2_39_x86_64 manylinux_2_35_x86_64 manylinux_2_34_x86_64 manylinux_2_31_x86_64
    manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64
    manylinux2014_x86_64 manylinux1_x86_64)

case "${1:-}" in
    "") mode=download ;;
    --list) mode=list ;;
    *) echo "usage: scripts/gpu-wheels.sh [--list]" >&2; exit 2 ;;
esac
if [ ! -x "$VENV_PYTHON" ]; then
    echo "gpu-wheels: $VENV_PYTHON not found: run scripts/setup.sh first (versions are read from .venv)" >&2
    exit 2
fi

entries="$("$VENV_PYTHON" scripts/gpu/wheel_list.py)"
if [ "$mode" = list ]; then
    printf '%s\n' "$entries"
    exit 0
fi

carried=() speed=() fallbacks=()
while read -r kind spec note; do
    case "$kind" in
        need) carried+=("$spec") ;;
        speed) speed+=("$spec") ;;
        fallback) fallbacks+=("$spec") ;;
        unavailable | left-out) echo "gpu-wheels: not carried ($kind): $spec: $note" ;;
    esac
done <<<"$entries"

download() {  # download DIR SPEC...: the wheels for the node's CPython 3.12 on manylinux x86_64, no dependencies
    local dir=$1
    shift
    local flags=()
    for platform in "${PLATFORMS[@]}"; do flags+=(--platform "$platform"); done
    "$VENV_PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.12 --implementation cp "${flags[@]}" --dest "$dir" "$@"
}

# One version of each: a stale wheel beside a new one would stop the whole install on the node.
mkdir -p "$DEST/speed" "$DEST/fallback" "$DEST/redis"
rm -f "$DEST"/*.whl "$DEST"/speed/*.whl "$DEST"/fallback/*.whl "$DEST"/redis/*.deb
download "$DEST" "${carried[@]}"
if [ "${#speed[@]}" -gt 0 ]; then download "$DEST/speed" "${speed[@]}"; fi
if [ "${#fallbacks[@]}" -gt 0 ]; then download "$DEST/fallback" "${fallbacks[@]}"; fi
# The queue stage starts a redis-server (7 or newer: the worker reads a consumer group's lag), which the node image
# may lack: this machine's Debian packages of one, unpacked there only when it has none (scripts/gpu/install-wheels.sh).
if command -v apt-get >/dev/null; then
    (cd "$DEST/redis" && apt-get download -qq "${REDIS_PACKAGES[@]}" 2>/dev/null) \
        || echo "gpu-wheels: apt-get download ${REDIS_PACKAGES[*]} failed: the queue stage needs the node's own Redis" >&2
else
    echo "gpu-wheels: no apt-get here: the queue stage needs the node's own redis-server" >&2
fi

echo "gpu-wheels: $DEST"
find "$DEST" -type f \( -name '*.whl' -o -name '*.deb' \) -printf '%s\t%P\n' | sort -k2 \
    | awk -F'\t' '{ printf "  %8.1f KiB  %s\n", $1 / 1024, $2 }'
wheel_count=$(find "$DEST" -type f \( -name '*.whl' -o -name '*.deb' \) | wc -l)
wheel_bytes=$(find "$DEST" -type f \( -name '*.whl' -o -name '*.deb' \) -printf '%s\n' \
    | awk '{ total += $1 } END { print total + 0 }')
# What else travels: tracked and untracked-but-not-ignored files of the working tree.
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null \
    | awk '{ total += $1 } END { print total + 0 }')
awk -v w="$wheel_bytes" -v t="$tree_bytes" -v n="$wheel_count" -v limit="$LIMIT_MIB" 'BEGIN {
    printf "gpu-wheels: %d wheels and packages, %.1f MiB; with the working tree (%.1f MiB): %.1f MiB",
        n, w / 2^20, t / 2^20, (w + t) / 2^20
    printf " of the %d MiB copied to the node\n", limit
}'
limit_bytes=$((LIMIT_MIB * 1024 * 1024))
if [ "$wheel_bytes" -gt "$limit_bytes" ]; then
    echo "gpu-wheels: the wheels alone pass ${LIMIT_MIB} MiB: drop a speed package from scripts/gpu/wheels.txt" >&2
    exit 1
elif [ $((wheel_bytes + tree_bytes)) -gt "$limit_bytes" ]; then
    echo "gpu-wheels: with the working tree this passes ${LIMIT_MIB} MiB: untracked files that git does not ignore" \
        "travel too (git status --short --untracked-files=all lists them)" >&2
    exit 1
fi
