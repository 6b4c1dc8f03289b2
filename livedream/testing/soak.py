"""Soak test: the live app, headless, for M minutes; fps over time, RSS growth, largest frame gap.

    python tools/soak.py --minutes 10            # = python -m livedream.testing.soak; the demo
                                                 # source (add --size 320x180 on a CPU)
    python tools/soak.py --minutes 10 --faults   # a camera that fails every 7th read, hangs
                                                 # for 3 s, sends wrong-sized frames and
                                                 # vanishes for 6 s every 40 s
    python tools/soak.py --minutes 60 --faults --abuse   # also: the show control hub with an
                                                 # OSC flood (10,000 messages every 30 s),
                                                 # web requests (good and refused) and a
                                                 # recording in 1-minute segments

It runs `LiveApp.run` as the installation does (SDL_VIDEODRIVER=dummy, no screen) and
watches each frame through the app's `Controls` seam. Exit code 1 when resident memory grew
by 5 % or more after the warm-up, a frame gap exceeded 2 s, or the picture's mean brightness
drifted by more than 3 grey levels between the first and the last full demo periods (five
of each averaged, the very first skipped while the dream builds up).
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

from pythonosc.udp_client import SimpleUDPClient  # noqa: E402

from livedream.config import (  # noqa: E402
    Config,
    apply_overrides,
    config_path_or_default,
    load_config,
)
from livedream.control.hub import ControlHub  # noqa: E402
from livedream.errors import UserError  # noqa: E402
from livedream.live.app import LiveApp  # noqa: E402
from livedream.live.build import open_app  # noqa: E402
from livedream.live.controls import PassiveControls  # noqa: E402
from livedream.live.watchdog import FrameWatchdog  # noqa: E402
from livedream.ops.logs import HealthReporter, read_rss_bytes  # noqa: E402
from livedream.ops.memory import limit_malloc_arenas  # noqa: E402
from livedream.params import Params  # noqa: E402
from livedream.pipeline.frames import Source, is_lost  # noqa: E402
from livedream.pipeline.sources import CameraSource, DemoSource  # noqa: E402
from livedream.testing.faults import FaultPlan, FaultyCamera  # noqa: E402

MAX_RSS_GROWTH_PERCENT = 5.0


class StartRecording(PassiveControls):
    """Sends "record_start" once, as a remote control would: the segmented recording runs
    through the whole soak."""

    def __init__(self) -> None:
        self._sent = False

    def drain_commands(self) -> list[str]:
        if self._sent:
            return []
        self._sent = True
        return ["record_start"]
MAX_FRAME_GAP_S = 2.0
MAX_BRIGHTNESS_DRIFT = 3.0  # grey levels, the first full demo periods against the last
DRIFT_PERIODS = 5  # periods averaged at each end
FLOOD_MESSAGES = 10_000
ABUSE_INTERVAL_S = 30.0


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
        self.period_brightness: list[float] = []  # mean grey level of the shown frames, per demo period
        self._period_sum, self._period_frames, self._period_start = 0.0, 0, None

    def publish(self, frame_rgb, fps: float, now: float) -> None:
        """Brightness per demo pan period (the demo repeats itself every PAN_PERIOD_S)."""
        if self._period_start is None:
            self._period_start = now
        self._period_sum += float(frame_rgb[::8, ::8].mean())
        self._period_frames += 1
        if now - self._period_start >= DemoSource.PAN_PERIOD_S:
            self.period_brightness.append(self._period_sum / self._period_frames)
            self._period_sum, self._period_frames, self._period_start = 0.0, 0, now

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
        self.provider = app.models.guard.provider
        self.source_state = app.source.state


def brightness_drift(periods: list[float]) -> tuple[float, float, float]:
    """(drift, early mean, late mean) of the per-period brightness: the mean of the first
    DRIFT_PERIODS full periods after the first (the dream is still building there) against
    the mean of the last DRIFT_PERIODS. One period against one period measured the noise of
    where the camera faults happened to fall, not a trend."""
    settled = periods[1:] if len(periods) > 2 else periods
    if len(settled) < 2:
        return 0.0, float("nan"), float("nan")
    count = max(1, min(DRIFT_PERIODS, len(settled) // 4))
    early = sum(settled[:count]) / count
    late = sum(settled[-count:]) / count
    return abs(late - early), early, late


def _spread(periods: list[float]) -> float:
    """Standard deviation of the per-period brightness: the noise the drift is read against."""
    if len(periods) < 2:
        return 0.0
    mean = sum(periods) / len(periods)
    return (sum((p - mean) ** 2 for p in periods) / (len(periods) - 1)) ** 0.5


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


class Abuse:
    """What a public room throws at the control ports, from threads of its own, every
    ABUSE_INTERVAL_S: an OSC flood, and web requests the panel must serve or refuse."""

    def __init__(self, hub: ControlHub) -> None:
        self.hub = hub
        self.floods = self.requests = self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-abuse", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        client = SimpleUDPClient("127.0.0.1", self.hub.osc.address[1])  # type: ignore[union-attr]
        while not self._stop.wait(ABUSE_INTERVAL_S):
            for i in range(FLOOD_MESSAGES):
                client.send_message("/livedream/strength", 0.01 + (i % 20) / 1000)
            self.floods += 1
            for headers, expect_refusal in (({}, False), ({"Host": "evil.example"}, True),
                                            ({"Origin": "http://evil.example"}, True)):
                self._request(headers, expect_refusal)

    def _request(self, headers: dict[str, str], expect_refusal: bool) -> None:
        port = self.hub.web.guard.port  # type: ignore[union-attr]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            body = json.dumps({"name": "half_life", "value": 0.5}).encode()
            connection.request("POST", "/param", body, {"Content-Type": "application/json", **headers})
            status = connection.getresponse().status
        except OSError:
            status = 0
        finally:
            connection.close()
        self.requests += 1
        self.refused += status in (401, 403, 415, 429)
        if expect_refusal != (status in (401, 403, 415)):
            print(f"soak: web request {headers} answered {status}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--faults", action="store_true", help="a faulty camera instead of the demo")
    parser.add_argument("--config", type=Path, default=None, help="config file (default: ./config.toml if present)")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds per fps row (default 30)")
    parser.add_argument("--size", default=None, help="dream size WxH instead of the config's (CPU: 320x180)")
    parser.add_argument("--steps", type=int, default=None, help="ascent steps per frame instead of the config's")
    parser.add_argument("--abuse", action="store_true",
                        help="the control hub too, with OSC floods, web requests and a segmented recording")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limit_malloc_arenas()  # as `livedream run` does, before any helper thread starts

    path = config_path_or_default(args.config)
    try:
        width, height = (int(n) for n in args.size.lower().split("x")) if args.size else (None, None)
        config = apply_overrides(
            load_config(path), display__fullscreen=False,
            dream__dream_width=width, dream__dream_height=height, dream__steps=args.steps,
        )
        if args.abuse:
            folder = Path(tempfile.mkdtemp(prefix="livedream-soak-"))
            config = apply_overrides(config, osc__port=0, web__enabled=True, web__port=0,
                                     outputs__record_folder=str(folder / "recordings"), outputs__min_free_mb=500,
                                     outputs__keep_recordings_mb=200)
        source, camera = open_soak_source(config, args.faults)
        app = open_app(config, open_devices=False, source=source)  # the app as `livedream` wires it
    except UserError as error:
        print(f"soak: error: {error}", file=sys.stderr)
        return 2
    seconds = args.minutes * 60
    probe = SoakProbe(app, args.interval, warmup_s=min(60.0, seconds / 4))
    app.controls.append(probe)
    hub = abuse = None
    if args.abuse:
        hub = ControlHub(config, open_devices=False, state_folder=folder / "state")
        app.controls.insert(0, hub)
        abuse = Abuse(hub)
        abuse.start()
        app.controls.append(StartRecording())

    print(
        f"soak: {args.minutes:g} min, source {'faulty camera' if camera else 'demo'}, "
        f"dream {config.dream.dream_width}x{config.dream.dream_height} on {app.models.guard.provider}, "
        f"SDL {os.environ['SDL_VIDEODRIVER']}",
        flush=True,
    )
    with app:
        stats = app.run(max_seconds=seconds)
    rss_end = read_rss_bytes()
    if hub is not None and abuse is not None:
        abuse.close()
        hub.close()
        segments = sorted((folder / "recordings").glob("*.mp4"))
        print(f"abuse: {abuse.floods} OSC floods of {FLOOD_MESSAGES}, {abuse.requests} web requests "
              f"({abuse.refused} refused as they should be); recording kept {len(segments)} segment(s) "
              f"in {folder / 'recordings'}")
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
    drift, first, last = brightness_drift(probe.period_brightness)
    print(f"brightness per {DemoSource.PAN_PERIOD_S:g} s demo period over {len(probe.period_brightness)} periods: "
          f"first periods {first:.2f}, last periods {last:.2f} → drift {drift:.2f} grey levels "
          f"(limit {MAX_BRIGHTNESS_DRIFT:g}); period-to-period spread {_spread(probe.period_brightness):.2f}")
    failures = []
    if drift > MAX_BRIGHTNESS_DRIFT:
        failures.append(f"brightness drifted {drift:.2f} grey levels")
    if growth >= MAX_RSS_GROWTH_PERCENT:
        failures.append(f"RSS grew {growth:.1f} %")
    if gap > MAX_FRAME_GAP_S:
        failures.append(f"a frame gap of {gap:.2f} s")
    print(f"soak: FAIL — {'; '.join(failures)}" if failures else "soak: PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
