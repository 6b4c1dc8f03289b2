"""Adaptive quality: the dream rate per provider, the step cost measured once per machine +
graph + provider and kept, the first rung chosen from it, and hysteresis while it runs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from livedream.runtime.engine import NO_VISITORS
import pytest

from livedream.live.budget import FrameBudget, resolve_dream_rate
from livedream.params import Params
from livedream.runtime.cost import CostCache, StepCost, machine_key, step_cost
from livedream.runtime.engine import CpuThreads

CEILING = Params(steps=2, dream_height=360, dream_width=640)


@pytest.mark.parametrize(("setting", "provider", "rate"), [
    ("auto", "CPU", 1), ("auto", "CUDA", 60), (0, "CPU", 0), (0, "CUDA", 0), (30, "CPU", 1), (144, "CUDA", 60),
    ("auto", "WebGPU", 15), (0, "WebGPU", 0), (144, "WebGPU", 15),
])
def test_the_dream_rate_is_one_a_second_on_a_cpu_and_more_on_a_gpu_whatever_the_shown_rate(setting, provider,
                                                                                              rate) -> None:
    assert resolve_dream_rate(setting, provider) == rate


def started(ms_per_mpx: float, dreams_per_s: int = 1) -> FrameBudget:
    budget = FrameBudget(dreams_per_s)
    budget.start(CEILING, StepCost(ms_per_mpx, "measured"))
    return budget


@pytest.mark.parametrize("ms_per_mpx", [500.0, 1000.0, 2000.0, 4000.0, 8000.0])
def test_start_takes_the_first_rung_whose_predicted_frame_fits_the_budget(ms_per_mpx: float) -> None:
    budget = started(ms_per_mpx)
    chosen = budget.apply(CEILING)
    limit = budget.budget_ms * FrameBudget.START_HEADROOM
    rungs = budget._rungs(CEILING)
    assert budget.predicted_ms(chosen) <= limit or (budget.steps_cut, budget.size_level) == rungs[-1]  # none fits
    position = rungs.index((budget.steps_cut, budget.size_level))
    for richer in rungs[:position]:  # every rung before it would not have held the rate
        budget.steps_cut, budget.size_level = richer
        assert budget.predicted_ms(budget.apply(CEILING)) > limit


def test_a_fast_machine_keeps_the_ceiling_and_a_slow_one_cuts_steps_before_size() -> None:
    assert started(1000.0).apply(CEILING) == CEILING
    slow = started(4000.0).apply(CEILING)
    assert slow.steps == 1 and slow.dream_height < 360
    assert slow.dream_width / slow.dream_height == pytest.approx(640 / 360, rel=0.03)  # the aspect is kept


def test_the_size_is_never_cut_below_the_looks_floor() -> None:
    """However slow the machine, the dream stays at the size that makes the look; the dream rate gives way."""
    hopeless = started(1e6).apply(CEILING)
    assert hopeless.steps == 1
    assert hopeless.dream_width >= 640 * FrameBudget.LOOK_FLOOR - 2
    assert hopeless.dream_height >= 360 * FrameBudget.LOOK_FLOOR - 2


def test_what_it_chose_and_why_is_one_line() -> None:
    line = started(4000.0).describe(CEILING)
    assert line.startswith("adaptive 1 dream(s)/s: steps 1, dream ") and "ceiling 2, 640x360" in line
    assert "4000 ms per megapixel (measured)" in line
    assert FrameBudget(0).describe(CEILING) is None


def test_frame_times_near_the_budget_do_not_make_it_flap() -> None:
    """Frames alternating 10 % either side of the budget for 500 frames: no rung change."""
    budget = started(1500.0)
    before = (budget.steps_cut, budget.size_level)
    for frame in range(500):
        budget.record(budget.budget_ms * (1.1 if frame % 2 else 0.9), CEILING)
    assert (budget.steps_cut, budget.size_level) == before


def test_a_sustained_slowdown_moves_one_rung_at_a_time() -> None:
    budget = started(1500.0)
    seen = []
    for _ in range(60):
        budget.record(budget.budget_ms * 2, CEILING)
        seen.append((budget.steps_cut, budget.size_level))
    rungs = budget._rungs(CEILING)
    steps = [rungs.index(rung) for rung in dict.fromkeys(seen)]
    assert steps == list(range(steps[0], steps[0] + len(steps))) and len(steps) > 1


class CountingEngine:
    """A gradient that takes a known time per pixel and counts its calls."""

    min_size = 75

    def __init__(self) -> None:
        self.calls = 0

    def gradient(self, image: np.ndarray, mask: np.ndarray = NO_VISITORS) -> tuple[float, np.ndarray]:
        self.calls += 1
        return 0.0, np.zeros_like(image)


def test_the_step_cost_is_measured_once_per_key_and_then_read_from_the_cache(tmp_path: Path) -> None:
    cache = CostCache(tmp_path / "cost.json")
    engine = CountingEngine()
    first = step_cost(engine, "machine-a|graph|CPU", (360, 640), cache)
    calls = engine.calls
    again = step_cost(engine, "machine-a|graph|CPU", (360, 640), cache)
    assert first.source == "measured" and calls >= 2
    assert again == StepCost(first.ms_per_mpx, "cached") and engine.calls == calls
    other = step_cost(engine, "machine-a|graph|CUDA", (360, 640), cache)  # another provider: measured again
    assert other.source == "measured" and engine.calls > calls


@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]", '{"k": "fast"}', '{"k": -3}'])
def test_a_damaged_cache_is_measured_over(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cost.json"
    path.write_text(content)
    cost = step_cost(CountingEngine(), "k", (360, 640), CostCache(path))
    assert cost.source == "measured"
    assert json.loads(path.read_text())["k"] == cost.ms_per_mpx


def test_a_cache_that_cannot_be_written_only_costs_a_measurement_next_time(tmp_path: Path, caplog) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")  # works as root too, unlike mode bits
    cost = step_cost(CountingEngine(), "k", (360, 640), CostCache(blocked / "cost.json"))
    assert cost.source == "measured"
    assert any("could not keep the measurement" in record.getMessage() for record in caplog.records)


def test_the_key_changes_with_the_graph_file_and_the_provider(tmp_path: Path) -> None:
    graph = tmp_path / "g.onnx"
    graph.write_bytes(b"x" * 10)
    key = machine_key(graph, "CPU", CpuThreads())
    assert machine_key(graph, "CUDA", CpuThreads()) != key and machine_key(graph, "CPU", CpuThreads(2)) != key
    assert machine_key(graph, "CPU", CpuThreads(spin=False)) != key  # spinning changes what a step costs
    graph.write_bytes(b"x" * 11)  # re-exported
    assert machine_key(graph, "CPU", CpuThreads()) != key


def test_open_app_starts_adaptive_from_a_measurement_then_from_the_cache(small_graph: Path, tmp_path: Path) -> None:
    from livedream.live.build import open_app
    from tests.test_app_wiring import show_config

    config = show_config(small_graph, tmp_path, display={"target_fps": "auto"})
    cache = CostCache(tmp_path / "cost.json")
    apps = [open_app(config, models_dir=small_graph.parent, open_devices=False, cost_cache=cache) for _ in range(2)]
    try:
        first, second = (app.budget for app in apps)
        assert first.dreams_per_s == 1 and first.cost.source == "measured"
        assert second.cost == dataclasses.replace(first.cost, source="cached")
        stats = apps[1].run(max_frames=3)
        assert stats.quality is not None and stats.quality.startswith("adaptive 1 dream(s)/s")
        assert "adaptive 1 dream(s)/s" in stats.summary()
    finally:
        for app in apps:
            app.close()


class FaultyEngine(CountingEngine):
    def gradient(self, image: np.ndarray, mask: np.ndarray = NO_VISITORS) -> tuple[float, np.ndarray]:
        from livedream.runtime.guard import EngineFault

        raise EngineFault("Fail: injected")


def test_a_step_that_fails_to_time_still_starts_the_show_at_the_ceiling(small_graph: Path, tmp_path: Path, caplog) -> None:
    from livedream.live.build import adaptive_budget
    from tests.conftest import as_model
    from tests.test_app_wiring import show_config

    config = show_config(small_graph, tmp_path, display={"target_fps": "auto"})
    budget = adaptive_budget(config, as_model(FaultyEngine()), small_graph.parent, CostCache(tmp_path / "c.json"))
    assert budget.dreams_per_s == 1 and budget.cost is None and not budget.active
    assert any("could not time a step" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("cores, configured, expected", [(2, 0, 1), (1, 0, 1), (8, 0, 7), (2, 2, 2), (8, 3, 3)])
def test_the_live_dream_leaves_the_show_loop_a_core(monkeypatch, cores, configured, expected) -> None:
    """`[model] threads = 0` live: one ONNX Runtime thread fewer than the cores, never spinning
    (the show loop runs beside the dream); a number the user set is kept."""
    from livedream.config import ModelConfig
    from livedream.live.build import live_threads

    monkeypatch.setattr("os.cpu_count", lambda: cores)
    threads = live_threads(ModelConfig(threads=configured))
    assert (threads.count, threads.spin) == (expected, False)
