"""What each key does (and each command a control sends, which acts like its key)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from livedream.control.inbox import COMMANDS
from livedream.params import Params
from livedream.pipeline.display import Action

log = logging.getLogger(__name__)

STRENGTH_STEP = 0.005  # one +/- key press
REMOTE_COMMANDS = COMMANDS  # a control's commands (`control.inbox`, their owner) act like their keys
LEARNABLE = {"strength_up": "strength", "strength_down": "strength", "steps_up": "steps", "steps_down": "steps"}

PresetRecall = Callable[[int, float], bool]
"""Keys 1–9: `recall(slot, now)` starts that preset (through a control, e.g. as a
crossfade) and says whether it exists; it logs its own warnings."""

class Recording(Protocol):
    """Key r and the record commands: the recording output, started and stopped from the loop."""

    @property
    def recording(self) -> bool: ...

    def start(self) -> Path: ...

    def stop(self) -> Path | None: ...


@dataclass(frozen=True)
class Request:
    """Something a key asks of the loop by name, which `LiveApp.step` carries out: one of
    REQUESTS; `detail` is the parameter a "learn" arms."""

    name: str
    detail: str = ""


REQUESTS = ("quit", "fullscreen", "hud", "help", "pause", "screenshot", "guide_from_source", "learn", "mask_view")

Intent = Params | Request
"""A key's answer: the `Params` to run with from now, or a `Request` of the loop."""


class KeyActions:
    """A table from action name to the intent it makes: keys change `Params` or ask the loop
    for something (`Request`), never reach into the app; the loop applies the intents."""

    def __init__(self, recall_preset: PresetRecall | None = None, recording: Recording | None = None) -> None:
        self._recall_preset = recall_preset
        self._recording = recording
        self._learn_next = False  # key m was pressed: the next parameter key arms MIDI learn
        self._handlers: dict[str, Callable[[Params, int | None, float], Intent | None]] = {
            "quit": lambda p, _, now: Request("quit"),
            "toggle_fullscreen": lambda p, _, now: Request("fullscreen"),
            "toggle_hud": lambda p, _, now: Request("hud"),
            "mask_view": lambda p, _, now: Request("mask_view"),
            "help": lambda p, _, now: Request("help"),
            "pause": lambda p, _, now: Request("pause"),
            "strength_up": lambda p, _, now: changed(p, strength=round(p.strength + STRENGTH_STEP, 4)),
            "strength_down": lambda p, _, now: changed(p, strength=round(p.strength - STRENGTH_STEP, 4)),
            "steps_up": lambda p, _, now: changed(p, steps=p.steps + 1),
            "steps_down": lambda p, _, now: changed(p, steps=p.steps - 1),
            "screenshot": lambda p, _, now: Request("screenshot"),
            "record": lambda p, _, now: self._record(None),
            "record_start": lambda p, _, now: self._record(True),
            "record_stop": lambda p, _, now: self._record(False),
            "learn": lambda p, _, now: self._arm_learn(),
            "guide": lambda p, _, now: Request("guide_from_source"),
            "guide_clear": lambda p, _, now: changed(p, guide=""),
            "where": lambda p, _, now: changed(p, where=p.where.next()),
            "preset": lambda p, slot, now: self._preset(slot, now),
        }

    def intents(self, actions: list[Action], params: Params, now: float) -> list[Intent]:
        """What `actions` ask, in order; each Params change builds on the one before."""
        intents: list[Intent] = []
        for action in actions:
            if self._learn_next and action.name in LEARNABLE:
                self._learn_next = False
                intents.append(Request("learn", LEARNABLE[action.name]))
                continue
            self._learn_next = False
            handler = self._handlers.get(action.name)
            if handler is None:
                log.debug("no handler for action %s", action.name)
                continue
            intent = handler(params, action.value, now)
            if intent is not None:
                intents.append(intent)
                params = intent if isinstance(intent, Params) else params
        return intents

    def _record(self, on: bool | None) -> None:
        """on: True start, False stop, None toggle."""
        if self._recording is None:
            log.info("recording is not available here")
            return
        if on is None:
            on = not self._recording.recording
        if on:
            self._recording.start()
        else:
            self._recording.stop()

    def _arm_learn(self) -> None:
        self._learn_next = True
        log.info("MIDI learn: press the key of the parameter to learn (+/- strength, ]/[ steps)")

    def _preset(self, slot: int | None, now: float) -> None:
        if slot is None:
            return
        if self._recall_preset is None:
            log.info("preset %d not defined", slot)
        elif self._recall_preset(slot, now):
            log.info("preset %d", slot)


def changed(params: Params, **changes: float | int | str) -> Params:
    """A key's change: clamped to the allowed ranges, warnings logged, never raised."""
    result, warnings = params.clamped(**changes)
    for warning in warnings:
        log.warning("key: %s", warning)
    differences = params.differences(result)
    if differences:
        log.info("key: %s", ", ".join(differences))
    return result


def remote_actions(commands: list[str]) -> list[Action]:
    """The commands a control sent, as the actions of their keys; unknown ones are logged."""
    actions = []
    for command in commands:
        if command in REMOTE_COMMANDS:
            actions.append(Action(command))
        else:
            log.warning("control command %r not known; known: %s", command, ", ".join(REMOTE_COMMANDS))
    return actions
