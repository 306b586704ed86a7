"""Fuzzing a real `npc-worker serve` process with hostile stream entries.

Over two thousand cases (Hypothesis-generated mutations of valid envelopes, plus hand-written hostile payloads) go
to the three lanes of one worker process on a real redis-server. The outcome of each case is known by construction,
from the documented contract (docs/contract.md), never by asking the worker's own parser: a wrong type or an
out-of-range value is invalid_params, a path or URL as base image is invalid_image, an unknown LoRA name
unknown_lora, a valid envelope completes. Then: the worker never exited, every case ended with its expected code
and exactly one final event, nothing stays pending, error messages are short, and no 1 MB value comes back in a
result, an event or a dead letter.

Valid envelopes generate for real within a budget of distinct requests (tiny sizes, one step); every other valid
envelope is sent with a deadline long past, so it still proves the envelope was accepted (it ends expired, not
invalid_params) without a generation of its own.
"""

from __future__ import annotations

import copy
import json
import re
import signal
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from npc_video_client.contract import ErrorCode, JobStatus, QualityPreset
from npc_video_client.names import GROUP, StreamNames
from pipelines.presets import DEFAULT_DURATION_SEC, PRESETS
from tests.support.jobs import data_uri, envelope, png_bytes
from tests.support.redis_server import RedisServer
from tests.support.streams import FINAL_EVENTS, pending_count
from tests.support.waiting import wait_until
from tests.support.worker_process import WorkerProcess

GENERATED_CASES = 2000
RUN_BUDGET = 18  # distinct valid requests that really generate; other valid cases are sent already expired
MAX_RUN_COST = 200_000  # steps x frames x pixels a valid case may cost to run (16x16 x 5 frames x 1 step = 1280)
# The tiny Wan checkpoint's rotary table (rope_max_seq_len=32) covers latent sides up to 32 x 2 x 8 = 512 px; larger
# valid sizes are sent expired (accepted, not generated). A real Wan model covers the contract's 2048.
TINY_MAX_SIDE = 512
MESSAGE_LIMIT = 1000
HUGE = "Z" * 1_000_000
HUGE_BYTES = HUGE.encode()
ID_SLOT = "@@job-id@@"  # replaced by the job id assigned to the case
TINY_IMAGE = data_uri(png_bytes((32, 32)))
KNOWN_LORAS = ("glow", "sparkle", "comfy")  # the loras of the catalog_path fixture
LANES = ("high", "normal", "low")
PAST = 1  # a deadline (unix ms) long gone

COMPLETED = "completed"
EXPIRED = ErrorCode.DEADLINE_EXCEEDED.value
INVALID_PARAMS = ErrorCode.INVALID_PARAMS.value
INVALID_IMAGE = ErrorCode.INVALID_IMAGE.value
UNKNOWN_LORA = ErrorCode.UNKNOWN_LORA.value

# The contract's params table (docs/contract.md section 1), restated here so that expectations do not come from the
# worker's own models.
TEXT_LIMITS = {
    "npc_id": (1, 256),
    "npc_name": (1, 256),
    "expression": (0, 200),
    "emotion": (0, 200),
    "animation": (0, 200),
    "prompt": (0, 2000),
    "negative_prompt": (0, 2000),
}
NUMBERS: dict[str, tuple[type, float, float]] = {  # type, lowest, highest (duration: > 0)
    "intensity": (float, 0.0, 1.0),
    "width": (int, 16, 2048),
    "height": (int, 16, 2048),
    "fps": (int, 1, 60),
    "duration": (float, 0.0, 20.0),
    "steps": (int, 1, 200),
    "cfg": (float, 0.0, 30.0),
    "seed": (int, 0, 2**63 - 1),
}
TOP_NUMBERS = ("deadline", "submitted_at")  # ints >= 0, no upper limit
ENUMS = {
    "quality_preset": [preset.value for preset in QualityPreset],
    "art_style": ["anime", "realistic", "semi-realistic"],
}
REQUIRED = {"npc_id", "npc_name", "expression", "emotion", "animation", "intensity"}
NOT_NULLABLE = REQUIRED | {"quality_preset", "loras"}  # with a default, but null is not a value they take
PARAM_FIELDS = [*TEXT_LIMITS, "npc_base_image", *NUMBERS, *ENUMS, "loras"]
TOP_FIELDS = ["job_id", "operation_type", "params", *TOP_NUMBERS]
JOB_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
LORA_REF = re.compile(r"(?P<name>[A-Za-z0-9._-]+)(?::(?P<weight>[-+]?\d+(?:\.\d+)?))?")
NO_CATALOG_IMAGE = "npc_base_image is missing"

BASE_ENVELOPE = envelope(  # the hand-written cases' valid envelope
    ID_SLOT,
    npc_id="fuzz",
    npc_name="Fuzz",
    npc_base_image=TINY_IMAGE,
    quality_preset="realtime",
    width=16,
    height=16,
    fps=4,
    duration=0.5,
    steps=1,
    seed=7,
)

# Strings that must never reach the file system or the network from a job, for every string field.
HOSTILE_STRINGS = [
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "~root/x",
    "~/.ssh/id_rsa",
    "/proc/self/environ",
    "file:///etc/passwd",
    "/etc/passwd\x00.png",
    "a/" + "b" * 300 + "/c",
    "/dev/zero",
    "//server/share/x.png",
    "%2e%2e%2fetc%2fpasswd",
    "..",
    "\x00",
    "nul\x00in\x00the\x00middle",
    "\x1b[31mred\x1b[0m",
    "line\r\nbreak\ttab",
    "\u202egnp.exe",
    "\ufeff\u200bzero width",
]


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header for a huge image with a few garbage bytes of pixel data (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"garbage") + chunk(b"IEND", b"")


# Base-image references that are never fetched or read: no input roots are configured, and only public addresses
# may be fetched.
HOSTILE_IMAGES = [
    *HOSTILE_STRINGS,
    "/",
    ".",
    "file://" + "/a" * 200,
    "http://127.0.0.1:1/x.png",
    "http://169.254.169.254/latest/meta-data/iam/",
    "http://[::1]/x.png",
    "http://[::ffff:127.0.0.1]/x.png",
    "http://10.0.0.1/x.png",
    "http://2130706433/x.png",
    "http://user:secret@127.0.0.1/x.png",
    "gopher://127.0.0.1/x",
    "ftp://127.0.0.1/x.png",
    "javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "data:image/png;base64,not*base64",
    "data:image/png,not-base64",
    data_uri(b"not an image at all"),
    data_uri(png_claiming(100_000, 100_000)),
]


@dataclass
class Draft:
    """A case before its job id is assigned: the envelope (or a whole stream entry) and what must happen to it."""

    kind: str
    expect: str
    lane: str | None = None  # None: spread over the lanes by position
    document: dict[str, Any] | None = None
    raw: dict[str, str] = field(default_factory=dict)  # placeholder string -> raw JSON text put in its place
    entry: dict[str, str | bytes] | None = None  # a stream entry that is not an envelope
    usable_id: bool = True  # False: reported as unknown:{lane}:{entry-id}
    id_length: int = 0  # pad the assigned job id to this length
    needle: str = ""  # the error message must contain this
    convertible: bool = True  # a valid case that may be sent expired instead of run (not when about deadline)


@dataclass
class Case:
    kind: str
    expect: str
    lane: str
    entry: dict[str, str | bytes]
    job_id: str | None
    needle: str
    entry_id: str = ""

    @property
    def reported_id(self) -> str:
        return self.job_id or f"unknown:{self.lane}:{self.entry_id}"

    def describe(self) -> str:
        return f"{self.kind} [{self.reported_id}, lane {self.lane}, expected {self.expect}]"


# -- expectations from the contract ---------------------------------------------------------------------------
def text_outcome(name: str, value: str) -> str:
    low, high = TEXT_LIMITS[name]
    return COMPLETED if low <= len(value) <= high else INVALID_PARAMS


def lora_outcome(ref: str) -> str:
    match = LORA_REF.fullmatch(ref)
    if match is None:
        return INVALID_PARAMS
    if match.group("weight") is not None and not -2.0 <= float(match.group("weight")) <= 2.0:
        return INVALID_PARAMS
    return COMPLETED if match.group("name") in KNOWN_LORAS else UNKNOWN_LORA


def string_outcome(name: str, value: str) -> tuple[str, bool]:
    """(expected outcome, job id usable) of a string put in field `name` of a valid envelope."""
    if name == "job_id":
        return (INVALID_PARAMS, False) if JOB_ID.fullmatch(value) is None else (COMPLETED, True)
    if name in TEXT_LIMITS:
        return text_outcome(name, value), True
    if name == "npc_base_image":
        return (INVALID_IMAGE if value else INVALID_PARAMS), True
    if name == "loras":
        return lora_outcome(value), True
    if name in ENUMS:
        return (COMPLETED if value in ENUMS[name] else INVALID_PARAMS), True
    return INVALID_PARAMS, True  # numbers, operation_type, params


def needle_for(name: str) -> str:
    return name if name in TOP_FIELDS else f"params.{name}"


def put(document: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    """A copy of the envelope with field `name` (top level or in params) set to `value`."""
    changed = copy.deepcopy(document)
    target = changed if name in TOP_FIELDS else changed["params"]
    target[name] = value
    return changed


def drop(document: dict[str, Any], name: str) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    (changed if name in TOP_FIELDS else changed["params"]).pop(name, None)
    return changed


# -- strategies -------------------------------------------------------------------------------------------------
short_text = st.text(max_size=24)
lanes = st.sampled_from(LANES)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | short_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(short_text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid, tiny envelope (job_id assigned later)."""
    params: dict[str, Any] = {
        "npc_id": draw(st.text(min_size=1, max_size=24)),
        "npc_name": draw(st.text(min_size=1, max_size=24)),
        "npc_base_image": TINY_IMAGE,
        "expression": draw(short_text),
        "emotion": draw(short_text),
        "animation": draw(short_text),
        "intensity": draw(st.floats(0.0, 1.0)),
        "quality_preset": draw(st.sampled_from(ENUMS["quality_preset"])),
        "width": draw(st.integers(16, 32)),
        "height": draw(st.integers(16, 32)),
        "fps": draw(st.integers(1, 8)),
        "duration": draw(st.floats(0.05, 0.5)),
        "steps": 1,
        "seed": draw(st.integers(0, 2**63 - 1)),
    }
    optional = {
        "art_style": st.sampled_from(ENUMS["art_style"]),
        "loras": st.lists(st.sampled_from(KNOWN_LORAS), max_size=2),
        "prompt": short_text,
        "negative_prompt": short_text,
        "cfg": st.floats(0.0, 30.0),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            params[name] = draw(strategy)
    return {"job_id": ID_SLOT, "operation_type": "npc_response", "params": params}


@st.composite
def valid_cases(draw: st.DrawFn) -> Draft:
    return Draft("valid", COMPLETED, draw(lanes), draw(valid_documents()))


def wrong_type_values(name: str) -> list[Any]:
    if name in NUMBERS or name in TOP_NUMBERS:
        fractional = [16.5] if name in NUMBERS and NUMBERS[name][0] is int else []
        return ["0.5", "12", "", True, False, [], {}, [1], {"value": 1}, *fractional]
    if name == "loras":
        return ["glow", 12, True, {}, {"glow": 1}, [12], [None], [["glow"]], [True]]
    if name == "params":
        return ["params", 12, True, [], [{"npc_id": "x"}]]
    return [12, 0.5, True, False, [], {}, ["text"], {"text": "x"}]


@st.composite
def wrong_type_cases(draw: st.DrawFn) -> Draft:
    name = draw(st.sampled_from([*PARAM_FIELDS, *TOP_FIELDS]))
    value = draw(st.sampled_from(wrong_type_values(name)))
    document = put(draw(valid_documents()), name, value)
    usable = name != "job_id"
    return Draft(
        f"wrong type {name}={value!r}", INVALID_PARAMS, draw(lanes), document, usable_id=usable, needle=needle_for(name)
    )


def absent_outcome(name: str, how: str) -> tuple[str, bool, str]:
    """(outcome, job id usable, needle) of a field set to null (`how` = null) or left out (`how` = missing)."""
    if name == "job_id":
        return INVALID_PARAMS, False, "job_id"
    if name == "npc_base_image":
        return INVALID_PARAMS, True, NO_CATALOG_IMAGE
    if name in ("operation_type", "params") or name in REQUIRED:
        return INVALID_PARAMS, True, needle_for(name)
    if how == "null" and name in NOT_NULLABLE:
        return INVALID_PARAMS, True, needle_for(name)
    return COMPLETED, True, ""


@st.composite
def absent_cases(draw: st.DrawFn) -> Draft:
    name = draw(st.sampled_from([*PARAM_FIELDS, *TOP_FIELDS]))
    how = draw(st.sampled_from(["null", "missing"]))
    base = BASE_ENVELOPE if name == "deadline" else draw(valid_documents())  # runs: one request, then cache hits
    document = put(base, name, None) if how == "null" else drop(base, name)
    outcome, usable, needle = absent_outcome(name, how)
    return Draft(
        f"{how} {name}", outcome, draw(lanes), document, usable_id=usable, needle=needle, convertible=name != "deadline"
    )


@st.composite
def huge_cases(draw: st.DrawFn) -> Draft:
    """1 MB strings in any field, or in ignored extra fields (then the envelope is valid)."""
    name = draw(st.sampled_from([*PARAM_FIELDS, *TOP_FIELDS, "extra", "params.extra"]))
    base = draw(valid_documents())
    if name == "extra":
        return Draft("huge extra field", COMPLETED, draw(lanes), {**base, "x_padding": HUGE})
    if name == "params.extra":
        return Draft("huge extra param", COMPLETED, draw(lanes), put(base, "x_padding", HUGE))
    value: Any = [HUGE] if name == "loras" else HUGE
    outcome, usable = string_outcome(name, HUGE)
    needle = "" if outcome in (INVALID_IMAGE, UNKNOWN_LORA) else needle_for(name)
    return Draft(f"huge {name}", outcome, draw(lanes), put(base, name, value), usable_id=usable, needle=needle)


def nested_text(depth: int, shape: str) -> str:
    return "[" * depth + "]" * depth if shape == "arrays" else '{"a":' * depth + "1" + "}" * depth


@st.composite
def deep_cases(draw: st.DrawFn) -> Draft:
    """Nested values (as raw JSON text): a few hundred levels are read and then refused or ignored; thousands of
    levels make the whole document unreadable, so no job id can be taken from it."""
    where = draw(st.sampled_from([*PARAM_FIELDS, "extra", "params.extra"]))
    depth = draw(st.sampled_from([30, 400, 3_000, 50_000]))
    shape = draw(st.sampled_from(["arrays", "objects"]))
    placeholder = "@@nested@@"
    base = draw(valid_documents())
    if where == "extra":
        document = {**base, "x_nested": placeholder}
    elif where == "params.extra":
        document = put(base, "x_nested", placeholder)
    else:
        document = put(base, where, placeholder)
    raw = {placeholder: nested_text(depth, shape)}
    kind = f"{depth} levels of {shape} in {where}"
    if depth >= 3_000:
        return Draft(kind, INVALID_PARAMS, draw(lanes), document, raw, usable_id=False, needle="nested too deeply")
    if where in ("extra", "params.extra"):
        return Draft(kind, COMPLETED, draw(lanes), document, raw)
    return Draft(kind, INVALID_PARAMS, draw(lanes), document, raw, needle=needle_for(where))


control_text = st.text(st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"]), min_size=1, max_size=12)


def with_string(base: dict[str, Any], name: str, value: str, kind: str, lane: str | None) -> Draft:
    outcome, usable = string_outcome(name, value)
    document = put(base, name, [value] if name == "loras" else value)
    needle = needle_for(name) if outcome == INVALID_PARAMS else ""
    return Draft(f"{kind} {name}={value[:40]!r}", outcome, lane, document, usable_id=usable, needle=needle)


STRING_FIELDS = [*TEXT_LIMITS, "npc_base_image", "loras", *ENUMS, "job_id", "operation_type"]


@st.composite
def control_cases(draw: st.DrawFn) -> Draft:
    """Control, format and separator characters (NUL, ESC, RTL override, BOM, ...) in every string field."""
    name = draw(st.sampled_from(STRING_FIELDS))
    return with_string(draw(valid_documents()), name, draw(control_text), "control characters in", draw(lanes))


@st.composite
def traversal_cases(draw: st.DrawFn) -> Draft:
    name = draw(st.sampled_from(STRING_FIELDS))
    pool = HOSTILE_IMAGES if name == "npc_base_image" else HOSTILE_STRINGS
    value = draw(st.sampled_from(pool))
    if name == "job_id" and JOB_ID.fullmatch(value):
        value += "/"  # a usable id would not be unique across cases
    return with_string(draw(valid_documents()), name, value, "hostile string in", draw(lanes))


@st.composite
def nonfinite_cases(draw: st.DrawFn) -> Draft:
    """NaN/Infinity are not JSON (the document is refused whole); 1e400 is JSON that reads as infinity."""
    name = draw(st.sampled_from([*NUMBERS, *TOP_NUMBERS]))
    text = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]))
    placeholder = "@@number@@"
    document = put(draw(valid_documents()), name, placeholder)
    kind = f"{text} in {name}"
    if text.endswith("e400"):
        return Draft(kind, INVALID_PARAMS, draw(lanes), document, {placeholder: text}, needle=needle_for(name))
    needle = f"{text} is not a JSON number"
    return Draft(kind, INVALID_PARAMS, draw(lanes), document, {placeholder: text}, usable_id=False, needle=needle)


@st.composite
def out_of_range_cases(draw: st.DrawFn) -> Draft:
    name = draw(st.sampled_from([*NUMBERS, *TOP_NUMBERS]))
    if name in TOP_NUMBERS:
        value: Any = draw(st.integers(max_value=-1))
    else:
        kind, low, high = NUMBERS[name]
        if kind is int:
            value = draw(st.integers(max_value=int(low) - 1) | st.integers(min_value=int(high) + 1))
        else:
            below = st.floats(max_value=low, allow_nan=False, allow_infinity=False).filter(
                (lambda v: v <= low) if name == "duration" else (lambda v: v < low)  # -0.0 is not below 0.0
            )
            above = st.floats(min_value=high, allow_nan=False, allow_infinity=False).filter(lambda v: v > high)
            value = draw(below | above)
    return Draft(
        f"out of range {name}={value!r}",
        INVALID_PARAMS,
        draw(lanes),
        put(draw(valid_documents()), name, value),
        needle=needle_for(name),
    )


@st.composite
def in_range_cases(draw: st.DrawFn) -> Draft:
    """Any value inside a documented range is accepted (most of these are sent expired: they cost too much)."""
    name = draw(st.sampled_from([*NUMBERS, *TOP_NUMBERS]))
    if name == "deadline":
        value: Any = draw(st.integers(0, 10**12))  # before 2002: a valid deadline, long past
        document = put(draw(valid_documents()), name, value)
        return Draft(f"in range deadline={value}", EXPIRED, draw(lanes), document, convertible=False)
    if name == "submitted_at":
        value = draw(st.integers(0, 10**300))  # float() of the queue time still works up to ~1.8e308
    else:
        kind, low, high = NUMBERS[name]
        if kind is int:
            value = draw(st.integers(int(low), int(high)))
        else:
            value = draw(st.floats(low, high, exclude_min=name == "duration"))
    document = put(draw(valid_documents()), name, value)
    return Draft(f"in range {name}={value!r}", COMPLETED, draw(lanes), document)


@st.composite
def unknown_lora_cases(draw: st.DrawFn) -> Draft:
    name = draw(st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True).filter(lambda n: n not in KNOWN_LORAS))
    weight = draw(st.sampled_from(["", ":0", ":1", ":-2", ":2", ":0.75"]))
    known = draw(st.lists(st.sampled_from(KNOWN_LORAS), max_size=2))
    document = put(draw(valid_documents()), "loras", [*known, name + weight])
    return Draft(f"unknown LoRA {name + weight!r}", UNKNOWN_LORA, draw(lanes), document)


@st.composite
def unknown_enum_cases(draw: st.DrawFn) -> Draft:
    name = draw(st.sampled_from(list(ENUMS)))
    value = draw(st.text(max_size=20).filter(lambda v: v not in ENUMS[name]))
    return Draft(
        f"unknown {name} {value!r}",
        INVALID_PARAMS,
        draw(lanes),
        put(draw(valid_documents()), name, value),
        needle=needle_for(name),
    )


@st.composite
def operation_type_cases(draw: st.DrawFn) -> Draft:
    value = draw((st.text(max_size=30) | json_values).filter(lambda v: v != "npc_response"))
    return Draft(
        f"operation_type {value!r}",
        INVALID_PARAMS,
        draw(lanes),
        put(draw(valid_documents()), "operation_type", value),
        needle="operation_type",
    )


@st.composite
def job_id_cases(draw: st.DrawFn) -> Draft:
    value = draw(st.text(max_size=140).filter(lambda v: JOB_ID.fullmatch(v) is None))
    return Draft(
        f"job_id {value[:40]!r}",
        INVALID_PARAMS,
        draw(lanes),
        put(draw(valid_documents()), "job_id", value),
        usable_id=False,
        needle="job_id",
    )


@st.composite
def extra_field_cases(draw: st.DrawFn) -> Draft:
    """Unknown fields are ignored (forward compatibility), whatever they hold."""
    extra = draw(st.dictionaries(short_text, json_values, min_size=1, max_size=4))
    base = draw(valid_documents())
    at_top = draw(st.booleans())
    known = {*TOP_FIELDS, "metadata"} if at_top else set(PARAM_FIELDS)  # metadata (contract 1.1) has its own rules
    extra = {key: value for key, value in extra.items() if key not in known}
    document = {**base, **extra} if at_top else {**base, "params": {**base["params"], **extra}}
    return Draft("extra fields", COMPLETED, draw(lanes), document)


@st.composite
def raw_entry_cases(draw: st.DrawFn) -> Draft:
    """Entries that are no envelope at all: not JSON, not UTF-8, not an object, or without the `job` field."""
    form = draw(st.sampled_from(["not json", "not utf-8", "not an object", "no job field"]))
    lane = draw(lanes)
    if form == "not json":
        entry: dict[str, str | bytes] = {"job": "#" + draw(st.text(max_size=50))}
        needle = "not valid JSON"
    elif form == "not utf-8":
        entry = {"job": b"\xff\xff" + draw(st.binary(max_size=50))}  # not a BOM: always decoded as UTF-8
        needle = "not valid JSON"
    elif form == "not an object":
        entry = {"job": json.dumps(draw(json_values.filter(lambda v: not isinstance(v, dict))))}
        needle = "must be a JSON object"
    else:
        fields = draw(
            st.dictionaries(
                st.text(min_size=1, max_size=10).filter(lambda k: k != "job"), short_text, min_size=1, max_size=3
            )
        )
        entry = dict(fields)
        needle = "no field 'job'"
    return Draft(f"entry {form}", INVALID_PARAMS, lane, entry=entry, usable_id=False, needle=needle)


CASES = st.one_of(
    valid_cases(),
    wrong_type_cases(),
    absent_cases(),
    huge_cases(),
    deep_cases(),
    control_cases(),
    traversal_cases(),
    nonfinite_cases(),
    out_of_range_cases(),
    in_range_cases(),
    unknown_lora_cases(),
    unknown_enum_cases(),
    operation_type_cases(),
    job_id_cases(),
    extra_field_cases(),
    raw_entry_cases(),
)


def generated_drafts() -> list[Draft]:
    """Run Hypothesis inside the test: each generated case is recorded, then all are submitted together."""
    drafts: list[Draft] = []

    @settings(
        max_examples=GENERATED_CASES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(CASES)
    def record(draft: Draft) -> None:
        drafts.append(draft)

    record()
    return drafts


# -- hand-written cases -----------------------------------------------------------------------------------------


def boundary_drafts() -> list[Draft]:
    """Exact limits (valid) and one past them (invalid_params)."""
    lowest = {"intensity": 0, "width": 16, "height": 16, "fps": 1, "duration": 5e-324, "steps": 1, "cfg": 0, "seed": 0}
    highest = {
        "intensity": 1,
        "cfg": 30,
        "seed": 2**63 - 1,
        **{name: "x" * high for name, (_low, high) in TEXT_LIMITS.items()},
        "loras": ["glow:2", "sparkle:-2", "comfy:0", "glow", "sparkle", "comfy", "glow:1.5", "sparkle:0.25"],
    }
    valid: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("lowest limits", lowest, {}),
        ("highest limits", highest, {}),
        ("width 2048", {"width": 2048, "height": 16}, {}),  # sent expired: beyond the tiny model (see run_cost)
        ("height 2048", {"width": 16, "height": 2048}, {}),
        ("width 512", {"width": TINY_MAX_SIDE, "height": 16}, {}),
        ("height 512", {"width": 16, "height": TINY_MAX_SIDE}, {}),
        ("fps 60", {"fps": 60, "duration": 0.1}, {}),
        ("duration 20", {"fps": 1, "duration": 20}, {}),
        ("steps 200", {"steps": 200}, {}),  # sent expired: too long to run here
        ("deadline far ahead", {}, {"deadline": 10**30}),
        ("submitted_at 0", {}, {"submitted_at": 0}),
        ("submitted_at 10**300", {}, {"submitted_at": 10**300}),
    ]
    drafts = []
    for kind, params, top in valid:
        document = {**copy.deepcopy(BASE_ENVELOPE), **top}
        document["params"].update(params)
        drafts.append(Draft(f"boundary {kind}", COMPLETED, document=document, convertible="deadline" not in top))
    drafts.append(Draft("boundary deadline 0", EXPIRED, document={**copy.deepcopy(BASE_ENVELOPE), "deadline": 0}))
    drafts.append(Draft("boundary job_id of 128", COMPLETED, document=copy.deepcopy(BASE_ENVELOPE), id_length=128))
    drafts.append(
        Draft(
            "boundary job_id of 129",
            INVALID_PARAMS,
            document=copy.deepcopy(BASE_ENVELOPE),
            id_length=129,
            usable_id=False,
            needle="job_id",
        )
    )
    past: list[tuple[str, Any]] = [
        ("intensity", -1e-7),
        ("intensity", 1.0000001),
        ("width", 15),
        ("width", 2049),
        ("height", 15),
        ("height", 2049),
        ("fps", 0),
        ("fps", 61),
        ("duration", 0),
        ("duration", 20.000001),
        ("steps", 0),
        ("steps", 201),
        ("cfg", -1e-7),
        ("cfg", 30.0000001),
        ("seed", -1),
        ("seed", 2**63),
        ("deadline", -1),
        ("submitted_at", -1),
        *((name, "x" * (high + 1)) for name, (_low, high) in TEXT_LIMITS.items()),
        ("npc_id", ""),
        ("npc_name", ""),
        ("loras", ["glow"] * 9),
        ("loras", ["glow:2.0001"]),
        ("loras", ["glow:-2.5"]),
    ]
    for name, value in past:
        shown = f"{value[:8]!r}... ({len(value)})" if isinstance(value, str) and len(value) > 10 else repr(value)
        drafts.append(
            Draft(
                f"boundary {name}={shown}",
                INVALID_PARAMS,
                document=put(BASE_ENVELOPE, name, value),
                needle=needle_for(name),
            )
        )
    return drafts


def hostile_drafts() -> list[Draft]:
    """Every hostile string in the string fields, hand-written payloads that json.dumps cannot write."""
    drafts = []
    for index in range(0, len(HOSTILE_STRINGS), 3):  # three strings per generation, each in two or three fields
        group = HOSTILE_STRINGS[index : index + 3]
        document = copy.deepcopy(BASE_ENVELOPE)
        for position, name in enumerate(TEXT_LIMITS):
            value = group[(position + index // 3) % len(group)]
            if text_outcome(name, value) == COMPLETED:
                document["params"][name] = value
        document["params"]["seed"] = index
        drafts.append(Draft(f"hostile strings in the text fields: {group!r:.80}", COMPLETED, document=document))
    for name in ("npc_base_image", "loras", "quality_preset", "art_style", "job_id"):
        pool = HOSTILE_IMAGES if name == "npc_base_image" else HOSTILE_STRINGS
        for value in pool:
            if name == "job_id" and JOB_ID.fullmatch(value):
                continue  # a usable id: covered by the text fields
            drafts.append(with_string(BASE_ENVELOPE, name, value, "hostile string in", None))
    text = json.dumps(BASE_ENVELOPE)
    raw_payloads: list[tuple[str, str | bytes, str]] = [
        ("invalid UTF-8", text.encode().replace(b"Fuzz", b"F\xc3\x28zz"), "not valid JSON"),
        ("truncated JSON", text[:-5], "not valid JSON"),
        ("trailing garbage", text + " garbage", "not valid JSON"),
        ("empty", "", "not valid JSON"),
        ("NUL", "\x00", "not valid JSON"),
        ("JSON array", "[]", "must be a JSON object"),
        ("JSON number", "12", "must be a JSON object"),
        ("JSON string", '"npc_response"', "must be a JSON object"),
        ("JSON null", "null", "must be a JSON object"),
        ("100000 nested arrays", nested_text(100_000, "arrays"), "nested too deeply"),
        ("100000 nested objects", nested_text(100_000, "objects"), "nested too deeply"),
        ("NaN intensity", text.replace('"intensity": 0.5', '"intensity": NaN'), "NaN is not a JSON number"),
        ("5000-digit seed", text.replace('"seed": 7', '"seed": ' + "9" * 5000), "not valid JSON"),
        ("a document of 1 MB keys", "{" + ",".join(f'"k{i}": 0' for i in range(100_000)) + "}", "operation_type"),
    ]
    for kind, payload, needle in raw_payloads:
        drafts.append(Draft(kind, INVALID_PARAMS, entry={"job": payload}, usable_id=False, needle=needle))
    drafts.append(
        Draft(
            "entry without the job field",
            INVALID_PARAMS,
            entry={"other": "x"},
            usable_id=False,
            needle="no field 'job'",
        )
    )
    drafts.append(
        Draft(
            "entry with JOB in capitals", INVALID_PARAMS, entry={"JOB": text}, usable_id=False, needle="no field 'job'"
        )
    )
    over_image_limit = put(BASE_ENVELOPE, "npc_base_image", "data:image/png;base64," + "A" * 28_000_000)
    drafts.append(Draft("base image over the 20 MiB limit, job under 32 MiB", INVALID_IMAGE, document=over_image_limit))
    return drafts


# -- from drafts to submitted cases --------------------------------------------------------------------------
def run_cost(params: dict[str, Any]) -> float:
    """steps x frames x pixels of a valid request, with the preset table's defaults (for the run budget only);
    infinite beyond the sides the tiny model can generate."""
    table = PRESETS[QualityPreset(params.get("quality_preset", "fast"))]
    width, height = params.get("width"), params.get("height")
    if width is None and height is None:
        width = height = table.width  # the tiny base image is square
    width, height = width or height, height or width
    if max(width, height) > TINY_MAX_SIDE:
        return float("inf")
    frames = max(5.0, (params.get("fps") or table.fps) * (params.get("duration") or DEFAULT_DURATION_SEC))
    return float((params.get("steps") or table.steps) * frames * width * height)


def build_cases(drafts: list[Draft]) -> list[Case]:
    """Assign job ids and lanes; run valid cases within the budget, send the others already expired."""
    cases: list[Case] = []
    runs: set[str] = set()
    for index, draft in enumerate(drafts):
        lane = draft.lane or LANES[index % 3]
        if draft.entry is not None:
            cases.append(Case(draft.kind, draft.expect, lane, draft.entry, None, draft.needle))
            continue
        assert draft.document is not None
        document = copy.deepcopy(draft.document)
        job_id = f"fz-{index:05d}"
        if draft.id_length:
            job_id = (job_id + "-").ljust(draft.id_length, "x")
        if document.get("job_id") == ID_SLOT:
            document["job_id"] = job_id  # even where the document is unreadable and its id cannot be peeked
        expect = draft.expect
        if expect == COMPLETED:
            params = document["params"]
            known = {key: value for key, value in params.items() if key in PARAM_FIELDS}
            signature = json.dumps(known, sort_keys=True)
            affordable = run_cost(params) <= MAX_RUN_COST and (signature in runs or len(runs) < RUN_BUDGET)
            if affordable or not draft.convertible:
                runs.add(signature)
            else:
                document["deadline"] = PAST
                expect = EXPIRED
        text = json.dumps(document)
        for placeholder, raw in draft.raw.items():
            text = text.replace(json.dumps(placeholder), raw)
        usable = draft.usable_id and JOB_ID.fullmatch(job_id) is not None
        cases.append(Case(draft.kind, expect, lane, {"job": text}, job_id if usable else None, draft.needle))
    return cases


def submit(client: redis.Redis, names: StreamNames, cases: list[Case]) -> None:
    for start in range(0, len(cases), 100):
        batch = cases[start : start + 100]
        pipe = client.pipeline(transaction=False)
        for case in batch:
            pipe.xadd(names.lane(case.lane), case.entry)
        for case, entry_id in zip(batch, pipe.execute(), strict=True):
            case.entry_id = entry_id.decode()


# -- reading back ----------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    status: str
    code: str
    message: str
    raw: bytes


def outcome_of(document: dict[str, Any], raw: bytes) -> Outcome:
    return Outcome(document["status"], document.get("error_code") or "", document.get("error_message") or "", raw)


class Watcher:
    """Follows results (jobs with an id) and the events stream (entries without one) until every case ended."""

    def __init__(self, client: redis.Redis, names: StreamNames, cases: list[Case]) -> None:
        self.client = client
        self.names = names
        self.cases = cases
        self.ended: dict[str, Outcome] = {}
        self.events: list[tuple[dict[str, Any], bytes]] = []
        self._cursor = "-"

    def poll(self) -> int:
        waiting = [case for case in self.cases if case.reported_id not in self.ended]
        with_id = [case for case in waiting if case.job_id is not None]
        for start in range(0, len(with_id), 500):
            chunk = with_id[start : start + 500]
            stored: Any = self.client.mget([self.names.result(case.reported_id) for case in chunk])
            for case, raw in zip(chunk, stored, strict=True):
                if raw is not None:
                    self.ended[case.reported_id] = outcome_of(json.loads(raw), raw)
        new: Any = self.client.xrange(self.names.events, min=self._cursor, max="+")
        for entry_id, fields in new:
            self._cursor = "(" + entry_id.decode()
            event = json.loads(fields[b"event"])
            self.events.append((event, fields[b"event"]))
            if event["job_id"].startswith("unknown:") and event["type"] == "job:failed":
                self.ended.setdefault(event["job_id"], outcome_of(event, fields[b"event"]))
        return len(self.cases) - sum(1 for case in self.cases if case.reported_id in self.ended)


def final_event_counts(events: list[tuple[dict[str, Any], bytes]]) -> Counter[str]:
    return Counter(
        event["job_id"]
        for event, _raw in events
        if event["type"] in FINAL_EVENTS and not (event["type"] == "job:failed" and event.get("retryable"))
    )


def check_case(case: Case, outcome: Outcome) -> list[str]:
    problems = []
    if case.expect == COMPLETED:
        if outcome.status != JobStatus.COMPLETED:
            problems.append(f"ended {outcome.status}/{outcome.code}: {outcome.message[:300]}")
    elif case.expect == EXPIRED:
        if (outcome.status, outcome.code) != (JobStatus.EXPIRED, EXPIRED):
            problems.append(f"ended {outcome.status}/{outcome.code} instead of expired: {outcome.message[:300]}")
    elif outcome.code != case.expect:
        problems.append(f"ended {outcome.status}/{outcome.code}: {outcome.message[:300]}")
    elif case.needle and case.needle not in outcome.message:
        problems.append(f"message does not name {case.needle!r}: {outcome.message[:300]}")
    if len(outcome.message) > MESSAGE_LIMIT:
        problems.append(f"message of {len(outcome.message)} chars")
    return [f"{case.describe()}: {problem}" for problem in problems]


def no_huge_value(what: str, raw: bytes) -> list[str]:
    return [f"{what} carries a 1 MB value ({len(raw)} bytes)"] if HUGE_BYTES in raw else []


# -- the test ----------------------------------------------------------------------------------------------------
@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Without persistence: hundreds of megabytes of hostile payloads need not be fsynced."""
    server = RedisServer(tmp_path / "redis", persistent=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fuzz_worker(tmp_path: Path, catalog_path: Path, redis_server: RedisServer) -> Iterator[Callable[[], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(
            tmp_path,
            "fuzz",
            catalog=catalog_path,
            device="cpu",
            storage_url=f"file://{tmp_path / 'outputs'}",
            data_dir=tmp_path / "data",
            redis_url=redis_server.url,
            block_ms=100,
            claim_idle_ms=60_000,
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


def test_hostile_entries_never_stop_the_worker_and_each_ends_once_as_expected(fuzz_worker, redis_client, names):
    worker = fuzz_worker()  # starts while the cases are generated
    cases = build_cases([*hostile_drafts(), *boundary_drafts(), *generated_drafts()])
    assert len(cases) >= GENERATED_CASES + 100
    assert all(case.lane in LANES for case in cases) and {case.lane for case in cases} == set(LANES)
    worker.wait_ready()
    submit(redis_client, names, cases)

    watcher = Watcher(redis_client, names, cases)

    def all_ended() -> bool:
        assert worker.process.poll() is None, f"the worker exited:\n{worker.log()[-5000:]}"
        return watcher.poll() == 0

    try:
        wait_until(all_ended, timeout_s=240, interval_s=0.5, what="every case to end")  # under the 300 s test timeout
    except AssertionError:
        missing = [case.describe() for case in cases if case.reported_id not in watcher.ended]
        raise AssertionError(f"{len(missing)} cases never ended, e.g. {missing[:10]}\n{worker.log()[-5000:]}") from None
    assert worker.process.poll() is None, "the worker exited"

    problems = [problem for case in cases for problem in check_case(case, watcher.ended[case.reported_id])]
    watcher.poll()
    finals = final_event_counts(watcher.events)
    reported = {case.reported_id for case in cases}
    problems += [f"{job_id}: {count} final events" for job_id, count in finals.items() if count != 1]
    problems += [f"{job_id}: no final event" for job_id in reported - set(finals)]
    problems += [f"final event of a job never submitted: {job_id}" for job_id in set(finals) - reported]
    for event, raw in watcher.events:
        problems += no_huge_value(f"event {event['type']} of {event['job_id']}", raw)
        if len(event.get("error_message") or "") > MESSAGE_LIMIT:
            problems.append(f"event of {event['job_id']}: message of {len(event['error_message'])} chars")
    for case in cases:
        problems += no_huge_value(f"result of {case.reported_id}", watcher.ended[case.reported_id].raw)
    dead: Any = redis_client.xrange(names.dead)
    for _id, fields in dead:
        problems += no_huge_value("dead letter error", fields[b"error"])
        if len(json.loads(fields[b"error"])["error_message"]) > MESSAGE_LIMIT:
            problems.append(f"dead letter of {fields[b'error'][:80]!r}: message over {MESSAGE_LIMIT} chars")
    failures = sum(1 for case in cases if case.expect not in (COMPLETED, EXPIRED))
    if len(dead) != failures:
        problems.append(f"{len(dead)} dead letters for {failures} failed cases")
    codes = Counter(outcome.code for outcome in watcher.ended.values())
    assert not problems, f"{len(problems)} problems (outcomes: {dict(codes)}), e.g.:\n" + "\n".join(problems[:25])
    assert codes[ErrorCode.INTERNAL_ERROR.value] == 0

    assert pending_count(redis_client, names) == 0
    for stream in names.lanes:
        assert redis_client.xlen(stream) == 0, stream  # every entry acknowledged and deleted
        assert redis_client.xpending(stream, GROUP)["pending"] == 0
    metrics = worker.get("/metrics")[1].decode()
    ended = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith("npc_jobs_total{"))
    assert ended == len(cases)  # every case counted once, under one outcome
    assert "npc_duplicate_entries_total 0.0" in metrics

    worker.signal(signal.SIGTERM)
    assert worker.wait_exit(timeout_s=60) == 0, worker.log()[-3000:]


# -- cases fuzzing found, kept as regression tests of their own ------------------------------------------------------
def tiny_job(job_id: str, **overrides: Any) -> dict[str, Any]:
    document = copy.deepcopy(BASE_ENVELOPE)
    document["job_id"] = job_id
    document["params"].update(overrides)
    return document


def with_raw(document: dict[str, Any], name: str, raw: str) -> str:
    """The envelope as JSON text with field `name` (params, or top level) holding `raw` JSON text."""
    placeholder = "@@raw@@"
    return json.dumps(put(document, name, placeholder)).replace(json.dumps(placeholder), raw)


def run_behind_sentinel(redis_client, names, start_worker, entries: list[dict[str, str | bytes]]) -> list[str]:
    """Submit the entries, then an invalid job, in one lane, to one worker without affinity: once the last one
    has ended, every entry before it has been handled. Returns the entry ids."""
    entry_ids = [redis_client.xadd(names.lane("normal"), entry).decode() for entry in entries]
    redis_client.xadd(names.lane("normal"), {"job": json.dumps(tiny_job("sentinel", intensity=7))})
    start_worker(affinity_lookahead=1)
    wait_until(lambda: redis_client.exists(names.result("sentinel")), timeout_s=120, what="the sentinel job")
    return entry_ids


def test_lone_surrogates_in_string_fields_end_as_invalid_params(start_worker, redis_client, names):
    surrogate = json.dumps("\ud800")  # the 8 characters "\ud800" with quotes: valid JSON text
    entries: list[dict[str, str | bytes]] = [
        {"job": with_raw(tiny_job("sur-name"), "npc_name", surrogate)},
        {"job": with_raw(tiny_job("sur-image"), "npc_base_image", surrogate)},
        {"job": with_raw(tiny_job("sur-preset"), "quality_preset", surrogate)},
        {"job": with_raw(tiny_job("sur-lora"), "loras", f"[{surrogate}]")},
        {"job": json.dumps(tiny_job("sur-bytes")).encode().replace(b"Fuzz", b"\xed\xa0\x80")},
        {"job": with_raw(tiny_job("sur-id"), "job_id", surrogate)},
    ]
    entry_ids = run_behind_sentinel(redis_client, names, start_worker, entries)
    for job_id in ("sur-name", "sur-image", "sur-preset", "sur-lora", "sur-bytes"):
        stored = redis_client.get(names.result(job_id))
        assert stored is not None, f"{job_id} never ended"
        assert json.loads(stored)["error_code"] == INVALID_PARAMS
    unknown = f"unknown:normal:{entry_ids[-1]}"
    assert any(
        f'"job_id":"{unknown}"'.encode() in fields[b"event"] for _id, fields in redis_client.xrange(names.events)
    )
    assert pending_count(redis_client, names) == 0


def test_a_producer_job_id_starting_with_unknown_gets_its_result(start_worker, redis_client, names):
    entries: list[dict[str, str | bytes]] = [
        {"job": json.dumps(tiny_job("unknown:mine"))},
        {"job": json.dumps(tiny_job("unknown:bad", intensity=7))},
    ]
    run_behind_sentinel(redis_client, names, start_worker, entries)
    # a generated job ends on the finisher thread, possibly after the (invalid, immediate) sentinel
    completed = wait_until(lambda: redis_client.get(names.result("unknown:mine")), timeout_s=60, what="the job")
    failed = redis_client.get(names.result("unknown:bad"))
    assert completed is not None and json.loads(completed)["status"] == COMPLETED
    assert failed is not None and json.loads(failed)["error_code"] == INVALID_PARAMS
    assert redis_client.llen(names.done("unknown:mine")) == 1


def test_a_huge_submitted_at_is_not_an_internal_error(start_worker, redis_client, names):
    redis_client.xadd(names.lane("normal"), {"job": with_raw(tiny_job("late-clock"), "submitted_at", "1" + "0" * 400)})
    start_worker()
    stored = wait_until(lambda: redis_client.get(names.result("late-clock")), timeout_s=120, what="a result")
    assert json.loads(stored)["error_code"] in (None, INVALID_PARAMS)
