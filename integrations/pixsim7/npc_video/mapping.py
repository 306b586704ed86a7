"""From a pixsim7 generation to an `npc_response` job: its parameters, its base image's source, its lane.

The NPC's own fields travel in the generation's `npc_params` (kept by `canonicalize_params` once
integrations/pixsim7/*.patch is applied). pixsim7's generic fields fill what `npc_params` leaves out: the prompt (after
pixsim7 resolved its variables), the seed and negative prompt of `style.npc-video`, the duration target, and the
first image of `composition_assets` as the base image.
"""

from __future__ import annotations

from typing import Any

from pixsim7.backend.main.domain.enums import GenerationErrorCode
from pixsim7.backend.main.services.provider.base import ProviderError
from pixsim7.backend.main.shared.composition_assets import coerce_composition_assets
from pydantic import ValidationError

from npc_video_client.contract import NpcResponseParams, describe_validation_error
from npc_video_client.names import Lane

GENERIC_FIELDS = ("prompt", "negative_prompt", "seed", "duration")  # pixsim7's canonical names = the worker's
PRIORITY_RANGE = (0, 10)  # pixsim7's CreateGenerationRequest.priority
HIGH_FROM = 8
NORMAL_FROM = 3


def lane_for(priority: int | None) -> Lane:
    """pixsim7's 0-10 priority (default 5) as a lane: 8-10 high, 3-7 normal, 0-2 low."""
    value = 5 if priority is None else priority
    low, high = PRIORITY_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProviderError(
            f"generation priority must be an integer {low}..{high} (pixsim7's range), got {value}",
            error_code=GenerationErrorCode.PARAM_INVALID.value,
            retryable=False,
        )
    if value >= HIGH_FROM:
        return Lane.HIGH
    return Lane.NORMAL if value >= NORMAL_FROM else Lane.LOW


def npc_job_params(params: dict[str, Any]) -> dict[str, Any]:
    """The job's params: `npc_params` over pixsim7's generic fields, checked with the contract's model before anything
    is enqueued; ProviderError (not retryable) naming every problem, or the missing `npc_params`."""
    given = params.get("npc_params")
    if not isinstance(given, dict):
        raise ProviderError(
            "npc-video needs the NPC's fields (npc_id, npc_name, expression, emotion, animation, intensity, ...) "
            "in config.npc_params of the generation request; pixsim7 keeps them through canonicalize_params only "
            "with integrations/pixsim7/*.patch of npc-video-worker applied",
            error_code=GenerationErrorCode.PARAM_MISSING.value,
            retryable=False,
        )
    generic = {name: params[name] for name in GENERIC_FIELDS if params.get(name) is not None}
    merged = {key: value for key, value in (generic | given).items() if value is not None}
    try:
        NpcResponseParams.model_validate(merged)
    except ValidationError as exc:
        raise ProviderError(
            f"npc_params: {describe_validation_error(exc)}",
            error_code=GenerationErrorCode.PARAM_INVALID.value,
            retryable=False,
        ) from exc
    return merged  # as given: fields of a newer contract minor reach a newer worker unchanged


def base_image_source(params: dict[str, Any]) -> str | None:
    """Where the base image comes from: `npc_params.npc_base_image` when set, else the first image entry of
    `composition_assets` (an asset reference such as "asset:42", or a URL), as pixsim7's own video adapters read
    them; None leaves it to the worker's catalog (`[npcs.<npc_id>].base_image`)."""
    explicit = (params.get("npc_params") or {}).get("npc_base_image")
    if isinstance(explicit, str) and explicit:
        return explicit
    for item in coerce_composition_assets(params.get("composition_assets")):
        if item.get("media_type") not in (None, "image"):
            continue
        source = item.get("asset") or item.get("url")
        if isinstance(source, str) and source:
            return source
    return None
