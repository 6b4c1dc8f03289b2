"""OSC: a real client sends to the running server; good values apply on update, bad ones warn."""

from __future__ import annotations

import logging
import socket
import time
from typing import Callable

import pytest
from pythonosc.udp_client import SimpleUDPClient

from livedream.config import Config, OscConfig
from livedream.control.inbox import Inbox
from livedream.control.osc import OscServer
from livedream.control.presets import PresetBank
from livedream.errors import UserError
from livedream.params import Params


class Rig:
    """A server on an ephemeral port, its inbox and a preset bank, and a client aimed at it."""

    def __init__(self) -> None:
        self.bank = PresetBank(Config().presets, Params())
        self.inbox = Inbox(select_preset=self.bank.select)
        self.server = OscServer(OscConfig(port=0), self.inbox)
        self.client = SimpleUDPClient("127.0.0.1", self.server.address[1])
        self.params = Params()
        self.now = 0.0

    def frame(self) -> Params:
        self.now += 0.1
        self.params = self.bank.update(self.inbox.update(self.params, self.now), self.now)
        return self.params

    def until(self, condition: Callable[[Params], bool]) -> Params:
        """Run frames until `condition` holds; the deadline only guards against a hang."""
        deadline = time.monotonic() + 5.0
        while not condition(self.frame()):
            assert time.monotonic() < deadline, "the OSC message never arrived"
            time.sleep(0.002)
        return self.params


@pytest.fixture
def rig():
    rig = Rig()
    yield rig
    rig.server.close()


def test_every_numeric_param_has_an_address_that_sets_it(rig: Rig) -> None:
    values = {"strength": 0.2, "steps": 7, "octaves": 3, "half_life": 0.5, "zoom_per_s": 0.02, "rotate_per_s": -1.5,
              "shift_x_per_s": 3.0, "shift_y_per_s": -2.0, "octave_scale": 1.5, "dream_height": 480, "dream_width": 800}
    for name, value in values.items():
        rig.client.send_message(f"/livedream/{name}", value)
    params = rig.until(lambda p: p.dream_width == 800)
    for name, value in values.items():
        assert getattr(params, name) == pytest.approx(value, rel=1e-6), name  # OSC floats are 32-bit


def test_float_for_an_integer_param_rounds(rig: Rig) -> None:
    rig.client.send_message("/livedream/steps", 6.7)
    assert rig.until(lambda p: p.steps != Params().steps).steps == 7


def test_out_of_range_value_is_clamped_with_a_warning(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        rig.client.send_message("/livedream/strength", 9.0)
        params = rig.until(lambda p: p.strength != Params().strength)
    assert params.strength == 0.5
    assert "strength: 9.0 is outside 0.0..0.5; clamped to 0.5" in caplog.text


def test_bad_messages_warn_and_the_server_keeps_working(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        rig.client.send_message("/livedream/strength", "lots")  # string for a float
        rig.client.send_message("/livedream/half_life", float("nan"))
        rig.client.send_message("/livedream/zoom_per_s", float("inf"))
        rig.client.send_message("/livedream/steps", [])  # no value
        rig.client.send_message("/livedream/warp_speed", 1.0)  # unknown param
        rig.client.send_message("/elsewhere", 1)  # unknown address
        rig.client.send_message("/livedream/preset", "x" * 5000)  # huge string
        rig.client.send_message("/livedream/record", "yes")
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.sendto(b"/livedream/strength\x00garbage", ("127.0.0.1", rig.server.address[1]))  # not OSC
        raw.close()
        rig.client.send_message("/livedream/strength", 0.25)  # a good one after them all
        params = rig.until(lambda p: p.strength == 0.25)
    assert params.half_life == Params().half_life and params.zoom_per_s == Params().zoom_per_s and params.steps == Params().steps
    text = caplog.text
    assert "strength needs a number, got 'lots'" in text
    assert "half_life needs a finite number, got nan" in text
    assert "zoom_per_s needs a finite number, got inf" in text
    assert "/livedream/steps needs a value" in text
    assert "unknown address '/livedream/warp_speed'" in text
    assert "unknown address '/elsewhere'" in text
    assert "preset name of 5000 characters refused" in text
    assert "record needs 0 (stop) or 1 (start), got 'yes'" in text
    assert "x" * 100 not in text  # the huge string is not copied into the log
    assert rig.server._thread.is_alive()


def test_preset_by_name_and_by_number_crossfades(rig: Rig) -> None:
    rig.client.send_message("/livedream/preset", "deep")
    rig.until(lambda p: rig.bank.current == "deep")
    rig.client.send_message("/livedream/preset", 3)
    rig.until(lambda p: rig.bank.current == "infinite")
    rig.until(lambda p: p == rig.bank.params_of("infinite"))


def test_commands_are_queued_for_the_app(rig: Rig) -> None:
    rig.client.send_message("/livedream/screenshot", [])
    rig.client.send_message("/livedream/record", 1)
    rig.client.send_message("/livedream/record", 0)
    rig.client.send_message("/livedream/pause", [])
    seen: list[str] = []
    deadline = time.monotonic() + 5.0
    while len(seen) < 4 and time.monotonic() < deadline:
        seen += rig.inbox.drain_commands()
        time.sleep(0.002)
    assert seen == ["screenshot", "record_start", "record_stop", "pause"]
    assert rig.inbox.drain_commands() == []


def test_port_in_use_is_one_line_naming_the_port_and_key() -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        with pytest.raises(UserError) as error:
            OscServer(OscConfig(port=port), Inbox())
    finally:
        taken.close()
    message = str(error.value)
    assert f"OSC port {port} is in use" in message and "[osc] port" in message and "\n" not in message


def test_listening_beyond_localhost_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        server = OscServer(OscConfig(host="0.0.0.0", port=0), Inbox())
    server.close()
    assert "anyone on that network can steer the show" in caplog.text
