"""docs/schema/*.schema.json in strict validators: Ajv (draft 2020-12, strict mode) and Python jsonschema compile
them and accept what a real worker emits and what producers send, and refuse what the worker refuses where a
schema can say so."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
from jsonschema import Draft202012Validator

from npc_video_client import NpcVideoClient
from npc_video_client.clock import now_ms
from npc_video_client.contract import CONTRACT_VERSION, JobEnvelope
from tests.contract.conftest import NAMES, SCHEMA_DIR, TYPESCRIPT_DIR
from tests.support.jobs import envelope
from tests.support.waiting import wait_until

KINDS = ("envelope", "result", "event", "state")
Samples = dict[str, list[dict[str, Any]]]


def schema(kind: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def samples(live) -> Samples:
    """Envelopes as producers send them, and every event and result a real worker wrote for them: completed (with
    metadata and a LoRA), refused, expired, cancelled, a 1.0 envelope, and an entry that is not JSON; and every
    per-job state stored in Redis then, with the states status() derives for those jobs."""
    client = NpcVideoClient(live.url)
    raw = redis.Redis.from_url(live.url)
    metadata = {"generation_id": 8001, "labels": {"scene": "tavern"}, "ids": [1, 2, 3]}
    sent = [
        {**envelope("sample-done", loras=["glow:0.5", "sparkle"], art_style="anime"), "metadata": metadata},
        {**envelope("sample-refused", intensity=3), "metadata": {"generation_id": 8002}},
        {**envelope("sample-expired"), "deadline": 1_000},
        {**envelope("sample-cancelled"), "metadata": {"generation_id": 8003}},
    ]
    client.cancel("sample-cancelled")
    bodies = [{**body, "contract_version": CONTRACT_VERSION, "submitted_at": now_ms()} for body in sent]
    bodies.append(envelope("sample-v1-0"))  # a 1.0 producer: no contract_version, no metadata, no submitted_at
    for body in bodies:
        raw.xadd(NAMES.lane("normal"), {"job": json.dumps(body)})
    unreadable_id = raw.xadd(NAMES.lane("low"), {"job": "{not json"}).decode()
    job_ids = [body["job_id"] for body in bodies]
    results = [client.wait(job_id, timeout_s=120).model_dump(mode="json") for job_id in job_ids]
    unreadable = f"unknown:low:{unreadable_id}"
    wait_until(
        lambda: any(event.job_id == unreadable for event in client.events(since="0-0", block_ms=50)),
        timeout_s=60,
        what="the unreadable entry's event",
    )
    events = [json.loads(fields[b"event"]) for _id, fields in raw.xrange(NAMES.events)]
    assert {result["status"] for result in results} == {"completed", "failed", "expired", "cancelled"}
    valid = [body for body in bodies if body["job_id"] != "sample-refused"]
    stored = [json.loads(raw.get(key)) for key in raw.scan_iter(NAMES.state("*"))]  # the worker's, and producers'
    derived = [client.status(job_id).model_dump(mode="json") for job_id in job_ids]
    return {"envelope": valid, "result": results, "event": events, "state": stored + derived}


def test_the_samples_cover_every_event_type_and_carry_metadata(samples):
    assert {event["type"] for event in samples["event"]} >= {
        "job:processing",
        "job:progress",
        "job:completed",
        "job:failed",
        "job:expired",
        "job:cancelled",
    }
    by_job = {result["job_id"]: result for result in samples["result"]}
    assert by_job["sample-done"]["metadata"]["generation_id"] == 8001
    assert by_job["sample-refused"]["metadata"] == {"generation_id": 8002}
    assert by_job["sample-v1-0"]["metadata"] is None
    for event in samples["event"]:
        if event["job_id"].startswith("sample-done"):
            assert event["metadata"]["generation_id"] == 8001, event["type"]


def test_every_file_declares_its_dialect_and_id():
    for kind in KINDS:
        body = schema(kind)
        assert body["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert body["$id"] == f"urn:npc-video:schema:{kind}"
        assert "discriminator" not in json.dumps(body)


def test_event_variants_require_their_type_and_status():
    for name, variant in schema("event")["$defs"].items():
        if name.endswith("Event"):
            assert {"type", "status"} <= set(variant["required"]), name
            assert "const" in variant["properties"]["type"], name


def test_python_jsonschema_accepts_what_the_worker_writes(samples):
    for kind in KINDS:
        Draft202012Validator.check_schema(schema(kind))
        validator = Draft202012Validator(schema(kind))
        for document in samples[kind]:
            problems = [error.message for error in validator.iter_errors(document)]
            assert not problems, (kind, document.get("job_id"), problems)


def ajv(node: str, documents: Samples, tmp_path: Path) -> dict[str, Any]:
    """Run scripts/validate.mjs: it exits 1 when a document fails (the report on stdout says which), 2 or
    otherwise when the schemas do not compile in strict mode."""
    path = tmp_path / "samples.json"
    path.write_text(json.dumps(documents), encoding="utf-8")
    command = [node, "scripts/validate.mjs", str(SCHEMA_DIR), str(path)]
    done = subprocess.run(command, cwd=TYPESCRIPT_DIR, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_ajv_in_strict_mode_compiles_the_schemas_and_accepts_what_the_worker_writes(node, samples, tmp_path):
    report = ajv(node, samples, tmp_path)
    assert report["compiled"] == [f"urn:npc-video:schema:{kind}" for kind in KINDS]
    assert report["checked"] == {kind: len(samples[kind]) for kind in KINDS}
    assert report["errors"] == []


REFUSED_ENVELOPES = [
    envelope("bad-weight", loras=["glow:2.5"]),
    envelope("bad-ref", loras=["glow:"]),
    {**envelope("bad-major"), "contract_version": "2.0"},
    {**envelope("bad-keys"), "metadata": {f"k{i}": i for i in range(33)}},
    {**envelope("bad-meta"), "metadata": ["not", "an", "object"]},
    envelope("bad-seed", seed=-1),
]
REFUSED_EVENTS = [
    {"job_id": "j", "timestamp": 1, "worker": "w", "status": "cancelled"},  # no type
    {"job_id": "j", "timestamp": 1, "worker": "w", "type": "job:cancelled"},  # no status
    {"job_id": "j", "timestamp": 1, "worker": "w", "type": "job:cancelled", "status": "completed"},
    {"job_id": "j", "timestamp": 1, "worker": "w", "type": "job:dancing", "status": "processing"},
]


def test_the_worker_refuses_each_of_these_envelopes():
    for document in REFUSED_ENVELOPES:
        with pytest.raises(ValueError, match=r"\w"):
            JobEnvelope.model_validate(document)


def test_both_validators_refuse_what_the_worker_refuses(node, tmp_path):
    refused = {"envelope": REFUSED_ENVELOPES, "event": REFUSED_EVENTS}
    report = ajv(node, refused, tmp_path)
    failing = {(error["kind"], error["index"]) for error in report["errors"]}
    assert failing == {(kind, index) for kind, documents in refused.items() for index in range(len(documents))}
    for kind, documents in refused.items():
        validator = Draft202012Validator(schema(kind))
        for document in documents:
            assert not validator.is_valid(document), document


def test_the_seed_bound_is_in_the_schema():
    params = schema("envelope")["$defs"]["NpcResponseParams"]["properties"]["seed"]
    assert params["anyOf"][0]["maximum"] == 2**63 - 1
    assert "Number.MAX_SAFE_INTEGER" in params["description"]
