"""Shared fixtures: small random-weight gradient graphs, made once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

# The WebGPU tests run on the software Vulkan driver SwiftShader where no GPU is (Debian's
# chromium-common ships it; .ci/run installs it): `auto` passes a software adapter over, so
# only the tests that ask for device "webgpu" use it. No GPU is told by the device nodes, not by
# the Vulkan drivers installed: FFmpeg's packages bring Mesa's (lavapipe and the drivers of
# GPUs that are not there), which the WebGPU plugin refuses.
SWIFTSHADER_ICD = Path("/usr/lib/chromium/vk_swiftshader_icd.json")
NO_GPU = not any(Path("/dev").glob("dri/renderD*")) and not any(Path("/dev").glob("nvidia[0-9]*"))
if SWIFTSHADER_ICD.exists() and "VK_ICD_FILENAMES" not in os.environ and NO_GPU:
    os.environ["VK_ICD_FILENAMES"] = str(SWIFTSHADER_ICD)
    os.environ.setdefault("ORT_WEBGPU_EP_ALLOW_SOFTWARE_ADAPTER", "1")

# The suite's tolerances must hold whatever thread split ONNX Runtime's kernels take (issue 43):
# LIVEDREAM_TEST_ORT_THREADS=N opens every session the project opens with N threads.
TEST_ORT_THREADS = int(os.environ.get("LIVEDREAM_TEST_ORT_THREADS", "0"))
if TEST_ORT_THREADS:
    from livedream.runtime import engine as _engine

    _project_options = _engine.session_options

    def _with_test_threads(threads, dims=None):
        options = _project_options(threads, dims)
        options.intra_op_num_threads = TEST_ORT_THREADS
        return options

    _engine.session_options = _with_test_threads

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "livedream" / "assets" / "sample.jpg"


def randomize_batch_norm(model, generator) -> None:
    """Random BN statistics, so folding is exercised (fresh BN is an identity)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            with torch.no_grad():
                module.running_mean.uniform_(-0.5, 0.5, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.2, 0.2, generator=generator)


def random_model(layers: tuple[str, ...], variant, seed: int = 0):
    import torch

    from livedream.export.inception import InceptionV3

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = InceptionV3.for_layers(layers, variant)
    randomize_batch_norm(model, generator)
    return model.eval()


def default_objective(session) -> dict[str, np.ndarray]:
    """The objective inputs a graph's own metadata gives as its default, for a plain session.run."""
    from livedream.runtime.engine import objective_inputs_of

    objective = objective_inputs_of(session)
    return {**dict(objective.arrays()), "mask": np.zeros((2, 2), np.float32)}


def write_random_graph(folder: Path, name: str, layers: tuple[str, ...], variant, seed: int = 0,
                       index_free: bool = False):
    """Export a random-weight graph with its manifest entry; returns (path, model).
    `index_free`: max pools backward by comparison, the variant WebGPU runs whole."""
    from livedream.export.backward import DreamGradient
    from livedream.export.graph import OPSET, export_module
    from livedream.files import file_digest
    from livedream.manifest import POOL_BY_COMPARISON, POOL_BY_INDICES, GraphInfo, write_manifest_entry

    model = random_model(layers, variant, seed)
    module = DreamGradient(model, {layer: 1.0 for layer in layers}, index_free=index_free).eval()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.onnx"
    export_module(module, path)
    write_manifest_entry(
        folder,
        GraphInfo(
            name=name,
            file=path.name,
            layers=layers,
            layer_weights=tuple(1.0 for _ in layers),
            channels=module.channels,
            weights_source=f"random (seed {seed})",
            weights_sha256="0" * 64,
            graph_sha256=file_digest(path),
            opset=OPSET,
            dtype="float32",
            input_range=(-1.0, 1.0),
            min_size=75,
            variant="test",
            pool_backward=POOL_BY_COMPARISON if index_free else POOL_BY_INDICES,
        ),
    )
    return path, model


@pytest.fixture(scope="session")
def small_graph(tmp_path_factory) -> Path:
    """A fast random-weight graph (mixed0 only) for engine, dream and app tests."""
    pytest.importorskip("torch")
    from livedream.export.inception import TF2015

    folder = tmp_path_factory.mktemp("models")
    path, _ = write_random_graph(folder, "small", ("mixed0",), TF2015)
    return path


@pytest.fixture(scope="session")
def small_engine(small_graph):
    from livedream.runtime.engine import Engine

    return Engine(small_graph, device="cpu")


@pytest.fixture
def sample_image() -> np.ndarray:
    """The bundled sample photo as uint8 RGB."""
    import cv2

    return cv2.cvtColor(cv2.imread(str(SAMPLE)), cv2.COLOR_BGR2RGB)


# ---- a random graph whose objective follows the image (dream tests) ------------------------

LIVELY_LAYERS = ("mixed0",)
LIVELY_SEED = 1


def lively_model(layers: tuple[str, ...] = LIVELY_LAYERS, seed: int = LIVELY_SEED):
    """Random weights that keep the signal's size through the layers (He init, BN near identity).

    PyTorch's default init shrinks the signal layer by layer, so `random_model`'s mixed0 mean
    is almost a constant (a flat image scores 99.99 % of a photo) and no dream can raise it
    several-fold; with these weights the objective depends on the image as a trained one does.
    """
    import math

    import torch

    from livedream.export.inception import TF2015

    model = random_model(layers, TF2015, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.normal_(0, math.sqrt(2 / module.weight[0].numel()), generator=generator)
            elif isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.05, 0.05, generator=generator)
                module.running_var.uniform_(0.9, 1.1, generator=generator)
                module.weight.uniform_(0.9, 1.1, generator=generator)
                module.bias.uniform_(-0.05, 0.05, generator=generator)
    return model.eval()


@pytest.fixture(scope="session")
def lively_graph(tmp_path_factory) -> Path:
    """`lively_model` exported like `small_graph` (mixed0, min size 75)."""
    pytest.importorskip("torch")
    from livedream.export.backward import DreamGradient
    from livedream.export.graph import OPSET, export_module
    from livedream.files import file_digest
    from livedream.manifest import GraphInfo, write_manifest_entry

    folder = tmp_path_factory.mktemp("lively")
    path = folder / "lively.onnx"
    export_module(DreamGradient(lively_model(), {layer: 1.0 for layer in LIVELY_LAYERS}).eval(), path)
    info = GraphInfo(
        name="lively", file=path.name, layers=LIVELY_LAYERS, layer_weights=(1.0,),
        weights_source=f"lively random (seed {LIVELY_SEED})", weights_sha256="0" * 64,
        graph_sha256=file_digest(path), opset=OPSET, dtype="float32", input_range=(-1.0, 1.0),
        min_size=75, variant="test", channels=(256,),
    )
    write_manifest_entry(folder, info)
    return path


@pytest.fixture(scope="session")
def lively_engine(lively_graph):
    from livedream.runtime.engine import Engine

    return Engine(lively_graph, device="cpu")


# ---- engines as the live loop takes them ---------------------------------------------------


def as_model(engine, frame_runners=None, step_runner=None):
    """`engine` (a real one or a fake) as a `LoadedModel`, with any runners given."""
    from livedream.runtime.model import LoadedModel

    return LoadedModel(engine, step_runner=step_runner, frame_runners=frame_runners or {})


def models_of(engine, name: str = "default", load=None, guard=None):
    """A `ModelSet` whose first model (`name`) is `engine`; `load(name)` gives the others
    (as engines too); `guard` replaces the first model's guard (a fake clock, say)."""
    from livedream.live.models import ModelSet
    from livedream.runtime.guard import GuardedModel

    first = guard or GuardedModel(lambda: as_model(engine))
    return ModelSet(name, first, (lambda other: as_model(load(other))) if load else None)


@pytest.fixture(autouse=True)
def private_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Adaptive quality keeps its step measurement in the user cache folder: never the real one."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
