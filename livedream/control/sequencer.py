"""A timed playlist of presets for unattended shows, driven by the clock it is given.

Each step holds its preset for `hold` seconds (its crossfade included) and then asks the
`PresetBank` for the next one with that step's `fade`. With `loop` it starts again after
the last step; with `shuffle` every round plays in a new order drawn from a seeded RNG,
so the same seed replays the same show.
"""

from __future__ import annotations

import random

from livedream.config import SequencerConfig, SequenceStep
from livedream.control.presets import PresetBank
from livedream.errors import UserError
from livedream.params import Params


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
