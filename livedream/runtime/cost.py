"""What one ascent step costs on this machine with this graph: adaptive quality's first guess.

At start the app times the gradient once per machine + graph + provider (a few seconds on a
CPU), keeps the figure in the user cache folder, and lets `FrameBudget` start at the dream
size and steps that figure says will hold the target rate, instead of crawling down from the
config's ceiling one slow frame at a time. A new graph, another provider or another machine
has another key, so it is measured again.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs

from livedream.runtime.engine import NO_VISITORS, CpuThreads, GradientEngine

log = logging.getLogger(__name__)

CACHE_FILE = "step-cost.json"
MEASURE_RUNS = 3  # timed gradient runs after one warm-up (ORT plans the shape on the first)
MEASURE_SCALE = 0.5  # of the ceiling's sides: near the sizes a slow machine will run


@dataclass(frozen=True)
class StepCost:
    """Milliseconds of one gradient step per megapixel of dream, and where the figure came from."""

    ms_per_mpx: float
    source: str  # "measured" or "cached"


def machine_key(graph: Path, provider: str, threads: CpuThreads) -> str:
    """This machine, this graph file (re-exported = new) and this provider."""
    try:
        stat = graph.stat()
        graph_id = f"{graph.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"
    except OSError:
        graph_id = str(graph)
    return f"{platform.node()}|{_cpu_name()}|{os.cpu_count()}|{graph_id}|{provider}|{threads.label}"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_step_cost(engine: GradientEngine, height: int, width: int, runs: int = MEASURE_RUNS) -> float:
    """ms per megapixel of one gradient step at height x width (the fastest of `runs`)."""
    rng = np.random.default_rng(0)
    image = rng.uniform(-1.0, 1.0, (1, 3, height, width)).astype(np.float32)
    engine.gradient(image, NO_VISITORS)  # warm-up: the first run of a shape plans it
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        engine.gradient(image, NO_VISITORS)
        best = min(best, time.perf_counter() - started)
    return best * 1000 / (height * width / 1e6)


class CostCache:
    """{machine key: ms per megapixel-step} as JSON; a damaged file is measured over, not fatal."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or Path(platformdirs.user_cache_dir("livedream")) / CACHE_FILE

    def get(self, key: str) -> float | None:
        value = self._read().get(key)
        return float(value) if isinstance(value, (int, float)) and value > 0 else None

    def put(self, key: str, ms_per_mpx: float) -> None:
        table = {**self._read(), key: ms_per_mpx}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(table, indent=1))
            temporary.replace(self.path)
        except OSError as error:  # a read-only home: measure again next time, nothing else lost
            log.warning("adaptive quality: could not keep the measurement in %s (%s)", self.path, error)

    def _read(self) -> dict:
        try:
            table = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return table if isinstance(table, dict) else {}


def step_cost(engine: GradientEngine, key: str, ceiling: tuple[int, int], cache: CostCache) -> StepCost:
    """The cached figure for `key`, else one measured now at half the ceiling's sides."""
    cached = cache.get(key)
    if cached is not None:
        return StepCost(cached, "cached")
    height = max(engine.min_size, int(ceiling[0] * MEASURE_SCALE))
    width = max(engine.min_size, int(ceiling[1] * MEASURE_SCALE))
    started = time.perf_counter()
    ms_per_mpx = measure_step_cost(engine, height, width)
    log.info("adaptive quality: one step costs %.0f ms per megapixel here (measured at %dx%d in %.1f s)",
             ms_per_mpx, width, height, time.perf_counter() - started)
    cache.put(key, ms_per_mpx)
    return StepCost(ms_per_mpx, "measured")
