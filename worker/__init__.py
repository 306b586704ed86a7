"""The npc_response video worker: contract, settings, job lifecycle, storage, encoding, CLI."""

__version__ = "0.2.0"
