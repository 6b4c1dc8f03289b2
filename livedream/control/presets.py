"""Named parameter sets and the crossfade between them: switching presets never hard-cuts.

A preset is the [dream] section with the preset's changes applied (`config.Preset`). A
switch blends from whatever is live to the preset over `crossfade` seconds: numbers
interpolate (smoothstep), integers round, objectives blend term by term (the look morphs;
the graph changes only if the deepest layer does), and values that cannot blend — the model and the
dream size, whose change rebuilds buffers — switch once, at the midpoint.

The sequencer: a timed playlist of presets for unattended shows, driven by the clock it is given.

Each step holds its preset for `hold` seconds (its crossfade included) and then asks the
`PresetBank` for the next one with that step's `fade`. With `loop` it starts again after
the last step; with `shuffle` every round plays in a new order drawn from a seeded RNG,
so the same seed replays the same show.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from dataclasses import dataclass

from livedream.config import PresetsConfig, SequencerConfig, SequenceStep
from livedream.errors import UserError
from livedream.objective import blend_objectives
from livedream.params import Params, Where

log = logging.getLogger(__name__)

SWITCH_AT_MIDPOINT = frozenset({"model", "dream_height", "dream_width"})


def blend(start: Params, end: Params, t: float) -> Params:
    """`start` at t = 0, `end` at t = 1 (both exactly), a per-field mix in between."""
    if t <= 0.0:
        return start
    if t >= 1.0:
        return end
    mixed = {}
    for spec in dataclasses.fields(Params):
        a, b = getattr(start, spec.name), getattr(end, spec.name)
        if a == b:
            continue
        if spec.name == "objective":
            mixed[spec.name] = blend_objectives(a, b, t)
        elif spec.name == "visitor_objective":  # () is the room's objective: blend from what it dreams
            mixed[spec.name] = blend_objectives(a or start.objective, b or end.objective, t)
        elif spec.name == "where":
            mixed[spec.name] = Where(a.room * (1.0 - t) + b.room * t, a.visitors * (1.0 - t) + b.visitors * t)
        elif spec.name in SWITCH_AT_MIDPOINT or not isinstance(a, (int, float)) or isinstance(a, bool):
            mixed[spec.name] = b if t >= 0.5 else a
        elif isinstance(a, int):
            mixed[spec.name] = round(a * (1.0 - t) + b * t)
        else:
            mixed[spec.name] = a * (1.0 - t) + b * t
    return dataclasses.replace(start, **mixed)


def smoothstep(t: float) -> float:
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class Crossfade:
    """A blend from `start` to `end` that begins at `began` and lasts `seconds`."""

    start: Params
    end: Params
    began: float
    seconds: float

    def progress(self, now: float) -> float:
        return 1.0 if self.seconds <= 0 else min(1.0, max(0.0, (now - self.began) / self.seconds))

    def at(self, now: float) -> Params:
        return blend(self.start, self.end, smoothstep(self.progress(now)))

    def done(self, now: float) -> bool:
        return self.progress(now) >= 1.0


class PresetBank:
    """The preset library plus the running crossfade; a `Control`.

    `select` only records the wish; the next `update` starts the crossfade from the live
    params it is given, so a switch in the middle of another one continues smoothly. A value
    changed upstream during a fade (a knob, an OSC message) leaves the fade and keeps its
    new value: the performer wins over the preset.
    """

    def __init__(self, config: PresetsConfig, base: Params) -> None:
        self.crossfade_seconds = config.crossfade
        self.names = config.names()
        self._params = {preset.name: preset.params(base) for preset in config.order}
        self._pending: tuple[str, float, float] | None = None  # name, when, fade seconds
        self._fade: Crossfade | None = None
        self._last: Params | None = None  # what update returned, to see upstream changes mid-fade
        self.current: str | None = None

    def params_of(self, name: str) -> Params:
        return self._params[name]

    def models(self) -> set[str]:
        """Every model a preset may switch to: load them all at start, never mid-show."""
        return {params.model for params in self._params.values()}

    def resolve(self, name_or_index: str | int) -> str | None:
        """A preset name from a name, a key number 1–9 (int or digits), or None if unknown."""
        if isinstance(name_or_index, str) and name_or_index in self._params:
            return name_or_index
        if isinstance(name_or_index, str) and name_or_index.strip().isdigit():
            name_or_index = int(name_or_index.strip())
        if isinstance(name_or_index, int) and not isinstance(name_or_index, bool):
            if 1 <= name_or_index <= len(self.names):
                return self.names[name_or_index - 1]
        return None

    def select(self, name_or_index: str | int, now: float, fade: float | None = None) -> bool:
        """Ask for a preset by name or key number; False (and a warning) when there is none."""
        name = self.resolve(name_or_index)
        if name is None:
            shown = repr(name_or_index)[:40]
            log.warning("no preset %s; presets: %s", shown, ", ".join(self.names))
            return False
        self._pending = (name, now, self.crossfade_seconds if fade is None else fade)
        return True

    started: tuple[str, float] | None = None  # (preset, fade seconds) when a switch began this frame

    def update(self, params: Params, now: float) -> Params:
        if self._fade is not None and self._last is not None:
            self._fade = self._without_changed_fields(params)
        self.started = None
        if self._pending is not None:
            name, when, seconds = self._pending
            self._pending = None
            self.started = (name, seconds)
            self.current = name
            self._fade = Crossfade(params, self._params[name], when, seconds)
        if self._fade is None:
            return params
        blended = self._fade.at(now)
        if self._fade.done(now):
            self._fade = None
        self._last = blended
        return blended

    def _without_changed_fields(self, params: Params) -> Crossfade:
        changed = params.changes_from(self._last)
        if not changed:
            return self._fade
        fade = self._fade
        return dataclasses.replace(
            fade, start=dataclasses.replace(fade.start, **changed), end=dataclasses.replace(fade.end, **changed)
        )

    def fade_progress(self, now: float) -> float | None:
        """How far the running crossfade is (0..1), or None when none runs."""
        return None if self._fade is None else self._fade.progress(now)


class Sequencer:
    """Plays `config.playlist` through `bank`; a `Control` placed before the bank in the chain."""

    def __init__(self, config: SequencerConfig, bank: PresetBank) -> None:
        for step in config.playlist:
            if bank.resolve(step.preset) is None:
                raise UserError(f"[sequencer] playlist names {step.preset!r}, which is not a preset; presets: {', '.join(bank.names)}")
        self._config = config
        self._bank = bank
        self._random = random.Random(config.seed)
        self._round: list[SequenceStep] = []
        self._position = -1
        self._step_began: float | None = None
        self.finished = False

    @property
    def step(self) -> SequenceStep | None:
        return self._round[self._position] if self._round and self._position >= 0 else None

    def update(self, params: Params, now: float) -> Params:
        if self.finished:
            return params
        if self._step_began is None:
            self._advance(now)
        elif now - self._step_began >= self.step.hold:
            self._advance(self._step_began + self.step.hold if now - self._step_began < 2 * self.step.hold else now)
        return params

    def place(self, now: float) -> tuple[int, float] | None:
        """(step index, seconds into it): what a sync leader tells its followers."""
        if self.step is None or self._step_began is None:
            return None
        return self._position, now - self._step_began

    def follow(self, position: int, elapsed: float, now: float) -> None:
        """Take the leader's place in the program (its preset switches come separately), so that
        this screen carries on from there if the leader goes silent."""
        if not self._round:
            self._round = list(self._config.playlist)
            if self._config.shuffle:
                self._random.shuffle(self._round)
        if 0 <= position < len(self._round):
            self._position, self._step_began, self.finished = position, now - elapsed, False

    def status(self, now: float) -> str:
        step = self.step
        if step is None:
            return "program not started"
        place = f"program {self._position + 1}/{len(self._round)} {step.preset}"
        if self.finished:
            return f"{place} (end)"
        left = max(0.0, step.hold - (now - self._step_began))
        return f"{place}, next in {left:.0f} s"

    def _advance(self, when: float) -> None:
        if self._position + 1 >= len(self._round):
            if self._round and not self._config.loop:
                self.finished = True
                return
            self._round = list(self._config.playlist)
            if self._config.shuffle:
                self._random.shuffle(self._round)
            self._position = 0
        else:
            self._position += 1
        self._step_began = when
        self._bank.select(self.step.preset, when, fade=self.step.fade)
