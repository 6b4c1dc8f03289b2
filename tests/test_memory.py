"""A process that runs for weeks: the malloc arena cap, trimming at each health line, and
the soak's brightness-drift verdict."""

from __future__ import annotations

import random
import sys

import pytest

from livedream.ops import memory
from livedream.ops.logs import HealthReporter, read_rss_bytes
from livedream.testing.soak import brightness_drift

glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")


@glibc_only
def test_arena_cap_is_set_on_glibc(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert memory.limit_malloc_arenas() is True


def test_an_operators_malloc_arena_max_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_malloc_arenas() is False


@glibc_only
def test_trim_hands_freed_heap_pages_back():
    blocks = [bytearray(4096) for _ in range(40_000)]  # ~160 MB of small blocks on the heap
    keep = blocks[::64]  # every 64th stays alive: the heap cannot shrink from its top
    del blocks
    before = read_rss_bytes()
    assert memory.release_free_memory() is True
    after = read_rss_bytes()
    assert before - after > 64 * 2**20, (before, after)
    del keep


class _Stats:
    dream_ms = 10.0
    provider = "cpu"
    source_state = "live"


def test_health_line_trims_before_it_reads_memory():
    order: list[str] = []
    reporter = HealthReporter(1.0, read_rss=lambda: order.append("read") or 100 * 2**20,
                              release_memory=lambda: order.append("trim") or True)
    try:
        for frame in range(12):
            reporter.tick(frame * 0.1, _Stats())
    finally:
        reporter.close()
    assert order == ["trim", "read"], order


def _periods(count: int, trend_per_period: float, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    building = [90.0]  # the first period: the dream is still building
    return building + [120.0 + trend_per_period * i + rng.gauss(0.0, 1.5) for i in range(count)]


def test_brightness_noise_between_periods_is_not_drift():
    drift, _, _ = brightness_drift(_periods(80, 0.0))
    assert drift < 1.5


def test_a_slow_darkening_is_drift():
    drift, early, late = brightness_drift(_periods(80, -0.1))
    assert late < early and drift > 5.0


def test_first_period_while_the_dream_builds_is_skipped():
    drift, early, _ = brightness_drift(_periods(20, 0.0))
    assert early > 110.0 and drift < 2.0
