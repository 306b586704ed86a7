"""models.parallel: how a worker group splits a model, what it refuses at start, and which jobs it can divide."""

from __future__ import annotations

import pytest

from models.catalog import CatalogError, ModelEntry
from models.parallel import ParallelPlan, ParallelRefused, check_divisible, check_splittable, refusal
from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError
from pipelines.families import FAMILIES


def entry(family: str = "wan-i2v", **fields: object) -> ModelEntry:
    return ModelEntry.model_validate({"family": family, "path": "/models/x", **fields})


@pytest.mark.parametrize(
    ("text", "size", "ring", "ulysses"),
    [("ulysses", 4, 1, 4), ("ring", 4, 4, 1), ("ring:2", 4, 2, 2), ("ring:1", 2, 1, 2)],
)
def test_plans_split_the_group_into_ring_and_ulysses_degrees(text, size, ring, ulysses):
    plan = ParallelPlan.parse(text, size)
    assert (plan.ring, plan.ulysses, plan.ring * plan.ulysses) == (ring, ulysses, size)


def test_a_ring_degree_that_does_not_divide_the_group_is_refused():
    with pytest.raises(ValueError, match="R dividing the group size 4"):
        ParallelPlan.parse("ring:3", 4)


def test_the_catalog_accepts_only_known_plans():
    with pytest.raises(ValueError, match="parallel"):
        entry(parallel="tensor")


@pytest.mark.parametrize(
    ("family", "fields", "device", "needle"),
    [
        ("cogvideox-i2v", {}, "cpu", "has no context-parallel plan"),
        ("svd", {}, "cpu", "has no context-parallel plan"),
        ("wan-i2v", {"offload": "model"}, "cuda", "moves weights per call"),
        ("wan-i2v", {"speed": {"compile": True}}, "cuda", "compile is not supported"),
        ("wan-i2v", {"parallel": "ring"}, "cpu", "log-sum-exp, which the CPU does not"),
        ("wan-i2v", {"parallel": "ring"}, "cuda", "attention backend 'native'"),
    ],
)
def test_what_cannot_be_split_is_named_with_its_reason(family, fields, device, needle):
    reason = refusal("m", entry(family, **fields), FAMILIES[family], 2, device)
    assert reason is not None and reason.startswith("model 'm': ") and needle in reason


def test_splittable_models_pass():
    for family in ("wan-i2v", "wan22-i2v", "wan22-ti2v", "ltx-i2v"):
        assert refusal("m", entry(family), FAMILIES[family], 2, "cpu") is None
    ring_on_cuda = entry(parallel="ring", speed={"attention_backend": "_native_cudnn"})
    assert refusal("m", ring_on_cuda, FAMILIES["wan-i2v"], 2, "cuda") is None


def test_a_catalog_with_one_unsplittable_model_is_refused_in_one_line(tmp_path):
    from models.catalog import load_catalog

    path = tmp_path / "catalog.toml"
    path.write_text(
        '[defaults]\nmodel = "wan"\n[models.wan]\nfamily = "wan-i2v"\npath = "/m/wan"\n'
        '[models.svd]\nfamily = "svd"\npath = "/m/svd"\n',
        encoding="utf-8",
    )
    with pytest.raises(ParallelRefused) as refused:
        check_splittable(load_catalog(path), 2, "cpu")
    message = str(refused.value)
    assert "\n" not in message and "cannot split model 'svd'" in message and "single-device workers" in message
    assert not isinstance(refused.value, CatalogError)


def test_a_job_whose_tokens_the_group_cannot_divide_is_invalid_params():
    check_divisible(FAMILIES["wan-i2v"], 64, 64, 9, 2)  # 3 latent frames x 16 cells
    with pytest.raises(JobError) as refused:
        check_divisible(FAMILIES["wan-i2v"], 48, 48, 9, 2)  # 3 x 9 cells: odd
    assert refused.value.code is ErrorCode.INVALID_PARAMS
    assert "27 (3 latent frames x 9 per frame" in refused.value.message and "multiple of 2" in refused.value.message
    assert "a width that is a multiple of 32 px" in refused.value.message
    check_divisible(FAMILIES["wan-i2v"], 96, 48, 9, 3)  # what the message suggests for 3 devices divides
    with pytest.raises(JobError, match="a width that is a multiple of 48 px"):
        check_divisible(FAMILIES["wan-i2v"], 64, 64, 5, 3)  # 2 latent frames x 16 cells
