"""livedream doctor: every blocking problem is one ✗ line with its fix and exit code 1; a machine
that can run the configuration exits 0. Camera, GPU, display and models are all injected."""

from __future__ import annotations

import io
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from livedream import cli
from livedream.config import ModelConfig, SourceConfig
from livedream.errors import UserError
from livedream.ops import doctor
from livedream.ops.doctor import (
    FAIL,
    NOTE,
    OK,
    WARN,
    check_models,
    check_providers,
    check_source,
)
from livedream.runtime.devices import CPU, CUDA


def named(checks: list, name: str):
    return next(check for check in checks if check.name == name)


class NoCamera:
    def isOpened(self) -> bool:
        return False

    def release(self) -> None:
        pass


class WorkingCamera:
    """Opens and gives 640x480 frames at 30 fps, whatever it is asked for."""

    def isOpened(self) -> bool:
        return True

    def set(self, prop: int, value: float) -> bool:
        return True

    def get(self, prop: int) -> float:
        return 30.0

    def read(self, image=None):
        return True, np.zeros((480, 640, 3), np.uint8)

    def release(self) -> None:
        pass


@pytest.fixture
def machine(tmp_path: Path, small_graph: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with a config that uses the small test graph; no camera."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setattr(doctor, "default_models_dir", lambda: small_graph.parent)
    monkeypatch.setattr(doctor, "_open_if_present", lambda device: NoCamera())
    config = tmp_path / "config.toml"
    config.write_text(
        '[dream]\nmodel = "small"\n'
        f'[log]\ndir = "{tmp_path / "logs"}"\n'
        f'[display]\nscreenshot_dir = "{tmp_path / "shots"}"\n'
    )
    return config


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().out


def test_no_camera_with_source_auto_warns_that_the_demo_shows_and_is_ready(machine: Path, capsys) -> None:
    """The app under "auto" shows the demo without a camera: the doctor says that, not "blocked"."""
    code, out = run(["doctor", "--config", str(machine)], capsys)
    assert code == 0, out
    assert '! camera 0: not found; [source] kind = "auto" shows the demo instead' in out
    assert "fix:" in out and 'kind = "demo"' in out
    assert "✗" not in out and out.strip().splitlines()[-1].startswith("✓ ready")


def test_no_camera_with_source_camera_exits_1_naming_the_camera(machine: Path, capsys) -> None:
    code, out = run(["doctor", "--config", str(machine), "--source", "camera"], capsys)
    assert code == 1
    assert '✗ camera 0: not found; [source] kind = "camera" needs it' in out
    assert "fix:" in out and "--source demo" in out
    assert out.strip().splitlines()[-1].startswith("✗ not ready") and "blocked by: camera 0" in out


@pytest.mark.parametrize("kind,shows,code", [("auto", "DemoSource", 0), ("demo", "DemoSource", 0),
                                             ("camera", "CameraSource", 1)])
def test_the_doctors_verdict_is_what_the_app_does_without_a_camera(machine: Path, kind, shows, code, capsys) -> None:
    """One rule (`sources.WITHOUT_CAMERA`): ready where the app shows the demo, blocked where it
    would wait for a camera that does not open."""
    from livedream.pipeline.sources import open_source

    assert run(["doctor", "--config", str(machine), "--source", kind], capsys)[0] == code
    source = open_source(SourceConfig(kind=kind), lambda device: NoCamera())
    assert type(source).__name__ == shows
    source.close()


def test_demo_source_needs_no_camera_and_exits_0(machine: Path, capsys) -> None:
    code, out = run(["doctor", "--config", str(machine), "--source", "demo"], capsys)
    assert code == 0, out
    assert "✗" not in out
    assert "– camera 0: not found (not needed: source is demo)" in out
    assert "✓ model small:" in out and "matches its manifest sha256" in out
    assert "! display: SDL_VIDEODRIVER=dummy: headless, counted as available" in out
    assert out.strip().splitlines()[-1].startswith("✓ ready")


def test_config_defaults_to_config_toml_in_the_working_folder(machine: Path, capsys) -> None:
    code, out = run(["doctor", "--source", "demo"], capsys)
    assert code == 0 and "✓ config: config.toml is valid" in out


def test_invalid_config_is_its_one_line_error_and_blocks(machine: Path, capsys) -> None:
    machine.write_text('[display]\nfit = "zoom"\n')
    code, out = run(["doctor", "--config", str(machine), "--source", "demo"], capsys)
    assert code == 1
    assert '✗ config: ' in out and '[display] fit = "zoom" is not allowed; use one of letterbox, crop, stretch' in out


def test_unwritable_screenshot_folder_blocks(machine: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "a-file").write_text("")
    machine.write_text(machine.read_text().replace(str(tmp_path / "shots"), str(tmp_path / "a-file" / "shots")))
    code, out = run(["doctor", "--config", str(machine), "--source", "demo"], capsys)
    assert code == 1 and "✗ [display] screenshot_dir:" in out and "blocked by: [display] screenshot_dir" in out


def test_control_port_open_to_the_network_is_a_warning(machine: Path, capsys) -> None:
    machine.write_text(machine.read_text() + '[osc]\nhost = "0.0.0.0"\n')
    code, out = run(["doctor", "--config", str(machine), "--source", "demo"], capsys)
    assert code == 0
    assert "! [osc] host: 0.0.0.0: reachable from the network" in out


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True),
                                           ("::1", True), ("0.0.0.0", False), ("192.168.1.5", False)])
def test_the_doctor_and_the_listeners_agree_on_loopback(machine: Path, host, loopback, capsys) -> None:
    """One rule (`control.ports.is_loopback`): 127.0.0.2 is this machine for both."""
    from livedream.control.ports import is_loopback

    machine.write_text(machine.read_text() + f'[osc]\nhost = "{host}"\n')
    _, out = run(["doctor", "--config", str(machine), "--source", "demo"], capsys)
    assert is_loopback(host) is loopback
    assert (f"✓ [osc] host: {host}: reachable from this machine only" in out) is loopback
    assert (f"! [osc] host: {host}: reachable from the network" in out) is not loopback


def test_no_display_blocks_with_the_display_fix(machine: Path, monkeypatch, capsys) -> None:
    import pygame

    def no_video_device() -> None:
        raise pygame.error("No available video device")

    monkeypatch.setattr(pygame.display, "init", no_video_device)
    code, out = run(["doctor", "--config", str(machine), "--source", "demo"], capsys)
    assert code == 1
    assert "✗ display: none available (SDL: No available video device)" in out
    assert "set DISPLAY" in out and "SDL_VIDEODRIVER=dummy" in out


def test_missing_default_model_says_run_livedream_export(tmp_path: Path) -> None:
    [check] = check_models("default", tmp_path)
    assert check.status == FAIL and "livedream export" in check.detail + check.fix


def test_tampered_model_fails_the_manifest_check_and_is_not_loaded(small_graph: Path, tmp_path: Path) -> None:
    from livedream.runtime.model import load_model

    models = tmp_path / "models"
    shutil.copytree(small_graph.parent, models)
    onnx_file = models / small_graph.name
    data = bytearray(onnx_file.read_bytes())
    data[-1] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    [check] = check_models("small", models)
    assert check.status == FAIL and "does not match its manifest sha256" in check.detail
    with pytest.raises(UserError, match="does not match its manifest sha256"):
        load_model("small", models, device="cpu")


def test_working_camera_is_listed_with_the_mode_it_gave() -> None:
    checks = check_source(SourceConfig(kind="camera"), lambda device: WorkingCamera() if device == 0 else NoCamera())
    assert checks[0].status == OK and checks[0].name == "camera 0"
    assert checks[0].detail == "640x480 @ 30 fps (asked 1280x720 @ 30 fps)"


def test_other_camera_that_opens_is_suggested_when_the_configured_one_does_not() -> None:
    checks = check_source(SourceConfig(kind="camera"), lambda device: WorkingCamera() if device == 2 else NoCamera())
    assert checks[0].status == FAIL and "set [source] camera = 2" in checks[0].fix
    assert any(c.status == NOTE and c.name == "camera 2" for c in checks)


def test_a_hung_camera_driver_cannot_hang_doctor() -> None:
    released = threading.Event()

    def hanging_driver(device):
        released.wait()
        return NoCamera()

    try:
        checks = check_source(SourceConfig(kind="camera"), hanging_driver, timeout_s=0.2)
    finally:
        released.set()
    assert checks[0].status == FAIL and "did not answer within" in checks[0].detail


def test_cpu_build_on_an_nvidia_machine_says_install_onnxruntime_gpu() -> None:
    import onnxruntime as ort

    if CUDA in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    auto = named(check_providers(ModelConfig(device="auto"), gpu_present=lambda: True), "CUDA")
    assert auto.status == WARN and 'pip install "onnxruntime-gpu[cuda,cudnn]"' in auto.fix
    cuda = named(check_providers(ModelConfig(device="cuda"), gpu_present=lambda: True), "CUDA")
    assert cuda.status == FAIL
    plain = named(check_providers(ModelConfig(device="auto"), gpu_present=lambda: False), "CUDA")
    assert plain.status == OK and "no NVIDIA GPU" in plain.detail


def fake_cuda_build(monkeypatch, printed: str) -> None:
    """An onnxruntime that lists CUDA, whose preload prints `printed`, and whose sessions fall back to the CPU."""
    import onnxruntime as ort

    from livedream.runtime import engine

    class CpuOnlySession:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def run(self, *args, **kwargs) -> list:
            return [np.zeros(1, np.float32)]

        def get_providers(self) -> list[str]:
            return [CPU]

    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(ort, "preload_dlls", lambda *a, **k: print(printed), raising=False)
    monkeypatch.setattr(ort, "InferenceSession", CpuOnlySession)
    engine.preload_cuda_libraries.cache_clear()


@pytest.mark.parametrize("library", ["libcudnn.so.9", "libcublasLt.so.12", "libcudart.so.13"])
def test_doctor_names_the_cuda_library_that_failed_to_load(monkeypatch, library) -> None:
    from livedream.runtime import engine

    fake_cuda_build(monkeypatch, f"Failed to load /x/nvidia/lib/{library}: cannot open shared object file\n"
                                 f"Failed to load {library}: cannot open shared object file")
    try:
        check = named(check_providers(ModelConfig(device="auto"), gpu_present=lambda: True), "CUDA")
    finally:
        engine.preload_cuda_libraries.cache_clear()
    assert check.status == WARN and check.detail.count(library) == 1 and "/x/" not in check.detail
    assert 'onnxruntime-gpu[cuda,cudnn]' in check.fix


def test_cuda_libraries_that_load_are_not_reported(monkeypatch) -> None:
    from livedream.runtime import engine

    fake_cuda_build(monkeypatch, "")
    try:
        assert engine.preload_cuda_libraries() == ()
    finally:
        engine.preload_cuda_libraries.cache_clear()


def test_probe_graph_is_a_valid_onnx_graph() -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(doctor.PROBE_GRAPH, providers=[CPU])
    [out] = session.run(None, {"x": np.array([-2.0], np.float32)})
    assert out.tolist() == [0.0]


def test_report_escapes_brackets_in_messages() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=300, soft_wrap=True)
    console.print(doctor.escape("[display] display = 3"))
    assert buffer.getvalue().strip() == "[display] display = 3"
