"""Holding a target frame rate on a machine too slow for the configured dream."""

from __future__ import annotations

import dataclasses
import logging

from livedream.params import PARAM_RANGES, Params

log = logging.getLogger(__name__)


class FrameBudget:
    """Holds a target frame rate by cutting steps, then the dream size; restores them when
    there is room. Hysteresis: a cut needs PATIENCE slow frames in a row, a restore needs
    PATIENCE fast ones AND a predicted frame time inside the budget, so it cannot flap."""

    SLOW = 1.15  # × budget: too slow
    FAST = 0.8  # × budget: room to spare
    PATIENCE = 8
    SETTLE = 2  # frames ignored after a change (buffers rebuild, ORT plans the new shape)
    SIZE_LEVELS = (1.0, 0.85, 0.7, 0.55, 0.4)

    def __init__(self, target_fps: int, min_size: int = 75) -> None:
        self.budget_ms = 1000.0 / target_fps if target_fps > 0 else None
        self.min_size = min_size
        self.steps_cut = 0
        self.size_level = 0
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

    def _changed(self, params: Params) -> None:
        self._average_ms = None
        self._slow = self._fast = 0
        self._settle = self.SETTLE
        effective = self.apply(params)
        log.info(
            "frame budget %.0f ms: steps %d, dream %dx%d",
            self.budget_ms, effective.steps, effective.dream_width, effective.dream_height,
        )

    def _scaled(self, size: int, scale: float, name: str) -> int:
        smallest = max(self.min_size, int(PARAM_RANGES[name].low))
        return max(smallest, int(size * scale) // 2 * 2)
