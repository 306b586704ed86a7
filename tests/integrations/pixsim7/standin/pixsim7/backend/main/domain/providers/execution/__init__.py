"""pixsim7/backend/main/domain/providers/execution/__init__.py."""

from pixsim7.backend.main.domain.providers.execution.file_resolver import resolve_source_to_local_file

__all__ = ["resolve_source_to_local_file"]
