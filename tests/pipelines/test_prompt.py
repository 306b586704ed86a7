"""Prompt building and default seeds exactly as CONTRACT.md section 1 specifies."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.prompt import build_prompt, default_seed, intensity_word


def prompt(**overrides):
    values = {"base": "Mira", "intensity": 0.5, "expression": "interested", "emotion": "pleased", "animation": "idle"}
    values.update(overrides)
    return build_prompt(**values)


@pytest.mark.parametrize(
    ("intensity", "word"),
    [(0.0, "slightly"), (0.29, "slightly"), (0.3, "moderately"), (0.69, "moderately"), (0.7, "very"), (1.0, "very")],
)
def test_intensity_words_at_the_boundaries(intensity, word):
    assert intensity_word(intensity) == word
    assert prompt(intensity=intensity) == f"Mira, {word} interested, pleased expression"


def test_idle_adds_nothing_other_animations_are_named():
    assert prompt(animation="idle") == "Mira, moderately interested, pleased expression"
    assert prompt(animation="Idle ") == "Mira, moderately interested, pleased expression"
    assert prompt(animation="blush") == "Mira, moderately interested, pleased expression, blush animation"


def test_style_suffix_then_triggers_in_order():
    text = prompt(
        intensity=0.9,
        expression="giggling",
        emotion="flustered",
        animation="blush",
        style_suffix="anime style, cel shading",
        triggers=["soft glow", "sparkles"],
    )
    assert (
        text
        == "Mira, very giggling, flustered expression, blush animation, anime style, cel shading, soft glow, sparkles"
    )


def test_prompt_base_replaces_the_name():
    assert (
        prompt(base="a knight in silver armor") == "a knight in silver armor, moderately interested, pleased expression"
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"expression": ""}, "Mira, pleased expression"),
        ({"emotion": "  "}, "Mira, moderately interested"),
        ({"animation": ""}, "Mira, moderately interested, pleased expression"),
        ({"triggers": ["", " ", "glow"]}, "Mira, moderately interested, pleased expression, glow"),
        ({"style_suffix": ""}, "Mira, moderately interested, pleased expression"),
        ({"expression": "", "emotion": "", "style_suffix": "oil painting"}, "Mira, oil painting"),
    ],
)
def test_empty_fields_are_skipped(overrides, expected):
    assert prompt(**overrides) == expected


def test_free_text_is_stripped():
    assert prompt(base=" Mira ", expression=" shy ", emotion=" calm ") == "Mira, moderately shy, calm expression"


def test_default_seed_is_the_first_four_sha256_bytes():
    assert default_seed("npc-7") == 3283240500
    assert default_seed("npc-7") == int.from_bytes(hashlib.sha256(b"npc-7").digest()[:4], "big")


def test_default_seed_differs_by_npc():
    seeds = {default_seed(f"npc-{i}") for i in range(200)}
    assert len(seeds) == 200


@settings(deadline=None)
@given(st.text(max_size=100))
def test_default_seed_is_stable_and_32_bit(npc_id):
    seed = default_seed(npc_id)
    assert 0 <= seed < 2**32
    assert default_seed(npc_id) == seed
