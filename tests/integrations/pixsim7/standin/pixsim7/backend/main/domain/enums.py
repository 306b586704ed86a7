"""pixsim7/backend/main/domain/enums.py: the enums the plugin and ProviderService use, values as in pixsim7 (its
SQLAlchemy column helpers and the other enums are left out)."""

from __future__ import annotations

from enum import Enum


class GenerationStatus(str, Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class OperationType(str, Enum):
    TEXT_TO_IMAGE = "text_to_image"
    IMAGE_TO_IMAGE = "image_to_image"
    TEXT_TO_VIDEO = "text_to_video"
    IMAGE_TO_VIDEO = "image_to_video"
    VIDEO_EXTEND = "video_extend"
    VIDEO_TRANSITION = "video_transition"
    VIDEO_MODIFY = "video_modify"
    FUSION = "fusion"
    FRAME_EXTRACTION = "frame_extraction"
    IMAGE_EDIT = "image_edit"
    IMAGE_COMPOSITE = "image_composite"


class ProviderStatus(str, Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    FILTERED = "filtered"
    CANCELLED = "cancelled"


class GenerationErrorCode(str, Enum):
    """The codes the plugin raises with, and those pixsim7's poller treats as transient."""

    PARAM_INVALID = "param_invalid"
    PARAM_MISSING = "param_missing"
    PARAM_ASSET_UNRESOLVABLE = "param_asset_unresolvable"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_GENERIC = "provider_generic"
