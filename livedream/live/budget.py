"""Adaptive quality: holding a target frame rate on a machine too slow for the configured dream.

The config's steps and dream size are ceilings. `start` picks the rung the measured step cost
(`quality.StepCost`) predicts will hold the rate; `record` then moves one rung at a time on
the frame times it sees, with hysteresis, so the look changes slowly and never flaps."""

from __future__ import annotations

import dataclasses
import logging

from livedream.params import PARAM_RANGES, Params
from livedream.runtime.cost import StepCost

log = logging.getLogger(__name__)

AUTO_FPS = {"CUDA": 60}  # target_fps "auto" on a GPU; every other provider is a CPU
AUTO_FPS_CPU = 20


def resolve_target_fps(setting: int | str, provider: str) -> int:
    """`[display] target_fps` as a number: "auto" is 60 on a GPU and 20 on a CPU; 0 = off."""
    if setting == "auto":
        return AUTO_FPS.get(provider, AUTO_FPS_CPU)
    return int(setting)


class FrameBudget:
    """Holds a target frame rate by cutting steps, then the dream size; restores them when
    there is room. Hysteresis: a cut needs PATIENCE slow frames in a row, a restore needs
    PATIENCE fast ones AND a predicted frame time inside the budget, so it cannot flap."""

    SLOW = 1.15  # × budget: too slow
    FAST = 0.8  # × budget: room to spare
    PATIENCE = 8
    SETTLE = 2  # frames ignored after a change (buffers rebuild, ORT plans the new shape)
    SIZE_LEVELS = (1.0, 0.85, 0.7, 0.6, 0.5, 0.42, 0.35, 0.3)  # of the ceiling's sides
    START_HEADROOM = 0.85  # × budget: the first guess leaves room for what the cost model misses
    OTHER_WORK_MS = 20.0  # capture, flow, compositing and display around the steps (a CPU's, 720p)

    def __init__(self, target_fps: int, min_size: int = 75) -> None:
        self.target_fps = target_fps
        self.budget_ms = 1000.0 / target_fps if target_fps > 0 else None
        self.min_size = min_size
        self.steps_cut = 0
        self.size_level = 0
        self.cost: StepCost | None = None
        self._average_ms: float | None = None
        self._slow = self._fast = 0
        self._settle = 0

    @property
    def active(self) -> bool:
        return self.steps_cut > 0 or self.size_level > 0

    def apply(self, params: Params) -> Params:
        """`params` as the dreamer should run them now (the user's values minus the cuts)."""
        if not self.active:
            return params
        scale = self.SIZE_LEVELS[self.size_level]
        at_least_one_step = min(params.steps, 1)  # a cut never turns the dream off
        return dataclasses.replace(
            params,
            steps=max(at_least_one_step, params.steps - self.steps_cut),
            dream_height=self._scaled(params.dream_height, scale, "dream_height"),
            dream_width=self._scaled(params.dream_width, scale, "dream_width"),
        )

    def start(self, params: Params, cost: StepCost) -> None:
        """The first rung (steps cut first, then size) whose predicted frame time fits the budget."""
        self.cost = cost
        if self.budget_ms is None:
            return
        limit = self.budget_ms * self.START_HEADROOM
        for steps_cut, size_level in self._rungs(params):
            self.steps_cut, self.size_level = steps_cut, size_level
            if self.predicted_ms(self.apply(params)) <= limit:
                break
        self._changed(params, "start")

    def predicted_ms(self, effective: Params) -> float:
        """Frame time the measured step cost predicts for `effective` (octaves ignored: one on a CPU)."""
        megapixels = effective.dream_height * effective.dream_width / 1e6
        ms_per_mpx = self.cost.ms_per_mpx if self.cost is not None else 0.0
        return self.OTHER_WORK_MS + ms_per_mpx * megapixels * max(1, effective.steps)

    def _rungs(self, params: Params) -> list[tuple[int, int]]:
        steps_rungs = [(cut, 0) for cut in range(max(1, params.steps))]
        last_cut = steps_rungs[-1][0]
        return steps_rungs + [(last_cut, level) for level in range(1, len(self.SIZE_LEVELS))]

    def describe(self, params: Params) -> str | None:
        """What adaptive quality chose and why, for the HUD and the exit summary (None when off)."""
        if self.budget_ms is None:
            return None
        effective = self.apply(params)
        chose = (f"steps {effective.steps}, dream {effective.dream_width}x{effective.dream_height}"
                 f" (ceiling {params.steps}, {params.dream_width}x{params.dream_height})")
        why = (f"; one step {self.cost.ms_per_mpx:.0f} ms per megapixel ({self.cost.source})"
               if self.cost is not None else "")
        return f"adaptive {self.target_fps} fps: {chose}{why}"

    def record(self, work_ms: float, params: Params) -> None:
        """One frame's working time (without pacing sleeps); may cut or restore one notch."""
        if self.budget_ms is None:
            return
        if self._settle > 0:
            self._settle -= 1
            return
        self._average_ms = work_ms if self._average_ms is None else 0.7 * self._average_ms + 0.3 * work_ms
        self._slow = self._slow + 1 if self._average_ms > self.budget_ms * self.SLOW else 0
        self._fast = self._fast + 1 if self._average_ms < self.budget_ms * self.FAST else 0
        if self._slow >= self.PATIENCE:
            self._cut(params)
        elif self._fast >= self.PATIENCE:
            self._restore(params, self._average_ms)

    def _cut(self, params: Params) -> None:
        if params.steps - self.steps_cut > 1:
            self.steps_cut += 1
        elif self.size_level + 1 < len(self.SIZE_LEVELS):
            self.size_level += 1
        else:
            return
        self._changed(params)

    def _restore(self, params: Params, average_ms: float) -> None:
        """Undo the last cut (size first), unless the predicted frame time would break the budget."""
        budget_ms: float = self.budget_ms  # type: ignore[assignment]
        if self.size_level > 0:
            area_growth = (self.SIZE_LEVELS[self.size_level - 1] / self.SIZE_LEVELS[self.size_level]) ** 2
            if average_ms * area_growth > budget_ms:
                return
            self.size_level -= 1
        elif self.steps_cut > 0:
            steps = self.apply(params).steps
            if average_ms * (steps + 1) / steps > budget_ms:
                return
            self.steps_cut -= 1
        else:
            return
        self._changed(params)

    def _changed(self, params: Params, why: str = "measured frame times") -> None:
        self._average_ms = None
        self._slow = self._fast = 0
        self._settle = self.SETTLE
        log.info("%s (%s)", self.describe(params), why)

    def _scaled(self, size: int, scale: float, name: str) -> int:
        smallest = max(self.min_size, int(PARAM_RANGES[name].low))
        return max(smallest, int(size * scale) // 2 * 2)
