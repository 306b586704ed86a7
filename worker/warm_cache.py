"""The warm cache: the videos made ahead of time by warm jobs, when each was last used, the room they take, and
the policy that bounds them (contract 1.2, docs/contract.md section 3b).

A warmed video is an ordinary content-addressed object (worker.keys): the real job identical to the warm job finds
it under the same content key, as any cache hit, in milliseconds. The index lives in Redis so every worker shares
it (`StreamNames.warm_index`, `warm_sizes`, `warm_ready`):
- the index scores each warmed video's storage key by its last use (unix ms): made, or found by a real job;
- the sizes say how many bytes each takes (video and poster);
- `ready` maps each warm job id to the key of its video, for the producers' `warm_status`.
A warmed video leaves when it was not used for `warm_ttl_s`, and the least recently used leave while the warmed
videos take more than `warm_cache_bytes` (the most recent one always stays); whatever leaves the index is deleted
from storage, so the store keeps only what the index points to. (A real job's result that pointed at a warmed video
points at nothing once it has left: fetch a result's video when it arrives.) Leaving is decided in one script, so
two workers never both delete.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis

from npc_video_client.clock import now_ms
from npc_video_client.names import StreamNames
from npc_video_client.protocol import text
from worker.keys import thumbnail_key_of
from worker.storage import Storage

log = logging.getLogger(__name__)
EVICT_EVERY_S = 60.0  # besides after each warmed video: how often a lookup also applies the policy

# KEYS: index, sizes, ready.  ARGV: now ms, ttl ms, budget bytes.  Returns the storage keys that left.
_EVICT = """
local leaving = {}
local function leave(key)
  redis.call('ZREM', KEYS[1], key)
  redis.call('HDEL', KEYS[2], key)
  leaving[#leaving + 1] = key
end
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))) do
  leave(key)
end
local total = 0
for _, size in ipairs(redis.call('HVALS', KEYS[2])) do total = total + tonumber(size) end
while total > tonumber(ARGV[3]) and redis.call('ZCARD', KEYS[1]) > 1 do
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)
  total = total - tonumber(redis.call('HGET', KEYS[2], oldest[1]) or '0')
  leave(oldest[1])
end
if #leaving > 0 then
  local gone = {}
  for _, key in ipairs(leaving) do gone[key] = true end
  local ready = redis.call('HGETALL', KEYS[3])
  for i = 1, #ready, 2 do
    if gone[ready[i + 1]] then redis.call('HDEL', KEYS[3], ready[i]) end
  end
end
return leaving
"""

# KEYS: index.  ARGV: storage key, now ms.  1 (and its last use moved to now) when the key is a warmed video.
_USED = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  return 1
end
return 0
"""


class WarmCache:
    def __init__(
        self, client: redis.Redis, names: StreamNames, storage: Storage, *, ttl_s: int, budget_bytes: int
    ) -> None:
        self.client = client
        self.names = names
        self.storage = storage
        self.ttl_s = ttl_s
        self.budget_bytes = budget_bytes
        self._evict = client.register_script(_EVICT)
        self._used = client.register_script(_USED)
        self._evicted_at = float("-inf")

    def add(self, job_id: str, video_key: str, size_bytes: int) -> None:
        """A warm job made this video: index it as used now, mark the job ready, then keep the cache in bounds."""
        pipe = self.client.pipeline(transaction=True)
        pipe.zadd(self.names.warm_index, {video_key: now_ms()})
        pipe.hset(self.names.warm_sizes, video_key, size_bytes)
        pipe.hset(self.names.warm_ready, job_id, video_key)
        pipe.execute()
        self.evict()

    def already_there(self, job_id: str, video_key: str) -> None:
        """A warm job whose video was stored already (warmed before, or made by a real job): the job is ready;
        a warmed one counts as used now."""
        self.used(video_key)
        self.client.hset(self.names.warm_ready, job_id, video_key)

    def used(self, video_key: str) -> bool:
        """A job found this video in storage: True (and it is now the most recently used) when it was warmed. Now
        and then this also applies the policy, so videos past their time leave while no warm job runs."""
        warmed = bool(self._used(keys=[self.names.warm_index], args=[video_key, now_ms()]))
        if time.monotonic() - self._evicted_at >= EVICT_EVERY_S:
            self.evict()
        return warmed

    def evict(self) -> list[str]:
        """Remove what is past its time or beyond the budget, from the index and from storage; the keys removed."""
        self._evicted_at = time.monotonic()
        args: list[Any] = [now_ms(), self.ttl_s * 1000, self.budget_bytes]
        keys = [self.names.warm_index, self.names.warm_sizes, self.names.warm_ready]
        leaving = [text(key) for key in self._evict(keys=keys, args=args)]
        for key in leaving:
            self.storage.delete(thumbnail_key_of(key))
            self.storage.delete(key)
        if leaving:
            log.info("warm cache: %d video(s) left (unused for %d s, or beyond the budget)", len(leaving), self.ttl_s)
        return leaving

    def reading(self) -> tuple[int, int]:
        """(videos, bytes) in the warm cache now, for /metrics."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self.names.warm_index)
        pipe.hvals(self.names.warm_sizes)
        count, sizes = pipe.execute()
        return int(count), sum(int(size) for size in sizes)
