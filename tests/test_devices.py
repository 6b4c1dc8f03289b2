"""Where `[model] device` places the dream: every device against every kind of machine.

The machines are made up (CUDA provider present or not × WebGPU adapter none / hardware /
software), so the rule is tested here whatever this machine has; test_webgpu.py runs the
real plugin on SwiftShader."""

from __future__ import annotations

import itertools

import onnxruntime as ort
import pytest

from livedream.errors import UserError
from livedream.runtime import devices

HARDWARE = devices.WebGpuAdapter(None, "AMD GPU 0x73bf", "Vulkan", software=False)
SOFTWARE = devices.WebGpuAdapter(None, "software adapter on the CPU (Google)", "Vulkan", software=True)
NONE = devices.NoWebGpu("the WebGPU plugin is not installed", devices.WEBGPU_INSTALL)
ADAPTERS = {"no adapter": NONE, "hardware adapter": HARDWARE, "software adapter": SOFTWARE}


def expected(device: str, cuda: bool, adapter: str) -> str:
    """The rule, written as a table would say it: a provider, or "refused"."""
    if device == "cpu":
        return "CPU"
    if device == "cuda":
        return "CUDA" if cuda else "refused"
    if device == "webgpu":
        return "refused" if adapter == "no adapter" else "WebGPU"
    if cuda:
        return "CUDA"
    return "WebGPU" if adapter == "hardware adapter" else "CPU"


CASES = list(itertools.product(("auto", "cuda", "webgpu", "cpu"), (False, True), ADAPTERS))


@pytest.mark.parametrize("device, cuda, adapter", CASES, ids=[f"{d}-{'cuda' if c else 'nocuda'}-{a}" for d, c, a in CASES])
def test_each_device_on_each_machine_is_placed_by_the_rule(monkeypatch, device, cuda, adapter) -> None:
    providers = [devices.CUDA, devices.CPU] if cuda else [devices.CPU]
    monkeypatch.setattr(ort, "get_available_providers", lambda: providers)
    monkeypatch.setattr(devices, "find_webgpu", lambda: ADAPTERS[adapter])
    want = expected(device, cuda, adapter)
    if want == "refused":
        with pytest.raises(UserError) as refused:
            devices.place(device)
        message = str(refused.value)
        assert "\n" not in message and f"device '{device}'" in message and "use device 'auto'" in message
        assert (devices.CUDA_INSTALL if device == "cuda" else devices.WEBGPU_INSTALL) in message
        return
    placement = devices.place(device)
    assert placement.provider == want
    assert placement.why and "\n" not in placement.why
    assert (placement.adapter is not None) == (want == "WebGPU")
    assert placement.value_device == devices.VALUE_DEVICES[want]


def test_auto_says_why_it_passed_a_software_adapter_over(monkeypatch) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: [devices.CPU])
    monkeypatch.setattr(devices, "find_webgpu", lambda: SOFTWARE)
    assert "software" in devices.place("auto").why


def test_auto_names_the_missing_webgpu_part_when_it_chooses_the_cpu(monkeypatch) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: [devices.CPU])
    monkeypatch.setattr(devices, "find_webgpu", lambda: NONE)
    assert NONE.reason in devices.place("auto").why


@pytest.mark.parametrize("device", ["gpu", "metal", "CUDA", ""])
def test_an_unknown_device_is_one_line_naming_the_known_ones(device) -> None:
    with pytest.raises(UserError, match="auto, cuda, webgpu, cpu"):
        devices.place(device)
