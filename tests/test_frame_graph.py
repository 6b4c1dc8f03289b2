"""The GPU frame graph (warp, add, steps, uint8 out in one run) against the host path, on CPU."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livedream.export.backward import AscentSteps, DreamGradient  # noqa: E402
from livedream.export.frame import FrameDream  # noqa: E402
from livedream.export.graph import export_module  # noqa: E402
from livedream.manifest import LAPLACIAN_NORM, STD_NORM, AscentVariant  # noqa: E402
from livedream.params import Params  # noqa: E402
from livedream.pipeline.dream import AscentSettings, dream  # noqa: E402
from livedream.pipeline.dreamer import DreamPath, LiveDreamer, choose_path  # noqa: E402
from livedream.runtime.engine import Engine  # noqa: E402
from livedream.runtime.runners import FrameRunner  # noqa: E402
from tests.chains import NUDGES, NudgedEngine, chain_bound, relative_l2, valid_drift_of  # noqa: E402
from tests.conftest import as_model, default_objective, lively_model  # noqa: E402

LAYERS = {"mixed0": 1.0}
ONE_STEP = AscentVariant(1)  # the frame graph of `graphs`
# The octave graph: three octaves 1.3 apart (two resized, so both directions of the size rule
# count) with the Laplacian-normalised gradient, one step each.
OCTAVES = AscentVariant(1, 3, 1.3, LAPLACIAN_NORM)


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


@pytest.fixture(scope="module")
def octave_graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("octaves") / "octaves.onnx"
    ascent = AscentSteps(DreamGradient(lively_model(("mixed0",)), LAYERS), OCTAVES.steps, OCTAVES.gradient_norm)
    module = FrameDream(ascent, OCTAVES.octaves, OCTAVES.octave_scale).eval()
    export_module(module, path)
    return path, module.min_side


def moving_frames(count: int, height: int = 96, width: int = 128) -> list[np.ndarray]:
    """A textured pattern sliding 3 px right per frame."""
    rng = np.random.default_rng(7)
    texture = rng.integers(0, 256, (height, width + 3 * count, 3), dtype=np.uint8)
    texture = np.ascontiguousarray(np.repeat(np.repeat(texture[::4, ::4], 4, 0), 4, 1)[:height])
    return [np.ascontiguousarray(texture[:, 3 * (count - i) : 3 * (count - i) + width]) for i in range(count)]


def test_frame_graph_dreams_like_the_host_path(graphs):
    gradient_path, frame_path = graphs
    host_model = as_model(Engine(gradient_path, "cpu"))
    device_model = as_model(Engine(gradient_path, "cpu"),
                            {ONE_STEP: FrameRunner(frame_path, steps_per_run=1, device="cpu")})
    params = Params(steps=1, octaves=1, gradient_norm=STD_NORM, strength=0.05, half_life=0.9, dream_height=96,
                    dream_width=128, zoom_per_s=0.2)
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
    model = as_model(Engine(gradient_path, "cpu"), {ONE_STEP: runner})
    dreamer = LiveDreamer()
    frame = moving_frames(1)[0]
    two_steps, one_step = (Params(steps=n, octaves=1, gradient_norm=STD_NORM, dream_height=96, dream_width=128)
                           for n in (2, 1))
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
    device_model = as_model(Engine(gradient_path, "cpu"),
                            {ONE_STEP: FrameRunner(frame_path, steps_per_run=1, device="cpu")})
    params = Params(steps=1, octaves=1, gradient_norm=STD_NORM, strength=0.05, half_life=0.9, dream_height=96,
                    dream_width=128)
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


def octave_settings(height: int, width: int, octave_scale: float = OCTAVES.octave_scale) -> AscentSettings:
    """The host's live ascent for OCTAVES (`dreamer.ascent_settings`)."""
    return AscentSettings(steps=OCTAVES.steps, step_size=0.05, octaves=OCTAVES.octaves, octave_scale=octave_scale,
                          tile=max(height, width), jitter=False, gradient_norm=OCTAVES.gradient_norm)


@pytest.mark.parametrize("height, width", [(144, 176), (131, 157)])
def test_octave_frame_graph_equals_the_hosts_dream_on_a_carried_detail(graphs, octave_graph, height, width):
    """One frame, nothing moved: the graph's octaves on a carried detail against the host's
    (`dream._dream_on_carried`), within the drift that equally valid float32 host dreams show on
    this input (`tests.chains.NudgedEngine`: three chained steps, each octave's image resampled
    with other rounding). Odd sides too. The bound is no licence: octaves a pixel or two off (the
    host at scale 1.31) or a step 10 % long leave it far behind."""
    import onnxruntime as ort

    engine = Engine(graphs[0], "cpu")
    session = ort.InferenceSession(str(octave_graph[0]), providers=["CPUExecutionProvider"])
    frame = moving_frames(1, height, width)[0]
    carried = (np.random.default_rng(3).standard_normal((1, 3, height, width)) * 0.05).astype(np.float32)
    base = (frame.transpose(2, 0, 1)[None] / 127.5 - 1.0).astype(np.float32)
    start = np.clip(base + carried, -1.0, 1.0)

    def host(engine, octave_scale: float = OCTAVES.octave_scale, step_size: float = 0.05) -> np.ndarray:
        settings = replace(octave_settings(height, width, octave_scale), step_size=step_size)
        detail, _ = dream(engine, base, settings, np.random.default_rng(0), carried.copy())
        return base + detail

    flow = np.zeros((8, 8, 2), np.float32)
    feed = {**default_objective(session), "frame": frame, "detail": carried, "flow": flow,
            "confidence": np.ones(flow.shape[:2], np.float32), "mask": np.zeros(flow.shape[:2], np.float32),
            "feedback": np.array([[1, 0, 0], [0, 1, 0]], np.float32), "decay": np.array(1.0, np.float32),
            "step_size": np.array(0.05, np.float32)}
    _, detail_out, _ = session.run(None, feed)
    expected = host(engine)
    bound = chain_bound(valid_drift_of(host, engine, start))
    error = relative_l2(base + detail_out, expected, start)
    print(f"{height}x{width}: relative L2 to the host {error:.2e}, bound {bound:.2e}")
    assert np.abs(expected - start).mean() > 0.01  # the octaves dreamed
    assert error <= bound
    assert relative_l2(host(engine, octave_scale=1.31), expected, start) > bound
    assert relative_l2(host(engine, step_size=0.055), expected, start) > bound


def test_octave_frame_graph_dreams_like_the_host_live_dreamer(graphs, octave_graph):
    """The live path end to end (carry along the flow, zoom, catch-up, uint8) with the octaves,
    frame by frame within the drift of host runs on nudged engines (`tests.chains`): each frame
    chains three steps onto the last, so float32 flips add up and the bound widens (measured: the
    first frame's fails a step 10 % long, later ones only octaves of the wrong size; the test
    above pins one frame). Both dreamers start from a carried detail of zeros (`prime`): with
    nothing carried at all the host dreams a first frame the still's way (`dream.dream`)."""
    gradient_path, _ = graphs
    frame_path, min_side = octave_graph
    engine = Engine(gradient_path, "cpu")
    runner = FrameRunner(frame_path, steps_per_run=1, device="cpu", min_size=min_side)
    device_model = as_model(engine, {OCTAVES: runner})
    params = Params(steps=OCTAVES.steps, octaves=OCTAVES.octaves, octave_scale=OCTAVES.octave_scale,
                    gradient_norm=OCTAVES.gradient_norm, strength=0.05, half_life=0.9, dream_height=131,
                    dream_width=157, zoom_per_s=0.2)
    assert choose_path(params, device_model) is DreamPath.FRAME_GRAPH
    frames = moving_frames(4, 131, 157)

    def live(model) -> list[np.ndarray]:
        dreamer = LiveDreamer()
        dreamer.restore(np.zeros((1, 3, 131, 157), np.float32), {})
        dreamer.prime(frames[0], params)
        return [dreamer.dream_frame(frame, params, model).astype(np.float64) for frame in frames[1:]]

    host, device = live(as_model(engine)), live(device_model)
    nudged = [live(as_model(NudgedEngine(engine, seed))) for seed in range(NUDGES)]
    for index, frame in enumerate(frames[1:]):
        source = frame.astype(np.float64)
        assert np.abs(device[index] - source).mean() > 0.5  # it dreamed
        bound = chain_bound(max(relative_l2(run[index], host[index], source) for run in nudged))
        error = relative_l2(device[index], host[index], source)
        print(f"frame {index + 1}: relative L2 to the host {error:.2e}, bound {bound:.2e}")
        assert error <= bound


class FakeFrames:
    """A frame runner as `choose_path` sees it: its smallest dream side."""

    def __init__(self, min_size: int) -> None:
        self.min_size = min_size


class FakeSteps:
    steps_per_run = 1

    def __init__(self, gradient_norm: str) -> None:
        self.gradient_norm = gradient_norm


LAP_OCTAVES = AscentVariant(2, 3, 1.5, LAPLACIAN_NORM)
PATHS = [  # (what the params change from LAP_OCTAVES' own at 360x640, the step runner's norm, the path)
    ({}, LAPLACIAN_NORM, DreamPath.FRAME_GRAPH),
    ({"steps": 1}, LAPLACIAN_NORM, DreamPath.STEP_GRAPH),
    ({"octaves": 2}, LAPLACIAN_NORM, DreamPath.STEP_GRAPH),
    ({"octave_scale": 1.4}, LAPLACIAN_NORM, DreamPath.STEP_GRAPH),
    ({"gradient_norm": STD_NORM}, LAPLACIAN_NORM, DreamPath.HOST),  # neither graph normalises so
    ({"gradient_norm": STD_NORM}, STD_NORM, DreamPath.STEP_GRAPH),
    ({"dream_height": 160, "dream_width": 284}, LAPLACIAN_NORM, DreamPath.STEP_GRAPH),  # the coarsest octave: 71
    ({"octaves": 1, "octave_scale": 1.7, "steps": 3}, LAPLACIAN_NORM, DreamPath.FRAME_GRAPH),  # one octave: any scale
    ({"octaves": 1, "steps": 3, "gradient_norm": STD_NORM}, None, DreamPath.HOST),
]


@pytest.mark.parametrize("changes, step_norm, path", PATHS, ids=[str(case[0]) for case in PATHS])
def test_a_graph_serves_only_the_dream_it_was_exported_for(changes, step_norm, path):
    frames = {LAP_OCTAVES: FakeFrames(min_size=170), AscentVariant(3, gradient_norm=LAPLACIAN_NORM): FakeFrames(75)}
    model = as_model(object(), frames, FakeSteps(step_norm) if step_norm else None)
    own = {"steps": LAP_OCTAVES.steps, "octaves": LAP_OCTAVES.octaves, "octave_scale": LAP_OCTAVES.octave_scale,
           "gradient_norm": LAP_OCTAVES.gradient_norm, "dream_height": 360, "dream_width": 640}
    assert choose_path(Params(**{**own, **changes}), model) is path
