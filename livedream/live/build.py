"""`open_app`: a `LiveApp` wired from the config, with its models loaded before any window opens."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

from livedream.config import Config, ModelConfig
from livedream.files import DiskFloor
from livedream.live.app import LiveApp
from livedream.live.budget import FrameBudget, resolve_dream_rate
from livedream.live.controls import Controls
from livedream.live.keys import PresetRecall
from livedream.live.models import ModelSet
from livedream.manifest import default_models_dir, find_graph
from livedream.ops.logs import HealthReporter
from livedream.ops.schedule import DailySchedule
from livedream.outputs.build import open_outputs
from livedream.pipeline.display import open_screen
from livedream.pipeline.dreamer import LiveDreamer
from livedream.pipeline.frames import Source
from livedream.pipeline.sources import open_source
from livedream.runtime.cost import CostCache, machine_key, step_cost
from livedream.runtime.exporting import ensure_model
from livedream.runtime.engine import CpuThreads
from livedream.runtime.guard import EngineFault, GuardedModel
from livedream.runtime.model import LoadedModel, load_model

log = logging.getLogger(__name__)


def load_live_model(name: str, model_cfg: ModelConfig, models_dir: Path | None = None) -> LoadedModel:
    """The graph `name` (exported first if it is the missing default) on the configured device."""
    folder = models_dir or default_models_dir()
    ensure_model(name, folder, model_cfg.device, live=True)
    return load_model(name, folder, model_cfg.device, live_threads(model_cfg))


def live_threads(model_cfg: ModelConfig) -> CpuThreads:
    """The show loop shares the cores with the dream, so ONNX Runtime's threads must not
    spin-wait on them (2-core EPYC, demo: 0.87 → 1.03–1.10 dreams/s and the look 0.46–0.50 → 0.58–0.59; README),
    and by default leave the show loop a core of its own: on 2 cores the dream's second thread
    slowed the shown picture to 18–24 fps, with one thread it holds 27–30 and the dream rate
    barely moves (0.53 → 0.83 dreams/s, the adaptive steps cut once more; docs: the look)."""
    count = model_cfg.threads or max(1, (os.cpu_count() or 1) - 1)
    return CpuThreads(count, spin=False)


def open_app(
    config: Config,
    controls: Sequence[Controls] = (),
    recall_preset: PresetRecall | None = None,
    models_dir: Path | None = None,
    models: Iterable[str] = (),
    clock: Callable[[], float] = time.monotonic,
    open_devices: bool = True,
    cost_cache: CostCache | None = None,
    source: Source | None = None,
) -> LiveApp:
    """A LiveApp wired from `config`, with the graphs of `models` (the presets' models)
    loaded too, and its outputs. Models load first, so a bad one fails before a window opens.
    `clock` is the loop's time (tests pass a fake one); `open_devices` false skips the virtual camera;
    `cost_cache` keeps adaptive quality's step measurement (default: the user cache folder);
    `source` replaces the config's (the soak's faulty camera)."""
    def load(name: str) -> LoadedModel:
        return load_live_model(name, config.model, models_dir)

    first = config.dream.model
    model_set = ModelSet(first, GuardedModel(lambda: load(first)), load)
    model_set.preload(models)
    source = source or open_source(config.source)  # a bad path fails here, before a measurement is spent on it
    budget = adaptive_budget(config, model_set.guard.guarded, models_dir or default_models_dir(), cost_cache)
    outputs, recorder = open_outputs(config, open_devices, clock)
    model_set.announce()
    return LiveApp(
        source, LiveDreamer(), open_screen(config.display), config.dream, model_set,
        controls=controls, recall_preset=recall_preset, outputs=outputs, recording=recorder, budget=budget,
        health=HealthReporter(config.log.health_interval_s), schedule=DailySchedule.from_config(config.schedule),
        clock=clock, disk=DiskFloor(config.outputs.min_free_mb), show_fps=show_rate(config),
    )


def show_rate(config: Config) -> int:
    """Frames shown per second: [display] target_fps, or with "auto" (and 0) the source's rate."""
    target = config.display.target_fps
    return target if isinstance(target, int) and target > 0 else config.source.fps


def adaptive_budget(config: Config, model: LoadedModel, models_dir: Path, cache: CostCache | None) -> FrameBudget:
    """The dream rate adaptive quality holds on this model's provider (off with target_fps 0);
    when on, started from this machine's measured (or cached) step cost."""
    budget = FrameBudget(resolve_dream_rate(config.display.target_fps, model.provider), model.min_size)
    if budget.budget_ms is None:
        return budget
    graph, _ = find_graph(config.dream.model, models_dir, verify=False)
    key = machine_key(graph, model.provider, live_threads(config.model))
    ceiling = (config.dream.dream_height, config.dream.dream_width)
    try:
        budget.start(config.dream, step_cost(model.engine, key, ceiling, cache or CostCache()))
    except EngineFault as fault:  # the show still starts: the frame times will find the rung
        log.warning("adaptive quality: could not time a step (%s); starting at the ceiling", fault)
    return budget
