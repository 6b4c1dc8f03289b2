"""MIDI: control changes set [dream] values over their range, notes select presets.

`MidiMapping.handle(message)` is the whole mapping (pure, tested with `mido.Message`
objects) and posts to the `Inbox`. `MidiInput` opens a port with a callback; it needs the
`python-rtmidi` backend, and without it (or without any port) MIDI says so in one line and
stays off — never an error for the show.
"""

from __future__ import annotations

import logging
from typing import Any

from livedream.config import MidiConfig
from livedream.control.inbox import Inbox
from livedream.params import PARAM_RANGES, Params

log = logging.getLogger(__name__)


def cc_value(field: str, value: int) -> float | int:
    """CC 0..127 scaled over the field's range (integers round)."""
    allowed = PARAM_RANGES[field]
    scaled = allowed.low + (allowed.high - allowed.low) * min(127, max(0, value)) / 127
    return round(scaled) if isinstance(getattr(Params(), field), int) else scaled


class MidiMapping:
    """[midi] cc / notes / channel applied to single messages."""

    def __init__(self, config: MidiConfig, inbox: Inbox) -> None:
        self._cc = dict(config.cc)
        self._notes = dict(config.notes)
        self._channel = config.channel - 1 if config.channel else None  # mido counts channels from 0
        self._inbox = inbox

    def handle(self, message: Any) -> bool:
        """Post what `message` means; False when it means nothing here (ignored quietly)."""
        try:
            kind = message.type
            if self._channel is not None and getattr(message, "channel", self._channel) != self._channel:
                return False
            if kind == "control_change" and message.control in self._cc:
                field = self._cc[message.control]
                return self._inbox.set_param(field, cc_value(field, message.value), f"MIDI CC {message.control}") is not None
            if kind == "note_on" and message.velocity > 0 and message.note in self._notes:
                return self._inbox.select_preset(self._notes[message.note], f"MIDI note {message.note}")
        except (AttributeError, TypeError) as error:  # not a mido message: a warning, not a crash
            log.warning("MIDI: cannot read %r (%s); ignored", message, error)
        return False


class MidiInput:
    """An open MIDI input port feeding a `MidiMapping`; `open` returns None when MIDI is unavailable."""

    def __init__(self, port: Any) -> None:
        self._port = port
        self.name = port.name

    @classmethod
    def open(cls, config: MidiConfig, mapping: MidiMapping) -> "MidiInput | None":
        try:
            import mido

            names = mido.get_input_names()
        except ImportError as error:
            log.warning("MIDI off: the backend is missing (%s); install it with: pip install python-rtmidi", error.name or error)
            return None
        except Exception as error:  # rtmidi may fail to reach ALSA/CoreMIDI
            log.warning("MIDI off: cannot list MIDI inputs (%s)", error)
            return None
        if not names:
            log.warning("MIDI off: no MIDI input ports found")
            return None
        name = config.input or names[0]
        if name not in names:
            log.warning("MIDI off: no input port %r; ports: %s (set [midi] input)", name, ", ".join(names))
            return None
        try:
            return cls(mido.open_input(name, callback=mapping.handle))
        except Exception as error:
            log.warning("MIDI off: cannot open %r (%s)", name, error)
            return None

    def close(self) -> None:
        self._port.close()
