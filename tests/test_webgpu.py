"""WebGPU: the index-free graphs run whole on ONNX Runtime's WebGPU provider and give the CPU's
results — the gradient, the step and frame graphs (also Laplacian-normalised and of several
octaves), the sharpen graph, a still and a live run.

Runs where the plugin `onnxruntime-ep-webgpu` finds an adapter: a GPU, or here the software
Vulkan driver SwiftShader (tests/conftest.py points VK_ICD_FILENAMES at Debian
chromium-common's vk_swiftshader_icd.json and sets ORT_WEBGPU_EP_ALLOW_SOFTWARE_ADAPTER=1;
.ci/run installs the package). "Whole" is checked by ONNX Runtime itself: with CPU fallback
disabled a session at fixed sizes refuses a graph any of whose nodes the provider cannot run
(at dynamic sizes ORT keeps shape arithmetic on the CPU by design, so only fixed sizes can
be checked so). Sizes are
small: SwiftShader is a CPU emulating a GPU, so its speed means nothing.
"""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from livedream import cli  # noqa: E402
from livedream.export.backward import AscentSteps, DreamGradient  # noqa: E402
from livedream.export.frame import FrameDream  # noqa: E402
from livedream.export.graph import export_module  # noqa: E402
from livedream.export.inception import TF2015  # noqa: E402
from livedream.manifest import LAPLACIAN_NORM, SHARPEN_GRAPH  # noqa: E402
from livedream.pipeline.dream import AscentSettings, ascend  # noqa: E402
from livedream.runtime.devices import CPU, WebGpuAdapter, find_webgpu  # noqa: E402
from livedream.runtime.engine import NO_VISITORS, CpuThreads, Engine, open_session  # noqa: E402
from livedream.runtime.runners import FrameRunner, StepRunner  # noqa: E402
from livedream.testing.gpu_check import cosine_and_relative  # noqa: E402
from tests.chains import chain_bound, relative_l2, valid_drift_of  # noqa: E402
from tests.conftest import default_objective, lively_model, random_model, write_random_graph  # noqa: E402

LAYERS = ("mixed3", "mixed5")
SIZE = {"height": 96, "width": 128}
FLOW_SIZE = {"flow_height": 24, "flow_width": 32}
SHOWN_SIZE = {"shown_height": 192, "shown_width": 256}
OCTAVE_SIZE = {"height": 144, "width": 176}  # the octave graph's coarsest octave (/1.5) must fit the network


@pytest.fixture(scope="module")
def adapter() -> WebGpuAdapter:
    found = find_webgpu()
    if not isinstance(found, WebGpuAdapter):
        pytest.skip(f"no WebGPU adapter: {found}")
    return found


def open_whole(path, adapter: WebGpuAdapter, dims: dict[str, int]) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    for name, value in dims.items():
        options.add_free_dimension_override_by_name(name, value)
    options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    options.add_provider_for_devices([adapter.device], {})
    return ort.InferenceSession(str(path), options)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """Gradient graphs of both pool backwards, and index-free step and frame graphs."""
    model = random_model(LAYERS, TF2015, seed=4)
    lively = lively_model(("mixed0",))
    folder = tmp_path_factory.mktemp("webgpu")
    paths = {}
    for index_free in (False, True):
        paths[index_free] = folder / f"g-{index_free}.onnx"
        export_module(DreamGradient(model, {layer: 1.0 for layer in LAYERS}, index_free=index_free).eval(),
                      paths[index_free])
    paths["step"], paths["frame"], paths["lively"] = folder / "step.onnx", folder / "frame.onnx", folder / "lively.onnx"
    export_module(DreamGradient(lively, {"mixed0": 1.0}, index_free=True).eval(), paths["lively"])
    export_module(AscentSteps(DreamGradient(lively, {"mixed0": 1.0}, index_free=True), 1).eval(), paths["step"])
    export_module(FrameDream(AscentSteps(DreamGradient(lively, {"mixed0": 1.0}, index_free=True), 1)).eval(),
                  paths["frame"])
    return paths


@pytest.fixture(scope="module")
def ascent_graphs(tmp_path_factory):
    """Index-free graphs of the other ascents: the Laplacian-normalised step, and a frame graph of
    two octaves with it (its own fixture: each export takes a while, and a fixture runs within one
    test's time limit)."""
    folder = tmp_path_factory.mktemp("ascents")
    lap = AscentSteps(DreamGradient(lively_model(("mixed0",)), {"mixed0": 1.0}, index_free=True), 1, LAPLACIAN_NORM)
    octaves = FrameDream(lap, 2, 1.5).eval()
    paths = {"lap_step": folder / "lap_step.onnx", "octaves": folder / "octaves.onnx"}
    export_module(lap.eval(), paths["lap_step"])
    export_module(octaves, paths["octaves"])
    return paths, octaves.min_side


@pytest.mark.parametrize("kind,dims", [
    (True, SIZE), ("step", SIZE), ("frame", {**SIZE, **FLOW_SIZE}), ("sharpen", {**SIZE, **SHOWN_SIZE}),
], ids=["gradient", "step", "frame", "sharpen"])
def test_every_live_graph_runs_whole_on_webgpu(adapter, graphs, kind, dims) -> None:
    open_whole(SHARPEN_GRAPH if kind == "sharpen" else graphs[kind], adapter, dims)  # raises if a node falls back


def test_the_indexed_graph_does_not_run_whole(adapter, graphs) -> None:
    with pytest.raises(Exception):
        open_whole(graphs[False], adapter, SIZE)  # MaxPool's Indices and their int64 arithmetic


def test_the_runtime_runs_a_graph_whole_on_webgpu_or_not_at_all(adapter, graphs, caplog) -> None:
    """At fixed sizes a node left on the CPU would copy every run: the runtime's session
    refuses it and the graph dreams on the CPU instead, with a warning. At dynamic sizes (a
    still's octaves) the shape arithmetic ORT keeps on the CPU must not cost the GPU."""
    _, provider = open_session(graphs[True], "webgpu", CpuThreads(0), dims=SIZE)
    assert provider == "WebGPU"
    _, provider = open_session(graphs[True], "webgpu", CpuThreads(0))
    assert provider == "WebGPU"
    with caplog.at_level("WARNING", logger="livedream.runtime.engine"):
        _, provider = open_session(graphs[False], "webgpu", CpuThreads(0), dims=SIZE)
    assert provider == "CPU"
    assert any("the WebGPU provider failed to start" in r.getMessage() for r in caplog.records)


def test_the_webgpu_gradient_equals_the_cpu_providers(adapter, graphs) -> None:
    webgpu = open_whole(graphs[True], adapter, SIZE)
    cpu = ort.InferenceSession(str(graphs[False]), providers=[CPU])
    image = np.random.default_rng(1).random((1, 3, SIZE["height"], SIZE["width"]), np.float32) * 2 - 1
    feed = {"image": image, **default_objective(cpu)}
    loss, gradient, *_ = webgpu.run(None, feed)
    expected_loss, expected, *_ = cpu.run(None, feed)
    cosine, relative = cosine_and_relative(gradient, expected)
    print(f"WebGPU vs CPU: cosine {cosine:.7f}, relative L2 {relative:.1e}")
    assert abs(float(loss) - float(expected_loss)) <= 1e-4 * abs(float(expected_loss))
    # Random weights put many activations at a ReLU's or a pool's edge, where float32 rounding
    # flips them: the CPU's own float32 gradient is about 1 % off float64 there (test_export).
    # A misrouted pool or a wrong kernel is off by far more (cosine well under 0.99).
    assert cosine >= 0.999 and relative <= 0.05


def test_the_step_and_frame_runners_on_webgpu_give_the_cpus_pictures(adapter, graphs) -> None:
    """Device buffers on WebGPU (ping-pong, the frame's detail, the sharp picture) as on CUDA."""
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (SIZE["height"], SIZE["width"], 3), dtype=np.uint8)
    shown = cv2.resize(frame, (SHOWN_SIZE["shown_width"], SHOWN_SIZE["shown_height"]))
    flow = np.full((FLOW_SIZE["flow_height"], FLOW_SIZE["flow_width"], 2), 0.5, np.float32)
    confidence = np.ones(flow.shape[:2], np.float32)
    feedback = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    results = {}
    for device in ("cpu", "webgpu"):
        frames = FrameRunner(graphs["frame"], 1, device=device)
        steps = StepRunner(graphs["step"], 1, device=device)
        assert frames.provider == steps.provider == ("WebGPU" if device == "webgpu" else "CPU")
        nobody = np.zeros(flow.shape[:2], np.float32)
        first, _ = frames.dream_frame(frame, flow, confidence, feedback, 0.9, 0.05, nobody)
        first = first.copy()
        picture, loss = frames.dream_frame(frame, flow, confidence, feedback, 0.9, 0.05, nobody, shown_rgb=shown)
        start = (frame.transpose(2, 0, 1)[None] / 127.5 - 1).astype(np.float32)
        image = start.copy()
        steps.ascend(image, 2, 0.05, NO_VISITORS)
        results[device] = first, picture.copy(), loss, image
    (cpu_first, cpu_picture, cpu_loss, cpu_image), (first, picture, loss, image) = results["cpu"], results["webgpu"]
    assert np.abs(cpu_first.astype(int) - frame).mean() > 0.5  # it dreamed
    assert np.abs(first.astype(int) - cpu_first).mean() < 0.05  # a level on a few pixels at most
    assert np.abs(picture.astype(int) - cpu_picture).mean() < 0.05  # the carried detail, sharpened
    assert abs(loss - cpu_loss) <= 1e-4 * abs(cpu_loss)
    # Two chained steps: a ReLU edge flipped by float32 rounding sends a few pixels another way,
    # a wrong kernel all of them. How far valid float32 chains drift on this input is measured
    # (`tests.chains`), so the bound holds whichever kernels either side picks: WebGPU rounds the
    # first step's image otherwise too, which nudging the gradient alone does not cover (measured
    # here: 9.4e-3 against a gradient-nudged drift of 3e-6), so the host runs on a `NudgedEngine`.
    def two_steps(engine) -> np.ndarray:
        stepped = start.copy()
        ascend(engine, stepped, AscentSettings(steps=2, step_size=0.05, tile=max(SIZE.values()), jitter=False),
               np.random.default_rng(0))
        return stepped

    drift = valid_drift_of(two_steps, Engine(graphs["lively"], "cpu"), start)
    assert relative_l2(image, cpu_image, start) <= chain_bound(drift)


@pytest.mark.parametrize("kind,dims", [("lap_step", SIZE), ("octaves", {**OCTAVE_SIZE, **FLOW_SIZE})],
                         ids=["lap-norm step", "octaves frame"])
def test_the_other_ascents_run_whole_on_webgpu(adapter, ascent_graphs, kind, dims) -> None:
    open_whole(ascent_graphs[0][kind], adapter, dims)  # raises if a node falls back


def test_the_lap_norm_step_and_the_octave_frame_on_webgpu_give_the_cpus(adapter, ascent_graphs) -> None:
    """The Laplacian-normalised step (one, element-wise) and the octave frame graph (two frames: the
    second carries the first's detail through both octaves) on WebGPU as on the CPU."""
    graphs, min_side = ascent_graphs
    rng = np.random.default_rng(6)
    start = rng.uniform(-1, 1, (1, 3, SIZE["height"], SIZE["width"])).astype(np.float32)
    frame = cv2.resize(rng.integers(0, 256, (36, 44, 3), dtype=np.uint8), (OCTAVE_SIZE["width"], OCTAVE_SIZE["height"]))
    flow = np.full((FLOW_SIZE["flow_height"], FLOW_SIZE["flow_width"], 2), 0.5, np.float32)
    trust, nobody = np.ones(flow.shape[:2], np.float32), np.zeros(flow.shape[:2], np.float32)
    feedback = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    results = {}
    for device in ("cpu", "webgpu"):
        steps = StepRunner(graphs["lap_step"], 1, device=device, gradient_norm=LAPLACIAN_NORM)
        frames = FrameRunner(graphs["octaves"], 1, device=device, min_size=min_side)
        assert steps.provider == frames.provider == ("WebGPU" if device == "webgpu" else "CPU")
        image = start.copy()
        steps.ascend(image, 1, 0.05, NO_VISITORS)
        pictures = [frames.dream_frame(frame, flow, trust, feedback, 0.9, 0.05, nobody)[0].copy() for _ in range(2)]
        results[device] = image, pictures
    (cpu_image, cpu_pictures), (image, pictures) = results["cpu"], results["webgpu"]
    assert np.abs(cpu_image - start).mean() > 0.005
    np.testing.assert_allclose(image, cpu_image, atol=2e-5)
    for picture, expected in zip(pictures, cpu_pictures):
        assert np.abs(expected.astype(int) - frame).mean() > 0.5  # it dreamed
        assert np.abs(picture.astype(int) - expected).mean() < 0.05


@pytest.fixture(scope="module")
def graph_pair(tmp_path_factory):
    """A small graph and its WebGPU variant, side by side in one models folder."""
    folder = tmp_path_factory.mktemp("pair")
    path, _ = write_random_graph(folder, "small", ("mixed0",), TF2015, seed=3)
    write_random_graph(folder, "small-webgpu", ("mixed0",), TF2015, seed=3, index_free=True)
    return path


def test_a_still_dreamed_on_webgpu_matches_the_cpus(adapter, graph_pair, tmp_path, capsys) -> None:
    photo = tmp_path / "photo.png"
    picture = np.random.default_rng(5).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    cv2.imwrite(str(photo), cv2.resize(picture, (160, 120), interpolation=cv2.INTER_CUBIC))
    outputs = {}
    for device in ("cpu", "webgpu"):
        outputs[device] = tmp_path / f"{device}.png"
        assert cli.main(["dream", str(photo), "-o", str(outputs[device]), "--model", str(graph_pair),
                         "--device", device, "--steps", "2", "--octaves", "1", "--seed", "7"]) == 0
    printed = capsys.readouterr().out
    assert "provider: WebGPU" in printed and "small-webgpu.onnx" in printed
    source, cpu, webgpu = (cv2.imread(str(p)).astype(int) for p in (photo, outputs["cpu"], outputs["webgpu"]))
    print(f"|cpu - photo| {np.abs(cpu - source).mean():.2f}, |webgpu - cpu| {np.abs(webgpu - cpu).mean():.3f}")
    assert np.abs(cpu - source).mean() > 1.0  # the dream changed the picture
    assert np.abs(webgpu - cpu).mean() <= 2.0


def test_the_live_app_runs_a_few_frames_on_webgpu(adapter, graph_pair, tmp_path, capsys) -> None:
    config = tmp_path / "show.toml"
    config.write_text(f'[osc]\nenabled = false\n[log]\ndir = "{tmp_path / "log"}"\n')
    argv = ["run", "--config", str(config), "--source", "demo", "--windowed", "--size", "128x96",
            "--steps", "1", "--frames", "3", "--model", str(graph_pair), "--device", "webgpu"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "LiveDream: 3 frames" in out and " on WebGPU" in out
