"""A check while the VAE decodes, so that a call can also be stopped while its video decodes.

The denoising loop has a step callback; the decode after it has none, and on a video VAE it is long (Wan's causal
VAE decodes one latent frame at a time: 13 chunks for a 3 s clip, seconds on a CPU, about a second on a GPU). A warm
run that a real job preempts must give way there too (worker.warm_runs), within about a step, not only at its next
denoising step; one chunk takes about two steps on a CPU, so the check also runs inside a chunk.

Forward pre-hooks, installed once per VAE: one on the pipeline's `vae.decoder`, which runs the check before every
chunk, and one on each of the decoder's submodules, which runs it inside the chunk when `INTRA_CHUNK_INTERVAL_S`
has passed since the last check (a real job's check is a Redis round trip: a few dozen per second of decode at
most). The hooks call the check of the pipeline call running in this context (a contextvar, so another thread's
call, e.g. another batch member, is not disturbed) and cost one contextvar lookup otherwise. Raising from the
check stops the decode there; the VAE clears its chunk cache when the next decode starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

HOOKED_ATTRIBUTE = "_npc_decode_check_hook"
INTRA_CHUNK_INTERVAL_S = 0.02


class _Checks:
    """One call's check, and when it last ran."""

    def __init__(self, check: Callable[[], None]) -> None:
        self.check = check
        self.last = float("-inf")

    def run(self) -> None:
        self.last = time.monotonic()
        self.check()

    def run_if_due(self) -> None:
        if time.monotonic() - self.last >= INTRA_CHUNK_INTERVAL_S:
            self.run()


_checks: ContextVar[_Checks | None] = ContextVar("npc_decode_checks", default=None)


def _before_chunk(_module: Any, _args: Any) -> None:
    checks = _checks.get()
    if checks is not None:
        checks.run()


def _inside_chunk(_module: Any, _args: Any) -> None:
    checks = _checks.get()
    if checks is not None:
        checks.run_if_due()


def install_decode_check(pipe: Any) -> bool:
    """Hook the pipeline's VAE decoder (idempotent per decoder); False when the VAE has no `decoder` module."""
    decoder = getattr(getattr(pipe, "vae", None), "decoder", None)
    if decoder is None or not hasattr(decoder, "register_forward_pre_hook"):
        return False
    if not getattr(decoder, HOOKED_ATTRIBUTE, False):
        decoder.register_forward_pre_hook(_before_chunk)
        for module in decoder.modules():
            if module is not decoder:
                module.register_forward_pre_hook(_inside_chunk)
        setattr(decoder, HOOKED_ATTRIBUTE, True)
    return True


@contextmanager
def checking(check: Callable[[], None] | None) -> Iterator[None]:
    """Make `check` run while the pipeline call made in this context decodes: before every decoder chunk, and
    inside one at most every INTRA_CHUNK_INTERVAL_S."""
    token = _checks.set(None if check is None else _Checks(check))
    try:
        yield
    finally:
        _checks.reset(token)
