"""MIDI learn: armed by OSC or the web panel, the next CC (or pad) binds; bindings show on the
HUD and survive a restart in the state folder, through a fake mido input port."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import mido
import pytest
from pythonosc.udp_client import SimpleUDPClient

from livedream.config import AttractConfig, Config, MidiConfig, OscConfig, WebConfig
from livedream.control.hub import ControlHub
from livedream.control.midi import LEARNED_FILE
from livedream.params import PARAM_RANGES, Params


class FakePort:
    """What `mido.open_input(name, callback=…)` returns: `send` plays a message into the callback."""

    def __init__(self, name: str, callback) -> None:
        self.name, self.callback, self.closed = name, callback, False

    def send(self, message: mido.Message) -> None:
        self.callback(message)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_midi(monkeypatch):
    ports: list[FakePort] = []
    monkeypatch.setattr(mido, "get_input_names", lambda: ["Fake Controller 0"])
    monkeypatch.setattr(mido, "open_input", lambda name, callback: ports.append(FakePort(name, callback)) or ports[-1])
    return ports


def make_hub(state: Path, web: bool = False) -> ControlHub:
    config = dataclasses.replace(
        Config(), attract=AttractConfig(enabled=False), osc=OscConfig(port=0, query_port=0),
        midi=MidiConfig(enabled=True, cc=((1, "strength"),)), web=WebConfig(enabled=web, port=0),
    )
    return ControlHub(config, clock=lambda: 0.0, open_devices=True, state_folder=state)


def until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_osc_arms_learn_and_the_next_cc_binds_and_survives_a_restart(tmp_path: Path, fake_midi) -> None:
    hub = make_hub(tmp_path / "state")
    try:
        port = fake_midi[-1]
        SimpleUDPClient("127.0.0.1", hub.osc.address[1]).send_message("/livedream/learn", "half_life")
        until(lambda: hub.inbox.learning == "half_life")
        assert "MIDI learn: move a control for half_life" in hub.status_lines()
        port.send(mido.Message("control_change", control=21, value=127))  # this knob is now half_life
        assert hub.inbox.learning is None
        assert hub.inbox.update(Params(), 0.0).half_life == PARAM_RANGES["half_life"].high
        assert "MIDI CC 21 → half_life (learned)" in hub.status_lines()
        port.send(mido.Message("control_change", control=21, value=0))
        assert hub.inbox.update(Params(), 0.0).half_life == PARAM_RANGES["half_life"].low
    finally:
        hub.close()
    assert json.loads((tmp_path / "state" / LEARNED_FILE).read_text())["cc"] == {"21": "half_life"}
    again = make_hub(tmp_path / "state")  # a restart
    try:
        fake_midi[-1].send(mido.Message("control_change", control=21, value=127))
        assert again.inbox.update(Params(), 0.0).half_life == PARAM_RANGES["half_life"].high
        fake_midi[-1].send(mido.Message("control_change", control=1, value=127))  # the config's CC still works
        assert again.inbox.update(Params(), 0.0).strength == PARAM_RANGES["strength"].high
    finally:
        again.close()


def test_the_web_panel_arms_learn_for_a_preset_and_the_next_pad_binds(tmp_path: Path, fake_midi) -> None:
    import urllib.request

    hub = make_hub(tmp_path / "state", web=True)
    try:
        request = urllib.request.Request(hub.web.url.rstrip("/") + "/learn", data=json.dumps({"target": "deep"}).encode(),
                                         headers={"Content-Type": "application/json"})
        assert urllib.request.urlopen(request, timeout=5).status == 200
        fake_midi[-1].send(mido.Message("control_change", control=5, value=10))  # a knob cannot learn a preset
        assert hub.inbox.learning == "deep"
        fake_midi[-1].send(mido.Message("note_on", note=60, velocity=100))
        assert hub.inbox.learning is None and "MIDI note 60 → deep (learned)" in hub.status_lines()
        hub.update(Params(), 1.0)  # the pad that learned also plays: its preset starts
        assert hub.presets.current == "deep"
    finally:
        hub.close()


@pytest.mark.parametrize("target", ["warp_speed", "", 3, None, "x" * 500])
def test_learning_an_unknown_target_warns_and_arms_nothing(tmp_path: Path, fake_midi, target, caplog) -> None:
    hub = make_hub(tmp_path / "state")
    try:
        with caplog.at_level(logging.WARNING):
            assert not hub.inbox.arm_learn(target, "test", tuple(hub.presets.names))
        assert hub.inbox.learning is None and "learn needs a parameter" in caplog.text
    finally:
        hub.close()


def test_a_damaged_learned_file_starts_without_bindings(tmp_path: Path, fake_midi, caplog) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / LEARNED_FILE).write_text("{not json")
    with caplog.at_level(logging.WARNING):
        hub = make_hub(tmp_path / "state")
    try:
        assert hub.midi_mapping.bindings_lines() == [] and "cannot read" in caplog.text
    finally:
        hub.close()
