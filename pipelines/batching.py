"""Batching compatible jobs at the denoiser: N pipeline calls run side by side, their denoiser calls run as one.

diffusers' image-to-video pipelines batch several prompts of one image, not several images (Wan I2V repeats its
image embedding and start-frame latents over the batch). So instead of one batched pipeline call, each job of a
batch runs its own pipeline call in its own thread, on a shallow copy of the pipeline (its own scheduler and call
state; the same weights), and the copies' denoiser (`transformer`, `transformer_2`, `unet`) is a proxy that hands
each call to a `ForwardBatcher`. The batcher waits until every member still running has made its call of the
round, concatenates their inputs along the batch dimension, runs the real denoiser once, and gives each member its
slice of the output. Everything else (text and image encoding, the scheduler step, VAE decoding) stays per job, so
each job keeps its own generator, prompt, image, events, cancellation and failure; the denoiser, where the FLOPs
are, sees one batch.

The members of a batch share model, size, frames, steps, cfg and LoRA set, so their calls line up round by round.
A member that stops (cancelled, failed) leaves, and the others go on without it. Inputs that cannot be merged
(a non-batch tensor that differs between members) make that round run member by member: never wrong, only slower.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

T = TypeVar("T")
DENOISERS = ("transformer", "transformer_2", "unet")
# Encoders go through tokenizers and image processors whose state is not thread-safe (a fast tokenizer's padding
# settings are shared), and the Wan VAE keeps its causal-convolution cache on the module during encode and decode:
# the members of a batch take turns at the encoders, and decode their latents as one batch (one call: the cache
# is used by one call at a time, and the decoder, often the costliest stage of a short clip, sees a batch too).
SERIAL_METHODS = ("encode_prompt", "encode_image", "_encode_image")
VAE_SERIAL = ("encode",)
VAE_BATCHED = ("decode",)


@dataclass
class _Call:
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class _Round:
    module: Any
    calls: list[_Call] = field(default_factory=list)


class ForwardBatcher:
    """Gathers one denoiser call from every active member and runs them as one call."""

    def __init__(self, members: int) -> None:
        self._active = members
        self._waiting: dict[int, _Round] = {}  # by id(module): a two-expert model alternates its denoisers
        self._cond = threading.Condition()
        self.encoder_lock = threading.Lock()
        self.merged_calls = 0
        self.split_calls = 0

    def leave(self) -> None:
        """A member's pipeline call ended (finished, cancelled or failed): the others no longer wait for it."""
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def call(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], key: Any = None) -> Any:
        """Call `module(*args, **kwargs)` merged with the other members' calls of the same `key` (default: the
        module itself)."""
        mine = _Call(args, kwargs)
        with self._cond:
            round_ = self._waiting.setdefault(id(module) if key is None else key, _Round(module))
            round_.calls.append(mine)
            self._cond.notify_all()
            while not mine.done:
                ready_key = next((k for k, r in self._waiting.items() if len(r.calls) >= self._active), None)
                if ready_key is None:
                    self._cond.wait()
                    continue
                ready = self._waiting.pop(ready_key)
                try:
                    self._run(ready)  # under the lock: every member still running is waiting for this round
                finally:
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.result

    def _run(self, round_: _Round) -> None:
        """Runs while holding the lock: the other members are waiting for this round anyway."""
        calls = round_.calls
        try:
            merged = _merge([call.args for call in calls], [call.kwargs for call in calls])
            if merged is None:
                self.split_calls += 1
                for call in calls:
                    call.result = round_.module(*call.args, **call.kwargs)
            else:
                self.merged_calls += 1
                args, kwargs, sizes = merged
                output = round_.module(*args, **kwargs)
                for call, part in zip(calls, _split(output, sizes), strict=True):
                    call.result = part
        except BaseException as exc:  # every member of the round gets the failure (e.g. out of memory)
            for call in calls:
                call.error = exc
        finally:
            for call in calls:
                call.done = True


def _batch_size(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    first = kwargs.get("hidden_states", kwargs.get("sample", kwargs.get("z", args[0] if args else None)))
    if not isinstance(first, torch.Tensor):
        raise TypeError("a denoiser call without a tensor input cannot be batched")
    return int(first.shape[0])


def _merge_values(values: list[Any], sizes: list[int]) -> tuple[bool, Any]:
    """(True, merged) or (False, None) when these values of the members cannot be one call's value.

    A tensor whose first dimension is each member's batch size is per sample: the members' tensors are stacked
    (also when they are one and the same object: a cached image embedding shared by every member). Any other
    value must be the same for every member, and is passed once.
    """
    first = values[0]
    if isinstance(first, torch.Tensor):
        tensors = values
        if not all(isinstance(value, torch.Tensor) for value in tensors):
            return False, None
        if all(value.dim() > 0 and value.shape[0] == size for value, size in zip(tensors, sizes, strict=True)):
            if all(value.shape[1:] == first.shape[1:] for value in tensors):
                return True, torch.cat(tensors, dim=0)
            return False, None
        same = all(value is first or (value.shape == first.shape and torch.equal(value, first)) for value in tensors)
        return (True, first) if same else (False, None)
    if all(value is first for value in values):
        return True, first
    if isinstance(first, dict):
        if not all(isinstance(value, dict) and value.keys() == first.keys() for value in values):
            return False, None
        merged_dict = {}
        for key in first:
            ok, merged = _merge_values([value[key] for value in values], sizes)
            if not ok:
                return False, None
            merged_dict[key] = merged
        return True, merged_dict
    if isinstance(first, (tuple, list)):
        if not all(isinstance(value, type(first)) and len(value) == len(first) for value in values):
            return False, None
        parts = []
        for index in range(len(first)):
            ok, merged = _merge_values([value[index] for value in values], sizes)
            if not ok:
                return False, None
            parts.append(merged)
        return True, type(first)(parts)
    try:
        return (True, first) if all(bool(value == first) for value in values) else (False, None)
    except (RuntimeError, TypeError, ValueError):  # values without a plain equality: run member by member
        return False, None


def _merge(
    all_args: list[tuple[Any, ...]], all_kwargs: list[dict[str, Any]]
) -> tuple[tuple[Any, ...], dict[str, Any], list[int]] | None:
    if len(all_args) == 1:
        return all_args[0], all_kwargs[0], [_batch_size(all_args[0], all_kwargs[0])]
    sizes = [_batch_size(args, kwargs) for args, kwargs in zip(all_args, all_kwargs, strict=True)]
    if len({len(args) for args in all_args}) != 1 or len({tuple(sorted(kw)) for kw in all_kwargs}) != 1:
        return None
    args = []
    for index in range(len(all_args[0])):
        ok, value = _merge_values([member[index] for member in all_args], sizes)
        if not ok:
            return None
        args.append(value)
    kwargs = {}
    for name in all_kwargs[0]:
        ok, value = _merge_values([member[name] for member in all_kwargs], sizes)
        if not ok:
            return None
        kwargs[name] = value
    return tuple(args), kwargs, sizes


def _split(output: Any, sizes: list[int]) -> list[Any]:
    """One member's share of a denoiser output: tensors split along the batch dimension, the rest repeated."""
    if isinstance(output, torch.Tensor):
        return list(torch.split(output, sizes, dim=0))
    if isinstance(output, tuple):
        columns = [_split(item, sizes) for item in output]
        return [tuple(column[index] for column in columns) for index in range(len(sizes))]
    if hasattr(output, "to_tuple"):  # a diffusers BaseOutput (return_dict=True)
        fields = {name: _split(value, sizes) for name, value in output.items()}
        return [type(output)(**{name: parts[index] for name, parts in fields.items()}) for index in range(len(sizes))]
    return [output] * len(sizes)


class DenoiserProxy:
    """Stands in for a denoiser in a member's pipeline copy: calls go to the batcher, everything else (config,
    dtype, cache_context, ...) to the real module."""

    def __init__(self, module: Any, batcher: ForwardBatcher) -> None:
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_batcher", batcher)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._batcher.call(self._module, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


class VaeProxy:
    """Stands in for the shared VAE in a member's pipeline copy: `encode` one member at a time, `decode` merged
    across the members (like the denoiser), everything else the real module's."""

    def __init__(self, module: Any, batcher: ForwardBatcher) -> None:
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_batcher", batcher)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._module, name)
        if name in VAE_SERIAL:
            return _one_at_a_time(value, self._batcher.encoder_lock)
        if name in VAE_BATCHED:
            key = (id(self._module), name)
            return lambda *args, **kwargs: self._batcher.call(value, args, kwargs, key=key)
        return value


def _one_at_a_time(method: Callable[..., Any], lock: threading.Lock) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return call


def member_pipeline(pipe: Any, batcher: ForwardBatcher) -> Any:
    """A shallow copy of `pipe` with its own scheduler and call state, proxies for its denoisers, and its encoders
    taking turns with the other members'."""
    member = copy.copy(pipe)
    object.__setattr__(member, "scheduler", copy.deepcopy(pipe.scheduler))
    for name in DENOISERS:
        module = getattr(pipe, name, None)
        if module is not None:
            object.__setattr__(member, name, DenoiserProxy(module, batcher))
    for name in SERIAL_METHODS:
        method = getattr(pipe, name, None)
        if callable(method):
            object.__setattr__(member, name, _one_at_a_time(method, batcher.encoder_lock))
    if getattr(pipe, "vae", None) is not None:
        object.__setattr__(member, "vae", VaeProxy(pipe.vae, batcher))
    return member


def run_batch(pipe: Any, calls: Sequence[Callable[[Any], T]]) -> list[T | BaseException]:
    """Run `calls[i](member_pipe_i)` side by side, each in its own thread, their denoiser calls batched.

    Returns, in order, each call's return value or the exception it raised (a member's failure is its own).
    """
    if len(calls) == 1:
        return [_outcome(calls[0], pipe)]
    batcher = ForwardBatcher(len(calls))
    outcomes: dict[int, T | BaseException] = {}

    def member(index: int) -> None:
        try:
            outcomes[index] = _outcome(calls[index], member_pipeline(pipe, batcher))
        finally:
            batcher.leave()

    threads = [threading.Thread(target=member, args=(index,), name=f"batch-{index}") for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [outcomes[index] for index in range(len(calls))]


def _outcome(call: Callable[[Any], T], pipe: Any) -> T | BaseException:
    try:
        return call(pipe)
    except BaseException as exc:  # returned, not raised: the caller decides per member
        return exc
