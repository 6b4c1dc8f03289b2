"""`load_model`: one exported graph and its GPU live runners, as one declared `LoadedModel`.

What a caller may use is what `LoadedModel` lists: the gradient engine always; a step
runner and frame runners (by the ascent they bake in, `manifest.AscentVariant`) when the
session runs on a GPU and such graphs were exported. Nothing is attached later and nothing is
found by probing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Protocol

import numpy as np

from livedream.errors import UserError
from livedream.manifest import (
    DEEP_MODEL,
    DEFAULT_MODEL,
    POOL_BY_COMPARISON,
    AscentVariant,
    GraphInfo,
    find_graph,
    read_manifest,
    webgpu_variant,
)
from livedream.objective import Objective, covered_by, describe
from livedream.params import Params
from livedream.runtime.devices import place
from livedream.runtime.engine import CpuThreads, Engine, GradientEngine
from livedream.runtime.objective import Aim, GuideFeatures, ObjectiveInputs
from livedream.runtime.runners import FrameRunner, StepRunner

log = logging.getLogger(__name__)


class StepAscent(Protocol):
    """K whole ascent steps per run on the device (`runners.StepRunner`)."""

    steps_per_run: int
    gradient_norm: str  # what its steps normalise by (`manifest.GRADIENT_NORMS`); a dream of another takes the host's

    def ascend(self, image: np.ndarray, steps: int, step_size: float, mask: np.ndarray) -> float:
        """`steps` steps on `image` in place under the visitor `mask` (h, w) at the image's size."""


class FrameDreaming(Protocol):
    """A whole live frame per run on the device (`runners.FrameRunner`); what it dreams is its
    key in `LoadedModel.frame_runners`."""

    min_size: int  # the smallest dream side its coarsest octave allows

    def reset(self) -> None: ...

    def dream_frame(
        self, frame_rgb: np.ndarray, flow: np.ndarray, confidence: np.ndarray, feedback: np.ndarray, decay: float,
        step_size: float, mask: np.ndarray, shown_rgb: np.ndarray | None = None,
    ) -> tuple[np.ndarray, float]:
        """(picture, loss), `mask` (the visitors) at the flow's size: the dream at `frame_rgb`'s size, or — when `shown_rgb`, the full-size
        frame, has more pixels — `shown_rgb` plus the upscaled dream detail, made on the device."""


def _nothing_to_interrupt() -> None:
    """A fake's runs end on their own."""


@dataclass(frozen=True)
class LoadedModel:
    """A graph ready to dream: built whole by `load_model` (or by a test, around a fake)."""

    engine: GradientEngine
    step_runner: StepAscent | None = None
    frame_runners: Mapping[AscentVariant, FrameDreaming] = field(default_factory=dict)  # by what a frame dreams
    provider: str = "CPU"  # "CUDA", "WebGPU" or "CPU": where the gradient runs
    layers: tuple[str, ...] = ()
    # The objective inputs the engine and runners read; None for a fake with its objective built in.
    objective: ObjectiveInputs | None = None
    deeper: "LoadedModel | None" = None  # the deep graph, for objectives beyond this one's layers
    # image (1, 3, H, W) → each channel's mean activation and the feature grid: a guide's features
    features: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    placement: str = ""  # in one line, why `provider` (`runtime.devices.place`): for the log and the HUD
    # Ends the gradient run in flight on this graph or its deep one, from another thread (`Engine.interrupt`)
    interrupt: Callable[[], None] = _nothing_to_interrupt

    @property
    def min_size(self) -> int:
        return self.engine.min_size

    def aimed(self, aim: Aim, guide: Guide | None = None) -> "LoadedModel":
        """The shallowest graph covering `aim`, its inputs filled for it (and `guide`).
        Cheap when nothing changed: called once per frame."""
        if self.objective is None:
            return self
        chosen = self
        if not self.objective.covers(aim.terms) and self.deeper is not None:
            chosen = self.deeper
        inputs = chosen.objective
        assert inputs is not None
        features = None if guide is None else guide.features_for(inputs)
        if aim == inputs.requested and features is inputs.guide:
            return chosen
        inputs.set(_within(aim, inputs), features)
        inputs.requested = aim
        return chosen


class Guide:
    """A guide image's features, read once per graph (the forward pass of one gradient run).
    `image` None: a guide that could not be read, which guides nothing."""

    def __init__(self, name: str, image: np.ndarray | None, model: LoadedModel) -> None:
        self.name = name
        self._features: dict[int, GuideFeatures] = {}
        for graph in (model, model.deeper) if image is not None else ():
            if graph is not None and graph.objective is not None and graph.features is not None:
                self._features[id(graph.objective)] = graph.objective.guide_features_of(*graph.features(image))

    def features_for(self, objective: ObjectiveInputs) -> GuideFeatures | None:
        return self._features.get(id(objective))


def _within(aim: Aim, inputs: ObjectiveInputs) -> Aim:
    """`aim` narrowed to the terms `inputs`' graph covers: a live objective beyond it (a custom
    graph of fewer layers) is narrowed with one warning rather than stopping the show."""
    if inputs.covers(aim.terms):
        return aim
    return replace(aim, room=_narrowed(aim.room, inputs, inputs.default), visitors=_narrowed(aim.visitors, inputs, ()))


def _narrowed(objective: Objective, inputs: ObjectiveInputs, fallback: Objective) -> Objective:
    if covered_by(objective, inputs.layers):
        return objective
    kept = tuple(term for term in objective if covered_by((term,), inputs.layers))
    log.warning("objective %s: this graph covers only %s; dreaming %s", describe(objective),
                ", ".join(inputs.layers), describe(kept) if kept else "its own default objective")
    return kept or fallback


def load_model(
    model: str, models_dir: Path, device: str = "auto", threads: CpuThreads = CpuThreads(), cuda_graph: bool = True
) -> LoadedModel:
    """The graph `model` (a manifest name or .onnx path), checked against the manifest first.

    On a GPU (CUDA or WebGPU), the step graph and the frame graphs exported for the same model
    come with it, so whole steps or whole frames stay on the device; `cuda_graph` replays them
    as captured CUDA graphs.
    """
    placed = placed_graph(model, models_dir, device)
    info, device = placed.info, placed.device
    engine = Engine(placed.path, device, threads, min_size=info.min_size, layers=info.layers)
    placement = placed.why_on(engine.provider)
    deeper = _deeper(model, models_dir, device, threads, cuda_graph)
    interrupt = _interrupter(engine, deeper)
    if engine.provider == "CPU":
        return LoadedModel(engine, provider=engine.provider, layers=info.layers, objective=engine.objective,
                           deeper=deeper, features=engine.features, placement=placement, interrupt=interrupt)
    captured = cuda_graph and engine.provider == "CUDA"
    step_runner = None
    step_graphs = _best_graphs(info, models_dir, "step")
    if step_graphs:
        step_path, step_info = find_graph(step_graphs[min(step_graphs, key=_step_preference)], models_dir)
        step_runner = StepRunner(step_path, step_info.steps_per_run, device, threads, captured,
                                 objective=engine.objective, gradient_norm=step_info.gradient_norm)
        log.info("whole steps on the GPU with %s%s", step_info.name, " (CUDA graphs)" if captured else "")
    frame_runners = {}
    for ascent, name in _best_graphs(info, models_dir, "frame").items():
        frame_path, frame_info = find_graph(name, models_dir)
        frame_runners[ascent] = FrameRunner(frame_path, ascent.steps, device, threads, captured,
                                            objective=engine.objective, min_size=frame_info.min_size)
        log.info("whole live frames on the GPU with %s", name)
    return LoadedModel(engine, step_runner, frame_runners, engine.provider, info.layers, engine.objective, deeper,
                       engine.features, placement, interrupt)


def _interrupter(engine: Engine, deeper: LoadedModel | None) -> Callable[[], None]:
    """Interrupts whichever of the two graphs runs (an objective past this one's layers dreams on the deep one)."""
    def interrupt() -> None:
        engine.interrupt()
        if deeper is not None:
            deeper.interrupt()
    return interrupt


@dataclass(frozen=True)
class PlacedGraph:
    """A graph's file for where `[model] device` runs it, and in one line why there."""

    path: Path
    info: GraphInfo
    device: str  # what its sessions are opened with
    provider: str  # where they should run: "CUDA", "WebGPU" or "CPU"
    why: str

    def why_on(self, provider: str) -> str:
        """Why the sessions run on `provider`, which differs from the plan only when a GPU
        session failed to start (the engine warned why) and fell back to the CPU."""
        return self.why if provider == self.provider else f"the {self.provider} session did not start (see the warning)"


def placed_graph(model: str, models_dir: Path, device: str) -> PlacedGraph:
    """The graph `model` placed for `device`. WebGPU runs the index-free variant
    (`<name>-webgpu`, `livedream export --webgpu`); under "auto" a graph without one dreams on
    the CPU, with one warning."""
    path, info = find_graph(model, models_dir)
    placement = place(device)
    if placement.provider != "WebGPU" or info.pool_backward == POOL_BY_COMPARISON:
        return PlacedGraph(path, info, device, placement.provider, placement.why)
    variant = webgpu_variant(info.name)
    if variant in read_manifest(path.parent):  # beside the graph: a path may name another folder's
        return PlacedGraph(*find_graph(variant, path.parent), "webgpu", "WebGPU", placement.why)
    fix = "export it with --webgpu and the options it was exported with (`livedream export --webgpu` for the default graphs)"
    if device == "webgpu":
        raise UserError(f"graph {info.name} has no WebGPU variant ({variant}); {fix}")
    log.warning("graph %s has no WebGPU variant; dreaming on the CPU (%s)", info.name, fix)
    return PlacedGraph(path, info, "cpu", "CPU", f"graph {info.name} has no WebGPU variant ({fix})")


def _deeper(name: str, models_dir: Path, device: str, threads: CpuThreads, cuda_graph: bool) -> LoadedModel | None:
    """The default graph comes with the deep one when it was exported (`livedream export`)."""
    if name != DEFAULT_MODEL or DEEP_MODEL not in read_manifest(models_dir):
        return None
    return load_model(DEEP_MODEL, models_dir, device, threads, cuda_graph)


def _best_graphs(model: GraphInfo, models_dir: Path, kind: str) -> dict[AscentVariant, str]:
    """For each ascent (steps per run, octaves, gradient norm), the fastest graph of `kind`
    exported for `model` (and its max pools' backward: the WebGPU variant's own): float16 first
    (H100: 2.3 vs 2.6 ms a step at 360x640 with CUDA graphs; tools/bench.py), then float32."""
    best: dict[AscentVariant, str] = {}
    candidates = [g for g in read_manifest(models_dir).values()
                  if g.kind == kind and g.pool_backward == model.pool_backward and g.name.startswith(f"{model.name}-")]
    for graph in sorted(candidates, key=lambda g: g.dtype != "float16"):
        best.setdefault(graph.ascent, graph.name)
    return best


def _step_preference(ascent: AscentVariant) -> tuple[bool, int]:
    """The step graph a model takes: of the shipped live gradient norm (`Params`' default, the one
    `exporting.device_graphs` exports) if there is one, then the fewest steps per run."""
    return ascent.gradient_norm != Params.gradient_norm, ascent.steps
