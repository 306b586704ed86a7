"""The download cache stays within its entry, byte and age bounds, evicting the least recently used first."""

from __future__ import annotations

import time

from worker.fetch.cache import BytesCache


def test_least_recently_used_entry_is_evicted_first():
    cache = BytesCache(max_entries=2, max_bytes=1000, max_age_s=60)
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"  # a is now the most recent
    cache.put("c", b"3")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1", None, b"3")


def test_total_bytes_stay_under_the_bound_and_oversize_items_are_not_kept():
    cache = BytesCache(max_entries=10, max_bytes=10, max_age_s=60)
    cache.put("a", b"x" * 6)
    cache.put("b", b"y" * 6)
    assert cache.get("a") is None and cache.get("b") == b"y" * 6
    cache.put("huge", b"z" * 11)
    assert cache.get("huge") is None and len(cache) == 1


def test_replacing_a_key_does_not_double_count_its_bytes():
    cache = BytesCache(max_entries=10, max_bytes=10, max_age_s=60)
    cache.put("a", b"x" * 6)
    cache.put("a", b"y" * 6)
    cache.put("b", b"z" * 4)
    assert cache.get("a") == b"y" * 6 and cache.get("b") == b"z" * 4


def test_entries_expire():
    cache = BytesCache(max_entries=10, max_bytes=100, max_age_s=0.05)
    cache.put("a", b"1")
    time.sleep(0.1)
    assert cache.get("a") is None and len(cache) == 0
