"""/healthz and /readyz of a worker: liveness is "the loop makes progress", readiness is "it can take a job now"."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from npc_video_client.errors import JobError
from worker.runtime import Runtime
from worker.settings import Settings
from worker.state import StateMachine, WorkerState
from worker.storage import StorageConfigError

STORAGE_RECHECK_S = 30.0


class Health:
    def __init__(
        self,
        settings: Settings,
        state: StateMachine,
        runtime: Runtime,
        client: redis.Redis,
        heartbeat_age_s: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.state = state
        self.runtime = runtime
        self.client = client
        self.heartbeat_age_s = heartbeat_age_s
        self._storage_checked = (float("-inf"), True, "")

    def healthz(self) -> tuple[bool, dict[str, object]]:
        """Alive: the loop shows progress (it beats while it waits for Redis too); Redis being down is not death.
        A model read from disk blocks the loop without beats: that counts as alive for up to model_load_timeout_s."""
        age = self.heartbeat_age_s()
        state = self.state.current
        looping = state in (WorkerState.READY, WorkerState.DRAINING)
        loading_since = self.runtime.pool.loading_since
        loading_s = time.monotonic() - loading_since if loading_since is not None else None
        loading = loading_s is not None and loading_s < self.settings.model_load_timeout_s
        progressing = age < self.settings.heartbeat_timeout_s or loading
        alive = state is not WorkerState.DEFUNCT and (not looping or progressing)
        detail: dict[str, object] = {"state": state.value, "heartbeat_age_s": round(age, 1)}
        if loading_s is not None:
            detail["model_loading_s"] = round(loading_s, 1)
        return alive, detail

    def readyz(self) -> tuple[bool, dict[str, object]]:
        try:
            redis_ok = bool(self.client.ping())
        except redis.RedisError:
            redis_ok = False
        model_loaded = self.runtime.pool.is_loaded(self.runtime.catalog.defaults.model)
        storage_ok, storage_detail = self._storage_ready()
        ready = self.state.is_(WorkerState.READY) and redis_ok and model_loaded and storage_ok
        detail: dict[str, object] = {
            "state": self.state.current.value,
            "redis": redis_ok,
            "model_loaded": model_loaded,
            "storage": storage_ok,
        }
        if storage_detail:
            detail["storage_error"] = storage_detail
        return ready, detail

    def _storage_ready(self) -> tuple[bool, str]:
        """The storage check, at most every STORAGE_RECHECK_S (a write and delete of a probe object)."""
        checked_at, ok, detail = self._storage_checked
        if time.monotonic() - checked_at >= STORAGE_RECHECK_S:
            try:
                self.runtime.storage.check()
                ok, detail = True, ""
            except (StorageConfigError, JobError) as exc:
                ok, detail = False, str(exc)
            self._storage_checked = (time.monotonic(), ok, detail)
        return ok, detail
