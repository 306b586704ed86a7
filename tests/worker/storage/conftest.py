"""A real SeaweedFS S3 server for the storage tests (see tests/support/seaweed.py)."""

from tests.support.seaweed import s3_env, seaweed

__all__ = ["s3_env", "seaweed"]
