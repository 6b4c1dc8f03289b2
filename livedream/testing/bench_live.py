"""The live-loop table of `tools/bench.py`: the real app on the demo source, per row its shown
fps, dreams per second, dream age and look (`testing.look`), each beside its target.

Its own module so the bench and its other tables (`bench_objective`) share the rows without
importing each other.
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from livedream.live.stats import SHOW_STAGES


@dataclass
class LiveRow:
    height: int
    width: int
    device: str
    frames: int = 0
    fps: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)
    provider: str = ""
    error: str | None = None
    quality: str | None = None  # the adaptive row: what it chose and why
    target_fps: int = 0  # the adaptive row: the shown rate it holds (0 = a fixed-size row)
    dreams_per_s: float = 0.0
    dream_age_s: float = 0.0  # median age of the dream laid over a shown frame
    look: float | None = None  # the last shown picture's share of a still's DeepDream (testing.look)
    motifs: float | None = None  # the same judged at half the dream's size: the large motifs' share


ADAPTIVE_FLOOR_FPS = 24  # issue #39 (was #14's 12): the shipped defaults on a 2-core CPU, warm, at least this
LOOK_FLOOR = 0.6  # issue #39: the shipped defaults' shown picture carries at least this of a still's
MOTIF_FLOOR = 0.5  # and at least this judged at half size, where only the large motifs count


def measure_live(height: int, width: int, device: str, steps: int, seconds: float, adaptive: bool = False,
                 model: str | None = None, objective: str | None = None) -> LiveRow:
    """The real app (demo source, 1920x1080 window, SDL dummy driver) for `seconds`: at a
    fixed dream size, or (`adaptive`) on the shipped defaults, adaptive quality choosing."""
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from livedream.config import apply_overrides, load_config
    from livedream.live.build import open_app
    from livedream.testing.look import judge

    row = LiveRow(height, width, device)
    sized = {} if adaptive else dict(dream_height=height, dream_width=width, steps=steps, octaves=1,
                                     display__target_fps=0)  # a fixed-size row: adaptive quality off
    config = apply_overrides(
        load_config(None),
        source__kind="demo", display__fullscreen=False, display__window_width=1920,
        display__window_height=1080, display__vsync=False, model__device=device, **sized,
        dream__model=model, dream__objective=objective,
    )
    try:
        with open_app(config) as app:
            app.run(max_frames=10)  # warm-up: sessions, buffers, CUDA graphs
            stats = app.run(max_seconds=seconds)
            shown, frame = app.shown_image.copy(), app.source_frame
        if frame is not None:
            score = judge(shown, frame.image, stats.dream_size, config).score
            row.look, row.motifs = score.full.share, score.half.share
        row.frames, row.fps, row.provider = stats.frames, stats.fps, stats.provider
        row.stage_ms = dict(stats.stage_ms)
        row.dreams_per_s, row.dream_age_s = stats.dreams_per_s, stats.dream_age_s
        row.height, row.width = stats.dream_size
        row.quality = stats.quality
        row.target_fps = round(1000 / app.show_ms) if adaptive and app.show_ms else 0  # the shown rate it holds
    except Exception as error:
        row.error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return row


def run_live_isolated(height: int, width: int, device: str, steps: int, seconds: float,
                      adaptive: bool = False, model: str | None = None, objective: str | None = None) -> LiveRow:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure_live, height, width, device, steps, seconds, adaptive, model, objective).result()


def render_live_table(rows: list[LiveRow], steps: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Live loop: demo source, 1920x1080 window; fixed rows {steps} step(s) per frame, 1 octave; "
                        "look and motifs: the share of a still's DeepDream judged at the dream's size and at half")
    stages = (*SHOW_STAGES, "dream")
    headings = ("dream size (HxW)", "provider", "fps", "target fps", "fps / target", f"fps / {ADAPTIVE_FLOOR_FPS}",
                "dreams/s", "dream age s", "look", f"look / {LOOK_FLOOR}", "motifs", f"motifs / {MOTIF_FLOOR}",
                *[f"{s} ms" for s in stages], "frames")
    for heading in headings:
        table.add_column(heading, justify="left" if heading.startswith("dream size") else "right")
    for row in rows:
        size = f"{row.height}x{row.width}" + (" adaptive" if row.target_fps else "")
        if row.error:
            table.add_row(size, f"[red]{row.error}[/]", *[""] * (len(headings) - 2))
            continue
        ratios = ((str(row.target_fps), f"{row.fps / row.target_fps:.2f}", f"{row.fps / ADAPTIVE_FLOOR_FPS:.2f}")
                  if row.target_fps else ("off", "", ""))
        looks = ("", "", "", "") if row.look is None or row.motifs is None else (
            f"{row.look:.2f}", f"{row.look / LOOK_FLOOR:.2f}", f"{row.motifs:.2f}", f"{row.motifs / MOTIF_FLOOR:.2f}")
        table.add_row(size, row.provider, f"{row.fps:.1f}", *ratios,
                      f"{row.dreams_per_s:.2f}", f"{row.dream_age_s:.2f}", *looks,
                      *[f"{row.stage_ms.get(s, 0.0):.1f}" for s in stages], str(row.frames))
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    for row in rows:
        if row.quality:
            print(f"  {row.quality}")


