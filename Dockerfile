# The worker without a GPU: for trying the whole stack (compose.yaml) and for CI. Same user, directories,
# health check and entry point as Dockerfile.cuda; torch is the CPU build from the PyTorch CPU wheel index,
# pinned to the version the test suite runs on (scripts/setup.sh). Build: docker build -t npc-video-worker:cpu .
FROM python:3.11-slim-bookworm

# A numeric uid/gid (Kubernetes runAsNonRoot can only verify a number) and the only writable places:
# the data dir (embedded demo catalog), an outputs dir for file:// storage, /models as a mount point.
RUN groupadd --gid 10001 npc \
    && useradd --uid 10001 --gid 10001 --home-dir /var/lib/npc-worker --no-create-home --shell /usr/sbin/nologin npc \
    && install -d -o 10001 -g 10001 /var/lib/npc-worker /srv/npc-worker/outputs /models

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    HOME=/var/lib/npc-worker \
    XDG_CACHE_HOME=/var/lib/npc-worker/cache \
    HF_HOME=/var/lib/npc-worker/cache/huggingface \
    NPC_WORKER_DEVICE=cpu \
    NPC_WORKER_DATA_DIR=/var/lib/npc-worker \
    NPC_WORKER_STORAGE_URL=file:///srv/npc-worker/outputs \
    NPC_WORKER_HTTP_PORT=8080

# Its own layer, first: the largest download, and it changes only with the pin.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu

WORKDIR /app
COPY deploy/constraints.txt deploy/constraints.txt
COPY clients/python clients/python
COPY pyproject.toml README.md ./
COPY worker worker
COPY pipelines pipelines
COPY models models
# npc-worker bench (a plugin of npc-worker, entry point group npc_worker.commands): measure on the node itself
COPY bench bench
# The client (npc-video-client, the wire contract the worker pins; never on PyPI) and the worker in one pip run,
# both from this tree and held to the lock: the README's `pip install -c deploy/constraints.txt ./clients/python .`
# The import check fails the build if pip replaced the CPU torch with another build.
RUN pip install --no-cache-dir -c deploy/constraints.txt ./clients/python . \
    && python -c "import torch, worker.cli, bench.cli; assert torch.__version__.endswith('+cpu'), torch.__version__"

USER 10001:10001
EXPOSE 8080
# /healthz answers 200 while the worker loop's heartbeat is recent (and while the model is still loading).
HEALTHCHECK --interval=30s --timeout=5s --start-period=5m --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('NPC_WORKER_HTTP_PORT', '8080') + '/healthz', timeout=4)"]
ENTRYPOINT ["npc-worker", "serve"]
