"""A check between the VAE decoder's chunks, so that a call can also be stopped while its video decodes.

The denoising loop has a step callback; the decode after it has none, and on a video VAE it is long (Wan's causal
VAE decodes one latent frame at a time: 13 chunks for a 3 s clip, seconds on a CPU, about a second on a GPU). A warm
run that a real job preempts must give way there too (worker.warm_runs), not only at its next denoising step.

The hook is a forward pre-hook on the pipeline's `vae.decoder`, installed once per VAE; it calls the check of the
pipeline call running in this context (a contextvar, so another thread's call, e.g. another batch member, is not
disturbed) and costs one contextvar lookup otherwise. Raising from the check stops the decode at that chunk; the
VAE clears its chunk cache when the next decode starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

HOOKED_ATTRIBUTE = "_npc_decode_check_hook"

_check: ContextVar[Callable[[], None] | None] = ContextVar("npc_decode_check", default=None)


def _before_chunk(_module: Any, _args: Any) -> None:
    check = _check.get()
    if check is not None:
        check()


def install_decode_check(pipe: Any) -> bool:
    """Hook the pipeline's VAE decoder (idempotent per decoder); False when the VAE has no `decoder` module."""
    decoder = getattr(getattr(pipe, "vae", None), "decoder", None)
    if decoder is None or not hasattr(decoder, "register_forward_pre_hook"):
        return False
    if not getattr(decoder, HOOKED_ATTRIBUTE, False):
        decoder.register_forward_pre_hook(_before_chunk)
        setattr(decoder, HOOKED_ATTRIBUTE, True)
    return True


@contextmanager
def checking(check: Callable[[], None] | None) -> Iterator[None]:
    """Make `check` run before every decoder chunk of the pipeline call made in this context."""
    token = _check.set(check)
    try:
        yield
    finally:
        _check.reset(token)
