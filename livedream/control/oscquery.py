"""OSCQuery: the OSC address tree as JSON over HTTP, so TouchOSC, TouchDesigner or Chataigne
find every `/livedream/…` address with its type, range and current value by themselves.

A small handler on `http.server` rather than `python-oscquery`: that package brings its own
server and zeroconf and wants to own the OSC socket, while ours already exists; the JSON is
a few lines (https://github.com/Vidvox/OSCQueryProposal). The tree comes from
`osc.osc_addresses()`, so there is one table of addresses, not two. Requests pass the same
`ports.RequestGuard` as the web panel (GET only here). Values are the `Params` the loop
applied last. Bound beyond localhost it is advertised over zeroconf (`_oscjson._tcp`, and
the OSC port as `_osc._udp`) so controllers on the network list it; on localhost nobody
else could reach it, so nothing is announced.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from livedream.config import OscConfig
from livedream.control.osc import PREFIX, OscAddress, osc_addresses
from livedream.control.ports import RequestGuard, is_loopback, listen, load_or_create_token, send_answer
from livedream.params import CHOICE_PARAMS, Params, live_value

log = logging.getLogger(__name__)

ACCESS_WRITE = 2  # OSCQuery ACCESS: 1 read, 2 write, 3 both
ACCESS_BOTH = 3
CurrentValues = Callable[[], tuple[Params, str | None]]
"""The Params the loop applied last and the current preset's name."""


def node_of(address: OscAddress, params: Params, preset: str | None) -> dict[str, Any]:
    node: dict[str, Any] = {"FULL_PATH": address.path, "ACCESS": ACCESS_WRITE}
    if address.osc_type != "N":
        node["TYPE"] = address.osc_type
    if address.low is not None:
        node["RANGE"] = [{"MIN": address.low, "MAX": address.high}]
    if address.param is not None:
        node["VALUE"], node["ACCESS"] = [live_value(params, address.param)], ACCESS_BOTH
    elif address.path == f"{PREFIX}/guide":
        node["VALUE"], node["ACCESS"] = [params.guide], ACCESS_BOTH
    elif address.path == f"{PREFIX}/where":  # an OSCQuery enumeration: RANGE with VALS
        node["VALUE"], node["ACCESS"] = [params.where.name], ACCESS_BOTH
        node["RANGE"] = [{"VALS": list(CHOICE_PARAMS["where"])}]
    elif address.path == f"{PREFIX}/guide_mode":
        node["VALUE"], node["ACCESS"] = [params.guide_mode], ACCESS_BOTH
        node["RANGE"] = [{"VALS": list(CHOICE_PARAMS["guide_mode"])}]
    elif address.path.endswith("/preset") and preset is not None:
        node["VALUE"], node["ACCESS"] = [preset], ACCESS_BOTH
    return node


def address_tree(params: Params, preset: str | None) -> dict[str, Any]:
    """The whole tree: / → /livedream → one node per address."""
    contents: dict[str, Any] = {}
    for address in osc_addresses():
        parent, here = contents, PREFIX
        *folders, leaf = address.path[len(PREFIX) + 1:].split("/")
        for folder in folders:  # /livedream/objective/mixed4 sits in an `objective` container
            here = f"{here}/{folder}"
            parent = parent.setdefault(folder, {"FULL_PATH": here, "ACCESS": 0, "CONTENTS": {}})["CONTENTS"]
        parent[leaf] = node_of(address, params, preset)
    return {"FULL_PATH": "/", "ACCESS": 0, "CONTENTS": {
        PREFIX.strip("/"): {"FULL_PATH": PREFIX, "ACCESS": 0, "CONTENTS": contents}}}


def find_node(tree: dict[str, Any], path: str) -> dict[str, Any] | None:
    node = tree
    for part in [p for p in path.split("/") if p]:
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


QUERY_SERVICE = "_oscjson._tcp.local."
OSC_SERVICE = "_osc._udp.local."


class Advertisement:
    """The OSCQuery and OSC ports announced over zeroconf (mDNS) until `close()`. It registers
    on its own thread: mDNS probing takes seconds, and the show must not wait for it."""

    def __init__(self, host: str, query_port: int, osc_port: int, zeroconf: Any = None) -> None:
        self._zeroconf_module = zeroconf
        self._services: list[Any] = []
        self._zeroconf: Any = None
        self._thread = threading.Thread(target=self._register, args=(host, query_port, osc_port),
                                        name="zeroconf", daemon=True)
        self._thread.start()

    def _register(self, host: str, query_port: int, osc_port: int) -> None:
        module = self._zeroconf_module
        if module is None:
            try:
                import zeroconf as module
            except ImportError:
                log.warning('OSCQuery not advertised on the network: pip install "livedream[zeroconf]"')
                return
        machine = socket.gethostname().split(".")[0] or "livedream"
        addresses = [host] if host not in ("0.0.0.0", "") else _local_addresses()
        try:
            self._zeroconf = module.Zeroconf()
            for service, port in ((QUERY_SERVICE, query_port), (OSC_SERVICE, osc_port)):
                info = module.ServiceInfo(service, f"LiveDream {machine}.{service}", port=port,
                                          parsed_addresses=addresses, server=f"{machine}.local.")
                self._zeroconf.register_service(info, allow_name_change=True)
                self._services.append(info)
            log.info("OSCQuery advertised over zeroconf as LiveDream %s (%s)", machine, ", ".join(addresses))
        except Exception as error:  # no multicast on this network: clients can still type the address
            log.warning("OSCQuery not advertised over zeroconf: %s", error)

    def close(self) -> None:
        self._thread.join(timeout=5.0)
        if self._zeroconf is not None:
            for info in self._services:
                self._zeroconf.unregister_service(info)
            self._zeroconf.close()


def _local_addresses() -> list[str]:
    try:
        found = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    except OSError:
        found = set()
    return sorted(found - {"127.0.0.1"}) or ["127.0.0.1"]


class OscQueryServer:
    """Serves the tree on [osc] host:query_port until `close()`; advertised beyond localhost."""

    def __init__(self, config: OscConfig, osc_port: int, values: CurrentValues, token_folder: Path,
                 zeroconf: Any = None) -> None:
        """`zeroconf`: the zeroconf module (tests pass a fake); None imports the real one when needed."""
        self._osc_host, self._osc_port, self._values = config.host, osc_port, values
        self._server = listen("OSCQuery", "osc", config.host, config.query_port,
                              lambda: ThreadingHTTPServer((config.host, config.query_port), self._handler_class()))
        self._server.daemon_threads = True
        token = None if is_loopback(config.host) else load_or_create_token(token_folder)
        self.guard = RequestGuard(config.host, self._server.server_address[1], token)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name="oscquery", daemon=True)
        self._thread.start()
        self.advertisement = None if is_loopback(config.host) else Advertisement(config.host, self.port, osc_port,
                                                                                  zeroconf)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def close(self) -> None:
        if self.advertisement is not None:
            self.advertisement.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2.0)

    def answer(self, target: str) -> tuple[HTTPStatus, dict[str, Any]]:
        """The JSON for one GET: HOST_INFO, the tree, a node, or one attribute of a node."""
        parts = urlsplit(target)
        query = {item.split("=", 1)[0] for item in parts.query.split("&") if item}
        if "HOST_INFO" in query:
            return HTTPStatus.OK, {
                "NAME": "LiveDream", "OSC_IP": self._osc_host, "OSC_PORT": self._osc_port, "OSC_TRANSPORT": "UDP",
                "EXTENSIONS": {"ACCESS": True, "VALUE": True, "RANGE": True, "TYPE": True, "FULL_PATH": True},
            }
        node = find_node(address_tree(*self._values()), parts.path)
        if node is None:
            return HTTPStatus.NOT_FOUND, {"error": f"no address {parts.path[:80]}"}
        attribute = next((name for name in query if name in node), None)
        return HTTPStatus.OK, ({attribute: node[attribute]} if attribute else node)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "LiveDream"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                log.debug("OSCQuery: " + format, *args)

            def do_GET(self) -> None:
                refusal = server.guard.check("GET", self.path, self.headers, self.client_address[0])
                status, answer = (refusal.status, {"error": refusal.reason}) if refusal else server.answer(self.path)
                send_answer(self, status, "application/json", json.dumps(answer).encode())

            def do_POST(self) -> None:
                self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "OSCQuery is read-only here; send OSC to change values")

        return Handler
