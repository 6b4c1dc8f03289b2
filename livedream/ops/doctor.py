"""`livedream doctor`: can this machine run the installation as configured? One line per check.

Each check gives `Check`s: ✓ fine · ! a warning that does not stop the app · ✗ a problem
that does, with the fix on the next line · – a note. The exit code is 0 only when nothing
is ✗. Every check is a function of what it is given (config, models folder, capture
factory), so tests can run it without the machine's camera, GPU or models.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import importlib.metadata
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.markup import escape

from livedream.config import (
    Config,
    ModelConfig,
    SourceConfig,
    apply_overrides,
    config_path_or_default,
    load_config,
)
from livedream.control.ports import is_loopback
from livedream.errors import UserError, first_line
from livedream.manifest import (
    EARLIER_RELEASE,
    EXPORT_HINT,
    default_models_dir,
    find_graph,
    read_manifest,
)

OK, WARN, FAIL, NOTE = "ok", "warn", "fail", "note"
SYMBOLS = {OK: "[green]✓[/]", WARN: "[yellow]![/]", FAIL: "[bold red]✗[/]", NOTE: "[dim]–[/]"}
CAMERA_INDICES = range(4)
PROBE_TIMEOUT_S = 5.0
HEADLESS_DRIVERS = ("dummy", "offscreen")
# A one-node ONNX graph (y = Relu(x), x: float[1], opset 13), made with onnx.helper and
# inlined so the CUDA check needs neither the onnx package nor an exported model.
PROBE_GRAPH = base64.b64decode(
    "CAgSADo3CgwKAXgSAXkiBFJlbHUSBXByb2JlWg8KAXgSCgoICAESBAoCCAFiDwoBeRIKCggIARIECgIIAUIECgAQDQ=="
)


@dataclass(frozen=True)
class Check:
    """One line of the report; `fix` is shown under a ✗ or !."""

    status: str
    name: str
    detail: str
    fix: str = ""


def run_doctor(
    config_path: Path | None = None,
    source_kind: str | None = None,
    models_dir: Path | None = None,
    capture_factory: Callable[[Any], Any] | None = None,
    console: Console | None = None,
) -> int:
    """Run every check, print the report, return the exit code (0 = ready, 1 = blocked)."""
    console = console or Console(soft_wrap=True, highlight=False)
    checks: list[Check] = []

    def report(new: list[Check]) -> None:
        for check in new:
            checks.append(check)
            console.print(f"{SYMBOLS[check.status]} {escape(check.name)}: {escape(check.detail)}")
            if check.fix and check.status in (FAIL, WARN):
                console.print(f"    [dim]fix:[/] {escape(check.fix)}")

    config, config_checks = check_config(config_path, source_kind)
    report(config_checks)
    report(check_python())
    report(check_packages())
    report(check_providers(config.model))
    report(check_models(config.dream.model, models_dir or default_models_dir()))
    report(check_person_model())
    report(check_source(config.source, capture_factory or _open_if_present))
    report(check_displays(config.display.display))
    report(check_folders(config))
    report(check_control_ports(config))
    report(check_schedule(config))

    blocking = [check.name for check in checks if check.status == FAIL]
    warnings = sum(check.status == WARN for check in checks)
    if blocking:
        console.print(f"[bold red]✗ not ready[/] — the app cannot run as configured; blocked by: {escape(', '.join(blocking))}")
        return 1
    also = f" ({warnings} warning{'s' if warnings != 1 else ''} above)" if warnings else ""
    console.print(f"[bold green]✓ ready[/] — the app can run as configured{also}")
    return 0


# --- checks --------------------------------------------------------------------------------


def check_config(path: Path | None, source_kind: str | None) -> tuple[Config, list[Check]]:
    """The config with --source applied, and its line. A broken file gives the defaults, so
    the other checks still run (the exit code is 1 anyway)."""
    path = config_path_or_default(path)
    label = str(path) if path is not None else "built-in defaults (no config.toml here)"
    try:
        config = load_config(path)
    except UserError as error:
        return Config(), [Check(FAIL, "config", str(error), "correct that line (the message names the key)")]
    if source_kind is None:
        return config, [Check(OK, "config", f"{label} is valid")]
    try:
        config = apply_overrides(config, source__kind=source_kind)
    except UserError as error:
        return config, [Check(FAIL, "config", f"--source {source_kind}: {error}", "set [source] path in the config")]
    return config, [Check(OK, "config", f"{label} is valid; source kind {source_kind} (from --source)")]


def check_python() -> list[Check]:
    version = ".".join(str(part) for part in sys.version_info[:3])
    if sys.version_info < (3, 11):
        return [Check(FAIL, "python", f"{version} at {sys.executable}", "install Python 3.11 or newer")]
    return [Check(OK, "python", f"{version} at {sys.executable}")]


# (label, module, how to read its version, the fix when it is missing)
REQUIRED_PACKAGES: tuple[tuple[str, str, Callable[[Any], str], str], ...] = (
    ("numpy", "numpy", lambda m: m.__version__, "pip install numpy"),
    ("onnxruntime", "onnxruntime", lambda m: f"{m.__version__} ({_ort_build()})", "pip install onnxruntime"),
    ("opencv", "cv2", lambda m: m.__version__, "pip install opencv-python"),
    ("pygame", "pygame", lambda m: f"{m.version.ver} (SDL {'.'.join(map(str, m.get_sdl_version()))})", "pip install pygame"),
    ("platformdirs", "platformdirs", lambda m: importlib.metadata.version("platformdirs"), "pip install platformdirs"),
    ("rich", "rich", lambda m: importlib.metadata.version("rich"), "pip install rich"),
)
# (label, distribution, what it is for) — versions read from metadata: importing torch takes seconds.
OPTIONAL_PACKAGES = (
    ("torch", "torch", "only `livedream export` needs it: pip install 'livedream[export]'"),
    ("python-osc", "python-osc", "OSC control: pip install python-osc"),
    ("mido", "mido", "MIDI control: pip install mido"),
)


def check_packages() -> list[Check]:
    checks = []
    for label, module_name, version_of, fix in REQUIRED_PACKAGES:
        try:
            version = version_of(importlib.import_module(module_name))
        except Exception as error:  # noqa: BLE001 - ImportError, or a broken native library
            checks.append(Check(FAIL, label, f"cannot be imported ({first_line(error)})", fix))
            continue
        checks.append(Check(OK, label, version))
    for label, distribution, purpose in OPTIONAL_PACKAGES:
        try:
            checks.append(Check(OK, label, importlib.metadata.version(distribution)))
        except importlib.metadata.PackageNotFoundError:
            checks.append(Check(NOTE, label, f"not installed (optional; {purpose})"))
    return checks


def _ort_build() -> str:
    for distribution in ("onnxruntime-gpu", "onnxruntime"):
        try:
            importlib.metadata.version(distribution)
            return f"{distribution} build"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown build"


def nvidia_gpu_present() -> bool:
    """An NVIDIA driver is loaded, or its tool is installed."""
    return Path("/proc/driver/nvidia").exists() or shutil.which("nvidia-smi") is not None


def check_providers(model_cfg: ModelConfig, gpu_present: Callable[[], bool] = nvidia_gpu_present) -> list[Check]:
    import onnxruntime as ort

    from livedream.runtime.devices import short_name

    available = ort.get_available_providers()
    names = ", ".join(short_name(provider) for provider in available)
    return [
        Check(OK, "ONNX Runtime providers", names),
        *_check_cuda(model_cfg.device, available, gpu_present),
        check_webgpu(model_cfg.device),
        check_placement(model_cfg.device),
    ]


def _check_cuda(device: str, available: list[str], gpu_present: Callable[[], bool]) -> list[Check]:
    from livedream.runtime.devices import CUDA, CUDA_INSTALL

    wants_cuda = device == "cuda"
    if device in ("cpu", "webgpu"):
        return [Check(OK, "CUDA", f"not used ([model] device = \"{device}\")")]
    if CUDA in available:
        return [_check_cuda_session(wants_cuda)]
    if gpu_present():
        return [Check(
            FAIL if wants_cuda else WARN, "CUDA",
            "an NVIDIA GPU is present but the installed onnxruntime is the CPU build: dreaming runs on the CPU, slowly",
            CUDA_INSTALL,
        )]
    if wants_cuda:
        return [Check(
            FAIL, "CUDA", "[model] device = \"cuda\" but there is no NVIDIA GPU and no CUDA provider",
            "set [model] device = \"auto\" or \"cpu\", or install an NVIDIA GPU and onnxruntime-gpu",
        )]
    return [Check(OK, "CUDA", "no NVIDIA GPU found")]


def check_webgpu(device: str) -> Check:
    """The WebGPU plugin's adapter by name and backend, or why there is none."""
    from livedream.runtime.devices import WebGpuAdapter, find_webgpu

    if device in ("cpu", "cuda"):
        return Check(OK, "WebGPU", f"not used ([model] device = \"{device}\")")
    found = find_webgpu()
    if not isinstance(found, WebGpuAdapter):
        return Check(FAIL if device == "webgpu" else NOTE, "WebGPU", found.reason, found.fix)
    if found.software:
        return Check(OK, "WebGPU", f"adapter: {found.label}; software, so `auto` passes it over "
                                   f"(device \"webgpu\" uses it)")
    return Check(OK, "WebGPU", f"adapter: {found.label}")


def check_placement(device: str) -> Check:
    """Where the dream runs under this config, by the rule the app itself follows."""
    from livedream.runtime.devices import place

    try:
        placement = place(device)
    except UserError as error:
        return Check(FAIL, "dream device", str(error))
    return Check(OK, "dream device", f"{placement.provider} ([model] device = \"{device}\": {placement.why})")


def _check_cuda_session(wants_cuda: bool) -> Check:
    """A tiny session on CUDA: fails or falls back to the CPU when cuDNN or the driver is missing."""
    import numpy as np
    import onnxruntime as ort

    from livedream.runtime.devices import CPU, CUDA
    from livedream.runtime.devices import CUDA_LIBRARIES_FIX
    from livedream.runtime.engine import preload_cuda_libraries

    driver_fix = f"{CUDA_LIBRARIES_FIX}, and check that `nvidia-smi` works"

    status = FAIL if wants_cuda else WARN
    missing = preload_cuda_libraries()
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 4
        session = ort.InferenceSession(PROBE_GRAPH, options, providers=[CUDA, CPU])
        session.run(None, {"x": np.ones(1, np.float32)})
    except Exception as error:  # noqa: BLE001 - ORT raises its own types
        return Check(status, "CUDA", f"a CUDA session fails: {first_line(error)}", driver_fix)
    if session.get_providers()[0] != CUDA:
        if missing:
            return Check(status, "CUDA", f"the CUDA provider did not start: {', '.join(missing)} failed to load",
                         CUDA_LIBRARIES_FIX)
        return Check(status, "CUDA", "the CUDA provider is installed but did not start (cuDNN or CUDA libraries not found)",
                     driver_fix)
    return Check(OK, "CUDA", "a CUDA session runs (driver, CUDA and cuDNN found)")


def check_models(model: str, models_dir: Path) -> list[Check]:
    """The configured graph must be present and match the manifest; other graphs are reported."""
    checks = []
    try:
        path, info = find_graph(model, models_dir)
    except UserError as error:
        checks.append(Check(FAIL, f"model {model}", str(error), EXPORT_HINT))
    else:
        if not info.of_this_release:
            checks.append(Check(FAIL, f"model {model}", f"{path} {EARLIER_RELEASE}", EXPORT_HINT))
        else:
            checks.append(Check(OK, f"model {model}", f"{path} matches its manifest sha256 (objective layers "
                                f"{', '.join(info.layers)}, {info.dtype})"))
    try:
        others = [name for name in read_manifest(models_dir) if name != model]
    except UserError:
        return checks  # the line above already says the manifest is unreadable
    for name in others:
        try:
            path, _ = find_graph(name, models_dir)
            checks.append(Check(OK, f"model {name}", f"{path} matches its manifest sha256"))
        except UserError as error:
            checks.append(Check(WARN, f"model {name}", f"{error} (not the configured model)", ""))
    return checks


def check_person_model(path: Path | None = None, sha256: str | None = None) -> list[Check]:
    """The shipped person model (`runtime.person`) is intact and opens: it names what finds the visitors."""
    from livedream.manifest import PERSON_GRAPH, PERSON_SHA256
    from livedream.pipeline.visitors import FOUND_BY_BOTH
    from livedream.runtime.person import FIX, person_model_problem, person_session

    path, sha256 = path or PERSON_GRAPH, sha256 or PERSON_SHA256
    problem = person_model_problem(path, sha256)
    if problem is None:
        try:
            person_session(path, sha256)
        except UserError as error:
            problem = str(error).removesuffix(f"; {FIX}")
    if problem is not None:
        return [Check(FAIL, "person model", problem, FIX)]
    return [Check(OK, "person model", f"{path} matches its sha256; visitors are found by the {FOUND_BY_BOTH}")]


# --- cameras -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraProbe:
    device: int | str
    opened: bool
    detail: str  # the mode it gave, or what went wrong


def _open_if_present(device: int | str) -> Any:
    """cv2.VideoCapture, but an index with no /dev/videoN on Linux is not opened at all
    (OpenCV would print a warning for each)."""
    import cv2

    if sys.platform.startswith("linux") and isinstance(device, int) and not Path(f"/dev/video{device}").exists():
        return _Absent()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2.VideoCapture(device)


class _Absent:
    def isOpened(self) -> bool:
        return False

    def release(self) -> None:
        pass


def probe_cameras(
    devices: list[int | str], cfg: SourceConfig, capture_factory: Callable[[Any], Any], timeout_s: float = PROBE_TIMEOUT_S
) -> list[CameraProbe]:
    """Open each device on its own thread (in parallel); one that does not answer within
    `timeout_s` is reported as hung and left behind, so a bad driver cannot hang doctor."""
    results: dict[int | str, CameraProbe] = {}
    threads = []
    for device in devices:
        thread = threading.Thread(
            target=lambda d=device: results.__setitem__(d, _probe_one(d, cfg, capture_factory)),
            name=f"doctor-camera-{device}", daemon=True,
        )
        thread.start()
        threads.append((device, thread))
    deadline = time.monotonic() + timeout_s
    probes = []
    for device, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        probes.append(results.get(device) or CameraProbe(device, False, f"did not answer within {timeout_s:.0f} s (hung driver?)"))
    return probes


def _probe_one(device: int | str, cfg: SourceConfig, capture_factory: Callable[[Any], Any]) -> CameraProbe:
    import cv2

    from livedream.pipeline.sources import ask_for_mode

    try:
        capture = capture_factory(device)
    except Exception as error:  # noqa: BLE001 - a driver fault is a result here
        return CameraProbe(device, False, f"opening fails: {first_line(error)}")
    try:
        if not capture.isOpened():
            return CameraProbe(device, False, "not found")
        ask_for_mode(capture, cfg.width, cfg.height, cfg.fps)
        ok, frame = capture.read()
        if not ok or frame is None:
            return CameraProbe(device, False, "opens but delivers no frame (in use by another program?)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        rate = f" @ {fps:.0f} fps" if fps and fps > 0 else ""
        mode = f"{frame.shape[1]}x{frame.shape[0]}{rate}"
        asked = f"{cfg.width}x{cfg.height} @ {cfg.fps} fps"
        return CameraProbe(device, True, f"{mode} (asked {asked})")
    except Exception as error:  # noqa: BLE001
        return CameraProbe(device, False, f"fails while reading: {first_line(error)}")
    finally:
        try:
            capture.release()
        except Exception:  # noqa: BLE001
            pass


def check_source(
    cfg: SourceConfig, capture_factory: Callable[[Any], Any], timeout_s: float = PROBE_TIMEOUT_S
) -> list[Check]:
    """The configured source can deliver frames; cameras are listed with the mode they gave."""
    from livedream.pipeline.sources import WITHOUT_CAMERA  # the app's own rule for a missing camera

    if cfg.kind in ("video", "image"):
        return [_check_source_file(cfg)]
    devices: list[int | str] = [cfg.camera, *(i for i in CAMERA_INDICES if i != cfg.camera)]
    probes = probe_cameras(devices, cfg, capture_factory, timeout_s)
    configured, others = probes[0], probes[1:]
    found = [p for p in others if p.opened]
    checks = []
    if configured.opened:
        checks.append(Check(OK, f"camera {configured.device}", configured.detail))
    elif cfg.kind in WITHOUT_CAMERA:
        checks.append(Check(
            WARN, f"camera {configured.device}",
            f"{configured.detail}; [source] kind = \"{cfg.kind}\" shows {WITHOUT_CAMERA[cfg.kind]} instead",
            f"{_camera_hint(found)}set [source] kind = \"demo\" to say the demo is meant",
        ))
    elif cfg.kind == "camera":
        checks.append(Check(
            FAIL, f"camera {configured.device}", f"{configured.detail}; [source] kind = \"{cfg.kind}\" needs it",
            f"{_camera_hint(found)}use --source demo / [source] kind = \"demo\"",
        ))
    else:
        checks.append(Check(NOTE, f"camera {configured.device}", f"{configured.detail} (not needed: source is {cfg.kind})"))
    for probe in found:
        checks.append(Check(NOTE, f"camera {probe.device}", f"{probe.detail} (not the configured camera)"))
    for probe in others:
        if not probe.opened and probe.detail != "not found":
            checks.append(Check(NOTE, f"camera {probe.device}", probe.detail))
    if cfg.kind == "demo":
        checks.append(Check(OK, "source", "demo (the bundled photo in motion; needs no camera)"))
    return checks


def _camera_hint(found: list) -> str:
    """The start of a camera check's fix: the camera that does open, or how to find one."""
    if found:
        return f"set [source] camera = {found[0].device!r} (it opens), or "
    return "plug in a camera (`ls /dev/video*`), set [source] camera to its index or path, or "


def _check_source_file(cfg: SourceConfig) -> Check:
    from livedream.pipeline.sources import StillSource, VideoFileSource

    try:
        if cfg.kind == "image":
            StillSource(Path(cfg.path))
        else:
            VideoFileSource(Path(cfg.path)).close()
    except UserError as error:
        return Check(FAIL, "source", str(error), "set [source] path to a readable file")
    return Check(OK, "source", f"{cfg.kind} {cfg.path} reads")


# --- display -------------------------------------------------------------------------------


def check_displays(display_index: int) -> list[Check]:
    """Displays under the current SDL video driver. A headless driver (dummy, offscreen)
    counts as available only when chosen on purpose with SDL_VIDEODRIVER."""
    import pygame

    fix = "set DISPLAY (e.g. DISPLAY=:0) / run under X, or use SDL_VIDEODRIVER=dummy for headless"
    try:
        pygame.display.init()
        try:
            driver = pygame.display.get_driver()
            sizes = pygame.display.get_desktop_sizes()
        finally:
            pygame.display.quit()
    except pygame.error as error:
        return [Check(FAIL, "display", f"none available (SDL: {first_line(error)})", fix)]
    chosen = os.environ.get("SDL_VIDEODRIVER", "").strip().lower()
    listed = ", ".join(f"{i}: {w}x{h}" for i, (w, h) in enumerate(sizes))
    if driver in HEADLESS_DRIVERS and chosen != driver:
        return [Check(FAIL, "display", f"none: SDL fell back to its {driver!r} driver (no screen found)", fix)]
    if not sizes:
        return [Check(FAIL, "display", f"SDL driver {driver!r} reports no displays", fix)]
    checks = []
    if driver in HEADLESS_DRIVERS:
        checks.append(Check(
            WARN, "display", f"SDL_VIDEODRIVER={chosen}: headless, counted as available ({listed}) but nothing is shown on a screen",
            "unset SDL_VIDEODRIVER to show on a real screen",
        ))
    else:
        checks.append(Check(OK, "display", f"{driver} driver; {len(sizes)} display(s): {listed}"))
    if display_index >= len(sizes):
        checks.append(Check(
            FAIL, "display", f"[display] display = {display_index} but there are {len(sizes)} display(s)",
            f"set [display] display to 0..{len(sizes) - 1}",
        ))
    return checks


# --- folders, ports, schedule --------------------------------------------------------------


def _section_values(config: Config) -> list[tuple[str, str, Any]]:
    """(section, key, value) for every setting, so checks find keys other sections add."""
    rows = []
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if dataclasses.is_dataclass(value):
            rows += [(section.name, f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    return rows


def check_folders(config: Config) -> list[Check]:
    """Every folder setting (`dir`, `*_dir`, `*_folder`: screenshots, recordings, logs) can be written."""
    from livedream.ops.logs import log_dir

    checks = []
    for section, key, value in _section_values(config):
        if not isinstance(value, str) or not (key == "dir" or key.endswith(("_dir", "_folder"))):
            continue
        folder = log_dir(config.log) if (section, key) == ("log", "dir") else Path(value).expanduser()
        checks.append(check_writable(f"[{section}] {key}", folder))
    return checks


def check_writable(label: str, folder: Path) -> Check:
    folder = folder.absolute()
    fix = f"create it and give this user write access (mkdir -p {folder}), or set {label} to a writable folder"
    if folder.exists():
        if not folder.is_dir():
            return Check(FAIL, label, f"{folder} exists but is not a folder", fix)
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            return Check(FAIL, label, f"{folder} is not writable ({error.strerror})", fix)
        return Check(OK, label, f"{folder} is writable")
    parent = folder.parent
    while not parent.exists():
        parent = parent.parent
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return Check(OK, label, f"{folder} will be created (in writable {parent})")
    return Check(FAIL, label, f"{folder} does not exist and {parent} is not writable", fix)


def check_control_ports(config: Config) -> list[Check]:
    """Control listeners bind to this machine only unless the config says otherwise."""
    checks = []
    enabled = {(s, k): v for s, k, v in _section_values(config) if k == "enabled"}
    for section, key, value in _section_values(config):
        if key not in ("host", "bind", "listen", "address") or not isinstance(value, str):
            continue
        if enabled.get((section, "enabled")) is False:
            continue
        if is_loopback(value.strip().lower()):  # the listeners' own rule
            checks.append(Check(OK, f"[{section}] {key}", f"{value}: reachable from this machine only"))
        else:
            checks.append(Check(
                WARN, f"[{section}] {key}", f"{value}: reachable from the network (anyone there can control the show)",
                f'set {key} = "127.0.0.1" unless other machines must control it, and firewall the port',
            ))
    if not checks:
        checks.append(Check(NOTE, "control ports", "none enabled in the config"))
    return checks


def check_schedule(config: Config) -> list[Check]:
    import datetime

    from livedream.ops.schedule import DailySchedule

    schedule = DailySchedule.from_config(config.schedule)
    if schedule.always_on:
        return [Check(NOTE, "schedule", schedule.describe())]
    now = datetime.datetime.now()
    state = "on" if schedule.is_on(now) else "off"
    return [Check(OK, "schedule", f"{schedule.describe()}; now {state} until {schedule.next_change(now):%H:%M}")]


