"""MIDI: mido messages map CCs over a param's range and notes to presets, as configured."""

from __future__ import annotations

import importlib.util
import logging

import mido
import pytest

from livedream.config import Config, MidiConfig, parse_config
from livedream.control.inbox import Inbox
from livedream.control.midi import MidiInput, MidiMapping, cc_value
from livedream.control.presets import PresetBank
from livedream.errors import UserError
from livedream.params import PARAM_RANGES, Params


def rig(**midi) -> tuple[MidiMapping, Inbox, PresetBank]:
    config = parse_config({"midi": {"cc": {"1": "strength", "7": "steps", "10": "zoom_per_s"}, "notes": {"36": "calm", "38": "infinite"}, **midi}})
    bank = PresetBank(config.presets, Params())
    inbox = Inbox(select_preset=bank.select)
    return MidiMapping(config.midi, inbox), inbox, bank


def test_cc_127_and_0_reach_the_ends_of_the_range() -> None:
    mapping, inbox, _ = rig()
    assert mapping.handle(mido.Message("control_change", control=1, value=127))
    assert inbox.update(Params(), 0.0).strength == PARAM_RANGES["strength"].high
    mapping.handle(mido.Message("control_change", control=10, value=0))
    assert inbox.update(Params(), 0.0).zoom_per_s == PARAM_RANGES["zoom_per_s"].low


def test_cc_scales_linearly_and_integer_params_round() -> None:
    mapping, inbox, _ = rig()
    mapping.handle(mido.Message("control_change", control=1, value=64))
    mapping.handle(mido.Message("control_change", control=7, value=64))
    params = inbox.update(Params(), 0.0)
    assert params.strength == pytest.approx(0.5 * 64 / 127)
    assert params.steps == round(50 * 64 / 127) == 25
    assert cc_value("octaves", 127) == 8 and cc_value("octaves", 0) == 1


def test_note_on_selects_its_preset_and_crossfades() -> None:
    mapping, inbox, bank = rig()
    assert mapping.handle(mido.Message("note_on", note=38, velocity=90))
    params = bank.update(inbox.update(Params(), 0.0), 0.0)
    assert bank.current == "infinite" and params == Params()  # the fade starts here
    params = bank.update(params, bank.crossfade_seconds)
    assert params == bank.params_of("infinite")


def test_unmapped_and_released_messages_change_nothing() -> None:
    mapping, inbox, bank = rig()
    assert not mapping.handle(mido.Message("control_change", control=99, value=10))
    assert not mapping.handle(mido.Message("note_on", note=36, velocity=0))  # a note-off in disguise
    assert not mapping.handle(mido.Message("note_off", note=36))
    assert not mapping.handle(mido.Message("pitchwheel", pitch=100))
    assert inbox.update(Params(), 0.0) == Params() and bank.current is None


def test_channel_filter() -> None:
    mapping, inbox, _ = rig(channel=2)
    assert not mapping.handle(mido.Message("control_change", channel=0, control=1, value=127))
    assert mapping.handle(mido.Message("control_change", channel=1, control=1, value=127))


def test_something_that_is_not_a_message_warns(caplog: pytest.LogCaptureFixture) -> None:
    mapping, _, _ = rig()
    with caplog.at_level(logging.WARNING):
        assert not mapping.handle(object())
    assert "MIDI: cannot read" in caplog.text


def test_default_mapping_is_documented_in_config() -> None:
    assert Config().midi == MidiConfig() and dict(MidiConfig().cc)[1] == "strength"


@pytest.mark.parametrize(
    ("midi", "expected"),
    [
        ({"cc": {"1": "sharpness"}}, '[midi.cc] 1 = "sharpness" is not allowed; use one of strength'),
        ({"cc": {"200": "strength"}}, "[midi.cc] 200 is not allowed; use a MIDI number in 0..127"),
        ({"notes": {"36": 5}}, "[midi.notes] 36 = 5 is not allowed; use a preset name"),
        ({"channel": 17}, "[midi] channel = 17 is not allowed; use an integer in 0..16"),
    ],
)
def test_bad_midi_config_is_one_line_naming_the_key(midi: dict, expected: str) -> None:
    with pytest.raises(UserError) as error:
        parse_config({"midi": midi})
    assert expected in str(error.value)


@pytest.mark.skipif(importlib.util.find_spec("rtmidi") is not None, reason="python-rtmidi is installed here")
def test_missing_backend_turns_midi_off_with_the_install_line(caplog: pytest.LogCaptureFixture) -> None:
    mapping, _, _ = rig()
    with caplog.at_level(logging.WARNING):
        assert MidiInput.open(MidiConfig(enabled=True), mapping) is None
    assert "pip install python-rtmidi" in caplog.text
    assert len(caplog.records) == 1
