"""The GPU check's first stage after the wheels, under a minute: the probe (scripts/gpu/probe.py: device, versions,
imports, ffmpeg, Redis, torchao's float8 GEMM and one call per attention backend, in a child with the speed
packages), then the narrow model end to end through the worker's job runner on the device, and one of its
transformer blocks compiled (Inductor on the GPU) and checked against the same block uncompiled on the inputs it
saw in that job. What fails here would fail every later stage, in seconds rather than minutes. Writes smoke.json
(each check: ok, seconds, detail) and exits 1 when a check failed.

    PYTHONPATH=.:clients/python python3 scripts/gpu/smoke.py --device cuda --catalog CATALOG --model smoke-narrow \
        --out smoke.json --probe-out probe.json [--override "width=128 art_style=realistic"] \
        [--compile-backend inductor] [--attention flash,_native_cudnn,...] [--site DIR] [--speed-site DIR] \
        [--pyproject FILE]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

BLOCK_TOLERANCE = 2e-2  # relative error of a compiled bf16 block against the same block uncompiled


def check(name: str, run: Callable[[], str], results: dict[str, Any]) -> None:
    """Run one check; record ok and its detail, or the error that ended it (the finding), with its seconds."""
    started = time.perf_counter()
    try:
        detail, ok = run(), True
    except Exception as exc:  # a failed check is the finding: record it and go on with the next
        traceback.print_exc()
        detail, ok = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}", False
    results[name] = {"ok": ok, "seconds": round(time.perf_counter() - started, 2), "detail": detail}
    print(f"smoke: {name}: {'ok' if ok else 'FAILED'} in {results[name]['seconds']} s: {detail}", flush=True)


def run_probe(args: argparse.Namespace) -> str:
    command = [sys.executable, str(Path(__file__).with_name("probe.py")), "--device", args.device]
    command += ["--out", str(args.probe_out), "--pyproject", str(args.pyproject)]
    for flag, value in (("--site", args.site), ("--speed-site", args.speed_site), ("--attention", args.attention)):
        if value:
            command += [flag, str(value)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    sys.stdout.write(done.stdout[-4000:])
    sys.stderr.write(done.stderr[-4000:])
    if done.returncode != 0:
        raise RuntimeError(f"probe exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    probe = json.loads(args.probe_out.read_text(encoding="utf-8"))
    speed = probe.get("speed", {})
    return (
        f"torchao: {json.dumps(speed.get('torchao', speed.get('status')))}; "
        f"attention backends that ran: {speed.get('working_attention_backends')}"
    )


class NarrowModel:
    """The narrow model's job through the worker's runner, with block 0's inputs captured for the compile check."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.block_inputs: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self.runner: Any = None

    def job(self) -> str:
        from bench.jobs import base_image_uri, envelope
        from bench.options import parse_scalar
        from npc_video_client.contract import JobStatus, QualityPreset
        from worker.runtime import build_runtime
        from worker.settings import Settings

        overrides = {
            key: parse_scalar(value)
            for key, _, value in (pair.partition("=") for pair in shlex.split(self.args.override))
        }
        storage = Path(tempfile.mkdtemp(prefix="npc-smoke-"))
        settings = Settings(catalog=self.args.catalog, device=self.args.device, storage_url=f"file://{storage}")
        self.runner = build_runtime(settings)
        pipe = self.runner.pool.get(self.args.model).pipe
        block = pipe.transformer.blocks[0]

        def capture(_module: Any, positional: tuple[Any, ...], keywords: dict[str, Any]) -> None:
            if self.block_inputs is None:
                self.block_inputs = (positional, keywords)

        hook = block.register_forward_pre_hook(capture, with_kwargs=True)
        try:
            result = self.runner.run(envelope("smoke", base_image_uri(None), QualityPreset.FAST, 0, overrides))
        finally:
            hook.remove()
        if result.status != JobStatus.COMPLETED:
            raise RuntimeError(f"the job ended {result.status.value}: {result.error_code} {result.error_message}")
        if result.model != self.args.model:
            raise RuntimeError(f"the job ran on {result.model}, not {self.args.model}: give the style that picks it")
        device = next(pipe.transformer.parameters()).device
        return (
            f"{result.width}x{result.height}x{result.generated_frames}, {result.steps} steps on {device}: "
            f"generate {result.timings.generate_ms:.0f} ms, encode {result.timings.encode_ms:.0f} ms"
        )

    def compiled_block(self) -> str:
        import torch

        if self.runner is None or self.block_inputs is None:
            raise RuntimeError("the narrow job did not run, so no block inputs were captured")
        block = self.runner.pool.get(self.args.model).pipe.transformer.blocks[0]
        positional, keywords = self.block_inputs
        with torch.no_grad():
            eager = block(*positional, **keywords)
            compiled_block = torch.compile(block, backend=self.args.compile_backend)
            started = time.perf_counter()
            compiled = compiled_block(*positional, **keywords)
            compile_s = time.perf_counter() - started
            again = time.perf_counter()
            compiled_block(*positional, **keywords)
            call_ms = (time.perf_counter() - again) * 1000
        eager_out = eager[0] if isinstance(eager, tuple) else eager
        compiled_out = compiled[0] if isinstance(compiled, tuple) else compiled
        error = float((compiled_out.float() - eager_out.float()).norm() / eager_out.float().norm())
        if not error < BLOCK_TOLERANCE:
            raise RuntimeError(f"the compiled block is off the eager one: relative error {error:.3g}")
        return (
            f"{type(block).__name__} with backend {self.args.compile_backend}: first call (compiles) "
            f"{compile_s:.1f} s, then {call_ms:.1f} ms; relative error {error:.2g}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", required=True)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--probe-out", type=Path, required=True)
    parser.add_argument(
        "--override",
        default="",
        help="job params of the narrow job: key=value ... (art_style: the style that picks --model)",
    )
    parser.add_argument("--compile-backend", default="inductor", choices=("inductor", "eager", "aot_eager"))
    parser.add_argument("--attention", help="attention backends the probe tries one call of")
    parser.add_argument("--site", type=Path)
    parser.add_argument("--speed-site", type=Path)
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    args = parser.parse_args()

    results: dict[str, Any] = {}
    check("probe", lambda: run_probe(args), results)
    narrow = NarrowModel(args)
    check("narrow_job", narrow.job, results)
    check("compiled_block", narrow.compiled_block, results)
    args.out.write_text(json.dumps({"device": args.device, "checks": results}, indent=2) + "\n", encoding="utf-8")
    failed = [name for name, result in results.items() if not result["ok"]]
    if failed:
        print(f"smoke: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
