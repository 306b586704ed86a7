"""Contract 1.1: contract_version, metadata, the LoRA reference pattern the schema ships, the seed range."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from npc_video_client.contract import (
    CONTRACT_VERSION,
    JSON_SAFE_INTEGER_MAX,
    LORA_REF_PATTERN,
    METADATA_MAX_BYTES,
    METADATA_MAX_DEPTH,
    METADATA_MAX_KEYS,
    SEED_MAX,
    JobEnvelope,
    JobEvent,
    JobResult,
    describe_validation_error,
    parse_lora_ref,
    peek_metadata,
)
from tests.support.jobs import envelope

EVENTS: TypeAdapter[Any] = TypeAdapter(JobEvent)


def problem(payload: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        JobEnvelope.model_validate(payload)
    return describe_validation_error(caught.value)


def nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep (the object itself is level 1)."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"inner": value}
    return value


# -- contract_version ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2", "1.7", "1.10"])
def test_any_minor_of_major_1_is_accepted(version):
    assert JobEnvelope.model_validate({**envelope(), "contract_version": version}).contract_version == version


def test_an_envelope_without_a_version_means_1_0():
    assert JobEnvelope.model_validate(envelope()).contract_version is None


@pytest.mark.parametrize("version", ["2.0", "0.9", "10.1"])
def test_another_major_is_refused_naming_the_spoken_version(version):
    message = problem({**envelope(), "contract_version": version})
    assert message.startswith("contract_version: major version")
    assert f"contract {CONTRACT_VERSION}" in message and f'(got "{version}")' in message


@pytest.mark.parametrize("version", ["1", "v1.1", "1.1.0", "", "1.x"])
def test_a_version_that_is_not_major_dot_minor_is_refused(version):
    assert 'must be "MAJOR.MINOR"' in problem({**envelope(), "contract_version": version})


def test_a_numeric_version_is_refused():
    assert "contract_version: Input should be a valid string" in problem({**envelope(), "contract_version": 1.1})


# -- metadata --------------------------------------------------------------------------------------------


def test_metadata_round_trips_unchanged():
    metadata = {"generation_id": 4711, "tags": ["a", "b"], "owner": {"user": 3, "team": None}, "ok": True}
    parsed = JobEnvelope.model_validate({**envelope(), "metadata": metadata})
    assert parsed.metadata == metadata
    assert json.loads(parsed.model_dump_json())["metadata"] == metadata


def test_metadata_at_every_limit_is_accepted():
    at_keys = {f"k{i}": i for i in range(METADATA_MAX_KEYS)}
    assert JobEnvelope.model_validate({**envelope(), "metadata": at_keys}).metadata == at_keys
    deep = nested(METADATA_MAX_DEPTH)
    assert JobEnvelope.model_validate({**envelope(), "metadata": deep}).metadata == deep
    filler = METADATA_MAX_BYTES - len(json.dumps({"s": ""}, separators=(",", ":")))
    exact = {"s": "x" * filler}
    assert len(json.dumps(exact, separators=(",", ":")).encode()) == METADATA_MAX_BYTES
    assert JobEnvelope.model_validate({**envelope(), "metadata": exact}).metadata == exact


def test_too_many_keys_are_refused_with_the_limit():
    message = problem({**envelope(), "metadata": {f"k{i}": i for i in range(METADATA_MAX_KEYS + 1)}})
    assert message.startswith(f"metadata: has {METADATA_MAX_KEYS + 1} keys, over the limit of {METADATA_MAX_KEYS}")


def test_too_deep_metadata_is_refused_with_the_limit():
    message = problem({**envelope(), "metadata": nested(METADATA_MAX_DEPTH + 1)})
    assert f"metadata: is nested more than {METADATA_MAX_DEPTH} levels deep" in message
    # arrays count as levels too
    assert "levels deep" in problem({**envelope(), "metadata": {"a": [[[[1]]]]}})
    assert JobEnvelope.model_validate({**envelope(), "metadata": {"a": [[[1]]]}}).metadata == {"a": [[[1]]]}


def test_too_large_metadata_is_refused_with_its_size_and_in_utf8_bytes():
    message = problem({**envelope(), "metadata": {"s": "é" * 2100}})  # 2100 characters, 4200 bytes
    assert f"over the limit of {METADATA_MAX_BYTES}" in message and "is 4208 bytes as compact JSON" in message
    assert len(message) < 400  # the value itself is cut short


@pytest.mark.parametrize(("value", "kind"), [([1, 2], "valid dictionary"), ("id-5", "valid dictionary")])
def test_metadata_must_be_an_object(value, kind):
    assert kind in problem({**envelope(), "metadata": value})


def test_metadata_from_python_must_be_json():
    assert "must hold JSON values only" in problem({**envelope(), "metadata": {"when": object()}})
    assert "must hold JSON values only" in problem({**envelope(), "metadata": {"x": float("nan")}})


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"metadata": {"id": 1}, "params": "garbage"}, {"id": 1}),
        ({"metadata": {f"k{i}": i for i in range(METADATA_MAX_KEYS + 1)}}, None),
        ({"metadata": "id-1"}, None),
        ({}, None),
        ([{"metadata": {"id": 1}}], None),
    ],
)
def test_peek_metadata_echoes_only_valid_metadata(payload, expected):
    assert peek_metadata(payload) == expected


def test_results_and_every_event_carry_metadata():
    metadata = {"generation_id": 12}
    result = JobResult(job_id="j", status="completed", metadata=metadata, contract_version="1.1")
    assert json.loads(result.model_dump_json())["metadata"] == metadata
    common = {"job_id": "j", "timestamp": 1, "worker": "w", "metadata": metadata}
    for fields in (
        {"type": "job:processing", "status": "processing", "attempt": 1, "model": "m", "preset": "fast"},
        {"type": "job:progress", "status": "processing", "step": 1, "total_steps": 2, "progress": 0.5},
        {"type": "job:completed", "status": "completed"},
        {"type": "job:failed", "status": "failed", "error_code": "cancelled", "error_message": "x", "retryable": False}
        | {"attempt": 1},
        {"type": "job:expired", "status": "expired", "deadline": 5},
        {"type": "job:cancelled", "status": "cancelled"},
    ):
        event = EVENTS.validate_python({**common, **fields})
        assert event.metadata == metadata, fields["type"]


def test_results_of_a_1_0_worker_still_parse():
    old = {"job_id": "j", "status": "completed", "url": "file:///x.mp4", "timings": {"total_ms": 5}}
    parsed = JobResult.model_validate(old)
    assert parsed.contract_version is None and parsed.metadata is None


def test_unknown_fields_of_a_newer_minor_are_ignored():
    newer = {"job_id": "j", "status": "completed", "contract_version": "1.4", "future_field": {"x": 1}}
    assert JobResult.model_validate(newer).contract_version == "1.4"
    event = EVENTS.validate_python({"type": "job:cancelled", "job_id": "j", "timestamp": 1, "worker": "w", "new": 1})
    assert event.type == "job:cancelled"


# -- the LoRA reference pattern shipped in the schema is the rule itself ----------------------------------


def accepted_by_worker(ref: str) -> bool:
    try:
        parse_lora_ref(ref)
    except ValueError:
        return False
    return True


def accepted_by_schema(ref: str) -> bool:
    return re.search(LORA_REF_PATTERN, ref) is not None  # what a JSON Schema validator does with "pattern"


@pytest.mark.parametrize(
    ("ref", "accepted"),
    [
        ("glow", True),
        ("glow:0.5", True),
        ("glow:-2", True),
        ("glow:+2.000", True),
        ("glow:00.5", True),
        ("glow:1.999999", True),
        (" glow:1 \t", True),
        ("\u3000glow\u00a0", True),  # what str.strip() removes
        ("glow:2.0000000000000000001", False),  # float() rounds it to 2.0; the range is exact
        ("glow:-2.5", False),
        ("glow:10", False),
        ("glow:\u0661", False),  # an Arabic-Indic digit: float() reads it, JSON Schema patterns do not
        ("glow:", False),
        ("glow:.5", False),
        ("gl ow", False),
        ("glow\ufeff", False),  # not whitespace to Python
        ("", False),
    ],
)
def test_pattern_and_worker_agree_on_examples(ref, accepted):
    assert accepted_by_worker(ref) is accepted
    assert accepted_by_schema(ref) is accepted


REF_TEXT = st.text(alphabet="ab._-:+0129 \t\n.\u00a0\u0661", max_size=14)


@settings(deadline=None, max_examples=400)
@given(REF_TEXT)
def test_pattern_and_worker_agree_on_any_text(ref):
    assert accepted_by_schema(ref) is accepted_by_worker(ref), ref


@settings(deadline=None)
@given(st.decimals(min_value=-3, max_value=3, allow_nan=False, allow_infinity=False, places=3))
def test_pattern_and_worker_agree_on_weights_around_the_range(weight):
    ref = f"glow:{weight}"
    assert accepted_by_schema(ref) is accepted_by_worker(ref) is (-2 <= weight <= 2), ref


def test_a_range_error_names_the_weight_as_written():
    with pytest.raises(ValueError, match=r'LoRA weight 2\.0000000000000000001 in "glow:2\.0000000000000000001"'):
        parse_lora_ref("glow:2.0000000000000000001")


# -- seeds -----------------------------------------------------------------------------------------------


def test_seeds_up_to_2_63_minus_1_are_accepted_and_javascripts_limit_is_named():
    assert SEED_MAX == 2**63 - 1 and JSON_SAFE_INTEGER_MAX == 2**53 - 1
    assert JobEnvelope.model_validate(envelope(seed=SEED_MAX)).params.seed == SEED_MAX
    schema = JobEnvelope.model_json_schema()["$defs"]["NpcResponseParams"]["properties"]["seed"]
    assert "2^53-1" in schema["description"] and "Number.MAX_SAFE_INTEGER" in schema["description"]
    assert schema["anyOf"][0]["maximum"] == SEED_MAX
