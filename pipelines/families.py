"""The registry of model families by catalog name (`family = "..."`)."""

from __future__ import annotations

from pipelines.family import Family
from pipelines.wan_i2v import WAN_I2V

FAMILIES: dict[str, Family] = {family.name: family for family in (WAN_I2V,)}
