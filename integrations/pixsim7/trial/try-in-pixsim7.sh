#!/usr/bin/env bash
# Try the npc-video plugin inside pixsim7's own backend, set up as docs/integrations/pixsim7.md tells an operator,
# against a real npc-worker.
#
#   integrations/pixsim7/trial/try-in-pixsim7.sh [WORK]
#
# What it proves: with pixsim7 at PIXSIM7_COMMIT, the client installed (doc step 1), the plugin copied (step 2) and
# the patch applied (step 3; pixsim7's round-trip tests then pass), the doc's request goes through pixsim7's real
# registry (plugin discovery), CreateGenerationRequest, canonicalize_params and ProviderService into a real worker
# and back: it completes with progress rising and an MP4 pixsim7 can download, a bad or corrupt image fails with
# the worker's message, a running job cancels, a reaction warmed (cancelled and warmed again) makes the later
# generation a cache hit, an unknown job is JobNotFoundError, an unreachable Redis is a retryable
# provider_unavailable (try_in_pixsim7.py prints a CHECK line for each).
# Real: pixsim7's modules, the worker (`npc-worker serve` from this repo's .venv, CPU, its embedded demo catalog:
# a tiny random-weight model), its own redis-server, and a static file server for the clips (the doc's
# NPC_WORKER_PUBLIC_BASE_URL, so the clip URL is fetchable). Not real: the database; ProviderService gets a fake
# session, as in pixsim7's own tests. No FastAPI app, arq or Postgres runs.
#
# It installs, into a separate venv under WORK (pixsim7's backend has its own environment and pins, e.g.
# sqlalchemy 2.0.25 and redis 5.0.1; this repo's .venv is left alone): the packages that pixsim7's provider
# registry, provider service and the plugin import, at the versions pixsim7/backend/main/requirements.txt pins
# where it pins them (pyyaml is imported but not listed there), pytest for step 3, and this repo's client. Not
# torch, transformers, pillow or the pixverse/sora/openai/anthropic SDKs: pixsim7 wraps the SDK imports, and only
# its LLM and embedding plugins fail to load without them (logged, not ours).
#
# Environment: PIXSIM7_SRC, a pixsim7 git URL or a local clone or mirror (default
# https://github.com/Sakenfor/pixsim7.git); PIXSIM7_COMMIT (default 3d20eed89, the commit the patch is for).
# WORK (default: a new mktemp -d folder) holds the venv, the clone, the logs and the outputs; a second run in the
# same WORK reuses the venv and the clone. Needs git, python3, redis-server and redis-cli, and scripts/setup.sh run.
# Takes about 2 minutes on a CPU: 110 s on a shared 2-core machine (OMP_NUM_THREADS=1), of which the venv took 20 s
# (from a local package index; longer over the network), the clone and pixsim7's tests 10 s, the worker's one
# render about a minute. A second run in the same WORK skips the venv.
# Exit status: 0 when every CHECK passed; non-zero otherwise (or when a step before them failed).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
PIXSIM7_SRC=${PIXSIM7_SRC:-https://github.com/Sakenfor/pixsim7.git}
PIXSIM7_COMMIT=${PIXSIM7_COMMIT:-3d20eed89}
PATCH=$REPO/integrations/pixsim7/pixsim7-3d20eed89-npc-params.patch
WORKER=$REPO/.venv/bin/npc-worker

if [ ! -x "$WORKER" ]; then
  echo "try-in-pixsim7: $WORKER not found: run scripts/setup.sh first" >&2
  exit 2
fi
for tool in git python3 redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "try-in-pixsim7: $tool not found" >&2; exit 2; }
done

if [ $# -ge 1 ]; then
  mkdir -p "$1"
  WORK=$(cd "$1" && pwd)
else
  WORK=$(mktemp -d)
fi
echo "WORK=$WORK"
PY=$WORK/venv/bin/python
PIP="$PY -m pip install -q --disable-pip-version-check"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- pixsim7's backend environment: a separate venv (see the header); .installed marks a finished install
if [ ! -e "$WORK/venv/.installed" ]; then
  python3 -m venv "$WORK/venv"
  $PIP "pydantic>=2.9,<3.0" "pydantic-settings>=2.1" sqlmodel==0.0.14 sqlalchemy==2.0.25 redis==5.0.1 \
       structlog==23.2.0 python-dotenv==1.0.0 "fastapi>=0.115,<1.0" pgvector==0.2.4 arq==0.25.0 \
       "passlib[bcrypt]==1.7.4" "python-jose[cryptography]==3.3.0" pyyaml asyncpg==0.29.0 \
       psycopg2-binary==2.9.9 httpx==0.26.0 pytest==7.4.4 pytest-asyncio==0.23.3
  $PIP "$REPO/clients/python"  # doc step 1: the client (redis and pydantic only)
  touch "$WORK/venv/.installed"
fi

# ---- pixsim7's source at the commit the patch is for
if [ ! -d "$WORK/pixsim7/.git" ]; then
  git clone -q "$PIXSIM7_SRC" "$WORK/pixsim7"
fi
cd "$WORK/pixsim7"
git -c advice.detachedHead=false checkout -q "$PIXSIM7_COMMIT"
git log --oneline -1

# ---- doc step 2: copy the plugin; doc step 3: apply the patch (once) and run pixsim7's round-trip tests
rm -rf pixsim7/backend/main/providers/npc_video
cp -r "$REPO/integrations/pixsim7/npc_video" pixsim7/backend/main/providers/npc_video
if ! git apply --reverse --check "$PATCH" 2>/dev/null; then
  git apply "$PATCH"
fi
git status --short
"$WORK/venv/bin/pytest" -q -p no:cacheprovider \
  pixsim7/backend/tests/services/generation/test_canonical_roundtrip.py 2>&1 | tail -1

# ---- its own redis-server, a static file server for the clips, a real worker (embedded demo catalog, CPU)
REDIS_PORT=$(free_port)
HTTP_PORT=$(free_port)
# a clip already stored under its content key would be a cache hit: the job would complete without rendering,
# and the progress check would see no processing steps
rm -rf "$WORK/outputs"
mkdir -p "$WORK/outputs" "$WORK/worker-data"
PIDS=()
cleanup() {  # only what this script started, by pid, newest first: the worker drains before its Redis goes
  set +e
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[$i]}
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  [ ${#PIDS[@]} -gt 0 ] && echo "cleanup: stopped ${PIDS[*]}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  > "$WORK/redis.log" 2>&1 &
PIDS+=($!)
python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$WORK/outputs" > "$WORK/http.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.2; done

# doc section 4: the same Redis and prefix; playable http(s) outputs (NPC_WORKER_PUBLIC_BASE_URL over a local
# folder a static file server serves, "Playable outputs"); the result TTL at its 7-day default
( cd "$WORK/worker-data" && exec env \
    NPC_WORKER_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" NPC_WORKER_PREFIX=npc \
    NPC_WORKER_STORAGE_URL="file://$WORK/outputs" NPC_WORKER_PUBLIC_BASE_URL="http://127.0.0.1:$HTTP_PORT" \
    NPC_WORKER_DEVICE=cpu NPC_WORKER_HTTP_PORT=0 NPC_WORKER_DATA_DIR="$WORK/worker-data/.npc-worker" \
    "$WORKER" serve ) > "$WORK/worker.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 240); do
  grep -q "worker state: starting -> ready" "$WORK/worker.log" && break
  kill -0 "${PIDS[-1]}" 2>/dev/null || break
  sleep 0.5
done
if ! grep "ready on" "$WORK/worker.log"; then
  echo "try-in-pixsim7: the worker did not get ready; $WORK/worker.log ends:" >&2
  tail -20 "$WORK/worker.log" >&2
  exit 1
fi

# ---- doc section 4 (pixsim7's side) and the generations, through pixsim7's real modules
set +e
NPC_VIDEO_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" NPC_VIDEO_PREFIX=npc PYTHONPATH="$WORK/pixsim7" \
  timeout 900 "$PY" "$HERE/try_in_pixsim7.py" "$WORK" > "$WORK/try_in_pixsim7.out" 2>&1
RC=$?
set -e
grep -E "^(STEP|CHECK|SUMMARY)|^LOG (INFO|WARNING) pixsim7.backend.main.providers" "$WORK/try_in_pixsim7.out" \
  | cut -c1-600 || true
[ "$RC" -eq 0 ] || tail -5 "$WORK/try_in_pixsim7.out" >&2
echo "try_in_pixsim7.py exit status: $RC (full output: $WORK/try_in_pixsim7.out, worker log: $WORK/worker.log)"
exit $RC
