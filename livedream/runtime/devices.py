"""Where a graph runs: the providers LiveDream knows, the order `auto` tries them in, and the
WebGPU plugin's adapter. The one owner of provider names and device strings.

`auto` prefers CUDA (NVIDIA, onnxruntime-gpu), then WebGPU (the `onnxruntime-ep-webgpu`
plugin: Metal on macOS, Direct3D 12 on Windows, Vulkan on Linux), then the CPU. A WebGPU
adapter that is software (a CPU emulating a GPU, such as SwiftShader, which the plugin offers
only with ORT_WEBGPU_EP_ALLOW_SOFTWARE_ADAPTER=1) dreams slower than the CPU provider, so
`auto` passes it over; `device = "webgpu"` uses it (that is how the tests run it).
"""

from __future__ import annotations

import ctypes.util
import functools
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from livedream.config import DEVICES
from livedream.errors import UserError, first_line

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
WEBGPU = "WebGpuExecutionProvider"
# Short names, as the HUD, the log, the budget and the step-cost cache say them.
SHORT_NAMES = {CUDA: "CUDA", WEBGPU: "WebGPU", CPU: "CPU"}
# OrtValue's device string for the buffers a session of each provider binds.
VALUE_DEVICES = {"CUDA": "cuda", "WebGPU": "webgpu", "CPU": "cpu"}

CUDA_LIBRARIES_FIX = 'pip install "onnxruntime-gpu[cuda,cudnn]"  (the CUDA and cuDNN libraries as wheels)'
CUDA_INSTALL = 'pip uninstall -y onnxruntime && pip install "onnxruntime-gpu[cuda,cudnn]"'  # the CPU build installed
WEBGPU_INSTALL = 'pip install "livedream[webgpu]"'
VULKAN_LOADER_FIX = "sudo apt install libvulkan1  (the Vulkan loader; the GPU's own driver brings the rest)"
SOFTWARE_ADAPTER_ENV = "ORT_WEBGPU_EP_ALLOW_SOFTWARE_ADAPTER"


@dataclass(frozen=True)
class WebGpuAdapter:
    """The adapter the WebGPU plugin offers: what `doctor`, the HUD and the log name."""

    device: ort.OrtEpDevice
    name: str  # e.g. "NVIDIA GPU 0x2335", or "software adapter on the CPU (AMD)"
    backend: str  # "Metal", "Direct3D 12" or "Vulkan": what the plugin's Dawn uses on this platform
    software: bool  # a CPU emulating a GPU: correct, and slower than the CPU provider

    @property
    def label(self) -> str:
        return f"{self.name} through {self.backend}"


@dataclass(frozen=True)
class NoWebGpu:
    """Why this machine has no WebGPU adapter, and what to do about it."""

    reason: str
    fix: str

    def __str__(self) -> str:
        return f"{self.reason}; {self.fix}"


@dataclass(frozen=True)
class Placement:
    """Where sessions for `device` run, and in one line why."""

    provider: str  # "CUDA", "WebGPU" or "CPU"
    why: str
    adapter: WebGpuAdapter | None = None  # the WebGPU adapter, when provider is "WebGPU"

    @property
    def value_device(self) -> str:
        return VALUE_DEVICES[self.provider]


def short_name(provider: str) -> str:
    """A provider's name as people say it: ours as `SHORT_NAMES` has them, any other (TensorRT,
    Azure…) without ONNX Runtime's common suffix."""
    return SHORT_NAMES.get(provider, provider.removesuffix("ExecutionProvider"))


def provider_of(session: ort.InferenceSession) -> str:
    """Where `session` runs, by its first provider's short name."""
    return SHORT_NAMES.get(session.get_providers()[0], "CPU")


def platform_backend() -> str:
    """The native API Dawn (inside the WebGPU plugin) drives on this platform."""
    if sys.platform == "darwin":
        return "Metal"
    if sys.platform == "win32":
        return "Direct3D 12"
    return "Vulkan"


def vulkan_loader_missing() -> bool:
    """On Linux the Vulkan loader is the one system library the WebGPU plugin needs."""
    return sys.platform.startswith("linux") and ctypes.util.find_library("vulkan") is None


def _adapter_name(device: ort.OrtEpDevice) -> tuple[str, bool]:
    hardware = device.device
    if hardware.type == ort.OrtHardwareDeviceType.CPU:
        icd = os.environ.get("VK_ICD_FILENAMES", "")
        driver = f", Vulkan driver {Path(icd).name}" if icd else ""
        return f"software adapter on the CPU ({hardware.vendor}{driver})", True
    return f"{hardware.vendor} GPU 0x{hardware.device_id:04x}", False


@functools.cache
def find_webgpu() -> WebGpuAdapter | NoWebGpu:
    """The WebGPU adapter, or why there is none.

    Registers the plugin's library with ONNX Runtime once per process (it cannot be undone)."""
    if importlib.util.find_spec("onnxruntime_ep_webgpu") is None:
        return NoWebGpu("the WebGPU plugin is not installed", WEBGPU_INSTALL)
    if not hasattr(ort, "register_execution_provider_library"):
        return NoWebGpu(f"onnxruntime {ort.__version__} cannot load plugins (needs ≥ 1.24.4)", WEBGPU_INSTALL)
    if vulkan_loader_missing():
        return NoWebGpu("the Vulkan loader libvulkan.so.1 is missing", VULKAN_LOADER_FIX)
    import onnxruntime_ep_webgpu as plugin

    try:
        ort.set_default_logger_severity(3)  # its notes (a software adapter allowed) are not the user's business
        ort.register_execution_provider_library("webgpu", plugin.get_library_path())
        device = next((d for d in ort.get_ep_devices() if d.ep_name == WEBGPU), None)
    except Exception as error:  # noqa: BLE001 - ORT raises its own types; the CPU path must go on
        return NoWebGpu(f"the WebGPU plugin did not load ({first_line(error)})", f"reinstall it: {WEBGPU_INSTALL}")
    if device is None:
        return NoWebGpu(f"no WebGPU adapter found (no GPU with a {platform_backend()} driver)",
                        f"install the GPU's driver; a software adapter needs {SOFTWARE_ADAPTER_ENV}=1")
    name, software = _adapter_name(device)
    return WebGpuAdapter(device, name, platform_backend(), software)


def place(device: str) -> Placement:
    """Where `device` ("auto", "cuda", "webgpu" or "cpu") runs; a device asked for by name
    that this machine lacks is a `UserError` naming the fix."""
    if device not in DEVICES:
        raise UserError(f"device {device!r} is unknown; use one of {', '.join(DEVICES)}")
    if device == "cpu":
        return Placement("CPU", '[model] device = "cpu"')
    if device in ("auto", "cuda") and CUDA in ort.get_available_providers():
        return Placement("CUDA", "the CUDA provider is installed (onnxruntime-gpu)")
    if device == "cuda":
        raise UserError(f"device 'cuda' asked for, but this onnxruntime has no CUDA provider; "
                        f"{CUDA_INSTALL}, or use device 'auto'")
    adapter = find_webgpu()
    if isinstance(adapter, WebGpuAdapter) and (device == "webgpu" or not adapter.software):
        return Placement("WebGPU", f"WebGPU adapter: {adapter.label}", adapter)
    if device == "webgpu":
        raise UserError(f"device 'webgpu' asked for, but {adapter.reason}; {adapter.fix}, or use device 'auto'")
    if isinstance(adapter, WebGpuAdapter):
        return Placement("CPU", "no CUDA, and the WebGPU adapter is software (a CPU emulating a GPU, slower "
                                "than the CPU provider; device 'webgpu' uses it)")
    return Placement("CPU", f"no CUDA provider, and {adapter.reason}")
