"""The in-graph ascent step (the GPU path) against the host reference update, on CPU."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from livedream.dream import STD_EPSILON  # noqa: E402
from livedream.engine import Engine, StepRunner  # noqa: E402
from livedream.export.backward import AscentSteps, DreamGradient  # noqa: E402
from livedream.export.graph import export_module  # noqa: E402
from livedream.export.inception import TF2015  # noqa: E402
from tests.conftest import random_model  # noqa: E402

LAYERS = {"mixed0": 1.0}


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("step")
    model = random_model(tuple(LAYERS), TF2015, seed=5)
    paths = {}
    for name, module in {
        "gradient": DreamGradient(model, LAYERS),
        "step1": AscentSteps(DreamGradient(model, LAYERS), 1),
        "step2": AscentSteps(DreamGradient(model, LAYERS), 2),
        "fp16": DreamGradient(model, LAYERS, torch.float16),
    }.items():
        paths[name] = folder / f"{name}.onnx"
        export_module(module.eval(), paths[name])
    return paths


def reference_update(engine: Engine, image: np.ndarray, step_size: float) -> np.ndarray:
    """The tutorial's update on the host: normalise by std (+1e-8), step, clip."""
    _, grad = engine.gradient(image)
    return np.clip(image + step_size * grad / (grad.std() + STD_EPSILON), -1, 1)


def random_image(seed: int, height: int = 97, width: int = 131) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (1, 3, height, width)).astype(np.float32)


def test_in_graph_step_equals_reference_update(graphs):
    engine = Engine(graphs["gradient"], "cpu")
    runner = StepRunner(graphs["step1"], steps_per_run=1, device="cpu")
    image = random_image(0)
    expected = reference_update(engine, image.copy(), 0.05)
    stepped = image.copy()
    runner.ascend(stepped, steps=1, step_size=0.05)
    assert stepped.shape == image.shape
    assert not np.allclose(stepped, image)
    np.testing.assert_allclose(stepped, expected, atol=2e-5)


def test_step_runner_chains_steps_like_repeated_reference_updates(graphs):
    """Ping-pong between the two device buffers must feed each run the previous result."""
    engine = Engine(graphs["gradient"], "cpu")
    expected = random_image(1)
    for _ in range(3):
        expected = reference_update(engine, expected, 0.03)
    for name, per_run, steps in (("step1", 1, 3), ("step2", 2, 4)):
        runner = StepRunner(graphs[name], steps_per_run=per_run, device="cpu")
        stepped = random_image(1)
        runner.ascend(stepped, steps=steps, step_size=0.03)
        if steps == 3:
            np.testing.assert_allclose(stepped, expected, atol=1e-4)
        else:
            further = reference_update(engine, expected.copy(), 0.03)
            np.testing.assert_allclose(stepped, further, atol=1e-4)


def test_step_runner_keeps_buffers_per_size(graphs):
    runner = StepRunner(graphs["step1"], steps_per_run=1, device="cpu")
    small, large = random_image(2, 80, 90), random_image(3, 120, 100)
    for image in (small, large, small):
        before = image.copy()
        runner.ascend(image, 1, 0.05)
        assert np.abs(image - before).max() > 0
    assert len(runner._buffers) == 2


def test_fp16_gradient_agrees_with_fp32_in_direction(graphs):
    image = random_image(4, 160, 224)
    grads = {}
    for name in ("gradient", "fp16"):
        try:
            session = ort.InferenceSession(str(graphs[name]), providers=["CPUExecutionProvider"])
        except Exception as error:  # pragma: no cover - depends on the ORT build
            pytest.skip(f"this onnxruntime cannot run float16 graphs on the CPU: {error}")
        grads[name] = session.run(["gradient"], {"image": image})[0].astype(np.float64).ravel()
    a, b = grads["gradient"], grads["fp16"]
    cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    print(f"fp16 vs fp32 gradient cosine: {cosine:.5f}")
    assert np.isfinite(b).all()
    assert cosine >= 0.99
