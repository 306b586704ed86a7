"""Issue 2 figures: a bare diffusers call vs `generate` end to end for the same job, and LoRA load vs switch.

    .venv/bin/python benchmarks/generation_overhead.py [--runs 7]

On the tiny model the device work is small, so the overhead (validation, image decode and fit,
resolution, encoding, storage) is a large fraction here; on a real model it is the same absolute cost.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks._common import job, median_ms, scratch_catalog
from pipelines.request import LoraChoice
from worker.images import fit_image, load_base_image
from worker.jobs import SilentHooks
from worker.payload import parse_envelope
from worker.runtime import build_runner
from worker.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    root, catalog = scratch_catalog()
    runner = build_runner(Settings(catalog=catalog, device="cpu", storage_url=f"file://{root / 'out'}"))
    loaded = runner.pool.get("tiny-wan")
    size = {"width": 128, "height": 128, "duration": 2.0, "steps": 4}

    bare, end_to_end, phases = [], [], []
    for run in range(args.runs + 1):
        envelope = parse_envelope(job(f"bare-{run}", seed=run, **size))
        request = runner.prepare(envelope, hooks=SilentHooks()).request
        image = fit_image(
            load_base_image(envelope.params.npc_base_image or "", runner.settings).image, request.width, request.height
        )
        started = time.perf_counter()
        loaded.pipe(**loaded.family.call_kwargs(request, image), generator=torch.Generator().manual_seed(run))
        bare_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        result = runner.run(job(f"e2e-{run}", seed=1000 + run, **size))
        total_ms = (time.perf_counter() - started) * 1000
        if run == 0:
            continue  # warm-up
        bare.append(bare_ms)
        end_to_end.append(total_ms)
        phases.append(result.timings)
    print(f"job: {size['width']}x{size['height']}, {result.num_frames} frames, {size['steps']} steps, tiny Wan, CPU")
    print(f"bare pipeline call      {median_ms(bare)}")
    print(f"generate end to end     {median_ms(end_to_end)}")
    overhead = statistics.median(e - b for e, b in zip(end_to_end, bare, strict=True))
    print(f"overhead (median diff)  {overhead:8.1f} ms")
    for phase in ("prepare_ms", "generate_ms", "encode_ms", "upload_ms"):
        print(f"  {phase:<12} {median_ms([getattr(t, phase) for t in phases])}")

    adapters = loaded.adapters
    names = ["glow", "sparkle", "comfy"]
    choices = {name: LoraChoice(name, 1.0, runner.catalog.loras[name].path) for name in names}
    first_loads = []
    for name in names:
        started = time.perf_counter()
        adapters.activate([choices[name]])
        first_loads.append((time.perf_counter() - started) * 1000)
    switches = []
    for index in range(30):
        started = time.perf_counter()
        adapters.activate([choices[names[index % 3]]])
        switches.append((time.perf_counter() - started) * 1000)
    print(f"LoRA first load         {median_ms(first_loads)}")
    print(f"LoRA switch (loaded)    {median_ms(switches)}")
    print(f"disk loads: model {runner.pool.disk_loads}, LoRAs {adapters.disk_loads}")


if __name__ == "__main__":
    main()
