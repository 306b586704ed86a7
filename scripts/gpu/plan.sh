# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this file
# Sourced by scripts/gpu-check.sh (and by tests/scripts/test_gpu_check.py, which checks the GPU plan without a
# GPU): what differs between the GPU run and the dry run, and the catalog both write.
#
# Stages, in the order they run (scripts/gpu-check.sh; each is cut by what is left of the budget, so the least
# needed come last):
#   wheels          the carried wheels into a scratch folder (GPU run only)
#   probe           device, versions, imports, ffmpeg; the speed packages and the usable attention backends
#   tests           pytest -m gpu (tests/gpu/)
#   bench-wan14     Wan 2.1 I2V 14B: balanced as 832x480x81 with CFG (s/step target) and quality as the distilled
#                   configuration at 768x768, 3 s (p50 target)
#   bench-speed     Wan 2.2 TI2V 5B, preset fast: catalog (exact), first_block cache, compile, fp8 GEMMs + compile
#   lora-swap       Wan 2.2 TI2V 5B compiled with LoRA hotswap slots: each LoRA change timed, recompiles counted
#   bench-realtime  Wan 2.2 TI2V 5B and LTX-Video 2B, realtime as the distilled configuration, warm (p50 target)
#   bench-attention Wan 2.2 TI2V 5B, preset fast: catalog and one row per attention backend the probe found usable
#   bundle-*        one archive per bench folder

MODELS=(  # catalog name (= synthetic model) and family of every model the bench runs
    "wan21-i2v-14b-480p wan-i2v"
    "wan22-ti2v-5b wan22-ti2v"
    "ltx-video-2b ltx-i2v"
)
SPEED_SETTINGS=(  # bench-speed's rows after the catalog row (its PSNR baseline)
    "fbc:cache.type=first_block,cache.threshold=0.05"
    "compile:compile=true"
    "fp8-compile:fp8_matmul=true,compile=true"
)
LORA_SWAP_MODEL=wan22-ti2v-5b
LORA_SWAP_RANK=64

plan_for() {  # plan_for gpu|dry-run: MODE DEVICE SCALE BUDGET_S, the bench overrides, the stage caps (seconds)
    case "$1" in
        gpu)
            MODE=gpu DEVICE=cuda SCALE=full
            BUDGET_S="${GPU_CHECK_BUDGET_S:-435}"  # + 10 s kill grace + the archives: under 8 minutes in all
            # balanced: 832x480, 16 fps x 5.0625 s = 81 frames, 3 steps with CFG: the first step carries the
            # warm-up, s/step is the median of the other two. quality: the catalog's distilled configuration (4
            # steps, cfg 1) at 768x768 for 3 s (49 frames at Wan's 16 fps, encoded at the preset's 30 fps).
            WAN14_OVERRIDE="balanced:width=832 balanced:height=480 balanced:steps=3 balanced:duration=5.0625"
            WAN14_OVERRIDE+=" balanced:fps=16 balanced:cfg=5.0 quality:width=768 quality:height=768"
            SPEED_OVERRIDE="duration=2"  # fast as CONTRACT.md defines it (512x512, 8 steps, cfg 3), 49 frames
            REALTIME_OVERRIDE=""         # realtime as the catalog defines it
            LORA_SWAP_OVERRIDE="width=512 height=512 duration=1 steps=2"
            LORA_SWAP_BACKEND=inductor
            CAP_PROBE=90 CAP_TESTS=120 CAP_WAN14=150 CAP_SPEED=150 CAP_LORA_SWAP=100 CAP_REALTIME=60
            CAP_ATTENTION=120
            ;;
        dry-run)
            MODE=dry-run DEVICE=cpu SCALE=narrow
            BUDGET_S="${GPU_CHECK_BUDGET_S:-270}"  # generous: the 2-core machines it runs on are shared
            WAN14_OVERRIDE="balanced:width=64 balanced:height=64 balanced:steps=3 balanced:duration=0.5625"
            WAN14_OVERRIDE+=" balanced:fps=16 balanced:cfg=5.0 quality:width=64 quality:height=64 quality:duration=0.5"
            SPEED_OVERRIDE="width=64 height=64 steps=3 duration=0.25"
            REALTIME_OVERRIDE="width=64 height=64 duration=0.25"
            LORA_SWAP_OVERRIDE="width=64 height=64 duration=0.25 steps=2"
            LORA_SWAP_BACKEND=eager  # dynamo traces, nothing is generated: the CPU has no time for Inductor here
            CAP_PROBE=60 CAP_TESTS=60 CAP_WAN14=90 CAP_SPEED=90 CAP_LORA_SWAP=60 CAP_REALTIME=60 CAP_ATTENTION=60
            ;;
        *)
            echo "plan_for: unknown mode ${1:-}; use gpu or dry-run" >&2
            return 2
            ;;
    esac
}

write_catalog() {  # write_catalog FILE: the bench's models, synthetic, bfloat16, at $SCALE (narrow in the dry run);
    # realtime (every model) and the 14B's quality run the configuration of a step-distilled LoRA: 4 steps, cfg 1
    # (no unconditional pass). The LoRA itself is left out (the synthetic weights have none): at rank 64 on every
    # linear layer of Wan 2.2 5B it adds about 4% of a step's FLOPs, plus its unfused kernels when not compiled.
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
}
