"""Warm jobs (contract 1.2, docs/contract.md section 3b): an NPC's likely reactions generated before they are asked
for, on the worker's idle time, so that the real job finds its video already made.

A warm job is exactly the later real job: the same params (the NPC's fields, one reaction's, the preset and style),
so the same default seed and the same content key. Its id is derived from those params (`warm-` and a hash), so
warming the same reaction again is harmless: it finds its video stored (or its run under way) and ends at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from npc_video_client.names import Lane, StreamNames
from npc_video_client.protocol import JobRejected, prepare_submission

WARM_ID_PREFIX = "warm-"


def warm_params(
    npc: Mapping[str, Any], reaction: Mapping[str, Any], *, preset: str | None, style: str | None
) -> dict[str, Any]:
    """The params of the real job this warm job stands for: the NPC's fields, then the reaction's, then the preset
    and style when given (the same dict a producer later submits)."""
    params = {**npc, **reaction}
    if preset is not None:
        params["quality_preset"] = preset
    if style is not None:
        params["art_style"] = style
    return params


def warm_job_id(params: Mapping[str, Any]) -> str:
    """`warm-` and the SHA-256 (40 hex digits) of the params as canonical JSON."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return WARM_ID_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]


def warm_submissions(
    npc: Mapping[str, Any],
    reactions: Sequence[Mapping[str, Any]],
    *,
    preset: str | None,
    style: str | None,
    metadata: dict[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """(job id, JSON of field `job`) of each reaction's warm job; JobRejected names a reaction that is no job."""
    if not reactions:
        raise JobRejected("warm: reactions is empty; give the reactions to warm, each a dict of params")
    submissions = []
    for index, reaction in enumerate(reactions):
        params = warm_params(npc, reaction, preset=preset, style=style)
        envelope: dict[str, Any] = {"job_id": warm_job_id(params), "operation_type": "npc_response", "params": params}
        if metadata is not None:
            envelope["metadata"] = metadata
        try:
            submissions.append(prepare_submission(envelope))
        except JobRejected as exc:
            raise JobRejected(f"warm: reaction {index}: {exc}") from exc
    return submissions


def warm_job_ids(
    npc: Mapping[str, Any], reactions: Sequence[Mapping[str, Any]], *, preset: str | None, style: str | None
) -> list[str]:
    """The ids `warm` gives these reactions' warm jobs (each reaction checked as `warm` checks it)."""
    return [job_id for job_id, _body in warm_submissions(npc, reactions, preset=preset, style=style)]


def queue_warm_jobs(pipe: Any, names: StreamNames, submissions: Sequence[tuple[str, str]]) -> None:
    """XADD each warm job to the warm lane, its cancel key deleted first (warm ids repeat: warming a reaction again
    withdraws an earlier cancel), on a (sync or asyncio) pipeline the caller executes."""
    lane_key = names.lane(Lane.WARM)
    for job_id, body in submissions:
        fields: Any = {"job": body}
        pipe.delete(names.cancel(job_id))
        pipe.xadd(lane_key, fields)


def queue_warm_cancels(pipe: Any, names: StreamNames, job_ids: Sequence[str], ttl_s: int) -> None:
    """SET the cancel key of each warm job with an expiry, on a (sync or asyncio) pipeline the caller executes."""
    for job_id in job_ids:
        pipe.set(names.cancel(job_id), "1", ex=ttl_s)


@dataclass(frozen=True)
class WarmStatus:
    """How many of the reactions have their video ready (made by a warm job and still in the warm cache, or found
    stored by it), by warm job id in the reactions' order."""

    ready: dict[str, bool]

    @property
    def total(self) -> int:
        return len(self.ready)

    @property
    def ready_count(self) -> int:
        return sum(self.ready.values())
