"""The quality preset table of CONTRACT.md section 2 (defaults; the catalog may override per model)."""

from __future__ import annotations

from dataclasses import dataclass

from npc_video_client.contract import QualityPreset

DEFAULT_DURATION_SEC = 3.0


@dataclass(frozen=True)
class PresetValues:
    width: int
    height: int
    fps: int
    steps: int
    cfg: float


PRESETS: dict[QualityPreset, PresetValues] = {
    QualityPreset.REALTIME: PresetValues(width=256, height=256, fps=8, steps=4, cfg=1.5),
    QualityPreset.FAST: PresetValues(width=512, height=512, fps=12, steps=8, cfg=3.0),
    QualityPreset.BALANCED: PresetValues(width=512, height=512, fps=24, steps=15, cfg=5.0),
    QualityPreset.QUALITY: PresetValues(width=768, height=768, fps=30, steps=25, cfg=7.5),
}
