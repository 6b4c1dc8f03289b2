"""OSC server: `/livedream/<param> value`, `/livedream/preset name|n` and show commands.

python-osc receives on its own thread; every message is checked there and queued in the
`Inbox`, which the frame loop applies once per frame. A bad message (wrong type, NaN, no
value, unknown address, a huge string) logs a warning and is dropped; nothing a sender
does can raise out of the server thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from livedream.config import NUMERIC_PARAMS, OscConfig
from livedream.control.inbox import Inbox, shown
from livedream.control.ports import listen

log = logging.getLogger(__name__)

PREFIX = "/livedream"


class _Server(BlockingOSCUDPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr; a show log wants one line.
        log.exception("OSC: message from %s could not be handled; the server keeps running", client_address)


class OscServer:
    """Listens on [osc] host:port until `close()`; feeds an `Inbox`."""

    def __init__(self, config: OscConfig, inbox: Inbox) -> None:
        self._inbox = inbox
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
        if name in ("screenshot", "pause"):
            self._inbox.command(name)
            return
        if name in NUMERIC_PARAMS or name in ("preset", "record"):
            if not args:
                log.warning("%s needs a value; ignored", where)
                return
            if len(args) > 1:
                log.warning("%s takes one value, got %d; using the first", where, len(args))
            value = args[0]
            if name == "preset":
                self._inbox.select_preset(value, where)
            elif name == "record":
                if value in (0, 1) and not isinstance(value, str):
                    self._inbox.command("record_start" if value else "record_stop")
                else:
                    log.warning("%s needs 0 (stop) or 1 (start), got %s; ignored", where, shown(value))
            else:
                self._inbox.set_param(name, value, where)
            return
        log.warning("OSC: unknown address %s; known: %s/<%s|preset|screenshot|record|pause>",
                    shown(address), PREFIX, "|".join(NUMERIC_PARAMS))
