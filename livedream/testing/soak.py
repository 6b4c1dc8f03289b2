"""Soak test: the live app, headless, for M minutes; fps over time, RSS growth, largest frame gap.

    python tools/soak.py --minutes 10            # = python -m livedream.testing.soak; the demo
                                                 # source (add --size 320x180 on a CPU)
    python tools/soak.py --minutes 10 --faults   # a camera that fails every 7th read, hangs
                                                 # for 3 s, sends wrong-sized frames and
                                                 # vanishes for 6 s every 40 s

It runs `LiveApp.run` as the installation does (SDL_VIDEODRIVER=dummy, no screen) and
watches each frame through the app's `Controls` seam. Exit code 1 when resident memory grew
by 5 % or more after the warm-up, or a frame gap exceeded 2 s.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

from livedream.config import (  # noqa: E402
    Config,
    apply_overrides,
    config_path_or_default,
    load_config,
)
from livedream.errors import UserError  # noqa: E402
from livedream.live.app import LiveApp  # noqa: E402
from livedream.live.build import load_live_model  # noqa: E402
from livedream.live.controls import PassiveControls  # noqa: E402
from livedream.live.models import ModelSet  # noqa: E402
from livedream.live.watchdog import FrameWatchdog  # noqa: E402
from livedream.ops.logs import HealthReporter, read_rss_bytes  # noqa: E402
from livedream.params import Params  # noqa: E402
from livedream.pipeline.display import Display  # noqa: E402
from livedream.pipeline.dreamer import LiveDreamer  # noqa: E402
from livedream.pipeline.sources import CameraSource, DemoSource, Source, is_lost  # noqa: E402
from livedream.runtime.guard import GuardedModel  # noqa: E402
from livedream.testing.faults import FaultPlan, FaultyCamera  # noqa: E402

MAX_RSS_GROWTH_PERCENT = 5.0
MAX_FRAME_GAP_S = 2.0


class SoakProbe(PassiveControls):
    """A `Controls` that changes nothing: it sees every frame, for the figures."""

    def __init__(self, app: LiveApp, interval_s: float, warmup_s: float) -> None:
        self.app = app
        self.interval_s = interval_s
        self.warmup_s = warmup_s
        self.watchdog = FrameWatchdog(MAX_FRAME_GAP_S)
        self.health = HealthReporter(interval_s)
        self.started: float | None = None
        self.rss_start = read_rss_bytes()
        self.rss_warm: int | None = None
        self.rows: list[str] = []
        self.lost_frames = 0
        self._bucket_start = 0.0
        self._bucket_frames = 0
        self._bucket_gap = 0.0

    def update(self, params: Params, now: float) -> Params:
        if self.started is None:
            self.started = self._bucket_start = now
        gap = self.watchdog.frame(now)
        self._bucket_gap = max(self._bucket_gap, gap)
        self._bucket_frames += 1
        state = self.app.source.state
        self.lost_frames += is_lost(state)
        self.health.tick(now, _FrameStats(self.app), dropped_total=self.app.counters.dropped)
        if self.rss_warm is None and now - self.started >= self.warmup_s:
            self.rss_warm = read_rss_bytes()
        if now - self._bucket_start >= self.interval_s:
            self._report_bucket(now, state)
        return params

    def _report_bucket(self, now: float, state: str) -> None:
        elapsed = now - self._bucket_start
        minutes, seconds = divmod(int(now - self.started), 60)  # type: ignore[operator]
        row = (
            f"  {minutes:2d}:{seconds:02d}  {self._bucket_frames / elapsed:5.2f} fps  "
            f"RSS {_mb(read_rss_bytes())}  max gap {self._bucket_gap:.2f} s  source {state}"
        )
        print(row, flush=True)
        self.rows.append(row)
        self._bucket_start, self._bucket_frames, self._bucket_gap = now, 0, 0.0


class _FrameStats:
    """The few HUD figures a health line needs, read from the app's public state."""

    def __init__(self, app: LiveApp) -> None:
        self.dream_ms = app.times.median("flow", last=30) + app.times.median("dream", last=30)
        self.provider = app.models.current.provider
        self.source_state = app.source.state


def _mb(rss: int | None) -> str:
    return f"{rss / 2**20:.0f} MB" if rss is not None else "?"


def open_soak_source(config: Config, faults: bool) -> tuple[Source, FaultyCamera | None]:
    cfg = config.source
    if not faults:
        return DemoSource(cfg.width, cfg.height), None
    camera = FaultyCamera(FaultPlan.soak(), cfg.width, cfg.height, cfg.fps)
    return CameraSource("faulty", cfg.width, cfg.height, cfg.fps, capture_factory=camera), camera


def _join_camera_threads(timeout_s: float) -> None:
    """Let closed camera threads leave OpenCV before the interpreter exits: tearing down
    while one is inside a cv2 call aborts the process ("terminate called …", exit 134)."""
    deadline = time.monotonic() + timeout_s
    for thread in threading.enumerate():
        if thread.name.startswith("camera-") and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--faults", action="store_true", help="a faulty camera instead of the demo")
    parser.add_argument("--config", type=Path, default=None, help="config file (default: ./config.toml if present)")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds per fps row (default 30)")
    parser.add_argument("--size", default=None, help="dream size WxH instead of the config's (CPU: 320x180)")
    parser.add_argument("--steps", type=int, default=None, help="ascent steps per frame instead of the config's")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    path = config_path_or_default(args.config)
    try:
        width, height = (int(n) for n in args.size.lower().split("x")) if args.size else (None, None)
        config = apply_overrides(
            load_config(path), display__fullscreen=False,
            dream__dream_width=width, dream__dream_height=height, dream__steps=args.steps,
        )
        name = config.dream.model
        models = ModelSet(name, GuardedModel(lambda: load_live_model(name, config.model)))
    except UserError as error:
        print(f"soak: error: {error}", file=sys.stderr)
        return 2
    source, camera = open_soak_source(config, args.faults)
    app = LiveApp(source, LiveDreamer(), Display(config.display), config.dream, models)
    seconds = args.minutes * 60
    probe = SoakProbe(app, args.interval, warmup_s=min(60.0, seconds / 4))
    app.controls.append(probe)

    print(
        f"soak: {args.minutes:g} min, source {'faulty camera' if camera else 'demo'}, "
        f"dream {config.dream.dream_width}x{config.dream.dream_height} on {models.current.provider}, "
        f"SDL {os.environ['SDL_VIDEODRIVER']}",
        flush=True,
    )
    with app:
        stats = app.run(max_seconds=seconds)
    rss_end = read_rss_bytes()
    _join_camera_threads(timeout_s=FaultPlan.soak().hang_s + 1)
    probe.health.close()

    print(stats.summary())
    warm = probe.rss_warm or probe.rss_start
    growth = 100.0 * (rss_end - warm) / warm if rss_end and warm else 0.0
    print(f"RSS: start {_mb(probe.rss_start)}, after warm-up {_mb(probe.rss_warm)}, end {_mb(rss_end)} "
          f"→ growth after warm-up {growth:+.1f} % (limit < {MAX_RSS_GROWTH_PERCENT:g} %)")
    gap = probe.watchdog.largest_gap
    print(f"largest frame gap {gap:.2f} s (limit {MAX_FRAME_GAP_S:g} s); "
          f"frames over the limit: {probe.watchdog.late_frames}")
    if camera is not None:
        faults = ", ".join(f"{name} {count}" for name, count in sorted(camera.injected.items()))
        print(f"faults injected: {faults or 'none'}; camera opened {camera.opens} times; "
              f"frames shown while the camera was lost: {probe.lost_frames}")
    failures = []
    if growth >= MAX_RSS_GROWTH_PERCENT:
        failures.append(f"RSS grew {growth:.1f} %")
    if gap > MAX_FRAME_GAP_S:
        failures.append(f"a frame gap of {gap:.2f} s")
    print(f"soak: FAIL — {'; '.join(failures)}" if failures else "soak: PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
