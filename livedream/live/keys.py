"""What each key does (and each command a control sends, which acts like its key)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from livedream.pipeline.display import Action

if TYPE_CHECKING:
    from livedream.live.app import LiveApp

log = logging.getLogger(__name__)

STRENGTH_STEP = 0.005  # one +/- key press
REMOTE_COMMANDS = ("screenshot", "pause", "record_start", "record_stop")  # a control's commands act like keys
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


class KeyActions:
    """A table from action name to what it does to the app; keys only change `Params` or
    ask the app for something (stop, pause, screenshot), never reach inside a stage."""

    def __init__(self, app: "LiveApp", recall_preset: PresetRecall | None = None,
                 recording: Recording | None = None) -> None:
        self._app = app
        self._recall_preset = recall_preset
        self._recording = recording
        self._learn_next = False  # key m was pressed: the next parameter key arms MIDI learn
        display = app.display
        self._handlers: dict[str, Callable[[int | None], None]] = {
            "quit": lambda _: app.stop("quit"),
            "toggle_fullscreen": lambda _: display.toggle_fullscreen(),
            "toggle_hud": lambda _: display.toggle_hud(),
            "help": lambda _: display.toggle_help(),
            "pause": lambda _: self._pause(),
            "strength_up": lambda _: self._strength(+STRENGTH_STEP),
            "strength_down": lambda _: self._strength(-STRENGTH_STEP),
            "steps_up": lambda _: self._change(steps=app.params.steps + 1),
            "steps_down": lambda _: self._change(steps=app.params.steps - 1),
            "screenshot": lambda _: app.request_screenshot(),
            "record": lambda _: self._record(None),
            "record_start": lambda _: self._record(True),
            "record_stop": lambda _: self._record(False),
            "learn": lambda _: self._arm_learn(),
            "guide": lambda _: self._guide_from_source(),
            "guide_clear": lambda _: self._change(guide=""),
            "preset": self._preset,
        }

    def run(self, actions: list[Action]) -> None:
        for action in actions:
            if self._learn_next and action.name in LEARNABLE:
                self._learn(LEARNABLE[action.name])
                continue
            self._learn_next = False
            handler = self._handlers.get(action.name)
            if handler is None:
                log.debug("no handler for action %s", action.name)
            else:
                handler(action.value)

    def _strength(self, change: float) -> None:
        self._change(strength=round(self._app.params.strength + change, 4))

    def _change(self, **changes: float | int | str) -> None:
        """Key changes: clamped to the allowed ranges, warnings logged, never raised."""
        app = self._app
        changed, warnings = app.params.clamped(**changes)
        for warning in warnings:
            log.warning("key: %s", warning)
        differences = app.params.differences(changed)
        if differences:
            log.info("key: %s", ", ".join(differences))
        app.params = changed

    def _guide_from_source(self) -> None:
        """"The room dreams of the visitor": the frame in front of the camera, saved, becomes the
        guide; its features are read once, on the next frame."""
        frame = self._app.source_frame
        if frame is None:
            log.info("key g: no source frame yet to guide by")
            return
        path = self._app.screenshots.save_guide(frame.image)
        if path is not None:
            log.info("key g: guide %s", path)
            self._change(guide=str(path))

    def _pause(self) -> None:
        self._app.paused = not self._app.paused
        log.info("paused" if self._app.paused else "resumed")

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

    def _learn(self, parameter: str) -> None:
        self._learn_next = False
        for control in self._app.controls:
            control.take_command(f"learn {parameter}")

    def _preset(self, slot: int | None) -> None:
        if slot is None:
            return
        if self._recall_preset is None:
            log.info("preset %d not defined", slot)
        elif self._recall_preset(slot, self._app.now):
            log.info("preset %d", slot)


def remote_actions(commands: list[str]) -> list[Action]:
    """The commands a control sent, as the actions of their keys; unknown ones are logged."""
    actions = []
    for command in commands:
        if command in REMOTE_COMMANDS:
            actions.append(Action(command))
        else:
            log.warning("control command %r not known; known: %s", command, ", ".join(REMOTE_COMMANDS))
    return actions
