"""The registry of model families by catalog name (`family = "..."`)."""

from __future__ import annotations

from pipelines.cogvideox_i2v import COGVIDEOX_I2V
from pipelines.family import Family
from pipelines.ltx_i2v import LTX_I2V
from pipelines.svd import SVD
from pipelines.wan22_i2v import WAN22_I2V
from pipelines.wan22_ti2v import WAN22_TI2V
from pipelines.wan_i2v import WAN_I2V

FAMILIES: dict[str, Family] = {
    family.name: family for family in (WAN_I2V, WAN22_I2V, WAN22_TI2V, LTX_I2V, COGVIDEOX_I2V, SVD)
}
