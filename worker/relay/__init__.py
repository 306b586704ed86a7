"""`npc-worker relay`: the worker's events, re-published in the shape another system's event bus expects.

One module for the consumer (worker.relay.consumer) and one per format (worker.relay.pixsim7, the only one so far).
"""

from __future__ import annotations

from worker.relay.consumer import PublishRefused, Relay, RelayFormat, RelayOptions
from worker.relay.pixsim7 import Pixsim7Events, Pixsim7Format

__all__ = ["Pixsim7Events", "Pixsim7Format", "PublishRefused", "Relay", "RelayFormat", "RelayOptions"]
