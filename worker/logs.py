"""Logging to stderr (stdout stays machine-readable: the CLI prints result JSON there), as text or JSON lines.

`log_context(job_id=..., lane=..., attempt=..., model=...)` tags every record logged inside it, on this thread
and on work handed to other threads with `contextvars.copy_context()`. With NPC_WORKER_LOG_FORMAT=json each
record is one JSON object per line carrying those fields, for log pipelines that index them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

NOISY_LOGGERS = ("diffusers", "transformers", "peft", "httpx", "urllib3", "botocore")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"

_context: ContextVar[dict[str, Any]] = ContextVar("npc_worker_log_context", default={})  # noqa: B039 (never mutated)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Tag the records logged inside with these fields (None values are left out)."""
    token = _context.set({**_context.get(), **{key: value for key, value in fields.items() if value is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def add_log_context(**fields: Any) -> None:
    """Add fields to the current context (e.g. the model once a job is resolved)."""
    _context.set({**_context.get(), **{key: value for key, value in fields.items() if value is not None}})


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        record.fields = context
        record.context = (" [" + " ".join(f"{key}={value}" for key, value in context.items()) + "]") if context else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


def configure_logging(level: str | None = None, log_format: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    chosen = log_format or os.environ.get("NPC_WORKER_LOG_FORMAT", "text")
    handler.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(
        level=(level or os.environ.get("NPC_WORKER_LOG_LEVEL", "INFO")).upper(), handlers=[handler], force=True
    )
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
