"""ControlHub: the chain the app calls once per frame; keys, overlays, commands, HUD, config errors."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from livedream.config import (
    AttractConfig,
    Config,
    OscConfig,
    OutputsConfig,
    SequencerConfig,
    parse_config,
)
from livedream.control.hub import ControlHub
from livedream.errors import UserError
from livedream.params import Params

STILL = np.full((120, 160, 3), 90, np.uint8)


def make_hub(tmp_path, **sections) -> ControlHub:
    defaults = {
        "osc": OscConfig(port=0, query_port=0),
        "attract": AttractConfig(still_seconds=2.0, fade_in=1.0, fade_out=1.0, smoothing=0.0),
        "outputs": OutputsConfig(record_folder=str(tmp_path / "rec")),
    }
    return ControlHub(dataclasses.replace(Config(), **{**defaults, **sections}), clock=lambda: 0.0, open_devices=False)


def frames(hub: ControlHub, params: Params, start: float, seconds: float, frame=STILL) -> tuple[Params, float]:
    now = start
    while now < start + seconds:
        hub.observe(frame, now)
        params = hub.update(params, now)
        now = round(now + 0.1, 6)
    return params, now


def test_key_preset_crossfades_through_the_hub(tmp_path) -> None:
    hub = make_hub(tmp_path)
    try:
        params = hub.update(Params(), 0.0)
        assert hub.select_preset(2, 0.0)
        params = hub.update(params, 1.0)  # halfway through the 2 s crossfade
        deep = hub.presets.params_of("deep")
        assert Params().strength < params.strength < deep.strength
        assert hub.update(params, 2.5) == deep
        assert not hub.select_preset(9, 3.0)
    finally:
        hub.close()


def attracting(hub, now: float) -> bool:
    """What the operator reads on the HUD."""
    return any("ATTRACT MODE" in line for line in hub.status_lines(now))


def test_attract_overlay_returns_exactly_to_the_live_params(tmp_path) -> None:
    hub = make_hub(tmp_path)
    try:
        live = Params(strength=0.04)
        params, now = frames(hub, live, 0.0, 4.0)  # still: attract after 2 s, faded in after 3 s
        assert attracting(hub, now) and params == hub.presets.params_of("infinite")
        moving = np.random.default_rng(0).integers(0, 256, STILL.shape, dtype=np.uint8)
        params, now = frames(hub, params, now, 0.1, frame=moving)  # someone walks in
        assert not attracting(hub, now)
        params, now = frames(hub, params, now, 1.5, frame=moving)  # 1 s fade-out, then live
        assert params == live  # the overlay never leaked into the live params
    finally:
        hub.close()


def test_changes_made_by_the_loop_are_taken_over(tmp_path) -> None:
    hub = make_hub(tmp_path, attract=AttractConfig(enabled=False))
    try:
        params = hub.update(Params(), 0.0)
        params = hub.update(dataclasses.replace(params, strength=0.03), 0.1)  # key "+" in the app
        assert hub.update(params, 0.2).strength == 0.03
    finally:
        hub.close()


def test_osc_record_and_screenshot_go_to_the_loop_as_commands(tmp_path) -> None:
    hub = make_hub(tmp_path, attract=AttractConfig(enabled=False))
    try:
        client = SimpleUDPClient("127.0.0.1", hub.osc.address[1])
        client.send_message("/livedream/record", 1)
        client.send_message("/livedream/screenshot", [])
        client.send_message("/livedream/record", 0)
        deadline = time.monotonic() + 5
        commands: list[str] = []
        while len(commands) < 3 and time.monotonic() < deadline:
            hub.update(Params(), 0.0)
            commands += hub.drain_commands()
            time.sleep(0.002)
        assert commands == ["record_start", "screenshot", "record_stop"]
    finally:
        hub.close()


def test_key_m_then_a_parameter_key_arms_midi_learn(tmp_path) -> None:
    hub = make_hub(tmp_path)
    try:
        hub.take_command("learn strength")
        assert hub.inbox.learning == "strength"
        assert any("MIDI learn" in line and "strength" in line for line in hub.status_lines(0.0))
    finally:
        hub.close()


def test_status_lines_show_preset_program_motion_and_port(tmp_path) -> None:
    hub = make_hub(tmp_path, sequencer=SequencerConfig(enabled=True))
    try:
        hub.update(Params(), 0.0)
        lines = hub.status_lines(1.0)
        port = hub.osc.address[1]
        assert lines[0].startswith("preset calm (crossfade")
        assert lines[1] == "program 1/3 calm, next in 59 s"
        assert lines[2].startswith("motion 0.00")
        assert f"OSC 127.0.0.1:{port}" in lines[3]
    finally:
        hub.close()


def test_preset_models_are_known_at_start(tmp_path) -> None:
    config = parse_config({"presets": {"a": {"model": "deep3"}, "b": {}}, "attract": {"preset": "a"},
                           "midi": {"notes": {"36": "a"}}, "osc": {"enabled": False}})
    hub = ControlHub(config, open_devices=False)
    assert hub.preset_models() == {"deep3", "default"}
    hub.close()


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"attract": {"preset": "nap"}}, '[attract] preset = "nap" is not a preset'),
        ({"midi": {"notes": {"40": "nap"}}}, '[midi.notes] 40 = "nap" is not a preset'),
        ({"sequencer": {"enabled": True, "playlist": ["calm", "nap"]}}, "[sequencer] playlist names 'nap'"),
    ],
)
def test_preset_names_used_elsewhere_must_exist(document: dict, expected: str) -> None:
    config = parse_config({**document, "osc": {"enabled": False}})
    with pytest.raises(UserError) as error:
        ControlHub(config, open_devices=False)
    assert expected in str(error.value)
