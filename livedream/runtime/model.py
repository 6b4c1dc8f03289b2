"""`load_model`: one exported graph and its GPU live runners, as one declared `LoadedModel`.

What a caller may use is what `LoadedModel` lists: the gradient engine always; a step
runner and frame runners (by steps per frame) when the session runs on CUDA and such
graphs were exported. Nothing is attached later and nothing is found by probing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol

import numpy as np

from livedream.manifest import find_graph, read_manifest
from livedream.runtime.engine import Engine, GradientEngine
from livedream.runtime.runners import FrameRunner, StepRunner

log = logging.getLogger(__name__)


class StepAscent(Protocol):
    """K whole ascent steps per run on the device (`runners.StepRunner`)."""

    steps_per_run: int

    def ascend(self, image: np.ndarray, steps: int, step_size: float) -> float: ...


class FrameDreaming(Protocol):
    """A whole live frame per run on the device (`runners.FrameRunner`)."""

    def reset(self) -> None: ...

    def dream_frame(
        self, frame_rgb: np.ndarray, flow: np.ndarray, feedback: np.ndarray, decay: float, step_size: float
    ) -> tuple[np.ndarray, float]: ...


@dataclass(frozen=True)
class LoadedModel:
    """A graph ready to dream: built whole by `load_model` (or by a test, around a fake)."""

    engine: GradientEngine
    step_runner: StepAscent | None = None
    frame_runners: Mapping[int, FrameDreaming] = field(default_factory=dict)  # by steps per frame
    provider: str = "CPU"  # "CUDA" or "CPU": where the gradient runs
    layers: tuple[str, ...] = ()

    @property
    def min_size(self) -> int:
        return self.engine.min_size


def load_model(
    model: str, models_dir: Path, device: str = "auto", threads: int = 0, cuda_graph: bool = True
) -> LoadedModel:
    """The graph `model` (a manifest name or .onnx path), checked against the manifest first.

    On CUDA, the step graph and the frame graphs exported for the same model come with it,
    so whole steps or whole frames stay on the GPU.
    """
    path, info = find_graph(model, models_dir)
    engine = Engine(path, device, threads, min_size=info.min_size, layers=info.layers)
    if engine.provider != "CUDA":
        return LoadedModel(engine, provider=engine.provider, layers=info.layers)
    step_runner = None
    step_graphs = _best_graphs(info.name, models_dir, "step")
    if step_graphs:
        step_path, step_info = find_graph(step_graphs[min(step_graphs)], models_dir)
        step_runner = StepRunner(step_path, step_info.steps_per_run, device, threads, cuda_graph)
        log.info("whole steps on the GPU with %s%s", step_info.name, " (CUDA graphs)" if cuda_graph else "")
    frame_runners = {}
    for steps, name in _best_graphs(info.name, models_dir, "frame").items():
        frame_path, _ = find_graph(name, models_dir)
        frame_runners[steps] = FrameRunner(frame_path, steps, device, threads, cuda_graph)
        log.info("whole live frames of %d step(s) on the GPU with %s", steps, name)
    return LoadedModel(engine, step_runner, frame_runners, engine.provider, info.layers)


def _best_graphs(model: str, models_dir: Path, kind: str) -> dict[int, str]:
    """For each steps-per-run, the fastest graph of `kind` exported for `model`: float16 first
    (H100: 2.3 vs 2.6 ms a step at 360x640 with CUDA graphs; tools/bench.py), then float32."""
    best: dict[int, str] = {}
    candidates = [g for g in read_manifest(models_dir).values()
                  if g.kind == kind and g.name.startswith(f"{model}-")]
    for graph in sorted(candidates, key=lambda g: g.dtype != "float16"):
        best.setdefault(graph.steps_per_run, graph.name)
    return best
