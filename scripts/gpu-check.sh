#!/usr/bin/env bash
# The prepared GPU check (docs/benchmarks.md, "GPU check"), for an air-gapped GPU node that has a CUDA torch but no
# registry: installs the carried wheels (.whl/, from scripts/gpu-wheels.sh) into a scratch folder, then runs the
# stages of scripts/gpu/plan.sh, most important first: a smoke stage (probe, the narrow model end to end, one
# compiled block, an fp8 GEMM, one call per attention backend), Wan 2.1 I2V 14B s/step at 480p with CFG, the speed
# settings that matter most, a queue burst with batching on, the cost of a LoRA change with compile on, the realtime
# rows, the attention backends, and the GPU tests last. On a node with several GPUs (or GPU_CHECK_GROUP=N) the plan
# is the group plan instead: smoke, the 14B's jobs on one GPU and on a worker group of N, the GPU tests.
# Each stage runs under `timeout` within a cap; the caps add up to the budget, the time a stage leaves unused goes
# to the next, and an overrun (the kill grace, the saves) cuts the last stages first. Nothing finished is lost: the
# bench writes its results after every row and saves on SIGTERM, and after every stage summary.json/summary.md and
# that stage's archive are (re)written into OUTDIR, which never holds more than 8 files (none in a folder, each
# under 16 MiB, 64 MiB together: what the device tool brings back).
#   scripts/gpu-check.sh OUTDIR             on the GPU node, from a copy of the working tree with .whl/ beside it
#   scripts/gpu-check.sh --dry-run OUTDIR   prints the GPU plan, then runs the same sequence on this CPU: narrow
#                                           models, small sizes, .venv, no wheel install (tests/scripts/test_gpu_check.py)
#   scripts/gpu-check.sh --plan             prints the GPU plan (stages, caps, total against the budget); exit 1
#                                           when the caps do not fit
# Exit status 1 when any stage failed or ran out of time.
set -euo pipefail

usage() {
    echo "usage: scripts/gpu-check.sh [--dry-run] OUTDIR | --plan" >&2
    exit 2
}
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/gpu/plan.sh
source "$REPO/scripts/gpu/plan.sh"

group_size() {  # GPU_CHECK_GROUP, else on a GPU node (gpu) the largest of 8, 4, 2 GPUs it has (1: the one-GPU plan)
    local gpus size
    if [ -n "${GPU_CHECK_GROUP:-}" ]; then
        [[ "$GPU_CHECK_GROUP" =~ ^[1-9][0-9]*$ ]] || { echo "GPU_CHECK_GROUP must be a positive integer" >&2; exit 2; }
        echo "$GPU_CHECK_GROUP"
        return
    fi
    gpus=1
    if [ "$1" = gpu ] && command -v nvidia-smi >/dev/null; then gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true); fi
    for size in 8 4 2 1; do
        if [ "${gpus:-1}" -ge "$size" ]; then echo "$size" && return; fi
    done
    echo 1
}
dry_run=0
case "${1:-}" in
    --plan)
        [ $# -eq 1 ] || usage
        GROUP=$(group_size gpu)  # the plan this node would run
        plan_for gpu
        print_plan
        exit
        ;;
    --dry-run)
        dry_run=1
        shift
        ;;
esac
if [ $# -ne 1 ] || [ -z "$1" ] || [ "${1#-}" != "$1" ]; then
    usage
fi
mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd)

MIN_STAGE_S=15        # a stage with less time than this (or than its cap, when smaller) is not started
KILL_AFTER_S=10       # after a stage's limit: SIGTERM (SIGINT for pytest), then SIGKILL this much later
SAVE_TIMEOUT_S=20     # the summary, or one archive, after a stage
ARCHIVE_LIMIT_MIB=14  # 4 archives of 14 MiB and the log and summaries stay under the 64 MiB brought back
ARCHIVES=(            # archive = the bench folders it holds: one archive for the two small-shape stages
    "bench-wan14=bench-wan14"
    "bench-speed=bench-speed"
    "bench-burst=bench-burst"
    "bench-realtime-attention=bench-realtime bench-attention"
    "bench-group=bench-group"
)
if [ "$dry_run" -eq 1 ]; then
    GROUP=$(group_size dry-run)
    GPU_CHECK_BUDGET_S="" plan_for gpu  # the plan the GPU run will have (GPU_CHECK_BUDGET_S is the dry run's here)
    print_plan || echo "gpu-check: the GPU plan does not fit its budget: fix scripts/gpu/plan.sh"
    plan_for dry-run
    PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
else
    GROUP=$(group_size gpu)
    plan_for gpu
    PYTHON="${PYTHON:-python3}"
fi
WHEELS="${GPU_CHECK_WHEELS:-$REPO/.whl}"

main() {
    cd "$REPO"
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/npc-gpu-check.XXXXXX")
    trap 'if [ "${GPU_CHECK_KEEP:-0}" = 1 ]; then echo "scratch kept: $WORK"; else rm -rf "$WORK"; fi' EXIT
    SITE="$WORK/site" SPEED_SITE="$WORK/speed" REDIS_ROOT="$WORK/redis" STAGES_TSV="$WORK/stages.tsv"
    CATALOG="$WORK/catalog.toml" PLAN_TSV="$WORK/plan.tsv"
    mkdir "$WORK/tmp"
    export TMPDIR="$WORK/tmp"  # the bench's scratch storage too: a stage killed at its limit leaves nothing behind
    STARTED=$SECONDS
    STAGE_DEADLINE=$((STARTED + BUDGET_S - SAVE_RESERVE_S))
    FAILED=0 NOTES=()
    : >"$STAGES_TSV"
    local entry
    for entry in "${STAGES[@]}"; do printf '%s\n' "$entry" | tr '|' '\t' >>"$PLAN_TSV"; done

    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg
    export XDG_CACHE_HOME="$WORK/cache" HF_HOME="$WORK/cache/huggingface" MPLCONFIGDIR="$WORK/cache/matplotlib"
    export TORCHINDUCTOR_CACHE_DIR="$WORK/cache/inductor" TRITON_CACHE_DIR="$WORK/cache/triton"
    export NPC_WORKER_DATA_DIR="$WORK/data"
    # The node gets a copy of the working tree, not an installed package: the carried wheels, then the repository
    # (worker, models, pipelines, bench) and the client (npc_video_client). No entry points: `python -m bench`.
    export PYTHONPATH="$SITE:$REPO:$REPO/clients/python"

    echo "gpu-check: $MODE on ${HOSTNAME:-?} at $(date -u +%Y-%m-%dT%H:%M:%SZ); budget ${BUDGET_S}s; out $OUTDIR"
    echo "gpu-check: python $PYTHON, scratch $WORK, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    print_plan || note "the plan's caps add up to more than the ${BUDGET_S}s budget: the last stages get less"
    write_catalog "$CATALOG"

    local name
    for name in "${STAGE_NAMES[@]}"; do
        "stage_${name//-/_}"
        save_after "$name"
    done
    echo "gpu-check: $FAILED failed stage(s), $((SECONDS - STARTED)) s in all; files in $OUTDIR:"
    ls -l "$OUTDIR"
    [ "$FAILED" -eq 0 ]
}

# -- the stages, in plan order --------------------------------------------------------------------------------
stage_wheels() {
    if [ "$dry_run" -eq 1 ]; then
        skip wheels "dry run: .venv already has every package"
        return
    fi
    stage wheels bash scripts/gpu/install-wheels.sh "$PYTHON" "$WHEELS" "$SITE" "$SPEED_SITE" "$REDIS_ROOT"
    if [ -x "$REDIS_ROOT/usr/bin/redis-server" ] && ! command -v redis-server >/dev/null; then
        export PATH="$REDIS_ROOT/usr/bin:$PATH"  # the carried Redis server, for the queue stage
        export LD_LIBRARY_PATH="$REDIS_ROOT/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
}

stage_smoke() {
    stage smoke "$PYTHON" scripts/gpu/smoke.py --device "$DEVICE" --catalog "$CATALOG" --model "$SMOKE_MODEL" \
        --override "$SMOKE_OVERRIDE art_style=$SMOKE_STYLE" --compile-backend "$COMPILE_BACKEND" --attention "$SMOKE_ATTENTION" \
        --out "$WORK/smoke.json" --probe-out "$WORK/probe.json" --site "$SITE" --speed-site "$SPEED_SITE" \
        --pyproject pyproject.toml
}

stage_bench_wan14() {
    bench bench-wan14 "$WAN14_OVERRIDE" --models wan21-i2v-14b-480p --presets balanced,quality --setting catalog
}

stage_bench_speed() {  # the speed rows, and only they, see the speed packages (torchao)
    local settings=(--setting catalog) setting
    for setting in "${SPEED_SETTINGS[@]}"; do settings+=(--setting "$setting"); done
    BENCH_PATH="$SPEED_SITE:$PYTHONPATH" bench bench-speed "$SPEED_OVERRIDE" --models wan22-ti2v-5b --presets fast \
        "${settings[@]}"
}

stage_bench_burst() {
    if ! command -v redis-server >/dev/null; then
        skip bench-burst "no redis-server on the node and none carried (scripts/gpu-wheels.sh downloads its packages)"
        return
    fi
    BENCH_WARMUP=1 BENCH_REPEATS=2 bench bench-burst "$BURST_OVERRIDE" --models wan22-ti2v-5b --presets realtime \
        --through queue --burst "$BURST_JOBS" --setting "$BURST_SETTING"
}

stage_bench_group() {  # the plan on several GPUs (or CPU ranks): the 14B's jobs on one device, then on a group
    if ! command -v redis-server >/dev/null; then
        skip bench-group "no redis-server on the node and none carried (scripts/gpu-wheels.sh downloads its packages)"
        return
    fi
    bench bench-group "$WAN14_OVERRIDE" --models wan21-i2v-14b-480p --presets balanced,quality --through queue \
        --setting catalog --setting "g$GROUP:worker.group_size=$GROUP"
}

stage_lora_swap() {
    stage lora-swap "$PYTHON" scripts/gpu/lora_swap.py --catalog "$CATALOG" --model "$LORA_SWAP_MODEL" \
        --device "$DEVICE" --backend "$COMPILE_BACKEND" --rank "$LORA_SWAP_RANK" --override "$LORA_SWAP_OVERRIDE" \
        --out "$WORK/lora-swap.json"
}

stage_bench_realtime() {
    BENCH_WARMUP=1 BENCH_REPEATS=3 bench bench-realtime "$REALTIME_OVERRIDE" --models wan22-ti2v-5b,ltx-video-2b \
        --presets realtime --setting catalog
}

stage_bench_attention() {
    local settings=(--setting catalog) backend backends=()
    mapfile -t backends < <(working_backends)
    for backend in "${backends[@]}"; do settings+=(--setting "attn-$backend:attention_backend=$backend"); done
    if [[ " ${backends[*]} " != *" sage "* ]]; then
        note "no sage attention row: diffusers cannot use sageattention here" \
            "($(grep '^unavailable sageattention' scripts/gpu/wheels.txt | cut -d' ' -f3- | sed 's/^ *//'))"
    fi
    if [ "${#backends[@]}" -eq 0 ]; then
        skip bench-attention "no attention backend besides the default ran its one call in the smoke stage"
        return
    fi
    BENCH_PATH="$SPEED_SITE:$PYTHONPATH" bench bench-attention "$ATTENTION_OVERRIDE" --models wan22-ti2v-5b \
        --presets fast "${settings[@]}"
}

stage_tests() {  # SIGINT at the cap: pytest stops and still writes its JUnit XML; each test has its own timeout
    local gpu_tests=()
    mapfile -t gpu_tests < <(grep -rlE '^pytestmark = pytest\.mark\.gpu|@pytest\.mark\.gpu' tests \
        --include='test_*.py' | sort)
    if [ "${#gpu_tests[@]}" -eq 0 ]; then
        skip tests "no test file under tests/ is marked gpu"
        return
    fi
    # the speed folder last on the path: the fp8 tests import torchao, nothing else can be shadowed by it
    STAGE_SIGNAL=INT stage tests env PYTHONPATH="$PYTHONPATH:$SPEED_SITE" "$PYTHON" -m pytest -m gpu -q \
        -p no:cacheprovider --timeout "$TEST_TIMEOUT_S" --basetemp="$WORK/pytest" \
        --junitxml="$OUTDIR/pytest-gpu.xml" "${gpu_tests[@]}"
    if [ ! -s "$OUTDIR/pytest-gpu.xml" ]; then  # killed before it could write: say so in the report's place
        printf '%s\n' '<?xml version="1.0" encoding="utf-8"?>' \
            '<testsuites><testsuite name="pytest" tests="1" errors="1" failures="0" skipped="0">' \
            '<testcase classname="gpu-check" name="tests"><error message="pytest was killed before it wrote its report (see gpu-check.log)"/></testcase>' \
            '</testsuite></testsuites>' >"$OUTDIR/pytest-gpu.xml"
    fi
}

# -- running, recording and saving ------------------------------------------------------------------------------
record() {  # record NAME STATUS EXIT SECONDS LIMIT: one line of stages.tsv (scripts/gpu/summary.py reads it)
    printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$STAGES_TSV"
}

skip() {  # skip NAME REASON
    echo "=== $1: skipped: $2"
    record "$1" skipped "" 0 ""
    note "$1 skipped: $2"
}

note() {  # note TEXT...: a line for the summary
    NOTES+=("$*")
}

later_caps() {  # later_caps NAME: the caps of the stages after NAME, which this one must leave to them
    local total=0 seen=0 name
    for name in "${STAGE_NAMES[@]}"; do
        if [ "$seen" -eq 1 ]; then total=$((total + $(cap_of "$name"))); fi
        if [ "$name" = "$1" ]; then seen=1; fi
    done
    echo "$total"
}

stage() {  # stage NAME COMMAND...: run under its cap, or longer by what the stages before it left unused (beyond
    # what the stages after it are owed), never past the budget: an overrun cuts the last stages first; record it
    local name=$1
    shift
    local cap left limit
    cap=$(cap_of "$name")
    left=$((STAGE_DEADLINE - SECONDS - $(later_caps "$name")))
    limit=$((left > cap ? left : cap))
    limit=$((limit < STAGE_DEADLINE - SECONDS ? limit : STAGE_DEADLINE - SECONDS))
    if [ "$limit" -lt "$((cap < MIN_STAGE_S ? cap : MIN_STAGE_S))" ] || [ "$limit" -le 0 ]; then
        echo "=== $name: no time: ${limit}s left for it of the ${BUDGET_S}s budget"
        record "$name" no-time "" 0 ""
        FAILED=$((FAILED + 1))
        return 0
    fi
    local began=$SECONDS rc=0 status=ok
    echo "=== $name: start $(date -u +%H:%M:%S), limit ${limit}s (cap ${cap}s): $*"
    timeout --signal="${STAGE_SIGNAL:-TERM}" --kill-after="$KILL_AFTER_S" "$limit" "$@" || rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        status=timeout
    elif [ "$rc" -ne 0 ]; then
        status=failed
    fi
    echo "=== $name: $status (exit $rc) after $((SECONDS - began))s"
    record "$name" "$status" "$rc" "$((SECONDS - began))" "$limit"
    if [ "$status" != ok ]; then FAILED=$((FAILED + 1)); fi
}

bench() {  # bench NAME OVERRIDE BENCH_ARGS...: one bench run (`python -m bench`: the tree is not installed), one
    # job per row and no warm-up unless BENCH_WARMUP / BENCH_REPEATS say otherwise; PYTHONPATH=$BENCH_PATH if set
    local name=$1 override=$2
    shift 2
    local args=(--catalog "$CATALOG" --device "$DEVICE" --warmup "${BENCH_WARMUP:-0}" --repeats "${BENCH_REPEATS:-1}"
        --out "$WORK/$name" "$@")
    if [ -n "$override" ]; then args+=(--override "$override"); fi
    stage "$name" env PYTHONPATH="${BENCH_PATH:-$PYTHONPATH}" "$PYTHON" -m bench "${args[@]}"
}

working_backends() {  # the attention backends whose one call ran in the smoke stage, one a line
    "$PYTHON" - "$WORK/probe.json" <<'EOF' 2>/dev/null || true
import json, sys
speed = json.load(open(sys.argv[1])).get("speed", {})
print("\n".join(speed.get("working_attention_backends") or []))
EOF
}

save_after() {  # save_after STAGE: that stage's archive (for a bench stage) and the summary, into OUTDIR
    local item archive folders folder sources=()
    for item in "${ARCHIVES[@]}"; do
        archive=${item%%=*} folders=${item#*=}
        if [[ " $folders " != *" $1 "* ]]; then continue; fi
        for folder in $folders; do
            if [ -d "$WORK/$folder" ]; then sources+=("$WORK/$folder"); fi
        done
        if [ "${#sources[@]}" -gt 0 ]; then
            timeout "$SAVE_TIMEOUT_S" "$PYTHON" scripts/gpu/bundle.py "${sources[@]}" "$OUTDIR/$archive.tar.gz" \
                --limit-mib "$ARCHIVE_LIMIT_MIB" || note "archive $archive.tar.gz after $1 failed (see the log)"
        fi
    done
    local args=(--mode "$MODE" --plan "$PLAN_TSV" --budget "$BUDGET_S" --stages "$STAGES_TSV"
        --probe "$WORK/probe.json" --smoke "$WORK/smoke.json" --tests-xml "$OUTDIR/pytest-gpu.xml"
        --lora-swap "$WORK/lora-swap.json" --out "$OUTDIR")
    for item in "${ARCHIVES[@]}"; do
        for folder in ${item#*=}; do
            if [ -d "$WORK/$folder" ]; then args+=(--bench "$folder=$WORK/$folder"); fi
        done
    done
    for item in "${NOTES[@]}"; do args+=(--note "$item"); done
    if timeout "$SAVE_TIMEOUT_S" "$PYTHON" scripts/gpu/summary.py "${args[@]}" >/dev/null; then
        echo "--- saved after $1: $(cd "$OUTDIR" && ls | tr '\n' ' ')"
    else
        echo "gpu-check: the summary after $1 failed"
    fi
}

main 2>&1 | tee "$OUTDIR/gpu-check.log"
