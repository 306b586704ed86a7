"""The wire contract (docs/contract.md) as pydantic models: validation, messages, defaults, events."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from npc_video_client.contract import (
    RETRYABLE_CODES,
    ArtStyle,
    ErrorCode,
    JobCancelledEvent,
    JobCompletedEvent,
    JobEnvelope,
    JobEvent,
    JobExpiredEvent,
    JobFailedEvent,
    JobProcessingEvent,
    JobProgressEvent,
    JobResult,
    NpcResponseParams,
    QualityPreset,
    describe_validation_error,
    parse_lora_ref,
    peek_job_id,
)
from npc_video_client.errors import JobError
from tests.support.jobs import envelope

EVENTS: TypeAdapter[Any] = TypeAdapter(JobEvent)


def problem(payload: dict[str, Any]) -> str:
    """The describe_validation_error text of an envelope that must fail validation."""
    with pytest.raises(ValidationError) as caught:
        JobEnvelope.model_validate(payload)
    return describe_validation_error(caught.value)


def minimal_params(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "npc_id": "npc-1",
        "npc_name": "Mira",
        "expression": "interested",
        "emotion": "pleased",
        "animation": "idle",
        "intensity": 0.5,
    }
    base.update(overrides)
    return base


# -- valid envelopes ----------------------------------------------------------------------------------------


def test_valid_envelope_round_trips_through_json():
    payload = {**envelope(loras=["glow:0.5", "sparkle"], art_style="anime", cfg=2.5, seed=42), "deadline": 5}
    parsed = JobEnvelope.model_validate_json(json.dumps(payload))
    again = JobEnvelope.model_validate_json(parsed.model_dump_json())
    assert again == parsed
    assert parsed.params.art_style is ArtStyle.ANIME
    assert parsed.params.loras == ["glow:0.5", "sparkle"]
    assert parsed.params.quality_preset is QualityPreset.REALTIME
    assert (parsed.params.width, parsed.params.height, parsed.params.seed) == (64, 64, 42)
    assert parsed.deadline == 5 and parsed.submitted_at is None


def test_optional_fields_take_the_contract_defaults():
    parsed = JobEnvelope.model_validate({"job_id": "j", "operation_type": "npc_response", "params": minimal_params()})
    p = parsed.params
    assert p.quality_preset is QualityPreset.FAST
    assert p.loras == []
    for name in ("npc_base_image", "art_style", "prompt", "negative_prompt", "width", "height", "fps"):
        assert getattr(p, name) is None, name
    for name in ("duration", "steps", "cfg", "seed"):
        assert getattr(p, name) is None, name
    assert parsed.deadline is None and parsed.submitted_at is None


def test_unknown_extra_fields_are_ignored_in_envelope_and_params():
    payload = envelope(mood_ring="teal", future_flag=True)
    payload["priority_hint"] = 3
    parsed = JobEnvelope.model_validate(payload)
    assert "mood_ring" not in parsed.params.model_dump()
    assert "priority_hint" not in parsed.model_dump()
    assert parsed.params.npc_id == "npc-7"


def test_models_are_frozen():
    parsed = JobEnvelope.model_validate(envelope())
    with pytest.raises(ValidationError):
        parsed.params.intensity = 0.9  # type: ignore[misc]


@pytest.mark.parametrize("style", ["anime", "realistic", "semi-realistic"])
def test_every_art_style_is_accepted(style):
    assert JobEnvelope.model_validate(envelope(art_style=style)).params.art_style == style


@pytest.mark.parametrize("preset", ["realtime", "fast", "balanced", "quality"])
def test_every_quality_preset_is_accepted(preset):
    assert JobEnvelope.model_validate(envelope(quality_preset=preset)).params.quality_preset == preset


@pytest.mark.parametrize("job_id", ["a", "A-z.0_9:x", "x" * 128, "b2c1-4f:7.a_b"])
def test_job_ids_in_the_pattern_are_accepted(job_id):
    assert JobEnvelope.model_validate(envelope(job_id)).job_id == job_id


# -- invalid input names the field and what is allowed --------------------------------------------------


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"intensity": 1.5}, ["params.intensity", "less than or equal to 1", "1.5"]),
        ({"intensity": -0.01}, ["params.intensity", "greater than or equal to 0"]),
        ({"intensity": "high"}, ["params.intensity", "must be a JSON number", '"high"']),
        (
            {"quality_preset": "ultra"},
            ["params.quality_preset", "'realtime', 'fast', 'balanced' or 'quality'", "ultra"],
        ),
        ({"art_style": "cartoon"}, ["params.art_style", "'anime', 'realistic' or 'semi-realistic'", "cartoon"]),
        ({"npc_id": 5}, ["params.npc_id", "valid string"]),
        ({"npc_id": ""}, ["params.npc_id", "at least 1 character"]),
        ({"npc_name": ["Mira"]}, ["params.npc_name", "valid string"]),
        ({"npc_base_image": ""}, ["params.npc_base_image", "at least 1 character"]),
        ({"expression": 3}, ["params.expression", "valid string"]),
        ({"loras": "glow"}, ["params.loras", "valid list"]),
        ({"loras": [7]}, ["params.loras", "valid string"]),
        ({"loras": ["glow:3"]}, ["params.loras", "-2.0..2.0", "glow:3"]),
        ({"loras": ["glow:-2.5"]}, ["params.loras", "-2.0..2.0"]),
        ({"loras": ["two words"]}, ["params.loras", "'name' or 'name:weight'", "two words"]),
        ({"loras": ["glow:"]}, ["params.loras", "'name' or 'name:weight'"]),
        ({"loras": ["glow:heavy"]}, ["params.loras", "'name' or 'name:weight'"]),
        ({"loras": ["../../etc/passwd"]}, ["params.loras", "'name' or 'name:weight'"]),
        ({"loras": [f"l{i}" for i in range(9)]}, ["params.loras", "at most 8"]),
        ({"width": 8}, ["params.width", "greater than or equal to 16"]),
        ({"width": 4096}, ["params.width", "less than or equal to 2048"]),
        ({"width": 64.5}, ["params.width", "valid integer"]),
        ({"height": 15}, ["params.height", "greater than or equal to 16"]),
        ({"height": 2049}, ["params.height", "less than or equal to 2048"]),
        ({"fps": 0}, ["params.fps", "greater than or equal to 1"]),
        ({"fps": 61}, ["params.fps", "less than or equal to 60"]),
        ({"duration": 0}, ["params.duration", "greater than 0"]),
        ({"duration": 20.5}, ["params.duration", "less than or equal to 20"]),
        ({"duration": "long"}, ["params.duration", "must be a JSON number, not a string", '(got "long")']),
        ({"steps": 0}, ["params.steps", "greater than or equal to 1"]),
        ({"steps": 201}, ["params.steps", "less than or equal to 200"]),
        ({"cfg": -0.5}, ["params.cfg", "greater than or equal to 0"]),
        ({"cfg": 30.5}, ["params.cfg", "less than or equal to 30"]),
        ({"seed": -1}, ["params.seed", "greater than or equal to 0"]),
        ({"seed": 2**63}, ["params.seed", "less than or equal to 9223372036854775807"]),
        ({"prompt": "x" * 2001}, ["params.prompt", "at most 2000"]),
    ],
)
def test_bad_param_names_the_field_and_the_allowed_values(change, needles):
    message = problem(envelope(**change))
    for needle in needles:
        assert needle in message, (needle, message)
    # one problem, one field: other fields are not blamed
    assert message.count("params.") == 1, message


@pytest.mark.parametrize("missing", ["npc_id", "npc_name", "expression", "emotion", "animation", "intensity"])
def test_missing_required_param_is_named(missing):
    payload = envelope()
    del payload["params"][missing]
    message = problem(payload)
    assert message == f"params.{missing}: Field required"


@pytest.mark.parametrize("missing", ["job_id", "operation_type", "params"])
def test_missing_required_envelope_field_is_named(missing):
    payload = envelope()
    del payload[missing]
    assert problem(payload) == f"{missing}: Field required"


def test_several_problems_are_all_listed():
    payload = envelope(intensity=2, quality_preset="ultra")
    del payload["job_id"]
    message = problem(payload)
    for field in ("job_id", "params.intensity", "params.quality_preset"):
        assert field in message
    assert message.count(";") == 2


@pytest.mark.parametrize("job_id", ["", "x" * 129, "has space", "slash/inside", "new\nline", "trailing\n", "é"])
def test_job_id_outside_the_pattern_is_refused_with_the_pattern(job_id):
    message = problem(envelope(job_id))
    assert message.startswith("job_id: ")
    assert "[A-Za-z0-9._:-]{1,128}" in message


def test_long_offending_values_are_truncated_in_messages():
    message = problem(envelope(prompt="y" * 5000))
    assert "params.prompt" in message
    assert len(message) < 300


def test_wrong_operation_type_is_refused():
    message = problem({**envelope(), "operation_type": "npc_dance"})
    assert message.startswith("operation_type: ")
    assert "'npc_response'" in message


@pytest.mark.parametrize("field", ["deadline", "submitted_at"])
def test_negative_timestamps_are_refused(field):
    assert f"{field}: " in problem({**envelope(), field: -1})


def test_root_prefixes_the_field_path():
    with pytest.raises(ValidationError) as caught:
        NpcResponseParams.model_validate(minimal_params(intensity=7))
    assert describe_validation_error(caught.value, root="params").startswith("params.intensity: ")
    assert describe_validation_error(caught.value).startswith("intensity: ")


def test_describe_validation_error_on_a_non_object_names_the_job():
    with pytest.raises(ValidationError) as caught:
        JobEnvelope.model_validate([1, 2])
    assert describe_validation_error(caught.value).startswith("job: ")


@pytest.mark.parametrize("change", [{"intensity": True}, {"steps": True}, {"cfg": False}, {"fps": True}])
def test_booleans_are_not_numbers(change):
    (field,) = change
    assert f"params.{field}: must be a JSON number, not true/false" in problem(envelope(**change))


@pytest.mark.parametrize(
    "field", ["intensity", "width", "height", "fps", "duration", "steps", "cfg", "seed", "deadline", "submitted_at"]
)
@pytest.mark.parametrize("value", ["0.5", "12", "123", "", "NaN", [1], {"n": 1}])
def test_numbers_sent_as_anything_else_are_refused(field, value):
    """A number in a string ("12") used to be converted silently; a string deadline then expired the job."""
    body = envelope(**({} if field in ("deadline", "submitted_at") else {field: value}))
    if field in ("deadline", "submitted_at"):
        body[field] = value
    message = problem(body)
    assert field in message and "must be a JSON number" in message


def test_not_a_number_and_infinity_are_refused():
    for value in (math.nan, math.inf, -math.inf):
        assert "params.cfg" in problem(envelope(cfg=value))


def test_messages_quote_values_as_json():
    assert "(got true)" in problem(envelope(steps=True))
    assert '(got "fast!")' in problem(envelope(quality_preset="fast!"))


# -- peek_job_id -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"job_id": "ok-1", "params": "garbage"}, "ok-1"),
        ({"job_id": "x" * 128}, "x" * 128),
        ({"job_id": "x" * 129}, None),
        ({"job_id": "bad id"}, None),
        ({"job_id": "trailing\n"}, None),
        ({"job_id": ""}, None),
        ({"job_id": 12}, None),
        ({}, None),
        (["job_id", "ok"], None),
        ("ok", None),
        (None, None),
    ],
)
def test_peek_job_id(payload, expected):
    assert peek_job_id(payload) == expected


# -- error codes (docs/contract.md section 6) -------------------------------------------------------------

CONTRACT_RETRYABLE = {
    "invalid_params": False,
    "invalid_image": False,
    "unknown_model": False,
    "unknown_lora": False,
    "out_of_memory": True,
    "storage_error": True,
    "internal_error": True,
    "deadline_exceeded": False,
    "cancelled": False,
}


def test_error_codes_are_exactly_the_contract_table():
    assert {code.value for code in ErrorCode} == set(CONTRACT_RETRYABLE)


@pytest.mark.parametrize(("code", "retryable"), sorted(CONTRACT_RETRYABLE.items()))
def test_error_code_retryability_matches_the_contract(code, retryable):
    assert (ErrorCode(code) in RETRYABLE_CODES) is retryable
    assert JobError(ErrorCode(code), "message").retryable is retryable


# -- results and events ---------------------------------------------------------------------------------


def test_result_has_exactly_the_contract_fields():
    expected = {
        "job_id",
        "status",
        "url",
        "thumbnail_url",
        "storage_key",
        "content_type",
        "width",
        "height",
        "fps",
        "num_frames",
        "duration_sec",
        "generated_frames",  # 1.1
        "generated_fps",  # 1.1
        "seed",
        "model",
        "preset",
        "loras",
        "prompt",
        "negative_prompt",
        "steps",
        "cfg",
        "timings",
        "gpu_seconds",
        "cache_hit",
        "batch_size",  # 1.1
        "error_code",
        "error_message",
        "contract_version",  # 1.1
        "metadata",  # 1.1
    }
    dumped = json.loads(JobResult(job_id="j", status="failed").model_dump_json())
    assert set(dumped) == expected
    contract_timings = {"queue_ms", "prepare_ms", "generate_ms", "encode_ms", "upload_ms", "total_ms"}
    additive = {"load_ms", "swap_ms", "condition_ms", "generate_started_at", "generate_ended_at"}  # docs: 1.1
    assert set(dumped["timings"]) == contract_timings | additive
    assert dumped["error_code"] is None and dumped["error_message"] is None and dumped["cache_hit"] is False


def test_result_status_cannot_be_processing():
    with pytest.raises(ValidationError):
        JobResult(job_id="j", status="processing")


COMMON = {"job_id": "j-1", "timestamp": 1764079990000, "worker": "w-1"}
EVENT_CASES = [
    (
        {"type": "job:processing", "status": "processing", "attempt": 1, "model": "wan", "preset": "fast"},
        JobProcessingEvent,
    ),
    (
        {"type": "job:progress", "status": "processing", "step": 3, "total_steps": 8, "progress": 0.375},
        JobProgressEvent,
    ),
    (
        {
            "type": "job:completed",
            "status": "completed",
            "url": "file:///out/a.mp4",
            "width": 64,
            "height": 48,
            "loras": [{"name": "glow", "weight": 0.5}],
            "cache_hit": True,
        },
        JobCompletedEvent,
    ),
    (
        {
            "type": "job:failed",
            "status": "failed",
            "error_code": "out_of_memory",
            "error_message": "CUDA out of memory",
            "retryable": True,
            "attempt": 2,
        },
        JobFailedEvent,
    ),
    ({"type": "job:expired", "status": "expired", "deadline": 1764080000000}, JobExpiredEvent),
    ({"type": "job:cancelled", "status": "cancelled"}, JobCancelledEvent),
]


@pytest.mark.parametrize(("fields", "cls"), EVENT_CASES, ids=[case[0]["type"] for case in EVENT_CASES])
def test_event_union_parses_each_event_type(fields, cls):
    raw = json.dumps({**COMMON, **fields})
    event = EVENTS.validate_json(raw)
    assert type(event) is cls
    assert event.job_id == "j-1" and event.worker == "w-1" and event.timestamp == 1764079990000
    assert event.status == fields["status"]
    dumped = json.loads(event.model_dump_json())
    assert dumped["type"] == fields["type"]
    assert type(EVENTS.validate_python(dumped)) is cls


def test_completed_event_carries_the_result_fields():
    event = EVENTS.validate_python({**COMMON, **EVENT_CASES[2][0]})
    assert event.loras[0].name == "glow" and event.cache_hit is True
    assert set(JobResult.model_fields) <= set(type(event).model_fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "job:dancing", "status": "processing"},
        {"type": "job:progress", "status": "completed", "step": 1, "total_steps": 2, "progress": 0.5},
        {"type": "job:progress", "status": "processing", "step": 1, "total_steps": 2, "progress": 1.5},
        {"type": "job:failed", "status": "failed", "error_code": "oops", "error_message": "x", "retryable": False},
        {"status": "cancelled"},
    ],
)
def test_event_union_refuses_malformed_events(fields):
    with pytest.raises(ValidationError):
        EVENTS.validate_python({**COMMON, "attempt": 1, **fields})


def test_event_defaults_fill_type_and_status():
    event = JobProgressEvent(job_id="j", timestamp=1, worker="w", step=1, total_steps=4, progress=0.25)
    dumped = json.loads(event.model_dump_json())
    assert dumped["type"] == "job:progress" and dumped["status"] == "processing"


# -- properties -----------------------------------------------------------------------------------------


@settings(deadline=None)
@given(st.floats(min_value=0.0, max_value=1.0))
def test_any_intensity_in_unit_range_validates(intensity):
    assert NpcResponseParams.model_validate(minimal_params(intensity=intensity)).intensity == intensity


@settings(deadline=None)
@given(
    st.one_of(
        st.floats(max_value=-1e-12, allow_nan=False, allow_infinity=True),
        st.floats(min_value=1.0, exclude_min=True, allow_nan=False, allow_infinity=True),
    )
)
def test_any_intensity_outside_unit_range_fails_naming_the_field(intensity):
    with pytest.raises(ValidationError) as caught:
        NpcResponseParams.model_validate(minimal_params(intensity=intensity))
    assert describe_validation_error(caught.value).startswith("intensity: ")


def test_nan_intensity_fails():
    with pytest.raises(ValidationError):
        NpcResponseParams.model_validate(minimal_params(intensity=math.nan))


LORA_NAMES = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", min_size=1, max_size=40
)


@settings(deadline=None)
@given(LORA_NAMES, st.floats(min_value=-2.0, max_value=2.0, allow_nan=False))
def test_parse_lora_ref_round_trips_valid_names_and_weights(name, weight):
    text = f"{weight:.4f}"
    parsed_name, parsed_weight = parse_lora_ref(f"{name}:{text}")
    assert parsed_name == name
    assert parsed_weight == float(text)
    assert parse_lora_ref(name) == (name, None)
    assert NpcResponseParams.model_validate(minimal_params(loras=[f"{name}:{text}"])).loras == [f"{name}:{text}"]


@settings(deadline=None)
@given(LORA_NAMES, st.floats(min_value=2.0001, max_value=1e6) | st.floats(min_value=-1e6, max_value=-2.0001))
def test_parse_lora_ref_refuses_weights_outside_the_range(name, weight):
    with pytest.raises(ValueError, match=r"outside -2\.0\.\.2\.0"):
        parse_lora_ref(f"{name}:{weight:.4f}")


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("glow", ("glow", None)), (" glow:0.5 ", ("glow", 0.5)), ("a.b_c-d:+1", ("a.b_c-d", 1.0)), ("x:-2", ("x", -2.0))],
)
def test_parse_lora_ref_examples(ref, expected):
    assert parse_lora_ref(ref) == expected
