"""Content-addressed storage keys and the npc_id path segment."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.keys import safe_segment, thumbnail_key, video_key

SHA = hashlib.sha256(b"request").hexdigest()


@pytest.mark.parametrize(
    ("npc_id", "expected"),
    [
        ("alice", "alice"),
        ("npc-7.v2_b", "npc-7.v2_b"),
        ("../etc", ".._etc"),
        ("a/b", "a_b"),
        ("a\\b", "a_b"),
        ("", "_"),
        (".", "_."),
        ("..", "_.."),
        ("ünïcödé", "_n_c_d_"),
        ("名前", "__"),
        ("with space", "with_space"),
        ("x" * 200, "x" * 64),
    ],
)
def test_safe_segment(npc_id, expected):
    assert safe_segment(npc_id) == expected


@settings(deadline=None)
@given(st.text(max_size=300))
def test_safe_segment_is_always_one_harmless_segment(npc_id):
    segment = safe_segment(npc_id)
    assert segment
    assert "/" not in segment and "\\" not in segment and "\x00" not in segment
    assert segment.strip(".")  # never ".", ".." or any dot-only name
    assert segment.isascii()
    assert safe_segment(npc_id) == segment


def test_safe_segment_is_at_most_64_chars_even_for_dot_only_ids():
    assert len(safe_segment("." * 100)) <= 64


def test_key_layout_is_npc_then_two_hex_then_sha():
    assert video_key("alice", SHA) == f"alice/{SHA[:2]}/{SHA}.mp4"
    assert thumbnail_key("alice", SHA) == f"alice/{SHA[:2]}/{SHA}.jpg"


def test_keys_of_hostile_ids_stay_three_segments():
    for npc_id in ("../../etc/passwd", "/abs", "", "..", "a/../../b"):
        key = video_key(npc_id, SHA)
        parts = key.split("/")
        assert len(parts) == 3, key
        assert parts[0] not in ("", ".", "..")
        assert parts[1:] == [SHA[:2], f"{SHA}.mp4"]
