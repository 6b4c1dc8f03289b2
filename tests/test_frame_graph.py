"""The GPU frame graph (warp, add, steps, uint8 out in one run) against the host path, on CPU."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livedream.export.backward import AscentSteps, DreamGradient  # noqa: E402
from livedream.export.frame import FrameDream  # noqa: E402
from livedream.export.graph import export_module  # noqa: E402
from livedream.params import Params  # noqa: E402
from livedream.pipeline.dreamer import DreamPath, LiveDreamer, choose_path  # noqa: E402
from livedream.runtime.engine import Engine  # noqa: E402
from livedream.runtime.runners import FrameRunner  # noqa: E402
from tests.conftest import as_model, lively_model  # noqa: E402

LAYERS = {"mixed0": 1.0}


def nobody(flow: np.ndarray) -> np.ndarray:
    """A visitor mask of nobody at the flow's size."""
    return np.zeros(flow.shape[:2], np.float32)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frame")
    model = lively_model(("mixed0",))
    gradient, frame = folder / "gradient.onnx", folder / "frame.onnx"
    export_module(DreamGradient(model, LAYERS).eval(), gradient)
    export_module(FrameDream(AscentSteps(DreamGradient(model, LAYERS), 1)).eval(), frame)
    return gradient, frame


def moving_frames(count: int, height: int = 96, width: int = 128) -> list[np.ndarray]:
    """A textured pattern sliding 3 px right per frame."""
    rng = np.random.default_rng(7)
    texture = rng.integers(0, 256, (height, width + 3 * count, 3), dtype=np.uint8)
    texture = np.ascontiguousarray(np.repeat(np.repeat(texture[::4, ::4], 4, 0), 4, 1)[:height])
    return [np.ascontiguousarray(texture[:, 3 * (count - i) : 3 * (count - i) + width]) for i in range(count)]


def test_frame_graph_dreams_like_the_host_path(graphs):
    gradient_path, frame_path = graphs
    host_model = as_model(Engine(gradient_path, "cpu"))
    device_model = as_model(Engine(gradient_path, "cpu"), {1: FrameRunner(frame_path, steps_per_run=1, device="cpu")})
    params = Params(steps=1, octaves=1, strength=0.05, half_life=0.9, dream_height=96, dream_width=128, zoom_per_s=0.2)
    host, device = LiveDreamer(), LiveDreamer()
    differences = []
    for frame in moving_frames(4):
        host_out = host.dream_frame(frame, params, host_model).copy()
        device_out = device.dream_frame(frame, params, device_model)
        assert device_out.shape == frame.shape and device_out.dtype == np.uint8
        assert np.abs(device_out.astype(int) - frame.astype(int)).mean() > 0.5  # it dreamed
        differences.append(np.abs(device_out.astype(int) - host_out.astype(int)).mean())
    print("mean |device - host| per frame (0..255):", [f"{d:.3f}" for d in differences])
    # GridSample and cv2.remap round differently; the frames must still agree closely,
    # including the later ones, where the carried (warped, decayed) detail dominates.
    assert max(differences) < 0.1  # measured: at most 1 level on a handful of pixels


def test_frame_runner_falls_back_to_the_host_path_for_other_step_counts(graphs):
    gradient_path, frame_path = graphs
    runner = FrameRunner(frame_path, steps_per_run=1, device="cpu")
    calls = []
    original = runner.dream_frame
    runner.dream_frame = lambda *args: calls.append(1) or original(*args)
    model = as_model(Engine(gradient_path, "cpu"), {1: runner})
    dreamer = LiveDreamer()
    frame = moving_frames(1)[0]
    two_steps, one_step = (Params(steps=n, octaves=1, dream_height=96, dream_width=128) for n in (2, 1))
    assert choose_path(two_steps, model) is DreamPath.HOST and choose_path(one_step, model) is DreamPath.FRAME_GRAPH
    dreamer.dream_frame(frame, two_steps, model)
    assert calls == []
    dreamer.dream_frame(frame, one_step, model)
    assert calls == [1]


def test_frame_runner_reset_forgets_the_carried_detail(graphs):
    _, frame_path = graphs
    runner = FrameRunner(frame_path, steps_per_run=1, device="cpu")
    frame = moving_frames(1)[0]
    flow = np.zeros((24, 32, 2), np.float32)
    identity = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    first, _ = runner.dream_frame(frame, flow, np.ones(flow.shape[:2], np.float32), identity, 0.0, 0.05, nobody(flow))
    first = first.copy()
    deeper, _ = runner.dream_frame(frame, flow, np.ones(flow.shape[:2], np.float32), identity, 1.0, 0.05, nobody(flow))
    assert np.abs(deeper.astype(int) - frame.astype(int)).mean() > np.abs(first.astype(int) - frame.astype(int)).mean()
    runner.reset()
    again, _ = runner.dream_frame(frame, flow, np.ones(flow.shape[:2], np.float32), identity, 1.0, 0.05, nobody(flow))
    np.testing.assert_array_equal(again, first)  # nothing carried: the same as the first frame


def test_frame_graph_path_shows_sharp_at_the_frames_size_like_the_host(graphs):
    """A 192x256 camera frame dreamed at 96x128: the frame runner adds the upscaled detail on
    its device (the shipped sharpen graph) and the picture matches the host path's."""
    gradient_path, frame_path = graphs
    host_model = as_model(Engine(gradient_path, "cpu"))
    device_model = as_model(Engine(gradient_path, "cpu"), {1: FrameRunner(frame_path, steps_per_run=1, device="cpu")})
    params = Params(steps=1, octaves=1, strength=0.05, half_life=0.9, dream_height=96, dream_width=128)
    host, device = LiveDreamer(), LiveDreamer()
    assert choose_path(params, device_model) is DreamPath.FRAME_GRAPH
    for small in moving_frames(3):
        frame = np.ascontiguousarray(np.repeat(np.repeat(small, 2, 0), 2, 1))
        host_out = host.dream_frame(frame, params, host_model).copy()
        device_out = device.dream_frame(frame, params, device_model)
        assert device_out.shape == frame.shape
        assert np.abs(device_out.astype(int) - frame.astype(int)).mean() > 0.5  # it dreamed
        assert np.abs(device_out.astype(int) - host_out.astype(int)).mean() < 0.1


def test_frame_runner_sharpens_its_own_dream_exactly_as_the_host_formula(graphs):
    import cv2

    _, frame_path = graphs
    runner = FrameRunner(frame_path, steps_per_run=1, device="cpu")
    small = moving_frames(1)[0]
    shown = np.ascontiguousarray(cv2.resize(small, (300, 210), interpolation=cv2.INTER_CUBIC))  # not a whole multiple
    flow, identity = np.zeros((24, 32, 2), np.float32), np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    trust = np.ones(flow.shape[:2], np.float32)
    dream, _ = runner.dream_frame(small, flow, trust, identity, 0.0, 0.05, nobody(flow))
    dream = dream.copy()
    runner.reset()
    sharp, _ = runner.dream_frame(small, flow, trust, identity, 0.0, 0.05, nobody(flow), shown)  # nothing carried: the same dream
    detail = cv2.resize(np.subtract(dream, small, dtype=np.int16), (300, 210), interpolation=cv2.INTER_LINEAR)
    want = cv2.add(shown, detail, dtype=cv2.CV_8U)
    assert sharp.shape == shown.shape
    assert np.abs(sharp.astype(int) - want).max() <= 1  # cv2 interpolates integers in fixed point
    same_size, _ = runner.dream_frame(small, flow, trust, identity, 0.0, 0.05, nobody(flow), small)
    assert same_size.shape == small.shape  # nothing to sharpen: the dream itself
