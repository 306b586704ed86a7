"""What a LoRA change costs with torch.compile on (the GPU check's `lora-swap` stage; its dry run on the CPU): the
model compiled with LoRA hotswap slots (models.lora_slots), random LoRAs of one rank written for its transformer,
then a sequence of jobs whose LoRAs change, each switch timed (`adapters.activate`, device synchronized) and
checked for recompilation (dynamo's compiled-frame counter). Prints and writes one JSON object.

    PYTHONPATH=.:clients/python python3 scripts/gpu/lora_swap.py --catalog CATALOG --model wan22-ti2v-5b \
        --device cuda --out lora-swap.json [--backend inductor] [--rank 64] [--override "width=512 steps=2"]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.jobs import BENCH_PARAMS, portrait_png
from bench.options import parse_scalar
from models.catalog import Catalog, load_catalog
from models.compile_cache import configure_compile_cache
from models.identity import file_digest
from models.pool import LoadedModel, ModelPool
from models.resolution import resolve
from models.synthetic.lora import write_synthetic_lora
from npc_video_client.contract import NpcResponseParams
from pipelines.request import LoraChoice, ResolvedRequest

SLOTS = 2
# (to, what the switch has to do): A primes the slots; B goes into the free slot from its file; A and B are then
# both in slots (weights only); C replaces the least recently used one (from its file); none: every slot at 0.
SEQUENCE = (("B", "hotswap from file"), ("A", "in slot"), ("B", "in slot"), ("C", "hotswap, evicting"), ("", "none"))


def compiled_frames() -> int:
    from torch._dynamo.utils import counters

    return int(counters["frames"]["total"])


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def compiling_catalog(catalog: Catalog, model: str, backend: str, rank: int) -> Catalog:
    """The catalog with `model` compiled (on any device) and its LoRAs in hotswap slots of `rank`."""
    entry = catalog.models[model]
    compiled = {"compile": True, "compile_backend": backend, "compile_cpu": True}
    compiled.update(lora_slots=SLOTS, lora_rank=rank)
    models = {**catalog.models, model: entry.model_copy(update={"speed": entry.speed.model_copy(update=compiled)})}
    defaults = catalog.defaults.model_copy(update={"model": model})
    return catalog.model_copy(update={"models": models, "defaults": defaults})


def request_for(catalog: Catalog, override: str) -> ResolvedRequest:
    fields = {key: parse_scalar(value) for key, _, value in (pair.partition("=") for pair in shlex.split(override))}
    params = NpcResponseParams.model_validate({**BENCH_PARAMS, "quality_preset": "fast", "seed": 0, **fields})
    return resolve(params, catalog, (512, 512))


class Runs:
    def __init__(self, loaded: LoadedModel, request: ResolvedRequest, device: str) -> None:
        from PIL import Image

        self.loaded, self.request, self.device = loaded, request, device
        image = Image.open(io.BytesIO(portrait_png())).convert("RGB").resize((request.width, request.height))
        self.kwargs = {**loaded.family.call_kwargs(request, image), "output_type": "latent"}

    def switch(self, loras: list[LoraChoice]) -> float:
        """ms to make exactly these LoRAs active (a hotswap reads the file; in a slot: scalings only)."""
        synchronize(self.device)
        started = time.perf_counter()
        self.loaded.adapters.activate(loras)
        synchronize(self.device)
        return (time.perf_counter() - started) * 1000

    def call(self) -> float:
        """Seconds of one denoiser run up to the latents (the VAE does not compile)."""
        synchronize(self.device)
        started = time.perf_counter()
        self.loaded.pipe(**self.kwargs, generator=torch.Generator("cpu").manual_seed(0))
        synchronize(self.device)
        return time.perf_counter() - started


def measure(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(os.environ.get("NPC_WORKER_DATA_DIR", ".npc-worker"))
    cache = configure_compile_cache(data_dir)
    catalog = compiling_catalog(load_catalog(args.catalog), args.model, args.backend, args.rank)
    request = request_for(catalog, args.override)
    pool = ModelPool(catalog=catalog, device=args.device)
    started = time.perf_counter()
    loaded = pool.get(args.model)
    load_s = time.perf_counter() - started
    scratch = Path(tempfile.mkdtemp(prefix="lora-swap-"))
    loras: dict[str, LoraChoice] = {}
    sizes = []
    for seed, name in enumerate("ABC", start=1):
        path = scratch / f"{name}.safetensors"
        sizes.append(write_synthetic_lora(loaded.pipe.transformer, path, rank=args.rank, seed=seed))
        loras[name] = LoraChoice(name, 1.0, path, file_digest(path))
    runs = Runs(loaded, request, args.device)
    prime_ms = runs.switch([loras["A"]])
    before = compiled_frames()
    first_call_s = runs.call()  # compiles
    compiled_first = compiled_frames() - before
    steady_call_s = runs.call()
    switches = []
    for name, kind in SEQUENCE:
        switch_ms = runs.switch([loras[name]] if name else [])
        before = compiled_frames()
        call_s = runs.call()
        switches.append(
            {
                "to": name or "none",
                "kind": kind,
                "switch_ms": round(switch_ms, 2),
                "call_s": round(call_s, 3),
                "compiled_frames": compiled_frames() - before,
            }
        )
    return {
        "device": args.device,
        "device_name": torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu",
        "model": args.model,
        "backend": args.backend,
        "slots": SLOTS,
        "rank": args.rank,
        "lora_bytes": max(sizes),
        "shape": {
            "width": request.width,
            "height": request.height,
            "frames": request.generated_frames,
            "steps": request.steps,
            "cfg": request.cfg,
        },
        "load_s": round(load_s, 2),
        "prime_ms": round(prime_ms, 2),
        "first_call_s": round(first_call_s, 3),
        "compiled_frames_first_call": compiled_first,
        "steady_call_s": round(steady_call_s, 3),
        "switches": switches,
        "max_switch_ms": max(item["switch_ms"] for item in switches),
        "recompiles": sum(item["compiled_frames"] for item in switches),
        "compile_cache": str(cache),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--backend", default="inductor", choices=("inductor", "eager", "aot_eager"))
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--override", default="", help="job params for every call: key=value ...")
    args = parser.parse_args()
    report = measure(args)
    text = json.dumps(report, indent=2)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 1 if report["compiled_frames_first_call"] == 0 or report["recompiles"] else 0


if __name__ == "__main__":
    sys.exit(main())
