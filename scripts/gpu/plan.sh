# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this file
# Sourced by scripts/gpu-check.sh (and by tests/scripts/test_gpu_check.py, which checks the GPU plan without a
# GPU): the stages in the order they run, each one's cap, what it measures and where the cap comes from; what
# differs between the GPU run and the dry run; and the catalog both write.
#
# The order is the priority: a stage that overruns eats into the stages after it, never into those before, and
# the caps add up to the budget (with SAVE_RESERVE_S for writing the summary and each stage's archive after it),
# so every stage gets its full cap when the ones before stay inside theirs. No figure below was measured on a GPU
# (none has been lent yet): the GPU caps are derived from FLOPs and the published Wan 2.1 figures, and each
# run's summary.json records every stage's seconds, to replace them with measured ones.

MODELS=(  # catalog name (= synthetic model) and family of every model the bench runs
    "wan21-i2v-14b-480p wan-i2v"
    "wan22-ti2v-5b wan22-ti2v"
    "ltx-video-2b ltx-i2v"
)
SMOKE_MODEL=smoke-narrow  # the smoke stage's model: Wan 2.1 I2V 14B's architecture at the narrow scale
SMOKE_STYLE=realistic     # the style whose jobs run on it (a job names no model: a style picks one)
SPEED_SETTINGS=(  # bench-speed's rows after the catalog row (its PSNR baseline): the settings that matter most
    "compile:compile=true"
    "fp8-compile:fp8_matmul=true,compile=true"
)
BURST_SETTING="batch4:worker.max_batch=4"  # bench-burst: the queue with batching on (CUDA's default of 4)
BURST_JOBS=8
LORA_SWAP_MODEL=wan22-ti2v-5b
LORA_SWAP_RANK=64
# Attention backends one call of which the smoke stage tries (those that work get a bench-attention row): diffusers'
# backends that may run a Wan block on one CUDA device besides its default (PyTorch's SDPA choosing a kernel).
ATTENTION_CANDIDATES="flash,_flash_3,sage,xformers,_native_cudnn,_native_efficient,_native_flash"

# STAGES: NAME|CAP_S|WHAT|BASIS, in the order they run. The GPU plan (budget 540 s: the device tool's command limit
# is 600 s; with a minute or two to start the machine, the check ends inside 11 of the 15 minutes a task is lent).
# Time per step from the published diffusers figure for Wan 2.1 I2V 14B at 480p on one H100 (9.77 s/step with
# CFG, docs/benchmarks.md: the worker runs diffusers' pipeline, uncompiled) and, for other shapes, the same
# achieved rate (3.37 PFLOP/step / 9.77 s = 345 TFLOP/s); a synthetic build is allocation and filling on the
# device (seconds); a process start (imports of torch and diffusers) about 8 s.
GPU_STAGES=(
    "wheels|20|the carried wheels into a scratch folder, the Redis server's packages|measured on the 2 loaded cores here: 16 wheels (41.6 MiB) in 7.6 s, the packages in 0.4 s"
    "smoke|55|probe (device, versions, imports, ffmpeg, torchao fp8 GEMM, one call per attention backend); the narrow model end to end on CUDA; one Inductor-compiled block|2 process starts 16 s, speed probe child 10 s, narrow job 5 s, one block compiled 15 s"
    "bench-wan14|120|Wan 2.1 I2V 14B: balanced 832x480x81, 3 steps with CFG (s/step), then quality distilled 768x768x49, 4 steps|start 8 s, build 8 s, balanced 3 x 9.8 s + VAE 15 s + MP4 3 s = 47 s, quality 4 x 4.2 s + VAE 11 s + MP4 2 s = 30 s, report 4 s: 97 s"
    "bench-speed|120|Wan 2.2 TI2V 5B fast (512x512x49, 8 steps, cfg 3): catalog, compile, fp8+compile|start 8 s; a job 8 s (74 TFLOP/step: 0.2 s/step, VAE 5 s); catalog 13 s, compile 13 s + 30 s, fp8+compile 13 s + 40 s: 117 s"
    "bench-burst|45|Wan 2.2 TI2V 5B realtime distilled through Redis and a serve child, max_batch 4: 3 jobs one at a time, then 8 at once|start 8 s, serve child ready 15 s, 3 jobs 4 s, burst 2 batches of 4: 6 s, stop 3 s: 36 s"
    "lora-swap|50|Wan 2.2 TI2V 5B compiled with 2 LoRA hotswap slots of rank 64: five LoRA changes timed, recompilations counted|start 8 s, build 5 s, 3 LoRA files 2 s, compile 25 s, 7 two-step calls 3 s: 43 s"
    "bench-realtime|30|realtime distilled (4 steps, cfg 1), 1 warm-up + 3 jobs each: Wan 2.2 TI2V 5B, LTX-Video 2B|start 8 s; per model build 5 s + 4 jobs x 1.5 s: 22 s"
    "bench-attention|40|Wan 2.2 TI2V 5B fast for 1 s (25 frames), 3 steps: catalog and one row per attention backend the smoke stage found working|start 8 s; per row build 5 s + job 3 s; 4 rows: 40 s"
    "tests|40|pytest -m gpu (tests/gpu), each test limited to 30 s (above the 15 s an Inductor compile of the tiny model takes); SIGINT at the cap, so the JUnit XML is written|collection 8 s, 9 tiny-model tests 30 s"
)
# GROUP_STAGES: the plan on a node with several GPUs (GROUP >= 2: gpu-check.sh takes the largest of 8, 4 and 2 that
# the node has, or GPU_CHECK_GROUP). The single-GPU stages are measured on a one-GPU node; this plan measures what
# only it can: the same Wan 2.1 14B jobs on one GPU and on a worker group of GROUP, through Redis and a serve child.
# Times from the one-GPU figures above, the denoiser divided by the group (docs/benchmarks.md "Worker groups").
GROUP_STAGES=(
    "wheels|20|as in the one-GPU plan|as in the one-GPU plan"
    "smoke|55|as in the one-GPU plan (on the first GPU)|as in the one-GPU plan"
    "bench-group|240|Wan 2.1 I2V 14B balanced (832x480x81, 3 steps with CFG) and quality distilled (768x768x49, 4 steps) through the queue: one GPU (the catalog row), then a worker group of GROUP GPUs|one GPU: serve child 25 s, balanced 47 s, quality 30 s; the group (N=2, the slowest): members meet and build 30 s, balanced 3 x 4.9 s + VAE 15 s + MP4 3 s = 33 s, quality 8.4 s + 11 s + 2 s = 21 s; stops 10 s: 196 s"
    "tests|40|as in the one-GPU plan|as in the one-GPU plan"
)
GPU_BUDGET_S=540
GPU_SAVE_RESERVE_S=20  # the summary after each of the 9 stages (1 s) and an archive after each bench stage (2 s)
GPU_TEST_TIMEOUT_S=30

# The dry run: the same stages on this CPU (2 cores shared with other work), narrow models, small shapes. It checks
# the sequence, not the speed, so its caps are generous: about 2x the seconds measured here on 2026-12-07 under a
# load average of 8-12 (its summary.json); on an idle machine it ends in about 5 minutes.
DRY_STAGES=(
    "wheels|0|skipped: .venv has every package|-"
    "smoke|150|as on the GPU, on the CPU: the compiled block with dynamo's eager backend|measured 66-91 s"
    "bench-wan14|110|narrow, 64x64: balanced 9 frames, 3 steps with CFG; quality distilled|measured 41-66 s"
    "bench-speed|140|narrow, 64x64x5, 3 steps: catalog, compile, fp8+compile (CUDA-only: skipped, bit-identical)|measured 67-82 s"
    "bench-burst|110|narrow through Redis and a serve child, max_batch 4|measured 48 s"
    "lora-swap|130|narrow, dynamo's eager backend|measured 64 s"
    "bench-realtime|100|narrow, 64x64|measured 43 s"
    "bench-attention|70|narrow: catalog, _native_flash and _native_math (the backends a CPU runs)|measured 29 s"
    "tests|40|pytest -m gpu: collected, skipped without CUDA (20 s per test)|measured 7 s"
)
DRY_GROUP_STAGES=(  # GPU_CHECK_GROUP=2 scripts/gpu-check.sh --dry-run OUTDIR: the group plan on two CPU ranks (gloo)
    "wheels|0|skipped: .venv has every package|-"
    "smoke|150|as in the dry run|measured 66-91 s"
    "bench-group|240|narrow, 64x64, as bench-wan14's dry run: one process, then a group of two CPU ranks|measured 28 s"
    "tests|40|as in the dry run|measured 7 s"
)
DRY_BUDGET_S=900
DRY_SAVE_RESERVE_S=50
DRY_TEST_TIMEOUT_S=20

plan_for() {  # plan_for gpu|dry-run: MODE DEVICE SCALE BUDGET_S SAVE_RESERVE_S STAGES CAP_<stage> and the overrides
    GROUP=${GROUP:-1}
    case "$1" in
        gpu)
            MODE=gpu DEVICE=cuda SCALE=full
            STAGES=("${GPU_STAGES[@]}")
            if [ "$GROUP" -ge 2 ]; then STAGES=("${GROUP_STAGES[@]}"); fi
            BUDGET_S="${GPU_CHECK_BUDGET_S:-$GPU_BUDGET_S}" SAVE_RESERVE_S=$GPU_SAVE_RESERVE_S
            TEST_TIMEOUT_S=$GPU_TEST_TIMEOUT_S
            # balanced: 832x480, 16 fps x 5.0625 s = 81 frames, 3 steps with CFG: the first step carries the
            # warm-up, s/step is the median of the other two. quality: the catalog's distilled configuration (4
            # steps, cfg 1) at 768x768 for 3 s (49 frames at Wan's 16 fps, encoded at the preset's 30 fps).
            WAN14_OVERRIDE="balanced:width=832 balanced:height=480 balanced:steps=3 balanced:duration=5.0625"
            WAN14_OVERRIDE+=" balanced:fps=16 balanced:cfg=5.0 quality:width=768 quality:height=768"
            SPEED_OVERRIDE="duration=2"  # fast as CONTRACT.md defines it (512x512, 8 steps, cfg 3), 49 frames
            BURST_OVERRIDE=""            # realtime as the catalog defines it (256x256, distilled)
            REALTIME_OVERRIDE=""
            ATTENTION_OVERRIDE="duration=1 steps=3"  # fast for 1 s: 25 frames at 24 fps, 1792 tokens, 2 passes
            SMOKE_OVERRIDE="width=128 height=128 duration=1 steps=2"
            LORA_SWAP_OVERRIDE="width=512 height=512 duration=1 steps=2"
            COMPILE_BACKEND=inductor
            SMOKE_ATTENTION="$ATTENTION_CANDIDATES"
            ;;
        dry-run)
            MODE=dry-run DEVICE=cpu SCALE=narrow
            STAGES=("${DRY_STAGES[@]}")
            if [ "$GROUP" -ge 2 ]; then STAGES=("${DRY_GROUP_STAGES[@]}"); fi
            BUDGET_S="${GPU_CHECK_BUDGET_S:-$DRY_BUDGET_S}" SAVE_RESERVE_S=$DRY_SAVE_RESERVE_S
            TEST_TIMEOUT_S=$DRY_TEST_TIMEOUT_S
            WAN14_OVERRIDE="balanced:width=64 balanced:height=64 balanced:steps=3 balanced:duration=0.5625"
            WAN14_OVERRIDE+=" balanced:fps=16 balanced:cfg=5.0 quality:width=64 quality:height=64 quality:duration=0.5"
            SPEED_OVERRIDE="width=64 height=64 steps=3 duration=0.25"
            BURST_OVERRIDE="width=64 height=64 duration=0.25"
            REALTIME_OVERRIDE="width=64 height=64 duration=0.25"
            ATTENTION_OVERRIDE="width=64 height=64 duration=0.25 steps=3"
            SMOKE_OVERRIDE="width=64 height=64 duration=0.25 steps=2"
            LORA_SWAP_OVERRIDE="width=64 height=64 duration=0.25 steps=2"
            COMPILE_BACKEND=eager  # dynamo traces, nothing is generated: the CPU has no time for Inductor here
            SMOKE_ATTENTION="$ATTENTION_CANDIDATES,_native_math"  # the CPU runs only the reference kernel
            ;;
        *)
            echo "plan_for: unknown mode ${1:-}; use gpu or dry-run" >&2
            return 2
            ;;
    esac
    STAGE_NAMES=()
    local entry name cap
    for entry in "${STAGES[@]}"; do
        IFS='|' read -r name cap _ <<<"$entry"
        STAGE_NAMES+=("$name")
        printf -v "CAP_${name//-/_}" '%s' "$cap"
    done
}

cap_of() {  # cap_of STAGE: the stage's cap in seconds
    local variable="CAP_${1//-/_}"
    echo "${!variable}"
}

print_plan() {  # print_plan: the stages of the current mode, their caps, and the total against the budget
    local entry name cap what basis total=0
    printf 'plan (%s%s): stage caps in seconds, in the order they run (the order is the priority)\n' "$MODE" \
        "$([ "$GROUP" -ge 2 ] && echo ", a worker group of $GROUP")"
    printf '  %-16s %5s  %s\n' stage cap "what; basis of the cap"
    for entry in "${STAGES[@]}"; do
        IFS='|' read -r name cap what basis <<<"$entry"
        printf '  %-16s %5d  %s\n  %-16s %5s    basis: %s\n' "$name" "$cap" "$what" "" "" "$basis"
        total=$((total + cap))
    done
    printf '  %-16s %5d  the summary after every stage, an archive after every bench stage\n' save "$SAVE_RESERVE_S"
    total=$((total + SAVE_RESERVE_S))
    printf '  %-16s %5d  of a %d s budget: %s\n' total "$total" "$BUDGET_S" \
        "$([ "$total" -le "$BUDGET_S" ] && echo fits || echo "DOES NOT FIT: $((total - BUDGET_S)) s over")"
    [ "$total" -le "$BUDGET_S" ]
}

write_catalog() {  # write_catalog FILE: the bench's models, synthetic, bfloat16, at $SCALE (narrow in the dry run),
    # and the smoke stage's narrow model; realtime (every model) and the 14B's quality run the configuration of a
    # step-distilled LoRA: 4 steps, cfg 1 (no unconditional pass). The LoRA itself is left out (the synthetic
    # weights have none): at rank 64 on every linear layer of Wan 2.2 5B it adds about 4% of a step's FLOPs, plus
    # its unfused kernels when not compiled.
    local file=$1 entry name family
    printf '# written by scripts/gpu-check.sh (%s)\n[defaults]\nmodel = "wan21-i2v-14b-480p"\n' "$MODE" >"$file"
    for entry in "${MODELS[@]}"; do
        read -r name family <<<"$entry"
        printf '\n[models.%s]\nfamily = "%s"\nsynthetic = "%s"\ndtype = "bfloat16"\n' "$name" "$family" "$name" \
            >>"$file"
        if [ "$SCALE" = narrow ]; then echo 'synthetic_scale = "narrow"' >>"$file"; fi
        printf '[models.%s.presets.realtime]\nsteps = 4\ncfg = 1.0\n' "$name" >>"$file"
        if [ "$name" = wan21-i2v-14b-480p ]; then
            printf '[models.%s.presets.quality]\nsteps = 4\ncfg = 1.0\n' "$name" >>"$file"
        fi
    done
    printf '\n[models.%s]\nfamily = "wan-i2v"\nsynthetic = "wan21-i2v-14b-480p"\nsynthetic_scale = "narrow"\n' \
        "$SMOKE_MODEL" >>"$file"
    printf 'dtype = "bfloat16"\n\n[styles.%s]\nmodel = "%s"\n' "$SMOKE_STYLE" "$SMOKE_MODEL" >>"$file"
}
