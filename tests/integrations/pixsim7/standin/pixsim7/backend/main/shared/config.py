"""pixsim7/backend/main/shared/config.py: the `settings` object, reduced to `redis_url` (pixsim7 reads it from
REDIS_URL, with the same default)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class Settings:
    redis_url: str = field(default_factory=lambda: os.environ.get("REDIS_URL", "redis://localhost:6379/0"))


settings = Settings()
