"""The speed packages as the speed rows will see them (scripts/gpu/probe.py runs this in a child process with the
speed folder on PYTHONPATH, so a package that crashes on import cannot take the probe down): torchao's version and
a float8 GEMM on one linear layer, which attention packages diffusers finds, the candidate attention backends whose
requirements are met (`usable_attention_backends`), and of those the ones one real call of which ran and matched
PyTorch's reference attention (`working_attention_backends`: scripts/gpu-check.sh gives each a bench row). Prints
one JSON object.

    python3 scripts/gpu/speed_probe.py --device cuda [--candidates flash,_native_cudnn,...]
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import metadata
from typing import Any

ATTENTION_FLAGS = ("FLASH_ATTN", "FLASH_ATTN_3", "SAGE_ATTN", "FLEX_ATTN", "XFORMERS_ATTN")
# diffusers' attention backends that may run a Wan block on one CUDA device, other than the default (`native`:
# PyTorch's scaled_dot_product_attention choosing its kernel). Left out: the *_hub ones (they download kernels;
# the node has no network), the varlen ones (for padded batches), `_native_math` (the unfused reference), `flex`
# (uncompiled, flex_attention runs an unfused fallback), and NPU and XLA.
ATTENTION_CANDIDATES = ("flash", "_flash_3", "sage", "xformers", "_native_cudnn", "_native_efficient", "_native_flash")
ATTENTION_TOLERANCE = 2e-2  # relative error of bf16 attention against the float32 reference (seen: ~2e-3)


def attention_backends() -> dict[str, bool]:
    from diffusers.models import attention_dispatch

    return {flag.lower(): bool(getattr(attention_dispatch, f"_CAN_USE_{flag}", False)) for flag in ATTENTION_FLAGS}


def usable_attention_backends(candidates: tuple[str, ...] = ATTENTION_CANDIDATES) -> list[str]:
    """The candidates whose requirements diffusers finds met (packages and versions; not yet the device)."""
    from diffusers.models.attention_dispatch import AttentionBackendName, _check_attention_backend_requirements

    usable = []
    for name in candidates:
        try:
            _check_attention_backend_requirements(AttentionBackendName(name))
        except (RuntimeError, ImportError, ValueError):
            continue
        usable.append(name)
    return usable


def attention_calls(names: list[str], device: str) -> dict[str, str]:
    """One call of each backend on a small bf16 problem (batch 1, 256 tokens, 4 heads of 64) through diffusers'
    dispatcher, against float32 SDPA: "ok", or why not (an error, or an output off the reference)."""
    import torch
    from diffusers.models.attention_dispatch import AttentionBackendName, dispatch_attention_fn

    torch.manual_seed(0)
    query, key, value = (torch.randn(1, 256, 4, 64, device=device, dtype=torch.bfloat16) for _ in range(3))
    layout = [tensor.float().transpose(1, 2) for tensor in (query, key, value)]
    reference = torch.nn.functional.scaled_dot_product_attention(*layout).transpose(1, 2)
    outcomes = {}
    for name in names:
        try:
            output = dispatch_attention_fn(query, key, value, backend=AttentionBackendName(name)).float()
        except Exception as exc:  # the finding: this backend does not run here
            outcomes[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            continue
        error = float((output - reference).norm() / reference.norm())
        outcomes[name] = "ok" if error < ATTENTION_TOLERANCE else f"relative error {error:.3g} against SDPA"
    return outcomes


def torchao_smoke(device: str) -> dict[str, Any]:
    """torchao's float8 (dynamic activations, per-row scales: what `fp8_matmul` uses) on one bf16 linear layer,
    against bf16."""
    try:
        version = metadata.version("torchao")
    except metadata.PackageNotFoundError:
        return {"version": None, "status": "absent"}
    import torch
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    if not device.startswith("cuda"):
        return {"version": version, "status": "imported (the float8 smoke needs CUDA)"}
    torch.manual_seed(0)
    layer = torch.nn.Sequential(torch.nn.Linear(1024, 1024, bias=False)).to(device, torch.bfloat16)
    inputs = torch.randn(256, 1024, device=device, dtype=torch.bfloat16)
    reference = layer(inputs).float()
    # as models/speed.py: Inductor's process-wide settings left alone (torchao would turn on coordinate descent)
    quantize_(layer, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow(), set_inductor_config=False))
    output = layer(inputs).float()
    error = float((output - reference).norm() / reference.norm())
    return {"version": version, "status": "ok", "float8_relative_error": round(error, 5)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", required=True)
    parser.add_argument("--candidates", default=",".join(ATTENTION_CANDIDATES), help="attention backends to try")
    args = parser.parse_args()
    usable = usable_attention_backends(tuple(name for name in args.candidates.split(",") if name))
    calls = attention_calls(usable, args.device)
    report: dict[str, Any] = {
        "attention_backends": attention_backends(),
        "usable_attention_backends": usable,
        "attention_calls": calls,
        "working_attention_backends": [name for name, outcome in calls.items() if outcome == "ok"],
    }
    try:
        report["torchao"] = torchao_smoke(args.device)
    except Exception as exc:  # the smoke informs the next issue: its failure is the finding, reported as such
        report["torchao"] = {"version": metadata.version("torchao"), "status": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
