"""The index-free graph runs whole on ONNX Runtime's WebGPU provider and gives the CPU's gradient.

Runs where the plugin `onnxruntime-ep-webgpu` finds an adapter: a GPU, or here the software
Vulkan driver SwiftShader (VK_ICD_FILENAMES pointing at Debian chromium-common's
vk_swiftshader_icd.json, and ORT_WEBGPU_EP_ALLOW_SOFTWARE_ADAPTER=1). "Whole" is checked by
ONNX Runtime itself: with CPU fallback disabled a session refuses a graph any of whose nodes
the provider cannot run."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
webgpu_ep = pytest.importorskip("onnxruntime_ep_webgpu", reason="pip install onnxruntime-ep-webgpu")

from livedream.export.backward import DreamGradient  # noqa: E402
from livedream.export.graph import export_module  # noqa: E402
from livedream.export.inception import TF2015  # noqa: E402
from tests.conftest import default_objective, random_model  # noqa: E402

LAYERS = ("mixed3", "mixed5")
SIZE = {"height": 96, "width": 128}


def webgpu_device():
    ort.register_execution_provider_library("webgpu", webgpu_ep.get_library_path())
    return next((d for d in ort.get_ep_devices() if d.ep_name == webgpu_ep.get_ep_name()), None)


@pytest.fixture(scope="module")
def device():
    found = webgpu_device()
    if found is None:
        pytest.skip("no WebGPU adapter (no GPU, and no software Vulkan driver configured)")
    return found


def open_webgpu(path, device) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    for name, value in SIZE.items():
        options.add_free_dimension_override_by_name(name, value)
    options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    options.add_provider_for_devices([device], {})
    return ort.InferenceSession(str(path), options)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    model = random_model(LAYERS, TF2015, seed=4)
    folder = tmp_path_factory.mktemp("webgpu")
    paths = {}
    for index_free in (False, True):
        paths[index_free] = folder / f"g-{index_free}.onnx"
        export_module(DreamGradient(model, {layer: 1.0 for layer in LAYERS}, index_free=index_free).eval(),
                      paths[index_free])
    return paths


def test_the_index_free_graph_runs_whole_on_webgpu_and_the_indexed_one_does_not(device, graphs) -> None:
    open_webgpu(graphs[True], device)  # raises if any node would fall back to the CPU
    with pytest.raises(Exception):
        open_webgpu(graphs[False], device)  # MaxPool's Indices and their int64 arithmetic


def test_the_webgpu_gradient_equals_the_cpu_providers(device, graphs) -> None:
    webgpu = open_webgpu(graphs[True], device)
    cpu = ort.InferenceSession(str(graphs[False]), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(1).random((1, 3, SIZE["height"], SIZE["width"]), np.float32) * 2 - 1
    feed = {"image": image, **default_objective(cpu)}
    loss, gradient, _ = webgpu.run(None, feed)
    expected_loss, expected, _ = cpu.run(None, feed)
    a, b = gradient.ravel().astype(np.float64), expected.ravel().astype(np.float64)
    cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    relative = np.linalg.norm(a - b) / np.linalg.norm(b)
    print(f"WebGPU vs CPU: cosine {cosine:.7f}, relative L2 {relative:.1e}")
    assert abs(float(loss) - float(expected_loss)) <= 1e-4 * abs(float(expected_loss))
    # Random weights put many activations at a ReLU's or a pool's edge, where float32 rounding
    # flips them: the CPU's own float32 gradient is about 1 % off float64 there (test_export).
    # A misrouted pool or a wrong kernel is off by far more (cosine well under 0.99).
    assert cosine >= 0.999 and relative <= 0.05
