"""A small control panel in the browser (standard library `http.server`, own thread).

GET  /             the page: preview, fps, preset buttons, sliders, show commands
GET  /preview.jpg  the latest output frame, shrunk to `preview_width`
GET  /state        JSON: params, fps, presets, current preset, HUD lines
POST /param        {"name": "strength", "value": 0.1}  → checked and clamped like OSC
POST /preset       {"preset": "calm"} or {"preset": 2}
POST /command      {"command": "screenshot"}: one of `inbox.COMMANDS`, each a button on the page
POST /learn        {"target": "strength"} or a preset name: MIDI learn for the next control moved

Every request passes `httpguard.RequestGuard` first (Host, token beyond localhost, Origin,
JSON content type, body size, rate). Every POST goes through the same `Inbox` as OSC, so
the frame loop applies it once per frame; bad input answers 400 with a reason and logs a
warning, never reaches the show. Nothing is served from disk.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from livedream.config import WebConfig
from livedream.control.inbox import COMMANDS, SHOW_COMMANDS, Inbox, shown
from livedream.params import CHOICE_PARAMS, OBJECTIVE_FIELDS, OBJECTIVE_PARAMS, VISITOR_PARAMS, fader_range
from livedream.control.ports import Refusal, RequestGuard, is_loopback, listen, load_or_create_token, send_answer

log = logging.getLogger(__name__)

REFUSAL_LOG_INTERVAL_S = 60.0  # a flood of refused requests logs one line per client and kind a minute
SLIDERS = (  # name, step, decimals shown
    ("strength", 0.001, 3),
    ("steps", 1, 0),
    ("half_life", 0.05, 2),
    ("zoom_per_s", 0.01, 2),
    ("rotate_per_s", 0.5, 1),
)
# One slider per objective layer: the look morphs as they move (faders span 0..4).
OBJECTIVE_SLIDERS = tuple((name, 0.05, 2) for name in OBJECTIVE_PARAMS)
VISITOR_SLIDERS = tuple((name, 0.05, 2) for name in VISITOR_PARAMS)  # all 0: the room's objective


class Preview:
    """The newest output frame, shrunk once per publish into a reused buffer; JPEG on demand."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.fps = 0.0
        self._lock = threading.Lock()
        self._thumbnail: np.ndarray | None = None
        self._bgr: np.ndarray | None = None

    def publish(self, frame_rgb: np.ndarray, fps: float) -> None:
        height = max(1, round(frame_rgb.shape[0] * self.width / frame_rgb.shape[1]))
        with self._lock:
            if self._thumbnail is None or self._thumbnail.shape[:2] != (height, self.width):
                self._thumbnail = np.empty((height, self.width, 3), np.uint8)
                self._bgr = np.empty_like(self._thumbnail)
            cv2.resize(frame_rgb, (self.width, height), dst=self._thumbnail, interpolation=cv2.INTER_AREA)
            self.fps = fps

    def jpeg(self) -> bytes:
        with self._lock:
            if self._thumbnail is None:
                image = np.full((round(self.width * 9 / 16), self.width, 3), 24, np.uint8)
                cv2.putText(image, "no frame yet", (10, image.shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (160, 160, 160), 1)
            else:
                image = cv2.cvtColor(self._thumbnail, cv2.COLOR_RGB2BGR, dst=self._bgr)
            ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        return encoded.tobytes()


class WebPanel:
    """Serves the panel on [web] host:port until `close()`.

    `state` is called from request threads and returns a JSON-ready dict (the hub's
    params, presets, HUD lines); it must only read values that are replaced whole.
    """

    def __init__(self, config: WebConfig, inbox: Inbox, preset_names: list[str], state: Callable[[], dict],
                 token_folder: Path) -> None:
        """Beyond loopback the panel needs a token, kept in `token_folder` (the state folder)."""
        self.preview = Preview(config.preview_width)
        self._inbox = inbox
        self._preset_names = preset_names
        self._state = state
        self._refusals_logged: dict[tuple[str, int], float] = {}
        self._server = listen("web panel", "web", config.host, config.port,
                              lambda: ThreadingHTTPServer((config.host, config.port), self._handler_class()))
        self._server.daemon_threads = True
        token = None if is_loopback(config.host) else load_or_create_token(token_folder)
        self.guard = RequestGuard(config.host, self._server.server_address[1], token)
        if token is not None:
            log.warning("web panel reachable from the network; open it with its token: %s", self.url)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name="web-panel", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The address to open, with the token when one is needed."""
        host, port = self._server.server_address[:2]
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        token = f"?token={self.guard.token}" if self.guard.token else ""
        return f"http://{host}:{port}/{token}"

    def refuse(self, client: str, refusal: Refusal, method: str, path: str) -> None:
        """Log a refused request: once per client and kind a minute, so a flood cannot fill the log."""
        key, now = (client, refusal.status.value), time.monotonic()
        if now - self._refusals_logged.get(key, -REFUSAL_LOG_INTERVAL_S) >= REFUSAL_LOG_INTERVAL_S:
            self._refusals_logged[key] = now
            if len(self._refusals_logged) > 1024:
                self._refusals_logged.pop(next(iter(self._refusals_logged)))
            log.warning("web: %s %s from %s refused (%d): %s", method, shown(path), client,
                        refusal.status.value, refusal.reason)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2.0)

    # --- requests --------------------------------------------------------------------------

    def state_json(self) -> dict:
        state = dict(self._state())
        state["fps"] = round(self.preview.fps, 1)
        state["presets"] = self._preset_names
        return state

    def post(self, path: str, body: dict) -> tuple[HTTPStatus, dict]:
        """Apply one POST; returns the status and the JSON answer."""
        where = f"web {path}"
        if path == "/param":
            value = self._inbox.set_param(body.get("name"), body.get("value"), where)
            if value is None:
                return HTTPStatus.BAD_REQUEST, {"ok": False, "error": "see the log: unknown name or not a number"}
            return HTTPStatus.OK, {"ok": True, "name": body["name"], "value": value, "clamped": value != body["value"]}
        if path == "/preset":
            preset = body.get("preset")
            if isinstance(preset, str) and preset not in self._preset_names and not preset.isdigit():
                log.warning("%s: no preset %s", where, shown(preset))
                return HTTPStatus.BAD_REQUEST, {"ok": False, "error": f"no preset {shown(preset)}"}
            ok = self._inbox.select_preset(preset, where)
            return (HTTPStatus.OK if ok else HTTPStatus.BAD_REQUEST), {"ok": ok}
        if path == "/command":
            command = body.get("command")
            if command not in COMMANDS:
                log.warning("%s: unknown command %s", where, shown(command))
                return HTTPStatus.BAD_REQUEST, {"ok": False, "error": f"commands: {', '.join(COMMANDS)}"}
            self._inbox.command(command)
            return HTTPStatus.OK, {"ok": True}
        if path == "/choice":
            name = body.get("name")
            if name not in CHOICE_PARAMS:
                log.warning("%s: no choice %s", where, shown(name))
                return HTTPStatus.BAD_REQUEST, {"ok": False, "error": f"choices: {', '.join(CHOICE_PARAMS)}"}
            ok = self._inbox.set_choice(name, body.get("value"), where)
            return (HTTPStatus.OK if ok else HTTPStatus.BAD_REQUEST), {"ok": ok}
        if path == "/learn":
            ok = self._inbox.arm_learn(body.get("target"), where, tuple(self._preset_names))
            return (HTTPStatus.OK if ok else HTTPStatus.BAD_REQUEST), {"ok": ok}
        return HTTPStatus.NOT_FOUND, {"ok": False, "error": "unknown address"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        panel = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "LiveDream"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                log.debug("web: " + format, *args)

            def _refused(self) -> bool:
                refusal = panel.guard.check(self.command, self.path, self.headers, self.client_address[0])
                if refusal is None:
                    return False
                panel.refuse(self.client_address[0], refusal, self.command, self.path)
                self._send_json(refusal.status, {"ok": False, "error": refusal.reason})
                self.close_connection = True
                return True

            def do_GET(self) -> None:
                if self._refused():
                    return
                path = self.path.split("?", 1)[0]
                if path == "/":
                    self._send(HTTPStatus.OK, "text/html; charset=utf-8", page_html().encode())
                elif path == "/preview.jpg":
                    self._send(HTTPStatus.OK, "image/jpeg", panel.preview.jpeg())
                elif path == "/state":
                    self._send_json(HTTPStatus.OK, panel.state_json())
                else:
                    self._send_json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "unknown address"})

            def do_POST(self) -> None:
                if self._refused():  # also checks the type and a Content-Length of at most MAX_BODY
                    return
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                    if not isinstance(body, dict):
                        raise ValueError("not an object")
                except ValueError as error:
                    log.warning("web %s: body is not a JSON object (%s); ignored", shown(self.path), error)
                    self._send_json(HTTPStatus.BAD_REQUEST, {"ok": False, "error": "send a JSON object"})
                    return
                status, answer = panel.post(self.path.split("?", 1)[0], body)
                self._send_json(status, answer)

            def _send_json(self, status: HTTPStatus, answer: dict) -> None:
                self._send(status, "application/json", json.dumps(answer).encode())

            def _send(self, status: HTTPStatus, content_type: str, data: bytes) -> None:
                send_answer(self, status, content_type, data)

        return Handler


def _slider(name: str, step: float) -> str:
    span = fader_range(name)
    assert span is not None, name
    label = next((name.removeprefix(prefix) for prefix in OBJECTIVE_FIELDS if name.startswith(prefix)), name)
    return (f'<label>{label} <button class="learn" data-learn="{name}" title="MIDI learn: then move a control">learn</button>'
            f' <output id="{name}-value"></output>'
            f'<input type="range" id="{name}" min="{span.low}" max="{span.high}" step="{step}"></label>')


def _choice(name: str) -> str:
    """A row of buttons, one per value of a named choice (`params.CHOICE_PARAMS`)."""
    buttons = "".join(f'<button data-choice="{name}" data-value="{value}">{value}</button>' for value in CHOICE_PARAMS[name])
    return f'<div class="choice">{name.replace("_", " ")}: {buttons}</div>'


def page_html() -> str:
    sliders = "\n".join(_slider(name, step) for name, step, _ in SLIDERS)
    objective = "\n".join(_slider(name, step) for name, step, _ in OBJECTIVE_SLIDERS)
    visitors = "\n".join([_choice(name) for name in CHOICE_PARAMS] + [_slider(name, step) for name, step, _ in VISITOR_SLIDERS])
    decimals = {name: d for name, _, d in SLIDERS + OBJECTIVE_SLIDERS + VISITOR_SLIDERS}
    commands = "".join(f'<button data-command="{command.name}">{command.label}</button>' for command in SHOW_COMMANDS)
    return (PAGE.replace("{{sliders}}", sliders).replace("{{objective}}", objective)
            .replace("{{visitors}}", visitors).replace("{{commands}}", commands)
            .replace("{{decimals}}", json.dumps(decimals)))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>LiveDream</title>
<style>
 body { margin: 0; font: 15px system-ui, sans-serif; background: #111; color: #ddd; }
 main { display: flex; flex-wrap: wrap; gap: 24px; padding: 20px; }
 h1 { font-size: 18px; margin: 0 0 12px; font-weight: 600; }
 .controls h1:not(:first-child) { margin-top: 20px; }
 section { background: #1c1c1c; border-radius: 8px; padding: 16px; }
 #preview { display: block; width: 480px; max-width: 100%; background: #000; border-radius: 4px; }
 #fps { color: #9c9; font-variant-numeric: tabular-nums; }
 #status { font: 12px ui-monospace, monospace; color: #999; white-space: pre-wrap; margin-top: 8px; }
 .controls { width: 320px; }
 label { display: block; margin: 10px 0; }
 input[type=range] { width: 100%; }
 output { float: right; color: #fff; font-variant-numeric: tabular-nums; }
 button { background: #333; color: #eee; border: 1px solid #555; border-radius: 4px; padding: 6px 12px; margin: 0 6px 6px 0; cursor: pointer; font: inherit; }
 button:hover { background: #444; }
 button.current { background: #2d5a8a; border-color: #4a8ad0; }
 button.learn { padding: 0 6px; margin: 0 0 0 6px; font-size: 11px; }
 .choice { margin: 10px 0; } .choice button { margin-left: 4px; }
 .hint { font-size: 12px; color: #999; margin: 0; }
</style></head>
<body><main>
<section>
 <h1>LiveDream <span id="fps">– fps</span></h1>
 <img id="preview" alt="live preview">
 <div id="status"></div>
</section>
<section class="controls">
 <h1>Presets</h1><div id="presets"></div>
 <h1>Parameters</h1>
 {{sliders}}
 <h1>Objective</h1>
 {{objective}}
 <h1>Visitors</h1>
 <p class="hint">The people a still camera sees; their objective at all 0 is the room's.</p>
 {{visitors}}
 <h1>Show</h1>
 {{commands}}
</section>
</main>
<script>
const DECIMALS = {{decimals}};
const TOKEN = new URLSearchParams(location.search).get("token") || "";
const AUTH = TOKEN ? {"X-LiveDream-Token": TOKEN} : {};
const WITH_TOKEN = TOKEN ? "&token=" + encodeURIComponent(TOKEN) : "";
const SLIDERS = Object.keys(DECIMALS);
let dragging = null;
function post(path, body) {
  return fetch(path, {method: "POST", headers: {"Content-Type": "application/json", ...AUTH}, body: JSON.stringify(body)});
}
for (const name of SLIDERS) {
  const slider = document.getElementById(name);
  slider.addEventListener("pointerdown", () => dragging = name);
  slider.addEventListener("pointerup", () => dragging = null);
  slider.addEventListener("input", () => {
    document.getElementById(name + "-value").textContent = Number(slider.value).toFixed(DECIMALS[name]);
    post("/param", {name: name, value: Number(slider.value)});
  });
}
for (const button of document.querySelectorAll("[data-learn]")) {
  button.addEventListener("click", (event) => { event.preventDefault(); post("/learn", {target: button.dataset.learn}); });
}
for (const button of document.querySelectorAll("[data-choice]")) {
  button.addEventListener("click", () => post("/choice", {name: button.dataset.choice, value: button.dataset.value}));
}
for (const button of document.querySelectorAll("[data-command]")) {
  button.addEventListener("click", () => post("/command", {command: button.dataset.command}));
}
async function refreshState() {
  try {
    const state = await (await fetch("/state", {headers: AUTH})).json();
    document.getElementById("fps").textContent = state.fps.toFixed(1) + " fps";
    document.getElementById("status").textContent = state.status.join("\\n");
    const presets = document.getElementById("presets");
    if (presets.children.length !== state.presets.length) {
      presets.replaceChildren(...state.presets.map((name, i) => {
        const button = document.createElement("button");
        button.textContent = (i < 9 ? (i + 1) + " · " : "") + name;
        button.dataset.preset = name;
        button.addEventListener("click", () => post("/preset", {preset: name}));
        return button;
      }));
    }
    for (const button of presets.children) button.classList.toggle("current", button.dataset.preset === state.preset);
    for (const button of document.querySelectorAll("[data-choice]")) {
      button.classList.toggle("current", state.params[button.dataset.choice] === button.dataset.value);
    }
    for (const name of SLIDERS) {
      if (name === dragging) continue;
      const value = state.params[name];
      document.getElementById(name).value = value;
      document.getElementById(name + "-value").textContent = value.toFixed(DECIMALS[name]);
    }
  } catch (error) { document.getElementById("fps").textContent = "offline"; }
}
function refreshPreview() {
  const next = new Image();
  next.onload = () => { document.getElementById("preview").src = next.src; setTimeout(refreshPreview, 200); };
  next.onerror = () => setTimeout(refreshPreview, 1000);
  next.src = "/preview.jpg?t=" + Date.now() + WITH_TOKEN;
}
refreshState(); setInterval(refreshState, 1000); refreshPreview();
</script>
</body></html>
"""
