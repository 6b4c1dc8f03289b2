"""The live dream's tunable parameters: one frozen value that control sources replace.

Keys, OSC, MIDI, presets and the sequencer never reach into a stage; they produce a new
`Params` (with `dataclasses.replace` or `Params.clamped`) and the live loop picks up the
latest one once per frame. A preset is a named `Params`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    """Allowed closed interval of a numeric parameter, used by validation and clamping."""

    low: float
    high: float

    def clamp(self, value: float) -> float:
        return min(self.high, max(self.low, value))

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Params:
    """Everything the dreamer reads per frame. Sizes are (height, width) in pixels."""

    model: str = "default"  # graph name in models/ ("default" = mixed3 + mixed5)
    strength: float = 0.02  # step size of one normalised ascent step
    steps: int = 2  # ascent steps per octave per frame
    octaves: int = 1  # octaves per frame, coarsest first
    octave_scale: float = 1.3
    dream_height: int = 360
    dream_width: int = 640
    decay: float = 0.9  # share of the previous frame's dream detail carried forward
    zoom: float = 0.0  # feedback zoom per frame (0.01 = 1 % in)
    rotate: float = 0.0  # feedback rotation per frame, degrees
    shift_x: float = 0.0  # feedback translation per frame, pixels of the dream size
    shift_y: float = 0.0

    def clamped(self, **changes: float | int | str) -> tuple["Params", list[str]]:
        """Return a copy with `changes` applied, each clamped to its range, plus warnings.

        Live input (OSC, MIDI, keys) goes through here: an out-of-range value is clamped
        and reported, never raised, so a stray message cannot stop a show.
        """
        warnings: list[str] = []
        fields = {f.name: f for f in dataclasses.fields(self)}
        applied: dict[str, object] = {}
        for name, value in changes.items():
            if name not in fields:
                warnings.append(f"unknown parameter {name!r}; known: {', '.join(fields)}")
                continue
            kind = type(getattr(self, name))
            try:
                coerced = kind(value)
            except (TypeError, ValueError):
                warnings.append(f"{name}: {value!r} is not a {kind.__name__}; ignored")
                continue
            if isinstance(coerced, float) and coerced != coerced:  # NaN
                warnings.append(f"{name}: NaN ignored")
                continue
            allowed = PARAM_RANGES.get(name)
            if allowed is not None and coerced not in allowed:
                clamped_value = kind(allowed.clamp(coerced))
                warnings.append(
                    f"{name}: {value!r} is outside {allowed.low}..{allowed.high}; "
                    f"clamped to {clamped_value}"
                )
                coerced = clamped_value
            applied[name] = coerced
        return dataclasses.replace(self, **applied), warnings

    def changes_from(self, before: "Params") -> dict[str, object]:
        """The fields whose value here differs from `before`'s, with this side's values."""
        return {
            spec.name: getattr(self, spec.name)
            for spec in dataclasses.fields(self)
            if getattr(self, spec.name) != getattr(before, spec.name)
        }

    def differences(self, new: "Params") -> list[str]:
        """`name old → new` for each field that `new` changes, for the log."""
        return [f"{name} {getattr(self, name)} → {value}" for name, value in new.changes_from(self).items()]


PARAM_RANGES: dict[str, Range] = {
    "strength": Range(0.0, 0.5),
    "steps": Range(0, 50),
    "octaves": Range(1, 8),
    "octave_scale": Range(1.05, 2.0),
    "dream_height": Range(75, 4320),
    "dream_width": Range(75, 7680),
    "decay": Range(0.0, 1.0),
    "zoom": Range(-0.2, 0.2),
    "rotate": Range(-10.0, 10.0),
    "shift_x": Range(-50.0, 50.0),
    "shift_y": Range(-50.0, 50.0),
}
