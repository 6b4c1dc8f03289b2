"""Opening a control port (OSC, web panel) the same careful way for every server."""

from __future__ import annotations

import errno
import logging
from typing import Callable, TypeVar

from livedream.errors import UserError

log = logging.getLogger(__name__)

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
Server = TypeVar("Server")


def listen(what: str, section: str, host: str, port: int, make_server: Callable[[], Server]) -> Server:
    """`make_server()`, warning when it is reachable from the network; a port that cannot be
    opened is a one-line UserError naming the config key to change."""
    if host not in LOCAL_HOSTS:
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
