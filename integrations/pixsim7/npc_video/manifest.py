"""The plugin's manifest and provider instance, as pixsim7's registry loads them (`load_provider_plugin`)."""

from __future__ import annotations

import logging

from pixsim7.backend.main.domain.providers.schemas import ProviderKind, ProviderManifest

from .adapter import PROVIDER_ID, NpcVideoProvider

manifest = ProviderManifest(
    id=PROVIDER_ID,
    name="NPC video worker",
    version="1.2.0",
    description="NPC response clips (image-to-video) from npc-video-worker GPUs, through Redis streams",
    author="npc-video-worker",
    kind=ProviderKind.VIDEO,
    enabled=True,
    requires_credentials=False,  # no accounts: pixsim7 runs it on its shared accountless account
    status_mapping_notes=(
        "per-job state: queued=PENDING, running/retrying=PROCESSING (progress 0..1), completed=COMPLETED, "
        "failed/expired=FAILED, cancelled=CANCELLED; an unknown or expired job id raises JobNotFoundError"
    ),
)

provider = NpcVideoProvider()  # pixsim7 constructs providers without arguments: settings come from the environment


def on_register() -> None:
    logging.getLogger(__name__).info("npc-video provider registered (%s)", provider.settings.describe())
