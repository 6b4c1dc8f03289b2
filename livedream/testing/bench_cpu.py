"""How close the CPU gradient step is to what this machine can do: GFLOP per step (torch's
flop counter on the same net, forward + input gradient), GFLOP/s of each CPU row, and that
as a share of an sgemm peak measured in the same run on the same threads. Printed under the
step table by `tools/bench.py` whenever it has CPU rows."""

from __future__ import annotations

import functools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    import onnxruntime as ort

    from livedream.runtime.objective import ObjectiveInputs

SGEMM_N = 4096
SGEMM_REPEATS = 5
# How `--graphs PATH@KIND` makes a graph's session: the tries of issue #14, rerunnable.
SESSION_KINDS = {
    "shipped": "the app's session options",
    "fixed": "height and width fixed per session, so ORT can prove shapes equal",
    "parallel": "ORT_PARALLEL execution with 2 inter-op threads",
}


@dataclass(frozen=True)
class GraphRun:
    """One row of `--graphs`: a graph file and the kind of session it runs in."""

    path: Path
    session: str = "shipped"

    @property
    def label(self) -> str:
        name = str(self.path) if self.session == "shipped" else f"{self.path}@{self.session}"
        return name[-28:]


def parse_graph_runs(text: str) -> list[GraphRun]:
    """`A.onnx,A.onnx@fixed,B.onnx` → runs; ValueError naming the bad entry and the choices."""
    runs = []
    for entry in text.split(","):
        path, _, session = entry.partition("@")
        if session and session not in SESSION_KINDS:
            raise ValueError(f"{entry!r}: unknown session kind {session!r}; use one of {', '.join(SESSION_KINDS)}")
        runs.append(GraphRun(Path(path), session or "shipped"))
    return runs


class TimedCell(Protocol):
    backend: str
    device: str
    height: int
    width: int
    samples_ms: list[float]

    @property
    def median_ms(self) -> float: ...


def sgemm_gflops() -> float:
    """The best of a few 4096² float32 matrix products on numpy's BLAS (every core, as ONNX
    Runtime's default uses): the practical peak."""
    rng = np.random.default_rng(0)
    a = rng.random((SGEMM_N, SGEMM_N), dtype=np.float32)
    b = rng.random((SGEMM_N, SGEMM_N), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)  # warm-up: BLAS threads start, pages are touched
    best = float("inf")
    for _ in range(SGEMM_REPEATS):
        started = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - started)
    return 2 * SGEMM_N**3 / best / 1e9


@functools.lru_cache(maxsize=None)  # a torch trace per call, and every table asks per row
def step_gflop(height: int, width: int, layers: tuple[str, ...] | None = None) -> float | None:
    """FLOP of one step at height x width through `layers` (default: the default graph's
    objective), counted by torch (None without torch)."""
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    from livedream.export.inception import DEFAULT_LAYERS, KERAS, InceptionV3, canonical_layer, dream_loss

    layers = layers or DEFAULT_LAYERS
    model = InceptionV3.for_layers(layers, KERAS).eval().requires_grad_(False)
    layer_weights = {canonical_layer(layer): 1.0 for layer in layers}
    image = torch.zeros(1, 3, height, width, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        loss = dream_loss(model(image, layers), layer_weights)
        loss.backward()  # the flop counter's hooks do not follow autograd.grad on a leaf; the weights' grads are off
    return counter.get_total_flops() / 1e9


def render_efficiency(cells: list[TimedCell]) -> None:
    cpu = [cell for cell in cells if cell.device == "cpu" and cell.samples_ms]
    if not cpu:
        return
    threads = os.cpu_count() or 1
    peak = sgemm_gflops()
    print(f"\nCPU efficiency: sgemm {SGEMM_N}² peak {peak:.0f} GFLOP/s on {threads} threads (this run)")
    print(f"{'size':>9} {'backend':<18} {'GFLOP/step':>10} {'GFLOP/s':>8} {'of sgemm':>9}")
    for cell in cpu:
        gflop = step_gflop(cell.height, cell.width)
        if gflop is None:
            print(f"{cell.height:>4}x{cell.width:<4} {cell.backend:<18} (torch missing: no flop count)")
            continue
        rate = gflop / (cell.median_ms / 1000)
        print(f"{cell.height:>4}x{cell.width:<4} {cell.backend:<18} {gflop:>10.1f} {rate:>8.0f} {rate / peak:>9.0%}")


def compare_graphs(runs: list[GraphRun], sizes: list[tuple[int, int]], repeats: int) -> int:
    """Gradient graphs side by side on the CPU, run in turn (A, B, A, B, …) so a neighbour
    that slows the machine slows every graph alike: median and best ms, GFLOP/s and its share
    of an sgemm peak measured in the same run, time against the first graph, and the
    gradient's cosine to the first graph's on the sample photo."""
    from livedream.files import file_problem
    from livedream.runtime.engine import objective_inputs_of

    for run in runs:
        problem = file_problem(run.path)
        if problem:
            print(f"bench: error: --graphs: {run.path} {problem}; give existing .onnx files, comma-separated", file=sys.stderr)
            return 2
    peak = sgemm_gflops()
    print(f"\nGraphs side by side on the CPU: sgemm {SGEMM_N}² peak {peak:.0f} GFLOP/s (this run), {repeats} runs each, in turn")
    print(f"{'size':>9} {'graph':<28} {'median ms':>9} {'best ms':>8} {'GFLOP/s':>8} {'of sgemm':>9} {'time / first':>12} {'cosine':>8}")
    for height, width in sizes:
        # Sessions per size: a fixed-size session only runs its own size (0.2-0.3 s each).
        sessions = [_session(run, height, width) for run in runs]
        feeds = [_sample_feed(objective_inputs_of(session), height, width) for session in sessions]
        gradients = [session.run(["gradient"], feed)[0].ravel().astype(np.float64) for session, feed in zip(sessions, feeds)]
        samples = _timed_in_turn(sessions, feeds, repeats)
        first = float(np.median(samples[0]))
        for run, session, times, gradient in zip(runs, sessions, samples, gradients):
            gflop = step_gflop(height, width, objective_inputs_of(session).layers)  # its own net: graphs may reach deeper
            median = float(np.median(times))
            cosine = gradient @ gradients[0] / (np.linalg.norm(gradient) * np.linalg.norm(gradients[0]))
            rate = f"{gflop / median * 1000:>8.0f} {gflop / median * 1000 / peak:>9.0%}" if gflop else f"{'-':>8} {'-':>9}"
            print(f"{height:>4}x{width:<4} {run.label:<28} {median:>9.1f} {min(times):>8.1f} {rate} {median / first:>12.2f} {cosine:>8.5f}")
    return 0


def _session(run: GraphRun, height: int, width: int) -> ort.InferenceSession:
    import onnxruntime as ort

    from livedream.runtime.devices import CPU
    from livedream.runtime.engine import CpuThreads, session_options
    from livedream.runtime.runners import open_fixed_size_session

    if run.session == "fixed":
        return open_fixed_size_session(run.path, "cpu", CpuThreads(), {"height": height, "width": width}, None)
    options = session_options(CpuThreads())
    if run.session == "parallel":
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        options.inter_op_num_threads = 2
    return ort.InferenceSession(str(run.path), options, providers=[CPU])


def _sample_feed(objective: "ObjectiveInputs", height: int, width: int) -> dict[str, np.ndarray]:
    """The sample photo at height x width with the graph's default objective."""
    import cv2

    from livedream.manifest import MASK_INPUT
    from livedream.media.pictures import read_image
    from livedream.pipeline.images import SAMPLE_PHOTO, to_nchw
    from livedream.runtime.engine import NO_VISITORS

    photo = cv2.resize(read_image(SAMPLE_PHOTO), (width, height), interpolation=cv2.INTER_AREA)
    return {"image": to_nchw(photo), **dict(objective.arrays()), MASK_INPUT: NO_VISITORS}


def _timed_in_turn(sessions: list, feeds: list[dict[str, np.ndarray]], repeats: int) -> list[list[float]]:
    samples: list[list[float]] = [[] for _ in sessions]
    for _ in range(repeats):
        for session, feed, times in zip(sessions, feeds, samples):
            started = time.perf_counter()
            session.run(["gradient"], feed)
            times.append((time.perf_counter() - started) * 1000)
    return samples
