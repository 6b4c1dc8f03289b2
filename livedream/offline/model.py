"""The gradient graph an offline dream runs on, exported first if it is the missing default,
aimed at the job's objective (and guide image)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from livedream.errors import UserError
from livedream.manifest import DEEP_MODEL, DEFAULT_MODEL, default_models_dir
from livedream.media.pictures import read_image
from livedream.objective import Objective, covered_by, describe
from livedream.params import Where
from livedream.pipeline.dream import guide_image
from livedream.runtime.engine import CpuThreads, Engine
from livedream.runtime.exporting import ensure_model
from livedream.runtime.model import PlacedGraph, placed_graph
from livedream.runtime.objective import Aim

console = Console(highlight=False)


def open_engine(model: str, device: str, tile: int, threads: int = 0, objective: Objective | None = None,
                guide: Path | None = None, where: Where = Where(), visitor_objective: Objective = (),
                guide_mode: str = "match") -> Engine:
    """`threads`: ONNX Runtime's threads (0 = one per core; a worker sharing the machine gets its share).
    `objective` None: the graph's own default. The default graph gives way to the deep one
    when an objective reaches past mixed5. `where` and `visitor_objective`: what the room and
    the visitors dream (a clip's frames pass the mask)."""
    models_dir = default_models_dir()
    _, info = ensure_model(model, models_dir, device)
    terms = (objective or ()) + visitor_objective
    if model == DEFAULT_MODEL and not covered_by(terms, info.layers):
        model = DEEP_MODEL
    placed = placed_graph(model, models_dir, device)
    info = placed.info
    if tile < info.min_size:
        raise UserError(f"--tile {tile}: use at least the model's minimum input size, {info.min_size}")
    engine = Engine(placed.path, placed.device, min_size=info.min_size, layers=info.layers, threads=CpuThreads(threads))
    features = None
    if guide is not None:
        features = engine.objective.guide_features_of(*engine.features(guide_image(read_image(guide), engine.min_size)))
    room = engine.objective.objective if objective is None else objective
    engine.objective.set(Aim(room, visitor_objective, where.gains, guide_mode), features)
    describe_engine(engine, placed)
    guided = f", guided by {guide} ({guide_mode})" if guide else ""
    visitors = f"; visitors: {describe(visitor_objective)}" if visitor_objective else ""
    regions = f"; where: {where.name}" if where != Where() else ""
    console.print(f"objective: {describe(room)}{guided}{visitors}{regions}")
    return engine


def describe_engine(engine: Engine, placed: PlacedGraph) -> None:
    info = placed.info
    console.print(f"provider: {engine.provider} ({placed.why_on(engine.provider)}) — model {placed.path.name} "
                  f"({', '.join(info.layers)}, {info.dtype})")
