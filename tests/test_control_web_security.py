"""The web panel's doors, tried with a real HTTP client: foreign Host (DNS rebinding), foreign
Origin, a content type a cross-site form could send, oversize bodies, floods, paths outside
the panel, and the token a panel bound beyond localhost demands."""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import stat
from pathlib import Path

import pytest

from livedream.config import AttractConfig, Config, OscConfig, WebConfig
from livedream.control.hub import ControlHub
from livedream.control.ports import BURST, MAX_BODY, RateLimit, RequestGuard, _split_host
from livedream.params import Params

PARAM = json.dumps({"name": "strength", "value": 0.125}).encode()


def make_hub(host: str, state: Path) -> ControlHub:
    config = dataclasses.replace(Config(), osc=OscConfig(enabled=False), attract=AttractConfig(enabled=False),
                                 web=WebConfig(enabled=True, host=host, port=0))
    return ControlHub(config, clock=lambda: 0.0, open_devices=False, state_folder=state)


@pytest.fixture
def local_hub(tmp_path: Path):
    hub = make_hub("127.0.0.1", tmp_path / "state")
    yield hub
    hub.close()


@pytest.fixture
def open_hub(tmp_path: Path):
    hub = make_hub("0.0.0.0", tmp_path / "state")
    yield hub
    hub.close()


def port_of(hub: ControlHub) -> int:
    return hub.web.guard.port


def send(hub: ControlHub, method: str, path: str, headers: dict[str, str] | None = None,
         body: bytes | None = None, host: str | None = None) -> tuple[int, bytes]:
    """One request to 127.0.0.1 with exactly the headers given (Host defaults to the real one)."""
    connection = http.client.HTTPConnection("127.0.0.1", port_of(hub), timeout=5)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    all_headers = {"Host": host if host is not None else f"127.0.0.1:{port_of(hub)}", **(headers or {})}
    if body is not None:
        all_headers.setdefault("Content-Length", str(len(body)))
    for name, value in all_headers.items():
        if value is not None:
            connection.putheader(name, value)
    connection.endheaders(body)
    answer = connection.getresponse()
    status, data = answer.status, answer.read()
    connection.close()
    return status, data


def post_param(hub: ControlHub, **headers: str) -> int:
    return send(hub, "POST", "/param", {"Content-Type": "application/json", **headers}, PARAM)[0]


def strength_after(hub: ControlHub) -> float:
    return hub.inbox.update(Params(), 0.0).strength


# --- bound to localhost -------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example:{port}", "rebind.attacker.test:{port}", "localhost.evil:{port}",
                                  "127.0.0.1:1", "127.0.0.1", "", "[::1", "127.0.0.1:x"])
def test_a_foreign_host_header_is_refused(local_hub: ControlHub, host: str) -> None:
    host = host.format(port=port_of(local_hub))
    assert send(local_hub, "GET", "/state", host=host)[0] == 403
    assert post_param(local_hub, Host=host) == 403
    assert strength_after(local_hub) == Params().strength  # nothing reached the show


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1:{port}"])
def test_a_cross_origin_post_is_refused(local_hub: ControlHub, origin: str) -> None:
    assert post_param(local_hub, Origin=origin.format(port=port_of(local_hub))) == 403
    assert strength_after(local_hub) == Params().strength


def test_a_cross_site_fetch_is_refused_even_without_origin(local_hub: ControlHub) -> None:
    assert post_param(local_hub, **{"Sec-Fetch-Site": "cross-site"}) == 403


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "", "application/json-patch"])
def test_a_post_that_is_not_json_answers_415(local_hub: ControlHub, content_type: str) -> None:
    status, _ = send(local_hub, "POST", "/param", {"Content-Type": content_type}, PARAM)
    assert status == 415
    assert strength_after(local_hub) == Params().strength


def test_an_oversize_body_answers_413(local_hub: ControlHub) -> None:
    big = json.dumps({"name": "strength", "value": 0.1, "pad": "x" * MAX_BODY}).encode()
    assert send(local_hub, "POST", "/param", {"Content-Type": "application/json"}, big)[0] == 413


def test_the_panels_own_origin_on_localhost_works(local_hub: ControlHub) -> None:
    port = port_of(local_hub)
    own = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}", "Sec-Fetch-Site": "same-origin"}
    assert post_param(local_hub, **own) == 200
    assert strength_after(local_hub) == 0.125
    assert send(local_hub, "GET", "/", host=f"localhost:{port}")[0] == 200
    assert post_param(local_hub) == 200  # a script on this machine (no Origin) works too


@pytest.mark.parametrize("path", ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd",
                                  "/preview.jpg/../../../etc/hostname", "/static/../config.toml"])
def test_no_file_is_served_from_disk(local_hub: ControlHub, path: str) -> None:
    status, data = send(local_hub, "GET", path)
    assert status == 404 and b"root:" not in data


def test_a_flood_of_requests_is_limited(local_hub: ControlHub) -> None:
    # The clock stands still, so no token comes back during the flood, however slow the machine.
    local_hub.web.guard = RequestGuard("127.0.0.1", port_of(local_hub), None, RateLimit(clock=lambda: 0.0))
    statuses = [send(local_hub, "GET", "/state")[0] for _ in range(BURST + 20)]
    assert statuses[:BURST] == [200] * BURST and statuses[BURST:] == [429] * 20


def test_the_rate_limit_refills_with_time() -> None:
    now = [0.0]
    limit = RateLimit(rate=10, burst=2, clock=lambda: now[0])
    assert [limit.allow("a") for _ in range(3)] == [True, True, False]
    assert limit.allow("b")  # per client
    now[0] += 0.1
    assert limit.allow("a")


def test_refusals_are_logged_once_per_kind_not_per_request(local_hub: ControlHub, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="livedream.control.web"):
        for _ in range(20):
            send(local_hub, "GET", "/state", host="evil.example")
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1


# --- bound beyond localhost: the token --------------------------------------------------------------


@pytest.mark.parametrize("method, path", [("GET", "/"), ("GET", "/state"), ("GET", "/preview.jpg"), ("POST", "/param")])
def test_beyond_localhost_a_request_without_the_token_answers_401(open_hub: ControlHub, method: str, path: str) -> None:
    body = PARAM if method == "POST" else None
    headers = {"Content-Type": "application/json"} if body else {}
    assert send(open_hub, method, path, headers, body)[0] == 401
    assert send(open_hub, method, path + "?token=wrong", headers, body)[0] == 401
    assert send(open_hub, method, path, {**headers, "X-LiveDream-Token": "wrong"}, body)[0] == 401


def test_beyond_localhost_the_token_opens_every_door(open_hub: ControlHub) -> None:
    token = open_hub.web.guard.token
    assert token and len(token) >= 20
    assert send(open_hub, "GET", f"/?token={token}")[0] == 200
    assert send(open_hub, "GET", "/state", {"X-LiveDream-Token": token})[0] == 200
    assert send(open_hub, "GET", f"/preview.jpg?t=1&token={token}")[0] == 200
    assert post_param(open_hub, Authorization=f"Bearer {token}") == 200
    assert strength_after(open_hub) == 0.125


def test_the_token_is_made_once_kept_private_and_shown_as_a_url(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="livedream.control.web"):
        first = make_hub("0.0.0.0", tmp_path / "state")
    try:
        token = first.web.guard.token
        token_file = tmp_path / "state" / "web-token"
        assert token_file.read_text().strip() == token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert any(f"?token={token}" in line for line in first.status_lines())  # the HUD
        assert any(f"?token={token}" in r.getMessage() for r in caplog.records)  # the log
    finally:
        first.close()
    again = make_hub("0.0.0.0", tmp_path / "state")
    try:
        assert again.web.guard.token == token  # the phone's bookmark keeps working after a restart
    finally:
        again.close()


def test_on_localhost_no_token_is_made(local_hub: ControlHub, tmp_path: Path) -> None:
    assert local_hub.web.guard.token is None and not (tmp_path / "state" / "web-token").exists()


@pytest.mark.parametrize("header, expected", [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)), ("localhost", ("localhost", 80)), ("[::1]:9", ("::1", 9)),
    ("[::1]", ("::1", 80)), ("LOCALHOST:81", ("localhost", 81)), ("a:b", (None, None)), ("", (None, None)),
])
def test_host_headers_are_split_strictly(header: str, expected) -> None:
    assert _split_host(header) == expected


def test_guard_allows_own_names_and_ip_literals_only() -> None:
    guard = RequestGuard("0.0.0.0", 8080, None)
    allowed = {"Host": "192.0.2.7:8080"}
    assert guard.check("GET", "/", allowed, "c1") is None
    assert guard.check("GET", "/", {"Host": "example.com:8080"}, "c2").status == 403
