"""pixsim7/backend/main/services/provider/provider_service.py: how pixsim7 calls a provider, in pixsim7's order and
with its keywords.

execute_generation: a generation with `resolved_params` (a retry: auto-retry requeues the same generation with
retry_count + 1) executes them again; otherwise its params' composition_assets are coerced, `map_parameters` runs
(outside the error handling, as in pixsim7), and for a provider that requires file preparation
`prepare_execution_params(generation=, mapped_params=, resolve_source_fn=, account=)` runs and its result is stored as
`generation.resolved_params`; then `execute(operation_type=, account=, params=)`. check_status calls
`check_status(account=, provider_job_id=, operation_type=)` and then merges the result into the submission and
*assigns to it* (URLs kept from earlier polls, provider_video_id, has_retrievable_media_url, the early-CDN promotion).
cancel_job calls `cancel(account=, provider_job_id=)` and turns any exception into False.

Left out: the database (submissions live on the objects), prompt-variable substitution, event-bus publishing,
Pixverse's batch and salvage paths, logging, thumbnails stamped on assets.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from pixsim7.backend.main.domain import Generation, OperationType, ProviderStatus
from pixsim7.backend.main.domain.providers import ProviderAccount, ProviderSubmission
from pixsim7.backend.main.domain.providers.execution.file_resolver import AssetTable, resolve_source_to_local_file
from pixsim7.backend.main.domain.providers.registry import registry
from pixsim7.backend.main.services.provider.base import GenerationResult, ProviderError, ProviderStatusResult
from pixsim7.backend.main.shared.composition_assets import coerce_composition_assets


class ProviderService:
    def __init__(self, db: AssetTable) -> None:
        self.db = db

    async def execute_generation(
        self, generation: Generation, account: ProviderAccount, params: dict[str, Any]
    ) -> ProviderSubmission:
        provider = registry.get(generation.provider_id)
        if generation.resolved_params:
            submission = self._submission(generation, account, generation.resolved_params)
            return await self._execute(provider, generation, account, submission, generation.resolved_params)

        params = dict(params)
        if generation.operation_type == OperationType.IMAGE_TO_VIDEO and params.get("composition_assets"):
            params["composition_assets"] = coerce_composition_assets(
                params["composition_assets"], default_media_type="image", default_role="source_image"
            )
        mapped_params: dict[str, Any] = provider.map_parameters(operation_type=generation.operation_type, params=params)
        submission = self._submission(generation, account, mapped_params)
        execute_params = mapped_params
        try:
            if provider.requires_file_preparation():

                async def resolve_source_fn(source: Any, user_id: int, default_suffix: str) -> tuple[str, list[str]]:
                    return await resolve_source_to_local_file(
                        source=source, user_id=user_id, default_suffix=default_suffix, db_session=self.db
                    )

                # pixsim7 calls the provider's override with these keywords (base.py's stub has other parameters)
                execute_params = await cast("Any", provider).prepare_execution_params(
                    generation=generation,
                    mapped_params=mapped_params,
                    resolve_source_fn=resolve_source_fn,
                    account=account,
                )
                generation.resolved_params = execute_params
                submission.payload = execute_params
        except ProviderError as e:
            submission.response = {"error": str(e), "error_type": e.__class__.__name__}
            submission.status = "error"
            raise
        return await self._execute(provider, generation, account, submission, execute_params)

    @staticmethod
    def _submission(generation: Generation, account: ProviderAccount, payload: dict[str, Any]) -> ProviderSubmission:
        return ProviderSubmission(
            generation_id=generation.id,
            account_id=account.id,
            provider_id=generation.provider_id,
            payload=payload,
            retry_attempt=generation.retry_count,
            submitted_at=datetime.now(UTC),
        )

    async def _execute(
        self,
        provider: Any,
        generation: Generation,
        account: ProviderAccount,
        submission: ProviderSubmission,
        execute_params: dict[str, Any],
    ) -> ProviderSubmission:
        try:
            result: GenerationResult = await provider.execute(
                operation_type=generation.operation_type, account=account, params=execute_params
            )
            submission.response = {
                "provider_job_id": result.provider_job_id,
                "provider_video_id": result.provider_video_id,
                "status": result.status.value,
                "video_url": result.video_url,
                "thumbnail_url": result.thumbnail_url,
                "metadata": result.metadata or {},
            }
            if not result.provider_job_id:
                raise ProviderError(f"Provider did not return a job ID for {generation.operation_type.value}")
            submission.provider_job_id = result.provider_job_id
            submission.status = "success"
            return submission
        except ProviderError as e:
            submission.response = {"error": str(e), "error_type": e.__class__.__name__}
            if hasattr(e, "retryable"):
                submission.response["retryable"] = bool(e.retryable)
            if e.error_code:
                submission.response["error_code"] = e.error_code
            submission.status = "error"
            raise

    async def check_status(
        self,
        submission: ProviderSubmission,
        account: ProviderAccount,
        operation_type: OperationType | None = None,
        poll_cache: dict[str, Any] | None = None,
    ) -> ProviderStatusResult:
        provider = registry.get(submission.provider_id)
        status_result: ProviderStatusResult = await provider.check_status(
            account=account, provider_job_id=submission.provider_job_id, operation_type=operation_type
        )
        response = submission.response
        video_url = status_result.video_url or response.get("video_url") or response.get("asset_url")
        thumbnail_url = (
            None if status_result.suppress_thumbnail else (status_result.thumbnail_url or response.get("thumbnail_url"))
        )
        provider_video_id = (
            status_result.provider_video_id or response.get("provider_video_id") or submission.provider_job_id
        )
        existing_metadata = response.get("metadata")
        merged_metadata = dict(existing_metadata) if isinstance(existing_metadata, dict) else {}
        if status_result.metadata:
            merged_metadata.update(status_result.metadata)
        previously_retrievable = bool(
            isinstance(existing_metadata, dict) and existing_metadata.get("has_retrievable_media_url")
        )
        has_retrievable_media_url = status_result.has_retrievable_media_url or previously_retrievable
        if has_retrievable_media_url:
            merged_metadata["has_retrievable_media_url"] = True
        status_result.video_url = video_url
        status_result.thumbnail_url = thumbnail_url
        status_result.provider_video_id = provider_video_id
        status_result.metadata = merged_metadata
        if (
            has_retrievable_media_url
            and status_result.width
            and status_result.height
            and status_result.status in {ProviderStatus.PROCESSING, ProviderStatus.FILTERED}
        ):
            original_status = status_result.status
            status_result.status = ProviderStatus.COMPLETED
            status_result.metadata["video_early_cdn_terminal"] = True
            status_result.metadata["video_original_status"] = original_status.value
        submission.response = {
            **response,
            "status": status_result.status.value,
            "video_url": video_url,
            "thumbnail_url": thumbnail_url,
            "progress": status_result.progress,
            "width": status_result.width,
            "height": status_result.height,
            "duration_sec": status_result.duration_sec,
            "provider_video_id": provider_video_id,
            "metadata": merged_metadata,
            **({"error_message": status_result.error_message} if status_result.error_message else {}),
        }
        return status_result

    async def cancel_job(self, submission: ProviderSubmission, account: ProviderAccount) -> bool:
        provider = registry.get(submission.provider_id)
        try:
            cancelled: bool = await provider.cancel(account=account, provider_job_id=submission.provider_job_id)
            if cancelled:
                submission.response["status"] = "cancelled"
            return cancelled
        except Exception:
            return False
