"""MIDI: control changes set [dream] values over their range, notes select presets.

`MidiMapping.handle(message)` is the whole mapping (pure, tested with `mido.Message`
objects) and posts to the `Inbox`. MIDI learn: once a target is armed (OSC
`/livedream/learn strength`, the web panel), the next CC binds to that parameter, or the next
note to that preset; learned bindings override the config's and are kept in a small JSON
file in the state folder (the user's config.toml is never rewritten). `MidiInput` opens a port with a callback; it needs the
`python-rtmidi` backend, and without it (or without any port) MIDI says so in one line and
stays off — never an error for the show.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from livedream.config import MidiConfig
from livedream.control.inbox import Inbox
from livedream.errors import UserError, first_line
from livedream.files import write_atomically
from livedream.params import LIVE_PARAMS, Params, fader_range, live_value

log = logging.getLogger(__name__)


def cc_value(field: str, value: int) -> float | int:
    """CC 0..127 scaled over the field's fader range (integers round; an objective term 0..4)."""
    allowed = fader_range(field)
    assert allowed is not None, field  # [midi.cc] and learn accept only live names
    scaled = allowed.low + (allowed.high - allowed.low) * min(127, max(0, value)) / 127
    return round(scaled) if isinstance(live_value(Params(), field), int) else scaled


LEARNED_FILE = "midi-learned.json"


class MidiMapping:
    """[midi] cc / notes / channel applied to single messages, plus what was learned."""

    def __init__(self, config: MidiConfig, inbox: Inbox, state_folder: Path | None = None) -> None:
        self._cc = dict(config.cc)
        self._notes = dict(config.notes)
        self._channel = config.channel - 1 if config.channel else None  # mido counts channels from 0
        self._inbox = inbox
        self._learned_file = state_folder / LEARNED_FILE if state_folder is not None else None
        self.learned: dict[str, dict[int, str]] = {"cc": {}, "notes": {}}
        self._load_learned()

    def handle(self, message: Any) -> bool:
        """Post what `message` means; False when it means nothing here (ignored quietly)."""
        try:
            kind = message.type
            if self._channel is not None and getattr(message, "channel", self._channel) != self._channel:
                return False
            if kind in ("control_change", "note_on"):
                self._learn_from(message)  # and then the message acts, so the knob moves what it just learned
            if kind == "control_change" and message.control in self._cc:
                field = self._cc[message.control]
                return self._inbox.set_param(field, cc_value(field, message.value), f"MIDI CC {message.control}") is not None
            if kind == "note_on" and message.velocity > 0 and message.note in self._notes:
                return self._inbox.select_preset(self._notes[message.note], f"MIDI note {message.note}")
        except (AttributeError, TypeError) as error:  # not a mido message: a warning, not a crash
            log.warning("MIDI: cannot read %r (%s); ignored", message, error)
        return False

    def bindings_lines(self) -> list[str]:
        """The learned bindings, for the HUD and the web panel."""
        return ([f"MIDI CC {cc} → {name} (learned)" for cc, name in sorted(self.learned["cc"].items())]
                + [f"MIDI note {note} → {name} (learned)" for note, name in sorted(self.learned["notes"].items())])

    def _learn_from(self, message: Any) -> bool:
        """Bind `message`'s CC or note to the armed target; True when it did."""
        if self._inbox.learning is None:
            return False
        is_cc = message.type == "control_change"
        target = self._inbox.learning
        if is_cc != (target in LIVE_PARAMS) or (not is_cc and message.velocity == 0):
            return False  # a CC learns a parameter, a note a preset; the other kind passes through
        self._inbox.take_learn_target()
        number = message.control if is_cc else message.note
        table, kind = (self._cc, "cc") if is_cc else (self._notes, "notes")
        table[number] = target
        self.learned[kind][number] = target
        log.info("MIDI learn: %s %d → %s", "CC" if is_cc else "note", number, target)
        self._save_learned()
        return True

    def _load_learned(self) -> None:
        if self._learned_file is None or not self._learned_file.is_file():
            return
        try:
            document = json.loads(self._learned_file.read_text())
            for kind, table in (("cc", self._cc), ("notes", self._notes)):
                for number, target in document.get(kind, {}).items():
                    if str(number).isdigit() and 0 <= int(number) <= 127 and isinstance(target, str):
                        table[int(number)] = self.learned[kind][int(number)] = target
        except (OSError, ValueError, AttributeError) as error:  # a damaged file must not stop the show
            log.warning("MIDI learn: cannot read %s (%s); starting without learned bindings", self._learned_file, error)

    def _save_learned(self) -> None:
        if self._learned_file is None:
            return
        try:
            self._learned_file.parent.mkdir(parents=True, exist_ok=True)
            document = {kind: {str(n): t for n, t in table.items()} for kind, table in self.learned.items()}
            write_atomically(self._learned_file, json.dumps(document, indent=1).encode())
        except OSError as error:
            log.warning("MIDI learn: cannot save %s (%s); the binding lasts until the app stops",
                        self._learned_file, error)


def input_port_names() -> list[str]:
    """The MIDI inputs this machine has; a `UserError` naming what to install when it cannot tell."""
    try:
        import mido

        return list(mido.get_input_names())
    except ImportError as error:
        raise UserError(f"MIDI needs its backend ({error.name or error}): pip install python-rtmidi") from None
    except Exception as error:  # rtmidi may fail to reach ALSA/CoreMIDI
        raise UserError(f"cannot list MIDI inputs ({first_line(error)}); is ALSA/CoreMIDI available?") from None


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
