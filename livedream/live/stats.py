"""What the live loop measured: stage times, source frame counts, fps, and the exit summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from livedream.params import NOMINAL_FRAME_S

SHOW_STAGES = ("capture", "visitors", "flow", "compose", "display")  # the show loop's work for one shown frame
# Plus the worker's dreams, the time between shown frames and the age of the dream laid over each.
STAGES = (*SHOW_STAGES, "dream", "interval", "age")


@dataclass(frozen=True)
class RunStats:
    """What one `LiveApp.run` did. Stage times are medians over the last `StageTimes.WINDOW` frames."""

    frames: int  # frames shown
    dreamed: int  # finished dreams laid over the shown frames (fewer than frames on a CPU)
    seconds: float
    fps: float  # frames shown per second
    stage_ms: Mapping[str, float]  # median ms per stage, keys = STAGES
    source_frames: int  # distinct source frames that passed while running
    dropped: int  # source frames never read (the dream was slower than the source)
    reused: int  # reads that returned the frame already read (the source was slower)
    stopped_by: str  # "frames", "seconds", "quit", "signal SIGTERM", …
    dream_size: tuple[int, int]  # (height, width) at the end, after any budget cut
    provider: str
    screenshots: tuple[Path, ...] = ()
    quality: str | None = None  # what adaptive quality chose and why (None = off)
    dream_age_s: float = 0.0  # median age of the dream laid over a shown frame

    @property
    def warm_fps(self) -> float:
        """Frames shown per second once warm: from the median time between shown frames."""
        interval = self.stage_ms.get("interval", 0.0)
        return 1000 / interval if interval > 0 else 0.0

    @property
    def dreams_per_s(self) -> float:
        return self.dreamed / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """A few lines for the terminal on exit."""
        stages = "  ".join(f"{name} {self.stage_ms[name]:.1f}" for name in SHOW_STAGES)
        height, width = self.dream_size
        return "\n".join([
            f"LiveDream: {self.frames} frames in {self.seconds:.1f} s = {self.fps:.2f} fps shown "
            f"({self.dreamed} dreams at {width}x{height} on {self.provider or '?'}; stopped by {self.stopped_by})",
            f"  median ms per shown frame: {stages}"
            + (f" (= {self.warm_fps:.1f} fps once warm; the figure above includes start-up)" if self.warm_fps else ""),
            f"  dreams: {self.dreams_per_s:.2f} per second, {self.stage_ms.get('dream', 0.0):.0f} ms each, "
            f"{self.dream_age_s:.2f} s old on screen (median)",
            f"  source frames {self.source_frames}: dropped {self.dropped}, read again {self.reused}",
            *([f"  {self.quality}"] if self.quality else []),
            *(f"  screenshot {path}" for path in self.screenshots),
        ])


class StageTimes:
    """The last WINDOW milliseconds of each stage in preallocated rings, for medians."""

    WINDOW = 600

    def __init__(self) -> None:
        self._samples = np.zeros((len(STAGES), self.WINDOW), np.float64)
        self._counts = [0] * len(STAGES)

    def record(self, stage: str, ms: float) -> None:
        row = STAGES.index(stage)
        self._samples[row, self._counts[row] % self.WINDOW] = ms
        self._counts[row] += 1

    def median(self, stage: str, last: int = WINDOW) -> float:
        """Median of the newest `last` samples of `stage` (0 when there are none)."""
        row = STAGES.index(stage)
        count = min(self._counts[row], self.WINDOW, last)
        if count == 0:
            return 0.0
        end = self._counts[row] % self.WINDOW
        indices = np.arange(end - count, end) % self.WINDOW
        return float(np.median(self._samples[row, indices]))

    def medians(self, last: int = WINDOW) -> dict[str, float]:
        return {name: self.median(name, last) for name in STAGES}


@dataclass
class SourceCounters:
    """How the source's frame indices went by: how many passed, were skipped or read twice."""

    source_frames: int = 0
    dropped: int = 0
    reused: int = 0
    last_index: int | None = None

    def saw(self, index: int) -> None:
        if self.last_index is None or index < self.last_index:  # first frame, or the source restarted
            self.source_frames += 1
        elif index == self.last_index:
            self.reused += 1
        else:
            self.source_frames += index - self.last_index
            self.dropped += index - self.last_index - 1
        self.last_index = index


class FrameClock:
    """Seconds between consecutive dreams on the loop's clock (a fake one in tests), which turn
    the per-second feedback into one dream's share; the nominal frame time before the first."""

    def __init__(self) -> None:
        self._last: float | None = None

    def tick(self, now: float) -> float:
        frame_s = NOMINAL_FRAME_S if self._last is None else now - self._last
        self._last = now
        return frame_s


class FpsMeter:
    """Frames per second from the start times of consecutive frames, smoothed."""

    def __init__(self) -> None:
        self.fps = 0.0
        self._last_start: float | None = None

    def frame_started(self, now: float) -> float | None:
        """Count a frame that started at `now`; the seconds since the previous one (None for the first)."""
        interval = None
        if self._last_start is not None:
            interval = now - self._last_start
            instant = 1.0 / interval if interval > 0 else 0.0
            self.fps = instant if self.fps == 0 else 0.9 * self.fps + 0.1 * instant
        self._last_start = now
        return interval
