"""pixsim7/backend/main/shared/errors.py: the provider errors, messages and attributes as in pixsim7."""

from __future__ import annotations


class PixSimError(Exception):
    def __init__(self, message: str, code: str | None = None) -> None:
        self.message = message
        self.code = code or self.__class__.__name__
        super().__init__(self.message)


class ProviderError(PixSimError):
    def __init__(
        self, message: str, code: str | None = None, *, error_code: str | None = None, retryable: bool = True
    ) -> None:
        super().__init__(message, code=code)
        self.error_code = error_code
        self.retryable = retryable


class ProviderNotFoundError(ProviderError):
    def __init__(self, provider_id: str) -> None:
        super().__init__(f"Provider '{provider_id}' not found in registry", code="PROVIDER_NOT_FOUND", retryable=False)
        self.provider_id = provider_id


class ProviderJobNotFoundError(ProviderError):
    def __init__(self, provider_id: str, provider_job_id: str) -> None:
        super().__init__(
            f"Job '{provider_job_id}' not found on provider '{provider_id}'",
            code="PROVIDER_JOB_NOT_FOUND",
            retryable=False,
        )
        self.provider_id = provider_id
        self.provider_job_id = provider_job_id


class UnsupportedOperationError(ProviderError):
    def __init__(self, provider_id: str, operation: str) -> None:
        super().__init__(
            f"Provider '{provider_id}' does not support operation '{operation}'",
            code="UNSUPPORTED_OPERATION",
            retryable=False,
        )
        self.provider_id = provider_id
        self.operation = operation
