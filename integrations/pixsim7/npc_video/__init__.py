"""npc-video-worker as a pixsim7 video provider: copy this folder to `pixsim7/backend/main/providers/npc_video/`.

pixsim7's provider registry imports `manifest.py`, attaches `manifest` to `provider` and registers it; the adapter
(`adapter.py`) submits generations as `npc_response` jobs with the `npc-video-client` distribution and answers
pixsim7's status polls from the job's state. docs/integrations/pixsim7.md of the npc-video-worker repository is the
operator's walk-through.
"""

from .manifest import manifest, provider

__all__ = ["manifest", "provider"]
