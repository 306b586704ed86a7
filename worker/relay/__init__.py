"""`npc-worker relay`: the worker's events, re-published in the shape another system's event bus expects.

One module for the consumer (worker.relay.consumer) and one per format; FORMATS names them for the command line.
"""

from __future__ import annotations

from collections.abc import Callable

from worker.relay.consumer import PublishRefused, Relay, RelayFormat, RelayOptions
from worker.relay.pixsim7 import Pixsim7Format

FORMATS: dict[str, Callable[[str], RelayFormat]] = {  # name -> the format, given the origin its messages name
    Pixsim7Format.name: Pixsim7Format,
}

__all__ = ["FORMATS", "Pixsim7Format", "PublishRefused", "Relay", "RelayFormat", "RelayOptions"]
