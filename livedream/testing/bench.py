"""Benchmark: time of one DeepDream gradient step, per backend and image size, side by side.

    python tools/bench.py                       # 224x224, 240x320, 360x640, 720x1280
    python tools/bench.py --sizes 224x224,360x640 --json bench.json
    python tools/bench.py --quick               # smoke run: one small size, few repeats

(`python tools/bench.py` = `python -m livedream.testing.bench`.)

A step is loss + d loss / d image for the default graph (mixed3 + mixed5, real weights).
"torch eager" is the plain reference: the unfolded InceptionV3 + `dream_loss` +
`torch.autograd.grad`; the others run the exported graph. Each (backend, size) cell runs
in a fresh process, so its peak RSS is its own and not the high-water mark of the cells
before it. To add a backend (a GPU variant, a live-loop stage), append to `BACKENDS`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from livedream.manifest import DEFAULT_MODEL, default_models_dir
from livedream.testing.bench_cpu import SESSION_KINDS, GraphRun, parse_graph_runs
from livedream.testing.bench_live import render_live_table, run_live_isolated

Step = Callable[[], None]
# Weights of the torch eager reference (None = the embedded default); set per cell process.
REFERENCE_WEIGHTS: str | None = None
DEFAULT_SIZES = "224x224,240x320,360x640,720x1280"
DEFAULT_LIVE_SIZES = "240x320,360x640"
FP16_MODEL = "default-fp16"
STEP_MODEL = "default-step1"
FP16_STEP_MODEL = "default-fp16-step1"


@dataclass(frozen=True)
class Backend:
    """One column family of the table: how to check it can run, and how to build its step."""

    name: str
    device: str  # "cpu" or "cuda"; ratios compare against the torch eager row of the same device
    unavailable: Callable[[], str | None]  # None when it can run, else the reason it cannot
    setup: Callable[[int, int], Step]  # (height, width) -> one gradient step, synchronised
    is_reference: bool = False
    steps_per_call: int = 1  # a call of the step function may run several steps


# ---- torch eager: the plain reference --------------------------------------------------------


def torch_unavailable(device: str) -> str | None:
    try:
        import torch
    except ImportError:
        return "torch not installed (pip install 'livedream[export]')"
    if device == "cuda" and not torch.cuda.is_available():
        return "no CUDA device for torch"
    return None


def torch_eager_step(device: str, height: int, width: int) -> Step:
    import torch

    from livedream.export.inception import (
        DEFAULT_LAYERS,
        InceptionV3,
        canonical_layer,
        dream_loss,
    )
    from livedream.export.weights import apply_weights, load_weights

    weights = load_weights(REFERENCE_WEIGHTS)
    model = InceptionV3.for_layers(DEFAULT_LAYERS, weights.variant)
    apply_weights(model, weights)
    model = model.eval().to(device)
    layer_weights = {canonical_layer(layer): 1.0 for layer in DEFAULT_LAYERS}
    image = (torch.rand(1, 3, height, width, device=device) * 2 - 1).requires_grad_(True)

    def step() -> None:
        loss = dream_loss(model(image, DEFAULT_LAYERS), layer_weights)
        torch.autograd.grad(loss, image)
        if device == "cuda":
            torch.cuda.synchronize()

    return step


# ---- ONNX Runtime through the runtime's Engine ----------------------------------------------------


def graph_unavailable(model: str, device: str) -> str | None:
    import onnxruntime as ort

    from livedream.manifest import read_manifest
    from livedream.runtime.devices import CUDA

    if device == "cuda" and CUDA not in ort.get_available_providers():
        return "onnxruntime has no CUDA provider"
    if model not in read_manifest(default_models_dir()):
        return f"graph {model!r} not exported (livedream export{' --fp16' if 'fp16' in model else ''})"
    return None


def ort_step(model: str, device: str, height: int, width: int, cuda_options: dict[str, str] | None = None) -> Step:
    from livedream.manifest import find_graph
    from livedream.runtime.engine import NO_VISITORS, Engine

    path, info = find_graph(model, default_models_dir())
    engine = Engine(path, device, min_size=info.min_size, layers=info.layers, cuda_options=cuda_options)
    if engine.provider.lower() != device:
        raise RuntimeError(f"asked for {device}, the engine runs on {engine.provider}")
    image = np.random.default_rng(0).uniform(-1, 1, (1, 3, height, width)).astype(np.float32)
    return lambda: engine.gradient(image, NO_VISITORS)  # returns once the gradient is in host memory


def ort_stepper(model: str, device: str, height: int, width: int, cuda_graph: bool,
                cuda_options: dict[str, str] | None = None) -> Step:
    """A whole ascent step (gradient, normalise, step, clip) in the graph, image on the device.

    Timed per step over a run of 10 steps with one copy in and out, as the live loop does it.
    """
    from livedream.manifest import find_graph
    from livedream.runtime.runners import StepRunner

    path, info = find_graph(model, default_models_dir())
    runner = StepRunner(path, info.steps_per_run, device, cuda_graph=cuda_graph, cuda_options=cuda_options)
    if runner.provider.lower() != device:
        raise RuntimeError(f"asked for {device}, the step runner runs on {runner.provider}")
    image = np.random.default_rng(0).uniform(-1, 1, (1, 3, height, width)).astype(np.float32)
    nobody = np.zeros((height, width), np.float32)
    return lambda: runner.ascend(image, STEPS_PER_TIMING, 0.01, nobody)


STEPS_PER_TIMING = 10  # step-graph rows time 10 steps per call and report per step

BACKENDS: list[Backend] = [
    Backend("torch eager CPU", "cpu", lambda: torch_unavailable("cpu"),
            lambda h, w: torch_eager_step("cpu", h, w), is_reference=True),
    Backend("ORT CPU", "cpu", lambda: graph_unavailable(DEFAULT_MODEL, "cpu"),
            lambda h, w: ort_step(DEFAULT_MODEL, "cpu", h, w)),
    Backend("torch eager CUDA", "cuda", lambda: torch_unavailable("cuda"),
            lambda h, w: torch_eager_step("cuda", h, w), is_reference=True),
    Backend("ORT CUDA fp32", "cuda", lambda: graph_unavailable(DEFAULT_MODEL, "cuda"),
            lambda h, w: ort_step(DEFAULT_MODEL, "cuda", h, w)),
    Backend("ORT CUDA fp16", "cuda", lambda: graph_unavailable(FP16_MODEL, "cuda"),
            lambda h, w: ort_step(FP16_MODEL, "cuda", h, w)),
    Backend("ORT CUDA step graph", "cuda", lambda: graph_unavailable(STEP_MODEL, "cuda"),
            lambda h, w: ort_stepper(STEP_MODEL, "cuda", h, w, cuda_graph=False), steps_per_call=STEPS_PER_TIMING),
    Backend("ORT CUDA step + CUDA graph", "cuda", lambda: graph_unavailable(STEP_MODEL, "cuda"),
            lambda h, w: ort_stepper(STEP_MODEL, "cuda", h, w, cuda_graph=True), steps_per_call=STEPS_PER_TIMING),
    Backend("ORT CUDA fp16 step + CUDA graph", "cuda", lambda: graph_unavailable(FP16_STEP_MODEL, "cuda"),
            lambda h, w: ort_stepper(FP16_STEP_MODEL, "cuda", h, w, cuda_graph=True), steps_per_call=STEPS_PER_TIMING),
    # Variants kept to show what did not help (see the performance notes in the README).
    Backend("ORT CUDA fp32 no TF32", "cuda", lambda: graph_unavailable(DEFAULT_MODEL, "cuda"),
            lambda h, w: ort_step(DEFAULT_MODEL, "cuda", h, w, {"use_tf32": "0"})),
    Backend("ORT CUDA fp16 NHWC step + CUDA graph", "cuda", lambda: graph_unavailable(FP16_STEP_MODEL, "cuda"),
            lambda h, w: ort_stepper(FP16_STEP_MODEL, "cuda", h, w, cuda_graph=True, cuda_options={"prefer_nhwc": "1"}),
            steps_per_call=STEPS_PER_TIMING),
]


# ---- measuring one cell (in its own process) --------------------------------------------------


@dataclass(frozen=True)
class Plan:
    warmup: int
    repeats: int
    budget_s: float  # stop repeating after this long, with at least MIN_SAMPLES
    weights: str | None = None  # torch eager reference weights (a path); None = default


MIN_SAMPLES = 3


@dataclass
class Cell:
    backend: str
    device: str
    height: int
    width: int
    samples_ms: list[float] = field(default_factory=list)
    peak_rss_mib: float = 0.0
    gpu_mib: float | None = None
    error: str | None = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95_ms(self) -> float:
        return float(np.percentile(self.samples_ms, 95))


def time_step(step: Step, plan: Plan) -> list[float]:
    for _ in range(plan.warmup):
        step()
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < plan.repeats:
        begin = time.perf_counter()
        step()
        samples.append((time.perf_counter() - begin) * 1000)
        if len(samples) >= MIN_SAMPLES and time.perf_counter() - started > plan.budget_s:
            break
    return samples


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux and bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def gpu_mib_of_this_process() -> float | None:
    """GPU memory this process holds, as nvidia-smi sees it (covers torch and ORT alike)."""
    import os

    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
    try:
        lines = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    for line in lines:
        pid, _, used = line.partition(",")
        if pid.strip() == str(os.getpid()):
            return float(used)
    return None


def measure_cell(backend_name: str, height: int, width: int, plan: Plan) -> Cell:
    """Runs in a fresh process: set up the backend, time its step, report memory."""
    global REFERENCE_WEIGHTS
    REFERENCE_WEIGHTS = plan.weights
    backend = next(b for b in BACKENDS if b.name == backend_name)
    cell = Cell(backend.name, backend.device, height, width)
    try:
        samples = time_step(backend.setup(height, width), plan)
        cell.samples_ms = [ms / backend.steps_per_call for ms in samples]
    except Exception as error:  # a benchmark row that fails should not hide the others
        cell.error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    cell.peak_rss_mib = peak_rss_mib()
    if backend.device == "cuda":
        cell.gpu_mib = gpu_mib_of_this_process()
    return cell


def run_cell_isolated(backend: Backend, height: int, width: int, plan: Plan) -> Cell:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure_cell, backend.name, height, width, plan).result()


# ---- the table ------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        try:
            height, width = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not HEIGHTxWIDTH, e.g. 360x640") from None
        sizes.append((height, width))
    return sizes


def graph_runs(text: str) -> list[GraphRun]:
    try:
        return parse_graph_runs(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def speedup(cell: Cell, cells: list[Cell]) -> float | None:
    """torch eager median / this median, on the same device and size (None without a reference)."""
    reference_names = {b.name for b in BACKENDS if b.is_reference}
    for other in cells:
        same_place = (other.device, other.height, other.width) == (cell.device, cell.height, cell.width)
        if same_place and other.backend in reference_names and other.samples_ms and cell.samples_ms:
            return other.median_ms / cell.median_ms
    return None


def render_table(cells: list[Cell], skipped: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="DeepDream gradient step (loss + d loss / d image), default graph mixed3+mixed5")
    for heading in ("size (HxW)", "backend", "median ms", "p95 ms", "steps/s", "vs torch eager", "peak RSS MiB", "GPU MiB", "n"):
        table.add_column(heading, justify="left" if heading in ("size (HxW)", "backend") else "right")
    previous_size = None
    for cell in cells:
        size = f"{cell.height}x{cell.width}"
        if previous_size is not None and size != previous_size:
            table.add_section()
        previous_size = size
        if cell.error:
            table.add_row(size, cell.backend, f"[red]{cell.error}[/]", *[""] * 6)
            continue
        ratio = speedup(cell, cells)
        table.add_row(
            size,
            cell.backend,
            f"{cell.median_ms:.1f}",
            f"{cell.p95_ms:.1f}",
            f"{1000 / cell.median_ms:.2f}",
            f"{ratio:.2f}x" if ratio is not None else "-",
            f"{cell.peak_rss_mib:.0f}",
            f"{cell.gpu_mib:.0f}" if cell.gpu_mib is not None else "-",
            str(len(cell.samples_ms)),
        )
    console = Console(width=None if sys.stdout.isatty() else 140)  # files and pipes get the whole table
    console.print(table)
    for name, reason in skipped.items():
        console.print(f"skipped {name}: {reason}")
    console.print("vs torch eager = torch eager median / this median on the same device (above 1 = faster)")


def cell_json(cell: Cell, cells: list[Cell]) -> dict:
    row = {"backend": cell.backend, "device": cell.device, "height": cell.height, "width": cell.width,
           "peak_rss_mib": cell.peak_rss_mib, "gpu_mib": cell.gpu_mib, "error": cell.error,
           "samples_ms": cell.samples_ms}
    if cell.samples_ms:
        row.update(median_ms=cell.median_ms, p95_ms=cell.p95_ms, steps_per_s=1000 / cell.median_ms,
                   speedup_vs_torch_eager=speedup(cell, cells))
    return row


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=None, help=f"HxW list (default: {DEFAULT_SIZES})")
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per cell, at most (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: %(default)s)")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds of timing per cell before stopping early (default: %(default)s)")
    parser.add_argument("--backends", default=None, help="comma-separated backend names to run (default: all available)")
    parser.add_argument("--weights", default=None,
                        help="weights of the torch eager reference (path; default: the embedded TF 2015 weights)")
    parser.add_argument("--live-sizes", type=parse_sizes, default=None,
                        help="dream sizes for the live-loop table (default: 240x320,360x640; 'none' skips it)")
    parser.add_argument("--live-steps", type=int, default=1, help="steps per frame in the live table (default: %(default)s)")
    parser.add_argument("--live-seconds", type=float, default=20.0, help="seconds per live row (default: %(default)s)")
    parser.add_argument("--live-device", default="auto", help="auto | cpu | cuda for the live table (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--quick", action="store_true", help="smoke run: 224x224 only, 3 repeats, 1 warm-up")
    parser.add_argument("--outputs", type=parse_sizes, default=None, metavar="SIZES",
                        help="only the outputs table (recording, NDI, …) at these HxW sizes, e.g. 360x640,1080x1920")
    parser.add_argument("--objective", type=parse_sizes, default=None, metavar="SIZES",
                        help="only the objective tables (inputs vs baked, the looks) at these HxW sizes, e.g. 180x320,360x640")
    parser.add_argument("--coherence", type=int, default=None, metavar="FRAMES",
                        help="only the coherence table: a clip of known motion of FRAMES frames (e.g. 24), dreamed naive, without and with the occlusion check")
    parser.add_argument("--sheet", type=Path, default=None, help="with --coherence: also write a contact sheet of frames here")
    parser.add_argument("--graphs", type=graph_runs, default=None, metavar="A.onnx,B.onnx",
                        help="only gradient graphs side by side on the CPU, run in turn, at --sizes (default "
                        "240x320,360x640); PATH@KIND picks the session: "
                        + "; ".join(f"{kind}: {what}" for kind, what in SESSION_KINDS.items()))
    parser.add_argument("--visitors", type=parse_sizes, default=None, metavar="SIZES",
                        help="only the visitor-mask table (its cost per frame beside the dream's gradient) at these source HxW sizes, e.g. 720x1280")
    parser.add_argument("--streaks", type=parse_sizes, default=None, metavar="SIZES",
                        help="only the streak table (how far a passing visitor drags the room's carried detail, "
                        "without and with a visitor mask) at these dream HxW sizes, e.g. 180x320")
    parser.add_argument("--large", type=parse_sizes, default=None, metavar="SIZES",
                        help="only the large-frame table (s/frame, peak RSS) at these HxW sizes, e.g. 1080x1920,2160x3840")
    raw = list(sys.argv[1:] if argv is None else argv)
    skip_live = "--live-sizes" in raw and raw[raw.index("--live-sizes") + 1:][:1] == ["none"]
    if skip_live:
        position = raw.index("--live-sizes")
        del raw[position:position + 2]
    args = parser.parse_args(raw)
    args.skip_live = skip_live
    if args.quick:
        args.sizes = args.sizes or [(224, 224)]
        args.repeats, args.warmup = 3, 1
    args.sizes = args.sizes or parse_sizes(DEFAULT_SIZES)
    if args.quick:
        args.live_sizes, args.live_seconds = args.live_sizes or [(120, 160)], min(args.live_seconds, 5.0)
    args.live_sizes = args.live_sizes or parse_sizes(DEFAULT_LIVE_SIZES)
    return args


def chosen_backends(names: str | None) -> tuple[list[Backend], dict[str, str]]:
    wanted = None if names is None else {n.strip() for n in names.split(",")}
    usable, skipped = [], {}
    for backend in BACKENDS:
        if wanted is not None and backend.name not in wanted:
            continue
        reason = backend.unavailable()
        if reason:
            skipped[backend.name] = reason
        else:
            usable.append(backend)
    return usable, skipped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.outputs:
        from livedream.testing.bench_outputs import run as bench_outputs

        bench_outputs(args.outputs)
        return 0
    if args.coherence:
        from livedream.testing.bench_coherence import run as bench_coherence

        bench_coherence(args.coherence, args.sheet)
        return 0
    if args.objective:
        from livedream.testing.bench_objective import run as bench_objective

        bench_objective(args.objective, args.live_seconds)
        return 0
    if args.graphs:
        from livedream.testing.bench_cpu import compare_graphs

        return compare_graphs(args.graphs, args.sizes or [(240, 320), (360, 640)], args.repeats)
    if args.visitors:
        from livedream.testing.bench_visitors import run as bench_visitors

        bench_visitors(args.visitors)
        return 0
    if args.streaks:
        from livedream.testing.bench_streaks import run as bench_streaks

        bench_streaks(args.streaks)
        return 0
    if args.large:
        from livedream.testing.bench_large import run as bench_large

        bench_large(args.large)
        return 0
    plan = Plan(warmup=args.warmup, repeats=args.repeats, budget_s=args.budget, weights=args.weights)
    backends, skipped = chosen_backends(args.backends)
    cells = []
    for height, width in args.sizes:
        for backend in backends:
            print(f"measuring {backend.name} at {height}x{width} …", file=sys.stderr, flush=True)
            cells.append(run_cell_isolated(backend, height, width, plan))
    render_table(cells, skipped)
    from livedream.testing.bench_cpu import render_efficiency

    render_efficiency(cells)
    live_rows = []
    if not args.skip_live:
        print("measuring the live loop on the shipped defaults (adaptive quality) …", file=sys.stderr, flush=True)
        live_rows.append(run_live_isolated(0, 0, args.live_device, args.live_steps, args.live_seconds, adaptive=True))
        for height, width in args.live_sizes:
            print(f"measuring the live loop at {height}x{width} …", file=sys.stderr, flush=True)
            live_rows.append(run_live_isolated(height, width, args.live_device, args.live_steps, args.live_seconds))
        render_live_table(live_rows, args.live_steps)
    if args.json:
        document = {"plan": vars(plan), "cells": [cell_json(c, cells) for c in cells],
                    "live": [vars(row) for row in live_rows]}
        args.json.write_text(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
