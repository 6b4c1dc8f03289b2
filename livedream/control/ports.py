"""Control ports (OSC, the web panel): opening them the same careful way, and who may talk
to one over HTTP.

A port on this machine is reachable by every web page that a browser here (or on a
staff laptop, when bound beyond localhost) happens to show. So every HTTP request must pass
`RequestGuard`:

- **Host**: "localhost", an IP literal or this machine's own name, with the server's port.
  A DNS-rebinding page reaches us under its own domain name, which is refused (403).
- **Token**: when bound beyond loopback, `?token=…`, `Authorization: Bearer …` or
  `X-LiveDream-Token: …` must carry the token (401). It is made once and kept in the state
  folder, shown on the HUD and in the log as a URL to open on a phone.
- **POST**: a browser's `Origin` (when sent) must be the panel's own (403); the body must be
  `application/json` (415) — a cross-site form cannot send that without a CORS preflight,
  which is never granted — and at most `MAX_BODY` bytes (413).
- **Rate**: at most `RATE_PER_S` requests a second per client, bursts of `BURST` (429).
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Callable, Mapping, TypeVar
from urllib.parse import parse_qs, urlsplit

from livedream.errors import UserError

log = logging.getLogger(__name__)

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
Server = TypeVar("Server")

MAX_BODY = 4096
RATE_PER_S = 50.0
BURST = 100
TOKEN_FILE = "web-token"


def listen(what: str, section: str, host: str, port: int, make_server: Callable[[], Server]) -> Server:
    """`make_server()`, warning when it is reachable from the network; a port that cannot be
    opened is a one-line UserError naming the config key to change."""
    if not is_loopback(host):
        log.warning("%s listens on %s:%d: anyone on that network can steer the show", what, host, port)
    try:
        return make_server()
    except OSError as error:
        if error.errno in (errno.EADDRINUSE, errno.EACCES):
            raise UserError(
                f"{what} port {port} is in use or not allowed ({error.strerror}); "
                f"choose another with [{section}] port in config.toml"
            ) from None
        raise UserError(
            f"{what} cannot listen on {host}:{port} ({error}); check [{section}] host and port"
        ) from None


def send_answer(handler: BaseHTTPRequestHandler, status: HTTPStatus, content_type: str, data: bytes) -> None:
    """One HTTP answer with the headers every control port sends: never cached, never
    sniffed as another type, never framed by another page (no clickjacking)."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("Cache-Control", "no-store")
    handler.send_header("X-Content-Type-Options", "nosniff")
    handler.send_header("X-Frame-Options", "DENY")
    handler.end_headers()
    handler.wfile.write(data)


@dataclass(frozen=True)
class Refusal:
    status: HTTPStatus
    reason: str


def is_loopback(host: str) -> bool:
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_or_create_token(folder: Path) -> str:
    """The panel's token, made on first use and kept (owner-only) in `folder`."""
    path = folder / TOKEN_FILE
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    return token


class RateLimit:
    """A token bucket per client address: `RATE_PER_S` a second, bursts of `BURST`."""

    MAX_CLIENTS = 1024  # addresses remembered; the oldest is forgotten first

    def __init__(self, rate: float = RATE_PER_S, burst: int = BURST, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client → (tokens, when)
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        now = self._clock()
        with self._lock:
            tokens, when = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - when) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
            if len(self._buckets) > self.MAX_CLIENTS:
                self._buckets.pop(next(iter(self._buckets)))
        return allowed


class RequestGuard:
    """`check(...)` answers None for a request that may proceed, else the refusal to send."""

    def __init__(self, bound_host: str, port: int, token: str | None, rate: RateLimit | None = None) -> None:
        self.port = port
        self.token = token
        self._rate = rate or RateLimit()
        names = {"localhost", socket.gethostname().lower()}
        self._own_names = names | {f"{name}.local" for name in names} | {bound_host.lower()}

    def check(self, method: str, target: str, headers: Mapping[str, str], client: str) -> Refusal | None:
        if not self._rate.allow(client):
            return Refusal(HTTPStatus.TOO_MANY_REQUESTS, f"more than {RATE_PER_S:g} requests a second")
        host_header = headers.get("Host", "")
        if not self._host_allowed(host_header):
            return Refusal(HTTPStatus.FORBIDDEN, f"Host {host_header[:80]!r} is not this panel's address")
        if self.token is not None and not self._token_given(target, headers):
            return Refusal(HTTPStatus.UNAUTHORIZED, "this panel needs its token: open the URL shown on the HUD")
        if method != "POST":
            return None
        origin = headers.get("Origin")
        if origin is not None and origin != f"http://{host_header}":
            return Refusal(HTTPStatus.FORBIDDEN, f"cross-origin request from {origin[:80]!r} refused")
        if headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return Refusal(HTTPStatus.FORBIDDEN, "cross-site request refused")
        media_type = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            return Refusal(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send Content-Type: application/json")
        length = headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_BODY:
            return Refusal(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a JSON body of at most {MAX_BODY} bytes")
        return None

    def _host_allowed(self, host_header: str) -> bool:
        host, port = _split_host(host_header)
        if host is None or port != self.port:
            return False
        if host in self._own_names:
            return True
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False  # a domain name: what a DNS-rebinding page would send
        return True

    def _token_given(self, target: str, headers: Mapping[str, str]) -> bool:
        query = parse_qs(urlsplit(target).query).get("token", [])
        bearer = headers.get("Authorization", "")
        given = [*query, headers.get("X-LiveDream-Token", ""), bearer.removeprefix("Bearer ").strip()]
        return any(candidate and hmac.compare_digest(candidate, self.token or "") for candidate in given)


def _split_host(host_header: str) -> tuple[str | None, int | None]:
    """("127.0.0.1", 8080) from "127.0.0.1:8080", ("::1", 80) from "[::1]"; (None, None) if malformed."""
    text = host_header.strip().lower()
    if not text:
        return None, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else ("" if not rest else None)
    else:
        host, _, port_text = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    if port_text is None or (port_text and not port_text.isdigit()):
        return None, None
    return host, int(port_text) if port_text else 80
