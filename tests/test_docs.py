"""The docs say only what the code has: every OSC address and `[section] key` a page (or the
README) names exists, every TOML example is a config the app accepts, the generated tables
list everything the code has, and the README keeps the test command CI runs.

The site itself (links, anchors, pictures) is checked by `mkdocs build --strict` in CI
(`.ci/docs`); these run without MkDocs installed."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import socket
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from pythonosc.osc_message import OscMessage

from livedream.config import Config, SyncConfig, parse_config
from livedream.control.osc import PREFIX, OscFeedback, osc_addresses
from livedream.control.sync import SyncLeader
from livedream.params import OBJECTIVE_FIELDS, Params, objective_term

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
# A `/livedream/…` address, not a folder that ends in livedream (`~/.local/state/livedream/log`).
ADDRESS = re.compile(r"(?<![\w./~%-])/livedream(?:/[\w<>…]+)*")
CONFIG_MENTION = re.compile(r"`\[([\w.]+)\] (\w+)")  # `[display] hud_seconds`, `[presets.eyes] objective`
TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```", re.MULTILINE | re.DOTALL)
PLACEHOLDER_SAMPLES = {"<layer>": "mixed4", "<channel>": "97"}


def load_reference() -> ModuleType:
    """docs/hooks/reference.py, the MkDocs hook that generates the tables (not a package)."""
    spec = importlib.util.spec_from_file_location("docs_reference", DOCS / "hooks" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


reference = load_reference()


def pages() -> dict[str, str]:
    """Every page as the site shows it (generated parts in place), and the README."""
    texts = {path.name: reference.expand(path.read_text(encoding="utf-8")) for path in sorted(DOCS.glob("*.md"))}
    return {**texts, "README.md": README.read_text(encoding="utf-8")}


def received_addresses(send) -> set[str]:
    """The addresses of every OSC message `send(target)` sends to a local UDP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(1.0)
        send(f"127.0.0.1:{receiver.getsockname()[1]}")
        addresses = set()
        try:
            while True:
                addresses.add(OscMessage(receiver.recv(65536)).address)
                receiver.settimeout(0.2)  # the rest follow at once: a pause means all arrived
        except TimeoutError:
            return addresses


def feedback_sends(target: str) -> None:
    OscFeedback((target,)).send(Params(), "calm", 30.0, 0.5, now=1.0)


def sync_leader_sends(target: str) -> None:
    leader = SyncLeader(SyncConfig(role="leader", peers=(target,)))
    leader.send_preset("calm", 2.0)
    leader.beat(now=1.0, program=(0, 1.0))


@pytest.fixture(scope="module")
def known_addresses() -> set[str]:
    """What the OSC server answers, what its feedback sends and what a sync leader sends."""
    return ({address.path for address in osc_addresses()} | received_addresses(feedback_sends)
            | received_addresses(sync_leader_sends))


def address_exists(address: str, known: set[str]) -> bool:
    for placeholder, sample in PLACEHOLDER_SAMPLES.items():
        address = address.replace(placeholder, sample)
    if address.endswith("/…"):  # a family of addresses: some address must start so
        return any(each.startswith(address[:-1]) for each in known)
    if address == PREFIX or address in known:
        return True
    name = address[len(PREFIX) + 1:]
    prefix = next((prefix for prefix in OBJECTIVE_FIELDS if name.startswith(prefix)), None)
    return prefix is not None and objective_term(prefix + name[len(prefix):].replace("/", ":", 1)) is not None


def config_key_exists(section: str, key: str) -> bool:
    sections = {field.name: field.default_factory for field in dataclasses.fields(Config)}
    parent, _, table = section.partition(".")
    if table and parent == "presets":  # [presets.<name>]: a preset holds [dream] keys
        return key in {field.name for field in dataclasses.fields(Params)}
    if table and parent == "midi" and table in ("cc", "notes"):  # [midi.cc] 21 = "strength"
        return key.isdigit() and 0 <= int(key) <= 127
    if table or section not in sections:
        return False
    return key in {field.name for field in dataclasses.fields(sections[section])}


def test_every_documented_osc_address_exists(known_addresses: set[str]) -> None:
    mentions = [(page, address) for page, text in pages().items() for address in ADDRESS.findall(text)]
    assert len(mentions) > 20  # the pattern still finds the mentions
    missing = {f"{page}: {address}" for page, address in mentions if not address_exists(address, known_addresses)}
    assert not missing, f"the docs name OSC addresses the code does not have: {sorted(missing)}"


def test_every_documented_config_key_exists() -> None:
    mentions = [(page, section, key) for page, text in pages().items()
                for section, key in CONFIG_MENTION.findall(text)]
    assert len(mentions) > 20  # the pattern still finds the mentions
    missing = [f"{page}: [{section}] {key}" for page, section, key in mentions if not config_key_exists(section, key)]
    assert not missing, f"the docs name config keys the code does not have: {missing}"


def test_a_misspelt_address_or_key_is_caught(known_addresses: set[str]) -> None:
    assert address_exists("/livedream/strength", known_addresses)
    assert address_exists("/livedream/visitor_objective/<layer>/<channel>", known_addresses)
    for wrong in ("/livedream/strenght", "/livedream/objective/mixed11", "/livedream/objective/mixed4/999",
                  "/livedream/sync/bpm", "/livedream/nothing/…"):
        assert not address_exists(wrong, known_addresses), wrong
    assert config_key_exists("display", "hud_seconds") and config_key_exists("presets.eyes", "objective")
    for section, key in (("display", "hud_second"), ("dream", "decay"), ("presets.eyes", "crossfade"),
                         ("midi.cc", "strength"), ("screen", "fit"), ("osc.query", "port")):
        assert not config_key_exists(section, key), (section, key)


def test_every_toml_example_is_a_config_the_app_accepts() -> None:
    examples = [(page, block) for page, text in pages().items() for block in TOML_BLOCK.findall(text)]
    assert len(examples) > 10
    for page, block in examples:
        parse_config(tomllib.loads(block), where=page)  # a UserError names the page and the key


def test_generated_osc_table_lists_every_address() -> None:
    table = reference.osc_table()
    for address in osc_addresses():
        shown = re.sub(r"/mixed\d+$", "/<layer>", address.path)
        assert f"`{shown}`" in table, address.path


def test_generated_config_reference_lists_every_key_with_its_default() -> None:
    text = reference.config_reference()
    for section in dataclasses.fields(Config):
        part = text.split(f"### `[{section.name}]`", 1)[1].split("### ", 1)[0]
        for key in dataclasses.fields(section.default_factory):
            assert re.search(rf"^\| `{key.name}` \| `[^`]+` \|", part, re.MULTILINE), f"[{section.name}] {key.name}"


def test_every_generated_part_a_page_asks_for_exists_and_each_is_used() -> None:
    asked = {name for path in DOCS.glob("*.md") for name in reference.PLACEHOLDER.findall(path.read_text())}
    assert asked == set(reference.PARTS)


def test_the_readme_is_a_front_page_that_keeps_the_test_command_ci_runs() -> None:
    readme = README.read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    test_command = next(line for line in readme.splitlines() if line.endswith(".venv/bin/python -m pytest -q"))
    assert test_command.startswith('python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e ".[export,test]"')
    assert '-e ".[export,test]" && .venv/bin/python -m pytest -q\n' in ci
