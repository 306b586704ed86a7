"""Affinity: among the waiting entries of a lane, prefer a job whose model is on the device already (no load or
swap), within the bounded look-ahead of worker.queue.intake."""

from __future__ import annotations

from collections import OrderedDict

from models.resolution import choose_model
from worker.jobs import JobRunner
from worker.payload import read_job
from worker.queue.leases import Lease

REMEMBERED = 256


class Affinity:
    def __init__(self, runner: JobRunner, max_job_bytes: int) -> None:
        self.runner = runner
        self.max_job_bytes = max_job_bytes
        self._models: OrderedDict[int, str | None] = OrderedDict()

    def prefers(self, lease: Lease) -> bool:
        """Does this job run on a model that needs no load or swap now?"""
        model = self.model_of(lease)
        return model is not None and self.runner.pool.is_ready(model)

    def model_of(self, lease: Lease) -> str | None:
        """The model a waiting entry will run on, remembered per lease: waiting entries are looked at on every
        pick, and their payloads (base images included) can be megabytes of JSON. Never raises: an entry that
        cannot be read or resolved has no model here, and its own run reports why."""
        key = id(lease)
        if key not in self._models:
            read = read_job(lease.payload, "unknown", self.max_job_bytes)
            try:
                model = choose_model(read.envelope.params, self.runner.catalog) if read.envelope else None
            except Exception:
                model = None
            self._models[key] = model
            while len(self._models) > REMEMBERED:
                self._models.popitem(last=False)
        return self._models[key]
