"""Adaptive quality: the dream at the size that makes the look, on a machine too slow for the config.

The shown picture keeps the camera's rate whatever the dream costs (`live.worker`); what a slow
machine gives up is dream rate, not size. The config's steps and dream size are ceilings.
Measured with an independent InceptionV3 (`testing.deepdream_score`, README: Live is DeepDream),
a dream's look falls steeply below the size it is shown at: at 640x360, 24 steps dreamed at
544x306 carry 0.65 of a still's DeepDream, at 416x234 0.25, at 288x162 0.08 (mixed5's cells
become a sixth of the screen, blurred by the upscale). So the size is cut last and never
below LOOK_FLOOR of the ceiling's sides; steps are cut first. `start` picks the rung the
measured step cost (`runtime.cost.StepCost`) predicts will dream within the budget (a dream
per second on a CPU: the detail laid over the picture is then at most about a second old);
`record` then moves one rung at a time on the dream times it sees, with hysteresis, so the
look changes slowly and never flaps."""

from __future__ import annotations

import dataclasses
import logging

from livedream.live.schedule import whole_cost
from livedream.params import PARAM_RANGES, Params
from livedream.runtime.cost import StepCost

log = logging.getLogger(__name__)

# CUDA: a dream per shown frame. WebGPU is a laptop's or a kiosk's GPU (Apple, AMD, Intel) as
# often as a big one; 15 is a guess, not a measurement (no such GPU was lent to a session): the
# budget then cuts steps and, at worst, the size down to LOOK_FLOOR, which still draws motifs.
AUTO_DREAMS_PER_S = {"CUDA": 60, "WebGPU": 15}
AUTO_DREAMS_PER_S_CPU = 1


def resolve_dream_rate(target_fps: int | str, provider: str) -> int:
    """The dream rate adaptive quality holds: 60 a second on CUDA, 15 on WebGPU, 1 on a CPU; 0 (off) when
    `[display] target_fps` is 0. The shown rate is target_fps's own (`live.build.show_rate`)."""
    if target_fps == 0:
        return 0
    return AUTO_DREAMS_PER_S.get(provider, AUTO_DREAMS_PER_S_CPU)


class FrameBudget:
    """Holds a dream rate by cutting steps, then the dream size (not below LOOK_FLOOR);
    restores them when there is room. Hysteresis: a cut needs PATIENCE slow dreams in a row,
    a restore needs PATIENCE fast ones AND a predicted dream time inside the budget, so it
    cannot flap."""

    SLOW = 1.15  # × budget: too slow
    FAST = 0.8  # × budget: room to spare
    PATIENCE = 8
    SETTLE = 2  # dreams ignored after a change (buffers rebuild, ORT plans the new shape)
    SIZE_LEVELS = (1.0, 0.85, 0.7)  # of the ceiling's sides; the last is the look's floor
    LOOK_FLOOR = SIZE_LEVELS[-1]
    START_HEADROOM = 0.85  # × budget: the first guess leaves room for what the cost model misses
    OTHER_WORK_MS = 20.0  # resize, flow, warp and hand-over around the steps (a CPU's, 720p)

    def __init__(self, dreams_per_s: int, min_size: int = 75) -> None:
        self.dreams_per_s = dreams_per_s
        self.budget_ms = 1000.0 / dreams_per_s if dreams_per_s > 0 else None
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
        """The first rung (steps cut first, then size) whose predicted dream time fits the budget."""
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
        """Dream time the measured step cost predicts for `effective`: a whole-frame dream, every
        octave (`live.schedule`)."""
        megapixels = effective.dream_height * effective.dream_width / 1e6
        ms_per_mpx = self.cost.ms_per_mpx if self.cost is not None else 0.0
        return self.OTHER_WORK_MS + ms_per_mpx * megapixels * max(1.0, whole_cost(effective))

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
        return f"adaptive {self.dreams_per_s} dream(s)/s: {chose}{why}"

    def record(self, work_ms: float, params: Params) -> None:
        """One dream's time; may cut or restore one notch."""
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
        """Undo the last cut (size first), unless the predicted dream time would break the budget."""
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

    def _changed(self, params: Params, why: str = "measured dream times") -> None:
        self._average_ms = None
        self._slow = self._fast = 0
        self._settle = self.SETTLE
        log.info("%s (%s)", self.describe(params), why)

    def _scaled(self, size: int, scale: float, name: str) -> int:
        smallest = max(self.min_size, int(PARAM_RANGES[name].low))
        return max(smallest, int(size * scale) // 2 * 2)
