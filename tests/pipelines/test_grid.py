"""Frame-count and size grids: nearest valid value, never below one step."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.grid import MAX_SIDE, FrameRule, fit_area, snap_side

WAN = FrameRule(step=4, offset=1)
LTX = FrameRule(step=8, offset=1)


@pytest.mark.parametrize(
    ("frames", "expected"),
    [(24, 25), (36, 37), (72, 73), (90, 89), (25, 25), (9, 9), (1, 5), (0, 5), (5, 5), (6, 5), (8, 9), (48, 49)],
)
def test_wan_frames_snap_to_nearest_4k_plus_1(frames, expected):
    assert WAN.snap(frames) == expected


@pytest.mark.parametrize(("frames", "expected"), [(24, 25), (36, 33), (72, 73), (90, 89), (1, 9), (100, 97)])
def test_ltx_frames_snap_to_nearest_8k_plus_1(frames, expected):
    assert LTX.snap(frames) == expected


def test_describe():
    assert WAN.describe() == "4k+1"
    assert LTX.describe() == "8k+1"


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=2000), st.sampled_from([WAN, LTX]))
def test_snapped_frames_are_valid_and_nearest(frames, rule):
    snapped = rule.snap(frames)
    assert (snapped - rule.offset) % rule.step == 0
    assert snapped >= rule.step + rule.offset
    if frames >= rule.step + rule.offset:
        assert abs(snapped - frames) <= rule.step / 2
    assert rule.snap(snapped) == snapped  # idempotent


@pytest.mark.parametrize(
    ("value", "multiple", "expected"),
    [(512, 16, 512), (500, 16, 496), (505, 16, 512), (1, 16, 16), (0, 16, 16), (7.9, 8, 8), (100, 32, 96)],
)
def test_snap_side(value, multiple, expected):
    assert snap_side(value, multiple) == expected


def test_snap_side_holds_sides_within_the_contract_maximum():
    assert snap_side(204_800, 16) == 2048
    assert snap_side(2047, 64) == 2048


@settings(deadline=None)
@given(st.floats(min_value=0, max_value=10_000), st.sampled_from([8, 16, 32, 64]))
def test_snap_side_is_a_nearby_multiple(value, multiple):
    snapped = snap_side(value, multiple)
    assert snapped % multiple == 0 and multiple <= snapped <= MAX_SIDE
    if multiple <= value <= MAX_SIDE:
        assert abs(snapped - value) <= multiple / 2


@pytest.mark.parametrize(
    ("area", "aspect", "expected"),
    [(512 * 512, 1.0, (512, 512)), (256 * 256, 1.0, (256, 256)), (512 * 512, 16 / 9, (688, 384))],
)
def test_fit_area_examples(area, aspect, expected):
    assert fit_area(area, aspect, 16) == expected


@settings(deadline=None)
@given(
    st.sampled_from([256 * 256, 512 * 512, 768 * 768]),
    st.floats(min_value=0.25, max_value=4.0),
)
def test_fit_area_keeps_area_and_aspect(area, aspect):
    width, height = fit_area(area, aspect, 16)
    assert width % 16 == 0 and height % 16 == 0
    assert width * height == pytest.approx(area, rel=0.12)
    assert width / height == pytest.approx(aspect, rel=0.12)
