"""OSC in and out: the server for `/livedream/<param> value`, `/livedream/preset name|n` and
show commands, and the feedback that sends the applied values back on the same addresses.

python-osc receives on its own thread; every message is checked there and queued in the
`Inbox`, which the frame loop applies once per frame. A bad message (wrong type, NaN, no
value, unknown address, a huge string) logs a warning and is dropped; nothing a sender
does can raise out of the server thread.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from livedream.config import OscConfig
from livedream.control.inbox import SHOW_COMMANDS, Inbox, shown
from livedream.control.ports import listen
from livedream.params import (
    CHOICE_PARAMS as CHOICES,
    NUMERIC_PARAMS,
    OBJECTIVE_FIELDS,
    OBJECTIVE_PARAMS,
    OBJECTIVE_RANGE,
    PARAM_RANGES,
    VISITOR_PARAMS,
    Params,
    objective_values,
)

log = logging.getLogger(__name__)

PREFIX = "/livedream"


def _switches() -> dict[str, dict[int, str]]:
    """Each switch's address and the command each of its values sends (`/livedream/record 0|1`)."""
    switches: dict[str, dict[int, str]] = {}
    for command in SHOW_COMMANDS:
        if command.switch is not None:
            address, value = command.switch
            switches.setdefault(address, {})[value] = command.name
    return switches


# The OSC view of the show commands (`inbox.SHOW_COMMANDS`, their owner): an address alone, or a switch's value.
BARE_COMMANDS = tuple(command.name for command in SHOW_COMMANDS if not command.takes_value)
SWITCHES = _switches()


@dataclass(frozen=True)
class OscAddress:
    """One address the server answers: its OSC type tag, range, and the `Params` field it sets."""

    path: str
    osc_type: str  # "f", "i", "s", or "N" for a command without a value
    low: float | None = None
    high: float | None = None
    param: str | None = None


def osc_addresses() -> tuple[OscAddress, ...]:
    """Every address, derived from `Params` and its ranges: OSCQuery and feedback read this."""
    defaults = Params()
    numeric = tuple(
        OscAddress(f"{PREFIX}/{name}", "i" if isinstance(getattr(defaults, name), int) else "f",
                   PARAM_RANGES[name].low, PARAM_RANGES[name].high, name)
        for name in NUMERIC_PARAMS
    )
    objective = tuple(OscAddress(f"{PREFIX}/{name}", "f", OBJECTIVE_RANGE.low, OBJECTIVE_RANGE.high, name)
                      for name in OBJECTIVE_PARAMS + VISITOR_PARAMS)
    choices = tuple(OscAddress(f"{PREFIX}/{name}", "s") for name in CHOICES)
    return (*numeric, *objective, *choices, OscAddress(f"{PREFIX}/guide", "s"),
            OscAddress(f"{PREFIX}/preset", "s"), OscAddress(f"{PREFIX}/learn", "s"),
            *(OscAddress(f"{PREFIX}/{name}", "i", min(values), max(values)) for name, values in SWITCHES.items()),
            *(OscAddress(f"{PREFIX}/{name}", "N") for name in BARE_COMMANDS))


class _Server(BlockingOSCUDPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr; a show log wants one line.
        log.exception("OSC: message from %s could not be handled; the server keeps running", client_address)


class OscServer:
    """Listens on [osc] host:port until `close()`; feeds an `Inbox`."""

    def __init__(self, config: OscConfig, inbox: Inbox, preset_names: tuple[str, ...] = ()) -> None:
        self._inbox = inbox
        self._preset_names = preset_names
        dispatcher = Dispatcher(strict_timing=False)  # a far-future timetag must not park the thread
        dispatcher.map(f"{PREFIX}/*", self._on_message)
        dispatcher.set_default_handler(self._on_unknown)
        self._server = listen("OSC", "osc", config.host, config.port,
                              lambda: _Server((config.host, config.port), dispatcher))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name="osc-server", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return host, port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2.0)

    def _on_unknown(self, address: str, *args: Any) -> None:
        log.warning("OSC: unknown address %s; addresses start with %s/", shown(address), PREFIX)

    def _on_message(self, address: str, *args: Any) -> None:
        try:
            self._dispatch(address, args)
        except Exception:  # a bug in our handling: log it with its traceback, keep serving
            log.exception("OSC %s: handling failed; the server keeps running", shown(address))

    def _dispatch(self, address: str, args: tuple[Any, ...]) -> None:
        name = address[len(PREFIX) + 1 :]
        where = f"OSC {PREFIX}/{name}" if len(name) <= 40 else "OSC"
        if name in BARE_COMMANDS:
            self._inbox.command(name)
            return
        if name in SWITCHES:
            self._switch(name, args, where)
            return
        if name.startswith("sync/"):
            self._inbox.sync_message(name[len("sync/"):], args, where)
            return
        prefix = next((prefix for prefix in OBJECTIVE_FIELDS if name.startswith(prefix)), None)
        if prefix is not None:  # /livedream/objective/mixed4 f, /livedream/visitor_objective/mixed4/97 f
            term = name[len(prefix):].replace("/", ":", 1)
            if len(args) != 1:
                log.warning("%s takes one number, got %d values; ignored", where, len(args))
            else:
                self._inbox.set_param(prefix + term, args[0], where)
            return
        if name in CHOICES:  # /livedream/where s, /livedream/guide_mode s
            if len(args) != 1:
                log.warning("%s takes one name (%s); ignored", where, ", ".join(CHOICES[name]))
            else:
                self._inbox.set_choice(name, args[0], where)
            return
        if name == "guide":
            if len(args) != 1:
                log.warning("%s takes one image path (\"\" clears the guide); ignored", where)
            else:
                self._inbox.set_guide(args[0], where)
            return
        if name == "learn":
            if args:
                self._inbox.arm_learn(args[0], where, self._preset_names)
            else:
                log.warning("%s needs a parameter or preset name; ignored", where)
            return
        if name in NUMERIC_PARAMS or name == "preset":
            first = _first_value(args, where)
            if not first:
                return
            value = first[0]
            if name == "preset":
                self._inbox.select_preset(value, where)
            else:
                self._inbox.set_param(name, value, where)
            return
        log.warning("OSC: unknown address %s; known: %s/<%s|[visitor_]objective/<layer>[/<channel>]|where|guide|"
                    "guide_mode|preset|learn|%s>",
                    shown(address), PREFIX, "|".join(NUMERIC_PARAMS), "|".join((*SWITCHES, *BARE_COMMANDS)))

    def _switch(self, name: str, args: tuple[Any, ...], where: str) -> None:
        """`/livedream/record 1`: the command of the switch's value (`inbox.SHOW_COMMANDS`)."""
        first = _first_value(args, where)
        if not first:
            return
        value, commands = first[0], SWITCHES[name]
        if isinstance(value, (int, float)) and value in commands:  # 1.0 and True are 1, as before
            self._inbox.command(commands[value])
        else:
            choices = " or ".join(f"{key} ({command.removeprefix(name).strip('_')})"
                                  for key, command in sorted(commands.items()))
            log.warning("%s needs %s, got %s; ignored", where, choices, shown(value))


def _first_value(args: tuple[Any, ...], where: str) -> tuple[Any, ...]:
    """A message that takes one value: its first, alone, or () when it has none (said in the log)."""
    if not args:
        log.warning("%s needs a value; ignored", where)
    elif len(args) > 1:
        log.warning("%s takes one value, got %d; using the first", where, len(args))
    return args[:1]


FEEDBACK_INTERVAL_S = 0.1  # at most 10 messages a second per address, however fast the loop runs


class OscFeedback:
    """OSC feedback, so controllers' faders follow crossfades, presets and other controllers:
    sends changed parameters, the preset, fps and motion to each "host:port" target."""

    def __init__(self, targets: tuple[str, ...], interval_s: float = FEEDBACK_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._clients: list[tuple[str, SimpleUDPClient]] = []
        for target in targets:
            host, _, port = target.rpartition(":")
            self._clients.append((target, SimpleUDPClient(host, int(port))))
        self._sent: dict[str, Any] = {}
        self._last_send = float("-inf")
        self._failures_logged: set[str] = set()

    def send(self, params: Params, preset: str | None, fps: float, motion: float | None, now: float) -> None:
        """Once per frame: at most every `interval_s`, each value that changed since it was last sent."""
        if not self._clients or now - self._last_send < self.interval_s:
            return
        self._last_send = now
        values: dict[str, Any] = {name: getattr(params, name) for name in NUMERIC_PARAMS}
        values.update(objective_values(params), guide=params.guide, where=params.where.name,
                      guide_mode=params.guide_mode)
        values.update(preset=preset or "", fps=round(fps, 1))
        if motion is not None:
            values["motion"] = round(motion, 3)
        for name, value in values.items():
            if self._sent.get(name) != value:
                self._sent[name] = value
                self._send(f"{PREFIX}/{name}", value)

    def _send(self, address: str, value: Any) -> None:
        for target, client in self._clients:
            try:
                client.send_message(address, value)
            except OSError as error:  # an unreachable target must not stop the show; say so once
                if target not in self._failures_logged:
                    self._failures_logged.add(target)
                    log.warning("OSC feedback to %s failed: %s", target, error)
