#!/usr/bin/env bash
# The prepared GPU check (docs/benchmarks.md, "GPU check"), for an air-gapped GPU node that has a CUDA torch but no
# registry: installs the carried wheels (.whl/, from scripts/gpu-wheels.sh) into a scratch folder, runs the
# GPU-marked tests, then `npc-worker bench` on synthetic full-scale models (Wan 2.1 I2V 14B: s/step at 480p, 81
# frames with CFG, and the distilled quality preset; the speed settings on Wan 2.2 TI2V 5B with their PSNR; the
# cost of a LoRA change with compile on; the distilled realtime preset warm on Wan 2.2 5B and LTX-Video 2B; one row
# per usable attention backend), and writes the log, a summary (with the speed targets) and one archive per bench
# run to OUTDIR: 8 files, each under 16 MiB.
# Every stage has a time limit inside one overall budget (GPU_CHECK_BUDGET_S, default 435 s: under 8 minutes in
# all on one H100), and a failed stage is recorded and the next one runs. Exit status 1 when any stage failed.
# scripts/gpu/plan.sh holds what differs between the GPU run and the dry run.
#   scripts/gpu-check.sh OUTDIR             on the GPU node, from a copy of the working tree with .whl/ beside it
#   scripts/gpu-check.sh --dry-run OUTDIR   the same sequence on this CPU: narrow models, small sizes, .venv, no
#                                           wheel install (tests/scripts/test_gpu_check.py runs it)
set -euo pipefail

usage() {
    echo "usage: scripts/gpu-check.sh [--dry-run] OUTDIR" >&2
    exit 2
}
dry_run=0
if [ "${1:-}" = "--dry-run" ]; then
    dry_run=1
    shift
fi
if [ $# -ne 1 ] || [ -z "$1" ] || [ "${1#-}" != "$1" ]; then
    usage
fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd)

MIN_STAGE_S=20  # a stage with less time left than this is not started
RESERVE_S=30    # kept back from the budget for the archives and the summary
# shellcheck source=scripts/gpu/plan.sh
source "$REPO/scripts/gpu/plan.sh"
if [ "$dry_run" -eq 1 ]; then
    plan_for dry-run
    PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
else
    plan_for gpu
    PYTHON="${PYTHON:-python3}"
fi
WHEELS="${GPU_CHECK_WHEELS:-$REPO/.whl}"

main() {
    cd "$REPO"
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/npc-gpu-check.XXXXXX")
    trap 'if [ "${GPU_CHECK_KEEP:-0}" = 1 ]; then echo "scratch kept: $WORK"; else rm -rf "$WORK"; fi' EXIT
    SITE="$WORK/site" SPEED_SITE="$WORK/speed" STAGES="$WORK/stages.tsv" CATALOG="$WORK/catalog.toml"
    mkdir "$WORK/tmp"
    export TMPDIR="$WORK/tmp"  # the bench's scratch storage too: a stage killed at its limit leaves nothing behind
    DEADLINE=$((SECONDS + BUDGET_S - RESERVE_S))
    FAILED=0 BENCH_DIRS=() NOTES=()
    : >"$STAGES"

    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg
    export XDG_CACHE_HOME="$WORK/cache" HF_HOME="$WORK/cache/huggingface" MPLCONFIGDIR="$WORK/cache/matplotlib"
    export TORCHINDUCTOR_CACHE_DIR="$WORK/cache/inductor" TRITON_CACHE_DIR="$WORK/cache/triton"
    export NPC_WORKER_DATA_DIR="$WORK/data"
    # The node gets a copy of the working tree, not an installed package: the carried wheels, then the repository
    # (worker, models, pipelines) and the client (npc_video_client).
    export PYTHONPATH="$SITE:$REPO:$REPO/clients/python"

    echo "gpu-check: $MODE on ${HOSTNAME:-?} at $(date -u +%Y-%m-%dT%H:%M:%SZ); budget ${BUDGET_S}s; out $OUTDIR"
    echo "gpu-check: python $PYTHON, scratch $WORK, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    write_catalog "$CATALOG"

    if [ "$dry_run" -eq 1 ]; then
        skip wheels "dry run: .venv already has every package"
    else
        stage wheels 120 bash scripts/gpu/install-wheels.sh "$PYTHON" "$WHEELS" "$SITE" "$SPEED_SITE"
    fi
    stage probe "$CAP_PROBE" "$PYTHON" scripts/gpu/probe.py --device "$DEVICE" --out "$WORK/probe.json" \
        --site "$SITE" --speed-site "$SPEED_SITE" --pyproject pyproject.toml

    local gpu_tests=()
    mapfile -t gpu_tests < <(grep -rlE '^pytestmark = pytest\.mark\.gpu|@pytest\.mark\.gpu' tests \
        --include='test_*.py' | sort)
    if [ "${#gpu_tests[@]}" -eq 0 ]; then
        skip tests "no test file under tests/ is marked gpu"
    else  # the speed folder last on the path: the fp8 tests import torchao, nothing else can be shadowed by it
        stage tests "$CAP_TESTS" env PYTHONPATH="$PYTHONPATH:$SPEED_SITE" "$PYTHON" -m pytest -m gpu -q \
            -p no:cacheprovider --basetemp="$WORK/pytest" --junitxml="$OUTDIR/pytest-gpu.xml" "${gpu_tests[@]}"
    fi

    bench bench-wan14 "$CAP_WAN14" "$WAN14_OVERRIDE" --models wan21-i2v-14b-480p --presets balanced,quality \
        --setting catalog
    # The speed rows, and only they, see the speed packages (torchao; sageattention once it can be had).
    local speed_settings=(--setting catalog) setting
    for setting in "${SPEED_SETTINGS[@]}"; do speed_settings+=(--setting "$setting"); done
    BENCH_PATH="$SPEED_SITE:$PYTHONPATH" bench bench-speed "$CAP_SPEED" "$SPEED_OVERRIDE" --models wan22-ti2v-5b \
        --presets fast "${speed_settings[@]}"
    stage lora-swap "$CAP_LORA_SWAP" "$PYTHON" scripts/gpu/lora_swap.py \
        --catalog "$CATALOG" --model "$LORA_SWAP_MODEL" --device "$DEVICE" --backend "$LORA_SWAP_BACKEND" \
        --rank "$LORA_SWAP_RANK" --override "$LORA_SWAP_OVERRIDE" --out "$WORK/lora-swap.json"
    BENCH_WARMUP=1 BENCH_REPEATS=3 bench bench-realtime "$CAP_REALTIME" "$REALTIME_OVERRIDE" \
        --models wan22-ti2v-5b,ltx-video-2b --presets realtime --setting catalog
    local attention=(--setting catalog) backend backends=()
    mapfile -t backends < <(usable_backends)
    for backend in "${backends[@]}"; do attention+=(--setting "attn-$backend:attention_backend=$backend"); done
    if [[ " ${backends[*]} " != *" sage "* ]]; then
        note "no sage attention row: diffusers cannot use sageattention here" \
            "($(grep '^unavailable sageattention' scripts/gpu/wheels.txt | cut -d' ' -f3- | sed 's/^ *//'))"
    fi
    if [ "${#backends[@]}" -eq 0 ]; then
        skip bench-attention "the probe found no attention backend to compare with the default"
    else
        BENCH_PATH="$SPEED_SITE:$PYTHONPATH" bench bench-attention "$CAP_ATTENTION" "$SPEED_OVERRIDE" \
            --models wan22-ti2v-5b --presets fast "${attention[@]}"
    fi

    DEADLINE=$((DEADLINE + RESERVE_S))
    local item
    for item in "${BENCH_DIRS[@]}"; do
        stage "bundle-${item%%=*}" 60 "$PYTHON" scripts/gpu/bundle.py "${item#*=}" "$OUTDIR/${item%%=*}.tar.gz"
    done
    local summary_args=(--mode "$MODE" --stages "$STAGES" --probe "$WORK/probe.json"
        --tests-xml "$OUTDIR/pytest-gpu.xml" --lora-swap "$WORK/lora-swap.json" --out "$OUTDIR")
    for item in "${BENCH_DIRS[@]}"; do summary_args+=(--bench "$item"); done
    for item in "${NOTES[@]}"; do summary_args+=(--note "$item"); done
    timeout 60 "$PYTHON" scripts/gpu/summary.py "${summary_args[@]}" || FAILED=$((FAILED + 1))
    echo "gpu-check: $FAILED failed stage(s), $SECONDS s in all; files in $OUTDIR:"
    ls -l "$OUTDIR"
    [ "$FAILED" -eq 0 ]
}

record() {  # record NAME STATUS EXIT SECONDS LIMIT: one line of stages.tsv (scripts/gpu/summary.py reads it)
    printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$STAGES"
}

skip() {  # skip NAME REASON
    echo "=== $1: skipped: $2"
    record "$1" skipped "" 0 ""
    note "$1 skipped: $2"
}

note() {  # note TEXT...: a line for the summary
    NOTES+=("$*")
}

stage() {  # stage NAME CAP_S COMMAND...: run under the smaller of CAP_S and the budget left; record the outcome
    local name=$1 cap=$2
    shift 2
    local left=$((DEADLINE - SECONDS))
    if [ "$left" -lt "$MIN_STAGE_S" ]; then  # not run: counts as failed, the figures it stands for are missing
        echo "=== $name: no time: ${left}s of the ${BUDGET_S}s budget left"
        record "$name" no-time "" 0 ""
        FAILED=$((FAILED + 1))
        return 0
    fi
    local limit=$((cap < left ? cap : left)) began=$SECONDS rc=0 status=ok
    echo "=== $name: start $(date -u +%H:%M:%S), limit ${limit}s: $*"
    timeout --kill-after=10 "$limit" "$@" || rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        status=timeout
    elif [ "$rc" -ne 0 ]; then
        status=failed
    fi
    echo "=== $name: $status (exit $rc) after $((SECONDS - began))s"
    record "$name" "$status" "$rc" "$((SECONDS - began))" "$limit"
    if [ "$status" != ok ]; then FAILED=$((FAILED + 1)); fi
}

bench() {  # bench NAME CAP_S OVERRIDE BENCH_ARGS...: one `npc-worker bench` run, one job per row and no warm-up
    # job unless BENCH_WARMUP / BENCH_REPEATS say otherwise; on PYTHONPATH=$BENCH_PATH when that is set
    local name=$1 cap=$2 override=$3
    shift 3
    local args=(--catalog "$CATALOG" --device "$DEVICE" --warmup "${BENCH_WARMUP:-0}" --repeats "${BENCH_REPEATS:-1}"
        --out "$WORK/$name" "$@")
    if [ -n "$override" ]; then args+=(--override "$override"); fi
    BENCH_DIRS+=("$name=$WORK/$name")
    stage "$name" "$cap" env PYTHONPATH="${BENCH_PATH:-$PYTHONPATH}" "$PYTHON" -m bench "${args[@]}"
}

usable_backends() {  # the attention backends the probe found usable with the speed packages, one a line
    "$PYTHON" - "$WORK/probe.json" <<'EOF' 2>/dev/null || true
import json, sys
speed = json.load(open(sys.argv[1])).get("speed", {})
print("\n".join(speed.get("usable_attention_backends") or []))
EOF
}

main 2>&1 | tee "$OUTDIR/gpu-check.log"
