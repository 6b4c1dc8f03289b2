"""One run on a GPU machine checks every GPU-only path against the CPU's, then measures the live table.

    python tools/gpu_check.py                       # CUDA (= python -m livedream.testing.gpu_check)
    python tools/gpu_check.py --device webgpu       # the same checks through the WebGPU provider
    python tools/gpu_check.py --size 96x128 --no-live   # quick: small pictures, no live table

No session since the first release was lent a GPU, so every CUDA path changed since runs
first here. Each check runs the same graph file (or, for float16, its float32 twin) on the
device and on the CPU provider, from the same inputs, and prints its figures beside the
bound it must meet:

- gradient: the still's engine (cosine and relative L2 of d loss / d image);
- steps: the step runner's device ping-pong (with CUDA graphs on CUDA), two steps;
- lap-norm steps: the same with the Laplacian-normalised gradient (`--gradient-norm laplacian`);
- frame: a whole live frame with a live objective (a channel term the graph's default lacks),
  a confidence map that is not all ones (the carried detail's occlusion weights) and a
  visitor mask whose visitor dreams another objective while the room takes half the dream
  (every check runs with that mask and those two objectives);
- sharpen: the frame shown larger than the dream, sharpened on the device;
- objective change: the next frames after the objective changed, which on CUDA replays the
  captured graphs with the new weights in the same device buffers;
- octave frame: the frame graph of several octaves (the shipped live octaves, at least two, and
  gradient norm; one step each), two frames at the checks' size or, where its coarsest octave
  needs more, the smallest size it takes;
- float16: the float16 frame graph against the float32 one on the CPU (CUDA only).

Then the live table of `tools/bench.py` (shown fps, dreams/s, dream size, look) at 720p and
1080p dreams and on the shipped defaults. Exit 0 when every check passed, 1 when one failed,
2 when the device is not here. Graphs it needs are exported once, into `--models`.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from livedream.errors import UserError
from livedream.manifest import (
    DEFAULT_MODEL,
    LAPLACIAN_NORM,
    AscentVariant,
    GraphInfo,
    default_models_dir,
    find_graph,
    read_manifest,
    webgpu_variant,
)
from livedream.media.pictures import read_image
from livedream.objective import parse_objective
from livedream.params import Params
from livedream.pipeline.images import SAMPLE_PHOTO, to_nchw
from livedream.runtime.devices import place
from livedream.runtime.engine import CpuThreads, Engine
from livedream.runtime.exporting import ascent_options, ensure_model, export_with_progress
from livedream.runtime.objective import Aim
from livedream.runtime.runners import FrameRunner, StepRunner

LIVE_OBJECTIVE = "mixed4:97=1,mixed3=0.5"  # a channel term: the channel weights the default leaves at zero
CHANGED_OBJECTIVE = "mixed5=1"
VISITOR_OBJECTIVE = "mixed2=1"
LIVE_SIZES = ((720, 1280), (1080, 1920))
ONE_STEP = AscentVariant(1)
LAP_STEP = AscentVariant(1, gradient_norm=LAPLACIAN_NORM)
_SHIPPED = Params()
OCTAVE_FRAME = AscentVariant.of(1, max(2, _SHIPPED.octaves), _SHIPPED.octave_scale, _SHIPPED.gradient_norm)


@dataclass(frozen=True)
class Check:
    name: str
    figures: str
    passed: bool

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name:<17} {self.figures}"


@dataclass(frozen=True)
class Graphs:
    """The graph files one device's checks run: each has a float32 twin the CPU runs."""

    gradient: Path
    step: Path
    frame: Path
    frame_fp16: Path | None  # CUDA only: float16 on WebGPU needs an adapter feature not every one has
    lap_step: Path
    octave_frame: Path
    octave_min_size: int  # the smallest side the octave frame graph takes


def graph_file(models_dir: Path, name: str, options: dict[str, object]) -> tuple[Path, GraphInfo]:
    """The graph `name` and its manifest entry, exported once with `options` when it is not there yet."""
    if name not in read_manifest(models_dir):
        export_with_progress(out_dir=models_dir, **options)  # type: ignore[arg-type]
    return find_graph(name, models_dir)


def graphs_for(provider: str, models_dir: Path) -> Graphs:
    ensure_model(DEFAULT_MODEL, models_dir, "cpu")
    base, variant = (webgpu_variant(DEFAULT_MODEL), {"webgpu": True}) if provider == "WebGPU" else (DEFAULT_MODEL, {})

    def runner_graph(ascent: AscentVariant, frame: bool, fp16: bool = False) -> tuple[Path, GraphInfo]:
        precision = {"fp16": True} if fp16 else {}  # CUDA's: its base name has no -webgpu to come after
        name = f"{base}{'-fp16' if fp16 else ''}-{ascent.name_suffix(frame)}"
        return graph_file(models_dir, name, {**variant, **precision, **ascent_options(ascent, frame)})

    octave_frame, octave_info = runner_graph(OCTAVE_FRAME, frame=True)
    half = None if provider == "WebGPU" else runner_graph(ONE_STEP, frame=True, fp16=True)[0]
    return Graphs(graph_file(models_dir, base, variant)[0], runner_graph(ONE_STEP, frame=False)[0],
                  runner_graph(ONE_STEP, frame=True)[0], half, runner_graph(LAP_STEP, frame=False)[0], octave_frame,
                  octave_info.min_size)


def cosine_and_relative(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))), float(np.linalg.norm(a - b) / np.linalg.norm(b))


def picture_check(name: str, got: np.ndarray, expected: np.ndarray, loss: float, expected_loss: float,
                  levels: float, loss_tolerance: float) -> Check:
    """Pictures within `levels` grey levels on average, losses within `loss_tolerance` of each other."""
    mean = float(np.abs(got.astype(np.int16) - expected).mean())
    relative = abs(loss - expected_loss) / abs(expected_loss)
    figures = (f"mean |device - cpu| {mean:.3f} levels (≤ {levels}), max {int(np.abs(got.astype(np.int16) - expected).max())}; "
               f"loss off by {relative:.1e} (≤ {loss_tolerance:.0e})")
    return Check(name, figures, mean <= levels and relative <= loss_tolerance)


class FrameInputs:
    """One live frame's inputs at the dream's size: a photo, a small drift, an occlusion patch."""

    def __init__(self, height: int, width: int) -> None:
        photo = read_image(SAMPLE_PHOTO)
        self.frame = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
        self.shown = cv2.resize(photo, (width * 2, height * 2), interpolation=cv2.INTER_AREA)
        flow_height, flow_width = max(1, height // 4), max(1, width // 4)
        self.flow = np.full((flow_height, flow_width, 2), 0.75, np.float32)
        self.confidence = np.ones((flow_height, flow_width), np.float32)
        self.confidence[: flow_height // 2, : flow_width // 3] = 0.0  # an uncovered region: the detail fades in
        self.feedback = np.array([[1.01, 0, -0.5], [0, 1.01, -0.5]], np.float32)
        self.mask = np.zeros((flow_height, flow_width), np.float32)  # a visitor on the right, soft-edged
        self.mask[:, flow_width // 2:] = 1.0
        self.mask[:, flow_width // 2 - 1] = 0.5


def visitor_mask(inputs: FrameInputs, height: int, width: int) -> np.ndarray:
    return cv2.resize(inputs.mask, (width, height), interpolation=cv2.INTER_LINEAR)


# The regions dream apart: the room the live objective, the visitor another, the room at half.
def regions_aim(objective: str) -> Aim:
    return Aim(parse_objective(objective), parse_objective(VISITOR_OBJECTIVE), (0.5, 1.0))


def run_frames(runner: FrameRunner, inputs: FrameInputs, shown: bool) -> tuple[np.ndarray, float]:
    """Two frames (the second warps the first's detail); the last picture and loss."""
    shown_rgb = inputs.shown if shown else None
    for shown_now in (None, shown_rgb):
        picture, loss = runner.dream_frame(inputs.frame, inputs.flow, inputs.confidence, inputs.feedback, 0.9, 0.05,
                                           inputs.mask, shown_now)
    return picture.copy(), loss


def frame_checks(device: str, provider: str, graphs: Graphs, size: tuple[int, int], threads: CpuThreads) -> list[Check]:
    """Frame, sharpen and objective change on one device runner against one CPU runner; float16."""
    inputs = FrameInputs(*size)
    captured = provider == "CUDA"
    device_runner = FrameRunner(graphs.frame, 1, device, threads, cuda_graph=captured)
    cpu_runner = FrameRunner(graphs.frame, 1, "cpu", threads)
    checks = []
    for name, objective, shown in (("frame", LIVE_OBJECTIVE, False), ("sharpen", LIVE_OBJECTIVE, True),
                                   ("objective change", CHANGED_OBJECTIVE, False)):
        results = []
        for runner in (device_runner, cpu_runner):
            runner.objective.set(regions_aim(objective))
            results.append(run_frames(runner, inputs, shown))
        (picture, loss), (expected, expected_loss) = results
        checks.append(picture_check(name, picture, expected, loss, expected_loss, 0.25, 1e-3))
    if graphs.frame_fp16 is not None:
        half = FrameRunner(graphs.frame_fp16, 1, device, threads, cuda_graph=captured)
        for runner in (half, cpu_runner):
            runner.reset()
            runner.objective.set(regions_aim(LIVE_OBJECTIVE))
        (picture, loss), (expected, expected_loss) = run_frames(half, inputs, False), run_frames(cpu_runner, inputs, False)
        checks.append(picture_check("float16", picture, expected, loss, expected_loss, 2.0, 2e-2))
    return checks


def gradient_check(device: str, graphs: Graphs, size: tuple[int, int], threads: CpuThreads) -> Check:
    inputs = FrameInputs(*size)
    image = to_nchw(inputs.frame)
    losses, gradients = [], []
    for where in (device, "cpu"):
        engine = Engine(graphs.gradient, where, threads)
        engine.objective.set(regions_aim(LIVE_OBJECTIVE))
        loss, gradient = engine.gradient(image, inputs.mask)
        losses.append(loss)
        gradients.append(gradient.copy())
    cosine, relative = cosine_and_relative(*gradients)
    return Check("gradient", f"cosine {cosine:.7f} (≥ 0.9999), relative L2 {relative:.1e} (≤ 1e-2)",
                 cosine >= 0.9999 and relative <= 1e-2)


def steps_check(name: str, device: str, provider: str, graph: Path, ascent: AscentVariant, size: tuple[int, int],
                threads: CpuThreads) -> Check:
    """Two steps of the step graph `graph` (of `ascent`) on the device and on the CPU."""
    inputs = FrameInputs(*size)
    start = to_nchw(inputs.frame)
    mask = visitor_mask(inputs, *size)
    images = []
    for where, captured in ((device, provider == "CUDA"), ("cpu", False)):
        runner = StepRunner(graph, ascent.steps, where, threads, cuda_graph=captured,
                            gradient_norm=ascent.gradient_norm)
        runner.objective.set(regions_aim(LIVE_OBJECTIVE))
        image = start.copy()
        runner.ascend(image, 2, 0.05, mask)
        images.append(image)
    largest = float(np.abs(images[0] - images[1]).max())
    moved = float(np.abs(images[1] - start).mean())
    return Check(name, f"max |device - cpu| {largest:.1e} of a mean move of {moved:.1e} (≤ 2e-2)", largest <= 2e-2)


def octave_frame_check(device: str, provider: str, graphs: Graphs, size: tuple[int, int], threads: CpuThreads) -> Check:
    """Two frames of the octave frame graph, at `size` or the smallest size its coarsest octave takes."""
    grow = max(1.0, graphs.octave_min_size / min(size))
    inputs = FrameInputs(math.ceil(size[0] * grow), math.ceil(size[1] * grow))
    results = []
    for where, captured in ((device, provider == "CUDA"), ("cpu", False)):
        runner = FrameRunner(graphs.octave_frame, OCTAVE_FRAME.steps, where, threads, cuda_graph=captured,
                             min_size=graphs.octave_min_size)
        runner.objective.set(regions_aim(LIVE_OBJECTIVE))
        results.append(run_frames(runner, inputs, shown=False))
    (picture, loss), (expected, expected_loss) = results
    return picture_check("octave frame", picture, expected, loss, expected_loss, 0.25, 1e-3)


def run_checks(device: str, provider: str, graphs: Graphs, size: tuple[int, int]) -> list[Check]:
    threads = CpuThreads()
    runs: list[Callable[[], list[Check]]] = [
        lambda: [gradient_check(device, graphs, size, threads)],
        lambda: [steps_check("steps", device, provider, graphs.step, ONE_STEP, size, threads)],
        lambda: [steps_check("lap-norm steps", device, provider, graphs.lap_step, LAP_STEP, size, threads)],
        lambda: frame_checks(device, provider, graphs, size, threads),
        lambda: [octave_frame_check(device, provider, graphs, size, threads)],
    ]
    checks = []
    for run in runs:
        for check in run():
            print(check.line(), flush=True)
            checks.append(check)
    return checks


def live_table(device: str) -> None:
    from livedream.testing.bench_live import render_live_table, run_live_isolated

    rows = [run_live_isolated(0, 0, device, 2, 20.0, adaptive=True)]
    rows += [run_live_isolated(height, width, device, 2, 20.0) for height, width in LIVE_SIZES]
    render_live_table(rows, 2)


def parse_size(text: str) -> tuple[int, int]:
    height, _, width = text.partition("x")
    if not (height.isdigit() and width.isdigit()) or min(int(height), int(width)) < 96:
        raise argparse.ArgumentTypeError(f"{text}: give HxW of at least 96x96, e.g. 360x640")
    return int(height), int(width)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cuda", "webgpu"), default="cuda")
    parser.add_argument("--size", type=parse_size, default=(360, 640), help="HxW of the checks' pictures (default 360x640)")
    parser.add_argument("--models", type=Path, default=None, help="models folder (default: the app's)")
    parser.add_argument("--no-live", action="store_true", help="only the checks, not the live table")
    args = parser.parse_args(argv)
    try:
        placement = place(args.device)  # a device asked for by name that is not here is a UserError
        print(f"gpu_check on {placement.provider}: {placement.why}")
        graphs = graphs_for(placement.provider, args.models or default_models_dir())
        checks = run_checks(args.device, placement.provider, graphs, args.size)
    except UserError as error:
        print(f"gpu_check: nothing checked: {error}", file=sys.stderr)
        return 2
    failed = [check.name for check in checks if not check.passed]
    print(f"{len(checks) - len(failed)} of {len(checks)} checks passed" + (f"; failed: {', '.join(failed)}" if failed else ""))
    if not args.no_live:
        live_table(args.device)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
