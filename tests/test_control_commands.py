"""The show commands have one owner, `control.inbox.SHOW_COMMANDS`: OSC's addresses, the
OSCQuery tree, the web panel's buttons and the keys' actions are derived from it, so a
command added there is everywhere without another edit."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pythonosc.udp_client import SimpleUDPClient

from livedream.config import OscConfig
from livedream.control.inbox import COMMANDS, SHOW_COMMANDS, Command, Inbox
from livedream.control.osc import BARE_COMMANDS, PREFIX, SWITCHES, OscServer, osc_addresses
from livedream.control.oscquery import address_tree, find_node
from livedream.control.web import page_html
from livedream.live.keys import KeyActions
from livedream.params import Params
from livedream.pipeline.display import Action

ROOT = Path(__file__).resolve().parents[1]


def osc_message(command: Command) -> tuple[str, object]:
    """The OSC address and value that send `command`, as its owner spells them."""
    if command.switch is None:
        return f"{PREFIX}/{command.name}", []
    address, value = command.switch
    return f"{PREFIX}/{address}", value


def test_the_osc_view_of_the_commands_is_the_inbox_list() -> None:
    """Every command is an address of OSC (alone, or one value of a switch), and nothing else is."""
    switched = [name for values in SWITCHES.values() for name in values.values()]
    assert sorted([*BARE_COMMANDS, *switched]) == sorted(COMMANDS)
    assert set(BARE_COMMANDS) == {command.name for command in SHOW_COMMANDS if not command.takes_value}
    paths = {address.path: address for address in osc_addresses()}
    for command in SHOW_COMMANDS:
        path, value = osc_message(command)
        assert path in paths, command.name
        if command.takes_value:
            assert paths[path].osc_type == "i" and paths[path].low <= value <= paths[path].high, command.name
        else:
            assert paths[path].osc_type == "N", command.name


def test_every_command_has_an_oscquery_node_a_web_button_and_a_key_action() -> None:
    tree, page = address_tree(Params(), None), page_html()
    for command in SHOW_COMMANDS:
        node = find_node(tree, osc_message(command)[0])
        assert node is not None, command.name
        assert ("TYPE" in node) == command.takes_value, command.name  # a bare address has no value's type
        assert f'data-command="{command.name}">{command.label}</button>' in page
    started: list[bool] = []

    class Recorder:
        recording = False

        def start(self) -> Path:
            started.append(True)
            return Path("take.mp4")

        def stop(self) -> None:
            started.append(False)

    keys = KeyActions(recording=Recorder())
    for name in COMMANDS:
        before = len(started)
        intents = keys.intents([Action(name)], Params(), 0.0)
        assert intents or len(started) > before, f"{name} does nothing"


def test_every_command_sent_over_osc_reaches_the_inbox_in_order() -> None:
    inbox = Inbox()
    server = OscServer(OscConfig(port=0), inbox)
    try:
        client = SimpleUDPClient("127.0.0.1", server.address[1])
        for command in SHOW_COMMANDS:
            client.send_message(*osc_message(command))
        seen: list[str] = []
        deadline = time.monotonic() + 5.0
        while len(seen) < len(COMMANDS) and time.monotonic() < deadline:
            seen += inbox.drain_commands()
            time.sleep(0.002)
    finally:
        server.close()
    assert seen == list(COMMANDS)


# A fresh interpreter, with one command added to the inbox's list before anything reads it
# (COMMANDS is the list's names, derived in the same file): OSC, OSCQuery and the page have it.
ADDED = """
import time
from pythonosc.udp_client import SimpleUDPClient
from livedream.control import inbox
inbox.SHOW_COMMANDS += (inbox.Command("blackout", "Blackout"), inbox.Command("lights_on", "Lights", ("lights", 1)))
inbox.COMMANDS = tuple(command.name for command in inbox.SHOW_COMMANDS)
from livedream.config import OscConfig
from livedream.control.osc import OscServer, osc_addresses
from livedream.control.oscquery import address_tree, find_node
from livedream.control.web import page_html
from livedream.params import Params
paths = {address.path: address.osc_type for address in osc_addresses()}
print("osc", paths.get("/livedream/blackout"), paths.get("/livedream/lights"))
tree = address_tree(Params(), None)
print("oscquery", find_node(tree, "/livedream/blackout") is not None, find_node(tree, "/livedream/lights") is not None)
print("web", 'data-command="blackout"' in page_html())
box = inbox.Inbox()
server = OscServer(OscConfig(port=0), box)
client = SimpleUDPClient("127.0.0.1", server.address[1])
client.send_message("/livedream/blackout", [])
client.send_message("/livedream/lights", 1)
seen, deadline = [], time.monotonic() + 5
while len(seen) < 2 and time.monotonic() < deadline:
    seen += box.drain_commands()
    time.sleep(0.002)
server.close()
print("sent", *seen)
"""


def test_a_command_added_to_the_inbox_list_is_in_osc_oscquery_and_the_page() -> None:
    done = subprocess.run([sys.executable, "-c", ADDED], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["osc N i", "oscquery True True", "web True", "sent blackout lights_on"]


@pytest.mark.parametrize("value", ["yes", 2, -1.0])
def test_a_switch_value_that_sends_no_command_is_refused_naming_the_values(value, caplog) -> None:
    inbox = Inbox()
    server = OscServer(OscConfig(port=0), inbox)
    try:
        with caplog.at_level(logging.WARNING):
            server._dispatch(f"{PREFIX}/record", (value,))
    finally:
        server.close()
    assert inbox.drain_commands() == []
    assert "record needs 0 (stop) or 1 (start)" in caplog.text
