"""The live loop's one seam with show control: what the loop asks of each control per frame."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from livedream.params import Params


class Controls(Protocol):
    """A live control input (the control hub, a test probe): the loop's one seam with control.

    All methods are called once per frame on the loop's thread and must not block.
    `PassiveControls` has them all as no-ops, for controls that need only some.
    """

    def update(self, params: Params, now: float) -> Params:
        """`params` with this input's pending changes applied (unchanged if none). Values
        from the outside world go through `Params.clamped`."""
        ...

    def observe(self, frame_rgb: np.ndarray, now: float) -> None:
        """Each new source frame, before it is dreamed (motion detection, attract mode)."""

    def publish(self, frame_rgb: np.ndarray, fps: float, now: float) -> None:
        """Each frame as shown, unscaled (recording, virtual camera, web preview)."""

    def drain_commands(self) -> list[str]:
        """Commands since the last frame; those in `keys.REMOTE_COMMANDS` act as the keys."""
        ...

    def take_command(self, command: str) -> None:
        """A key meant for show control, e.g. "learn strength" (key m, then the key of strength)."""

    def status_lines(self, now: float) -> list[str]:
        """Lines for the HUD (preset, motion level, listeners, recording)."""
        ...


class PassiveControls:
    """A `Controls` that changes nothing, observes nothing and says nothing: subclass it."""

    def update(self, params: Params, now: float) -> Params:
        return params

    def observe(self, frame_rgb: np.ndarray, now: float) -> None:
        pass

    def publish(self, frame_rgb: np.ndarray, fps: float, now: float) -> None:
        pass

    def drain_commands(self) -> list[str]:
        return []

    def take_command(self, command: str) -> None:
        pass

    def status_lines(self, now: float) -> list[str]:
        return []
