"""The plugin's settings, from the environment of pixsim7's processes (pixsim7 constructs providers without
arguments, so there is nowhere else to pass them)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_:{}.-]{1,64}$")


class SettingError(ValueError):
    """A variable holds something the plugin cannot use; the message names the variable and the fix."""


@dataclass(frozen=True)
class Settings:
    redis_url: str | None  # None: pixsim7's own Redis (its `settings.redis_url`, through `get_redis()`)
    prefix: str

    @classmethod
    def from_environment(cls) -> Settings:
        url = os.environ.get("NPC_VIDEO_REDIS_URL", "").strip() or None
        if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingError(
                "NPC_VIDEO_REDIS_URL must be a redis://, rediss:// or unix:// URL (the Redis the npc-video workers "
                "read); leave it unset to use pixsim7's own Redis"
            )
        prefix = os.environ.get("NPC_VIDEO_PREFIX", "npc").strip()
        if PREFIX_PATTERN.fullmatch(prefix) is None:
            raise SettingError(
                "NPC_VIDEO_PREFIX must be the workers' NPC_WORKER_PREFIX (1-64 of letters, digits, _ : { } . -), "
                "e.g. npc"
            )
        return cls(redis_url=url, prefix=prefix)

    def describe(self) -> str:
        where = "pixsim7's Redis" if self.redis_url is None else "NPC_VIDEO_REDIS_URL"
        return f"jobs on {where}, prefix {self.prefix}"
