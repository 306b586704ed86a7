"""Logging to stderr, so stdout stays machine-readable (the CLI prints result JSON there)."""

from __future__ import annotations

import logging
import os
import sys

NOISY_LOGGERS = ("diffusers", "transformers", "peft", "httpx", "urllib3", "botocore")


def configure_logging(level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or os.environ.get("NPC_WORKER_LOG_LEVEL", "INFO")).upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
