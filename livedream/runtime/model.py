"""`load_model`: one exported graph and its GPU live runners, as one declared `LoadedModel`.

What a caller may use is what `LoadedModel` lists: the gradient engine always; a step
runner and frame runners (by steps per frame) when the session runs on CUDA and such
graphs were exported. Nothing is attached later and nothing is found by probing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Protocol

import numpy as np

from livedream.manifest import DEEP_MODEL, DEFAULT_MODEL, find_graph, read_manifest
from livedream.objective import Objective, describe
from livedream.runtime.engine import CpuThreads, Engine, GradientEngine
from livedream.runtime.objective import ObjectiveInputs
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
        self, frame_rgb: np.ndarray, flow: np.ndarray, confidence: np.ndarray, feedback: np.ndarray, decay: float,
        step_size: float, shown_rgb: np.ndarray | None = None,
    ) -> tuple[np.ndarray, float]:
        """(picture, loss): the dream at `frame_rgb`'s size, or — when `shown_rgb`, the full-size
        frame, has more pixels — `shown_rgb` plus the upscaled dream detail, made on the device."""


@dataclass(frozen=True)
class LoadedModel:
    """A graph ready to dream: built whole by `load_model` (or by a test, around a fake)."""

    engine: GradientEngine
    step_runner: StepAscent | None = None
    frame_runners: Mapping[int, FrameDreaming] = field(default_factory=dict)  # by steps per frame
    provider: str = "CPU"  # "CUDA" or "CPU": where the gradient runs
    layers: tuple[str, ...] = ()
    # The objective inputs the engine and runners read; None for a fake with its objective built in.
    objective: ObjectiveInputs | None = None
    deeper: "LoadedModel | None" = None  # the deep graph, for objectives beyond this one's layers
    # image (1, 3, H, W) → each channel's mean activation (`objective.offsets` order): a guide's features
    features: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def min_size(self) -> int:
        return self.engine.min_size

    def aimed(self, objective: Objective, guide: Guide | None = None) -> "LoadedModel":
        """The shallowest graph covering `objective`, its inputs filled for it (and `guide`).
        Cheap when nothing changed: called once per frame."""
        if self.objective is None:
            return self
        chosen = self
        if not self.objective.covers(objective) and self.deeper is not None:
            chosen = self.deeper
        inputs = chosen.objective
        assert inputs is not None
        guide_weights = None if guide is None else guide.weights_for(inputs)
        if objective == inputs.requested and guide_weights is inputs.guide:
            return chosen
        inputs.set(_within(objective, inputs), guide_weights)
        inputs.requested = objective
        return chosen


class Guide:
    """A guide image's features, computed once per graph (the forward pass of one gradient run).
    `image` None: a guide that could not be read, which guides nothing."""

    def __init__(self, name: str, image: np.ndarray | None, model: LoadedModel) -> None:
        self.name = name
        self._weights: dict[int, np.ndarray] = {}
        for graph in (model, model.deeper) if image is not None else ():
            if graph is not None and graph.objective is not None and graph.features is not None:
                self._weights[id(graph.objective)] = graph.objective.guide_weights(graph.features(image))

    def weights_for(self, objective: ObjectiveInputs) -> np.ndarray | None:
        return self._weights.get(id(objective))


def _within(objective: Objective, inputs: ObjectiveInputs) -> Objective:
    """The terms `inputs`' graph covers; a live objective beyond it (a custom graph of fewer
    layers) is narrowed with one warning rather than stopping the show."""
    if inputs.covers(objective):
        return objective
    kept = tuple(term for term in objective if inputs.covers((term,)))
    log.warning("objective %s: this graph covers only %s; dreaming %s", describe(objective),
                ", ".join(inputs.layers), describe(kept) if kept else "its own default objective")
    return kept or inputs.default


def load_model(
    model: str, models_dir: Path, device: str = "auto", threads: CpuThreads = CpuThreads(), cuda_graph: bool = True
) -> LoadedModel:
    """The graph `model` (a manifest name or .onnx path), checked against the manifest first.

    On CUDA, the step graph and the frame graphs exported for the same model come with it,
    so whole steps or whole frames stay on the GPU.
    """
    path, info = find_graph(model, models_dir)
    engine = Engine(path, device, threads, min_size=info.min_size, layers=info.layers)
    deeper = _deeper(info.name, models_dir, device, threads, cuda_graph)
    if engine.provider != "CUDA":
        return LoadedModel(engine, provider=engine.provider, layers=info.layers, objective=engine.objective,
                           deeper=deeper, features=engine.features)
    step_runner = None
    step_graphs = _best_graphs(info.name, models_dir, "step")
    if step_graphs:
        step_path, step_info = find_graph(step_graphs[min(step_graphs)], models_dir)
        step_runner = StepRunner(step_path, step_info.steps_per_run, device, threads, cuda_graph,
                                 objective=engine.objective)
        log.info("whole steps on the GPU with %s%s", step_info.name, " (CUDA graphs)" if cuda_graph else "")
    frame_runners = {}
    for steps, name in _best_graphs(info.name, models_dir, "frame").items():
        frame_path, _ = find_graph(name, models_dir)
        frame_runners[steps] = FrameRunner(frame_path, steps, device, threads, cuda_graph, objective=engine.objective)
        log.info("whole live frames of %d step(s) on the GPU with %s", steps, name)
    return LoadedModel(engine, step_runner, frame_runners, engine.provider, info.layers, engine.objective, deeper,
                       engine.features)


def _deeper(name: str, models_dir: Path, device: str, threads: CpuThreads, cuda_graph: bool) -> LoadedModel | None:
    """The default graph comes with the deep one when it was exported (`livedream export`)."""
    if name != DEFAULT_MODEL or DEEP_MODEL not in read_manifest(models_dir):
        return None
    return load_model(DEEP_MODEL, models_dir, device, threads, cuda_graph)


def _best_graphs(model: str, models_dir: Path, kind: str) -> dict[int, str]:
    """For each steps-per-run, the fastest graph of `kind` exported for `model`: float16 first
    (H100: 2.3 vs 2.6 ms a step at 360x640 with CUDA graphs; tools/bench.py), then float32."""
    best: dict[int, str] = {}
    candidates = [g for g in read_manifest(models_dir).values()
                  if g.kind == kind and g.name.startswith(f"{model}-")]
    for graph in sorted(candidates, key=lambda g: g.dtype != "float16"):
        best.setdefault(graph.steps_per_run, graph.name)
    return best
