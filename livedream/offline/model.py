"""The gradient graph an offline dream runs on, exported first if it is the missing default."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from livedream.errors import UserError
from livedream.manifest import GraphInfo, default_models_dir
from livedream.runtime.engine import Engine
from livedream.runtime.exporting import ensure_model

console = Console(highlight=False)


def open_engine(model: str, device: str, tile: int, threads: int = 0) -> Engine:
    """`threads`: ONNX Runtime's threads (0 = one per core; a worker sharing the machine gets its share)."""
    path, info = ensure_model(model, default_models_dir())
    if tile < info.min_size:
        raise UserError(f"--tile {tile}: use at least the model's minimum input size, {info.min_size}")
    engine = Engine(path, device, min_size=info.min_size, layers=info.layers, threads=threads)
    describe_engine(engine, path, info)
    return engine


def describe_engine(engine: Engine, path: Path, info: GraphInfo) -> None:
    console.print(f"provider: {engine.provider} — model {path.name} ({', '.join(info.layers)}, {info.dtype})")
