"""A thread-safe mailbox from network/device threads (OSC, web, MIDI) to the frame loop.

Senders call `set_param`, `select_preset` or `command` from any thread; values are checked
and clamped right away (a warning is logged, never raised) and kept. The frame loop's
`update` applies them once per frame; `drain_commands` hands out the commands. Per
address the newest value wins, so a flood of 10,000 messages costs the loop at most one
change per parameter and memory stays the same size.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livedream.files import IMAGE_FORMATS
from livedream.media.pictures import readable_picture
from livedream.params import (
    LIVE_PARAMS,
    NUMERIC_PARAMS,
    Params,
    is_objective_name,
    live_range,
    live_value,
    objective_problem,
    objective_term,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    """A show command a control may send; the app acts on it as on its key (`live.keys`).
    Every control shows it from here: the web panel as a button with `label`; OSC (and so
    OSCQuery) as an address of its own that takes no value, or, with `switch`, as one value
    of a shared address (`/livedream/record 1` starts a recording, `0` stops it)."""

    name: str
    label: str
    switch: tuple[str, int] | None = None  # (address, value) where the command is one value of a switch

    @property
    def takes_value(self) -> bool:
        """Whether the command is sent as a value (of its switch), not as an address alone."""
        return self.switch is not None


# The one list of show commands: adding one here adds it to OSC, OSCQuery and the web panel.
SHOW_COMMANDS = (
    Command("screenshot", "Screenshot"),
    Command("record_start", "Record", switch=("record", 1)),
    Command("record_stop", "Stop recording", switch=("record", 0)),
    Command("pause", "Pause"),
    Command("mask_view", "Visitor mask"),  # the operator's window only (`live.maskview`)
)
COMMANDS = tuple(command.name for command in SHOW_COMMANDS)  # the names a control may send
MAX_COMMANDS = 64  # queued commands beyond this drop the oldest
MAX_TEXT = 64  # longest preset name accepted from the network
MAX_PATH = 1024  # longest guide path accepted


def shown(value: Any) -> str:
    """A short repr for log lines: a 1 MB string from the network must not fill the log."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


class Inbox:
    """Queued changes from other threads; a `Control` that applies them once per frame."""

    def __init__(self, select_preset=None) -> None:
        self._lock = threading.Lock()
        # ("param", name) or ("preset",) → the newest value, in the order they last arrived
        self._changes: collections.OrderedDict[tuple[str, ...], Any] = collections.OrderedDict()
        self._commands: collections.deque[str] = collections.deque(maxlen=MAX_COMMANDS)
        self._select_preset = select_preset  # (name_or_index, now) -> bool, called on the frame thread
        self._learn: str | None = None  # a MIDI learn target, armed by OSC or the web panel
        self._sync: dict[str, tuple[Any, ...]] = {}  # "preset" / "beat" → the leader's newest, until taken
        self._sync_heard = False

    def set_param(self, name: str, value: Any, source: str) -> float | int | None:
        """Queue `name = value` clamped to its range; returns the queued value, or None if refused.
        `name` is a numeric Params field or an objective term (`objective/mixed4`, `objective/mixed4:97`,
        the visitors' `visitor_objective/mixed5`)."""
        if isinstance(name, str) and is_objective_name(name) and objective_term(name) is None:
            log.warning("%s: %s; ignored", source, objective_problem(name))
            return None
        if not isinstance(name, str) or live_range(name) is None:
            log.warning("%s: unknown parameter %s; known: %s, objective/<layer>[:<channel>]", source, shown(name),
                        ", ".join(NUMERIC_PARAMS))
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            log.warning("%s: %s needs a number, got %s; ignored", source, name, shown(value))
            return None
        if not math.isfinite(value):
            log.warning("%s: %s needs a finite number, got %s; ignored", source, name, value)
            return None
        term = objective_term(name)
        if term is not None:
            name = term  # one spelling per term: the newest value wins
        elif isinstance(getattr(Params(), name), int):
            value = round(value)
        checked, warnings = Params().clamped(**{name: value})
        for warning in warnings:
            log.warning("%s: %s", source, warning)
        clamped = live_value(checked, name) if term is None else live_range(name).clamp(float(value))
        self._keep(("param", name), clamped)
        return clamped

    def set_choice(self, name: str, value: Any, source: str) -> bool:
        """Queue a named choice (`where`, `guide_mode`); a value it does not take is refused here."""
        if not isinstance(value, str) or len(value) > MAX_PATH:
            log.warning("%s: %s needs a name, got %s; ignored", source, name, shown(value))
            return False
        checked, warnings = Params().clamped(**{name: value})
        if warnings:
            log.warning("%s: %s", source, warnings[0])
            return False
        self._keep(("param", name), getattr(checked, name))
        return True

    def set_guide(self, path: Any, source: str) -> bool:
        """Queue a guide image path ("" clears it); a missing file is refused here, named."""
        if not isinstance(path, str) or len(path) > MAX_PATH:
            log.warning("%s: guide needs an image path, got %s; ignored", source, shown(path))
            return False
        if path and not Path(path).is_file():
            log.warning("%s: guide %s is not a file; ignored", source, shown(path))
            return False
        if path and not readable_picture(Path(path)):
            log.warning("%s: guide %s is not an image (%s); ignored", source, shown(path), IMAGE_FORMATS)
            return False
        self._keep(("param", "guide"), path)
        return True

    def select_preset(self, name_or_index: Any, source: str) -> bool:
        """Queue a preset switch by name or key number; the name is checked on the frame thread."""
        if isinstance(name_or_index, bool) or not isinstance(name_or_index, (str, int)):
            log.warning("%s: preset needs a name or a number, got %s; ignored", source, shown(name_or_index))
            return False
        if isinstance(name_or_index, str) and len(name_or_index) > MAX_TEXT:
            log.warning("%s: preset name of %d characters refused", source, len(name_or_index))
            return False
        self._keep(("preset",), name_or_index)
        return True

    def _keep(self, address: tuple[str, ...], value: Any) -> None:
        with self._lock:
            self._changes.pop(address, None)  # re-inserted last: the newest arrival is applied last
            self._changes[address] = value

    @property
    def pending(self) -> int:
        """Changes waiting for the next frame (at most one per parameter, plus a preset)."""
        with self._lock:
            return len(self._changes)

    def arm_learn(self, target: Any, source: str, known_presets: tuple[str, ...] = ()) -> bool:
        """MIDI learn: the next CC (for a parameter) or note (for a preset) binds to `target`."""
        if not isinstance(target, str) or (target not in LIVE_PARAMS and target not in known_presets):
            log.warning("%s: learn needs a parameter (%s, objective/<layer>) or a preset name, got %s; ignored",
                        source, ", ".join(NUMERIC_PARAMS), shown(target))
            return False
        with self._lock:
            self._learn = target
        log.info("%s: MIDI learn armed for %s: move a control (or press a pad for a preset)", source, target)
        return True

    def take_learn_target(self) -> str | None:
        """The armed learn target, disarming it (called by MIDI for the next message)."""
        with self._lock:
            target, self._learn = self._learn, None
        return target

    @property
    def learning(self) -> str | None:
        return self._learn

    def sync_message(self, kind: str, args: tuple[Any, ...], source: str) -> bool:
        """A leader's message: "preset" (name, fade s) or "beat" (program step, seconds into it)."""
        types = {"preset": (str, (int, float)), "beat": (int, (int, float))}.get(kind)
        if types is None or len(args) != 2 or not all(
                isinstance(arg, kind_) and not isinstance(arg, bool) for arg, kind_ in zip(args, types)):
            log.warning("%s: needs /sync/preset s f or /sync/beat i f, got %s %s; ignored", source, shown(kind),
                        shown(args))
            return False
        if isinstance(args[1], float) and not math.isfinite(args[1]) or (kind == "preset" and len(args[0]) > MAX_TEXT):
            log.warning("%s: %s refused", source, shown(args))
            return False
        with self._lock:
            self._sync[kind] = args
            self._sync_heard = True
        return True

    def take_sync(self) -> tuple[dict[str, tuple[Any, ...]], bool]:
        """The leader's newest messages since the last call, and whether anything was heard."""
        with self._lock:
            messages, heard = self._sync, self._sync_heard
            self._sync, self._sync_heard = {}, False
        return messages, heard

    def command(self, name: str) -> None:
        if name not in COMMANDS:
            raise ValueError(f"unknown command {name!r}")  # a wiring bug, not live input
        with self._lock:
            self._commands.append(name)

    def drain_commands(self) -> list[str]:
        with self._lock:
            commands = list(self._commands)
            self._commands.clear()
        return commands

    def update(self, params: Params, now: float) -> Params:
        with self._lock:
            changes = list(self._changes.items())
            self._changes.clear()
        for address, value in changes:
            if address[0] == "param":
                params, warnings = params.clamped(**{address[1]: value})
                for warning in warnings:  # already clamped on arrival; kept as a guard
                    log.warning("%s", warning)
            elif self._select_preset is not None:
                self._select_preset(value, now)
        return params
