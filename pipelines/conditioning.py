"""Conditioning caches: NPC jobs repeat (the same base image per NPC, the same few prompts per emotion), so what a
pipeline computes from them is kept on the device and reused.

A cache layer sits at the pipeline's own conditioning points: text encoding (`_get_t5_prompt_embeds`, which
`encode_prompt` calls once for the prompt and once for the negative prompt, so a shared negative prompt is encoded
once: keyed by the text, the maximum length, the device and dtype), and, at pipelines.stages.STAGE_POINTS, the CLIP
image embedding (`encode_image` / SVD's `_encode_image`, keyed by the image's pixels: size and content hash) and the
VAE-encoded start frame (`vae.encode`, which no pipeline call accepts ready-made: keyed by the job's image hash,
size and frame count, given by the caller through `conditioning(...)`, plus the seed for families that add noise
to the image before encoding it). A hit returns the very tensors the miss computed, so a cached job's output is
byte-identical to an uncached one; the encoders do not run at all.

Entries are kept least recently used first within a byte budget (all tensors of an entry counted once), on the
device where they were made. The cache is per loaded model: keys carry the model name.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import torch

from pipelines.stages import StagePoint, install_layer

CACHE_LAYER = "condition-cache"
TEXT_POINT = StagePoint("text_encode", None, "_get_t5_prompt_embeds")  # Wan, LTX-Video, CogVideoX: one text
# Families whose VAE input carries noise drawn from the job's generator (SVD's noise augmentation).
SEEDED_CONDITION_FAMILIES = frozenset({"svd"})


def _tensors(value: Any, seen: dict[int, torch.Tensor]) -> None:
    if isinstance(value, torch.Tensor):
        seen.setdefault(id(value), value)
    elif isinstance(value, (tuple, list)):
        for item in value:
            _tensors(item, seen)
    elif isinstance(value, dict):
        for item in value.values():
            _tensors(item, seen)
    elif is_dataclass(value) and not isinstance(value, type):
        for item in fields(value):
            _tensors(getattr(value, item.name), seen)
    elif hasattr(value, "__dict__"):  # e.g. DiagonalGaussianDistribution (parameters, mean, std, ...)
        for item in vars(value).values():
            _tensors(item, seen)


def size_of(value: Any) -> int:
    """Bytes of the distinct tensors in a cached value."""
    seen: dict[int, torch.Tensor] = {}
    _tensors(value, seen)
    return sum(tensor.numel() * tensor.element_size() for tensor in seen.values())


@dataclass
class ConditionCache:
    """LRU by bytes; thread-safe (the members of a batch share it)."""

    max_bytes: int
    hits: int = 0
    misses: int = 0
    _entries: OrderedDict[tuple[Any, ...], tuple[Any, int]] = field(default_factory=OrderedDict)
    _bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_compute(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found[0]
        value = compute()
        size = size_of(value)
        with self._lock:
            self.misses += 1
            if size <= self.max_bytes and key not in self._entries:
                self._entries[key] = (value, size)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _old, (_value, old_size) = self._entries.popitem(last=False)
                    self._bytes -= old_size
        return value


@dataclass
class Conditioning:
    """What the layer needs to know about the job being run: the cache, the model, the key of its start frame
    (for `vae.encode`) and the time spent conditioning so far (the result's `condition_ms`)."""

    cache: ConditionCache | None
    model: str
    frame_key: tuple[Any, ...]
    device: Any = None
    seconds: float = 0.0


_active: ContextVar[Conditioning | None] = ContextVar("npc_conditioning", default=None)


@contextmanager
def conditioning(scope: Conditioning) -> Iterator[Conditioning]:
    token = _active.set(scope)
    try:
        yield scope
    finally:
        _active.reset(token)


def _image_digest(image: Any) -> tuple[Any, ...]:
    """A PIL image (or a list of them) by size, mode and pixel hash; anything else is not cacheable (None)."""
    if isinstance(image, (list, tuple)):
        parts = [_image_digest(item) for item in image]
        return ("images", *parts)
    if hasattr(image, "tobytes") and hasattr(image, "size") and hasattr(image, "mode"):
        return ("image", image.size, image.mode, hashlib.sha256(image.tobytes()).hexdigest())
    raise TypeError(f"cannot key a {type(image).__name__}")


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (torch.device, torch.dtype)):
        return str(value)
    raise TypeError(f"cannot key a {type(value).__name__}")


def _call_key(point: StagePoint, scope: Conditioning, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """The cache key of a call, or TypeError when the call's inputs cannot be keyed (it then runs uncached)."""
    base = (scope.model, point.component or "pipe", point.method)
    if point.component == "vae":
        tensor = args[0] if args else kwargs.get("x")
        if not isinstance(tensor, torch.Tensor):
            raise TypeError("vae.encode without a tensor")
        rest = {name: _scalar(value) for name, value in kwargs.items() if name != "x"}
        return (*base, scope.frame_key, tuple(tensor.shape), str(tensor.dtype), tuple(sorted(rest.items())))
    keyed: list[Any] = []
    for value in args:
        keyed.append(_image_digest(value) if not _is_plain(value) else _scalar(value))
    named = []
    for name, value in sorted(kwargs.items()):
        if name in ("image", "images"):
            named.append((name, _image_digest(value)))
        elif isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
            named.append((name, tuple(value)))
        else:
            named.append((name, _scalar(value)))
    return (*base, tuple(keyed), tuple(named))


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, torch.device, torch.dtype))


def _cached(point: StagePoint, inner: Callable[..., Any]) -> Callable[..., Any]:
    if point.stage != "image_encode" and point is not TEXT_POINT:
        return inner

    @functools.wraps(inner)
    def call(*args: Any, **kwargs: Any) -> Any:
        scope = _active.get()
        if scope is None:
            return inner(*args, **kwargs)
        started = time.perf_counter()
        try:
            if scope.cache is None:
                return inner(*args, **kwargs)
            try:
                key = _call_key(point, scope, args, kwargs)
            except TypeError:
                return inner(*args, **kwargs)
            return scope.cache.get_or_compute(key, lambda: inner(*args, **kwargs))
        finally:
            if getattr(scope.device, "type", None) == "cuda":
                torch.cuda.synchronize(scope.device)
            scope.seconds += time.perf_counter() - started

    return call


def install_condition_cache(pipe: Any) -> bool:
    """The cache layer (idempotent per pipeline object); run_pipeline installs it before the timing layer, so a
    hit is timed as a near-zero stage."""
    if not install_layer(pipe, CACHE_LAYER, _cached):
        return False
    text = getattr(pipe, TEXT_POINT.method, None)
    if callable(text):
        setattr(pipe, TEXT_POINT.method, _cached(TEXT_POINT, text))
    return True
