"""worker.payload: untrusted bytes -> envelope, never raising, every failure an invalid_params that names it."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npc_video_client.contract import ErrorCode
from npc_video_client.messages import MESSAGE_LIMIT
from tests.support.jobs import envelope
from worker.payload import ReadJob, read_job

FALLBACK = "unknown:normal:1-0"
LIMIT = 1 << 20
HUGE = "Q" * 1_000_000
DEPTH = 100_000


def refused(payload: Any, max_bytes: int = LIMIT) -> ReadJob:
    read = read_job(payload, FALLBACK, max_bytes)
    assert read.envelope is None and read.error is not None, read
    assert read.error.code == ErrorCode.INVALID_PARAMS
    assert len(read.error.message) <= MESSAGE_LIMIT
    return read


def nested_arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def with_params(text_of_params: str) -> str:
    """A valid-looking envelope whose params are given as raw JSON text (for what json.dumps cannot write)."""
    return '{"job_id": "raw-1", "operation_type": "npc_response", "params": ' + text_of_params + "}"


@pytest.mark.parametrize("payload", [b"\xff\xfe{}", b'{"job_id": "a\xc3"}', b"\xed\xa0\x80"])
def test_invalid_utf8_is_invalid_params(payload):
    read = refused(payload)
    assert "not valid JSON" in read.error.message and read.job_id == FALLBACK


@pytest.mark.parametrize("payload", ["not json", "", "{", '{"job_id": "a",}', "{'job_id': 'a'}"])
def test_text_that_is_not_json_is_invalid_params(payload):
    assert "not valid JSON" in refused(payload).error.message


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_constants_are_refused_by_name(constant):
    params = json.dumps(envelope("const")["params"]).replace('"intensity": 0.5', f'"intensity": {constant}')
    assert constant in params
    read = refused(with_params(params))
    assert f"{constant} is not a JSON number" in read.error.message
    assert read.job_id == FALLBACK  # the document was never decoded, so no job id could be peeked


@pytest.mark.parametrize("build", [nested_arrays, nested_objects], ids=["arrays", "objects"])
def test_nesting_a_hundred_thousand_levels_deep_is_invalid_params(build):
    read = refused(build(DEPTH))
    assert "nested too deeply" in read.error.message


def test_deep_nesting_inside_an_envelope_is_invalid_params_too():
    read = refused(with_params(nested_objects(DEPTH)))
    assert "nested too deeply" in read.error.message


def test_deep_nesting_is_refused_on_a_worker_thread_too():
    """The finisher and keepalive threads have their own stacks: reading must stay safe off the main thread."""
    outcome: list[ReadJob] = []
    thread = threading.Thread(target=lambda: outcome.append(read_job(nested_arrays(DEPTH), FALLBACK, LIMIT)))
    thread.start()
    thread.join(30)
    assert outcome and outcome[0].error is not None and outcome[0].error.code == ErrorCode.INVALID_PARAMS


def test_a_payload_over_max_bytes_is_refused_before_decoding():
    payload = json.dumps({**envelope("big"), "padding": "x" * 5000})
    read = refused(payload, max_bytes=4096)
    assert f"{len(payload)} bytes, over the limit of 4096" in read.error.message
    assert read.job_id == FALLBACK  # not decoded at all
    assert read_job(payload, FALLBACK, len(payload)).envelope is not None  # exactly at the limit is fine


@pytest.mark.parametrize(
    ("payload", "shown"),
    [("[1, 2]", "[1, 2]"), ("12", "12"), ('"job"', '"job"'), ("null", "null"), ("true", "true")],
)
def test_a_top_level_value_other_than_an_object_is_refused(payload, shown):
    read = refused(payload)
    assert read.error.message == f"job must be a JSON object, got {shown}"


@pytest.mark.parametrize(
    ("value", "shown"),
    [("npc_dance", '"npc_dance"'), (12, "12"), (None, "null"), (["npc_response"], '["npc_response"]')],
)
def test_a_wrong_operation_type_is_quoted_as_json(value, shown):
    read = refused(json.dumps({**envelope("op"), "operation_type": value}))
    assert read.error.message.startswith(f"operation_type: {shown} is not supported")
    assert read.job_id == "op"


def test_a_missing_operation_type_is_named():
    document = envelope("no-op")
    del document["operation_type"]
    assert refused(json.dumps(document)).error.message.startswith("operation_type: null is not supported")


def test_a_huge_operation_type_is_truncated_in_the_message():
    read = refused(json.dumps({**envelope("huge-op"), "operation_type": HUGE}))
    assert HUGE not in read.error.message
    assert read.error.message.startswith('operation_type: "QQQQ')
    assert "…" in read.error.message and len(read.error.message) < 200


def test_a_validation_error_names_the_field_the_rule_and_the_value():
    read = refused(json.dumps(envelope("types", intensity="0.5", steps=True)))
    message = read.error.message
    assert 'params.intensity: must be a JSON number, not a string (got "0.5")' in message
    assert "params.steps: must be a JSON number, not true/false (got true)" in message
    assert read.job_id == "types"


def test_a_huge_value_in_a_validated_field_is_not_echoed_whole():
    read = refused(json.dumps(envelope("huge-name", npc_name=HUGE)))
    assert "params.npc_name" in read.error.message and HUGE not in read.error.message


@pytest.mark.parametrize("job_id", ["../etc/passwd", "", "x" * 129, 12, None, ["a"], "a b"])
def test_an_unusable_job_id_falls_back(job_id):
    read = refused(json.dumps({**envelope("ignored"), "job_id": job_id}))
    assert read.job_id == FALLBACK
    assert "job_id" in read.error.message


def test_a_usable_job_id_is_peeked_even_when_params_fail():
    read = refused(json.dumps(envelope("peeked:job.1", intensity=7)))
    assert read.job_id == "peeked:job.1"
    assert "params.intensity" in read.error.message


def test_an_entry_without_a_job_field_is_refused_by_name():
    read = refused(None)
    assert read.error.message == "stream entry has no field 'job'" and read.job_id == FALLBACK


@pytest.mark.parametrize("as_bytes", [False, True])
def test_valid_json_text_gives_the_envelope(as_bytes):
    text = json.dumps(envelope("fine", seed=3))
    read = read_job(text.encode() if as_bytes else text, FALLBACK, LIMIT)
    assert read.error is None and read.envelope is not None
    assert (read.job_id, read.envelope.job_id, read.envelope.params.seed) == ("fine", "fine", 3)


def test_a_decoded_document_is_accepted_as_is():
    read = read_job(envelope("decoded"), FALLBACK, max_bytes=1024)  # the byte limit is for text only
    assert read.error is None and read.envelope is not None and read.job_id == "decoded"
    assert "must be a JSON object" in refused([envelope("listed")]).error.message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.one_of(st.binary(max_size=200), st.text(max_size=200), st.floats().map(json.dumps), json_values.map(json.dumps))
)
def test_read_job_never_raises_on_arbitrary_input(payload):
    read = read_job(payload, FALLBACK, 4096)
    assert (read.envelope is None) != (read.error is None)
    if read.error is not None:
        assert read.error.code == ErrorCode.INVALID_PARAMS and len(read.error.message) <= MESSAGE_LIMIT


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(json_values)
def test_any_envelope_field_mutation_is_an_error_or_an_envelope(value):
    document = envelope("mutated")
    document["params"]["npc_name"] = value
    read = read_job(json.dumps(document), FALLBACK, LIMIT)
    assert read.job_id == "mutated"
    if isinstance(value, str) and 1 <= len(value) <= 256:
        assert read.error is None, read.error
    else:
        assert read.error is not None and "params.npc_name" in read.error.message
