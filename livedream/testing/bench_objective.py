"""`python tools/bench.py --objective`: what the live objective costs.

Two tables. Per gradient step (ms, median): the default graph with its objective as inputs
against the same graph with the default objective baked in as constants (what earlier
releases exported: ORT folds the seeds away), a one-channel objective, and the deep graph.
Then the live loop (demo source, fixed dream size, 1 step per frame, adaptive quality off):
fps with the inputs at the default objective against the baked graph, and for the looks.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from livedream.files import file_digest
from livedream.manifest import DEEP_MODEL, DEFAULT_MODEL, default_models_dir, find_graph, write_manifest_entry

LIVE_SIZE = (180, 320)
LOOKS = {"default": None, "one channel (mixed4:97)": "mixed4:97=1", "pagodas (mixed7, deep graph)": "mixed7=1,mixed8=0.5"}


def baked_copy(folder: Path) -> Path:
    """The default graph with its default objective as constants instead of inputs; the inputs
    stay declared (unused) so the same runtime opens it."""
    import onnx
    from onnx import numpy_helper

    from livedream.runtime.engine import Engine

    path, info = find_graph(DEFAULT_MODEL, default_models_dir())
    inputs = Engine(path, "cpu").objective
    model = onnx.load(str(path))
    for name, values in (("layer_weights", inputs.layer_weights), ("channel_weights", inputs.channel_weights)):
        baked = f"{name}_baked"
        model.graph.initializer.append(numpy_helper.from_array(values.copy(), baked))
        for node in model.graph.node:
            node.input[:] = [baked if given == name else given for given in node.input]
    target = folder / "baked.onnx"
    onnx.save(model, str(target))
    write_manifest_entry(folder, dataclasses.replace(info, name="baked", file=target.name, graph_sha256=file_digest(target)))
    return target


def step_ms(path: Path, objective: str | None, height: int, width: int, repeats: int = 12) -> float:
    from livedream.objective import parse_objective
    from livedream.runtime.engine import NO_VISITORS, Engine
    from livedream.runtime.objective import Aim

    engine = Engine(path, "cpu")
    if objective:
        engine.objective.set(Aim(parse_objective(objective)))
    image = np.random.default_rng(0).uniform(-1, 1, (1, 3, height, width)).astype(np.float32)
    engine.gradient(image, NO_VISITORS)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        engine.gradient(image, NO_VISITORS)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(sizes: list[tuple[int, int]], seconds: float = 20.0) -> None:
    from livedream.testing.bench_live import run_live_isolated

    models = default_models_dir()
    default, deep = find_graph(DEFAULT_MODEL, models)[0], find_graph(DEEP_MODEL, models)[0]
    with tempfile.TemporaryDirectory() as folder:
        baked = baked_copy(Path(folder))
        print("\nObjective inputs: ms per gradient step (CPU, median of 12)")
        print(f"{'size':>9} {'baked':>8} {'inputs':>8} {'inputs/baked':>13} {'mixed4:97':>10} {'deep mixed7':>12} {'deep/default':>13}")
        for height, width in sizes:
            print(f"measuring steps at {height}x{width} …", file=sys.stderr, flush=True)
            fixed, inputs = step_ms(baked, None, height, width), step_ms(default, None, height, width)
            channel, deeper = step_ms(default, "mixed4:97=1", height, width), step_ms(deep, "mixed7=1", height, width)
            print(f"{height:>4}x{width:<4} {fixed:>8.1f} {inputs:>8.1f} {inputs / fixed:>13.3f} {channel:>10.1f} "
                  f"{deeper:>12.1f} {deeper / inputs:>13.2f}")
        rows = [("baked default objective", str(baked), None)] + [(name, DEFAULT_MODEL, text) for name, text in LOOKS.items()]
        results = []
        for name, model, objective in rows:
            print(f"measuring the live loop: {name} …", file=sys.stderr, flush=True)
            results.append((name, run_live_isolated(*LIVE_SIZE, "cpu", 1, seconds, model=model, objective=objective)))
    baseline = results[0][1].fps or float("nan")
    print(f"\nLive loop, objective inputs vs baked: demo source, {LIVE_SIZE[1]}x{LIVE_SIZE[0]}, 1 step/frame, {seconds:.0f} s")
    print(f"{'objective':<32} {'fps':>6} {'fps / baked':>12} {'dream ms':>9}")
    for name, row in results:
        if row.error:
            print(f"{name:<32} {row.error}")
            continue
        print(f"{name:<32} {row.fps:>6.1f} {row.fps / baseline:>12.3f} {row.stage_ms.get('dream', 0.0):>9.1f}")
