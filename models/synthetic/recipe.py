"""What a synthetic pipeline is made of at one scale: weighted modules, light components and pipeline config."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Scale = Literal["full", "narrow"]
SCALES: tuple[Scale, ...] = ("full", "narrow")


@dataclass(frozen=True)
class Recipe:
    """`modules` are constructed inside a skeleton context (weights on meta) and materialized afterwards;
    `others` (tokenizer, scheduler, image processor) are built as they are; `absent` components are passed as
    None (an optional component the checkpoint does not ship); `config` holds the pipeline's own arguments."""

    modules: Mapping[str, Callable[[], Any]]
    others: Mapping[str, Callable[[], Any]]
    absent: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
