"""Wan 2.2 I2V A14B (diffusers WanImageToVideoPipeline with two experts): sides multiple of 16, frames 4k+1,
16 fps.

The high-noise expert `transformer` denoises while t >= boundary_ratio x 1000 (from the checkpoint's
pipeline config), the low-noise expert `transformer_2` after it. A LoRA trained for Wan 2.2 has to change
both, so every LoRA file is loaded into each expert under the same adapter name; `set_adapters`,
`disable_lora` and `delete_adapters` on the pipeline then act on both at once. Per-expert LoRAs (the
high-noise / low-noise file pairs some Wan 2.2 LoRAs ship as) and per-expert weights are not modelled yet:
a catalog LoRA always goes into both experts with one weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.family import Family
from pipelines.grid import FrameRule


@dataclass(frozen=True)
class TwoExpertFamily(Family):
    """A family whose pipeline has two denoisers (`transformer`, `transformer_2`) that both take LoRAs."""

    def load_lora(self, pipe: Any, path: Path, adapter_name: str, hotswap: bool = False) -> None:
        pipe.load_lora_weights(str(path), adapter_name=adapter_name, hotswap=hotswap)
        pipe.load_lora_weights(str(path), adapter_name=adapter_name, load_into_transformer_2=True, hotswap=hotswap)


WAN22_I2V = TwoExpertFamily(
    name="wan22-i2v",
    pipeline_class="WanImageToVideoPipeline",
    size_multiple=16,
    frame_rule=FrameRule(step=4, offset=1),
    native_fps=16,
)
