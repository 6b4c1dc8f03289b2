"""The exported gradient graph: hand-written backward vs autograd, ONNX vs torch, errors."""

from __future__ import annotations

import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from livedream.export.backward import ComparedMaxPool, DreamGradient  # noqa: E402
from livedream.export.graph import export_module  # noqa: E402
from livedream.export.inception import TF2015, TORCHVISION, canonical_layer, dream_loss  # noqa: E402
from livedream.runtime.devices import CPU  # noqa: E402
from tests.conftest import default_objective, random_model  # noqa: E402

VARIANTS = {"tf2015": TF2015, "torchvision": TORCHVISION}
# mixed3 + mixed5 (the default) plus Mixed_7c, whose pool branch differs between variants.
LAYERS = {"mixed3": 1.0, "mixed5": 0.5, "Mixed_7c": 0.25}


def autograd_reference(model, layer_weights: dict[str, float], image: torch.Tensor):
    image = image.clone().requires_grad_(True)
    activations = model(image, tuple(layer_weights))
    loss = dream_loss(activations, {canonical_layer(k): v for k, v in layer_weights.items()})
    (grad,) = torch.autograd.grad(loss, image)
    return loss.detach(), grad


def relative_error(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant_model(request):
    return request.param, random_model(tuple(LAYERS), VARIANTS[request.param], seed=3)


@pytest.mark.parametrize("index_free", [False, True], ids=["indices", "index-free"])
@pytest.mark.parametrize("height,width", [(75, 75), (77, 76), (301, 417)])
def test_hand_backward_matches_autograd_in_float64(variant_model, height, width, index_free):
    _, model = variant_model
    model = model.double()
    try:
        generator = torch.Generator().manual_seed(height)
        image = torch.rand(1, 3, height, width, dtype=torch.float64, generator=generator) * 2 - 1
        ref_loss, ref_grad = autograd_reference(model, LAYERS, image)
        with torch.no_grad():
            loss, grad, _, _ = DreamGradient(model, LAYERS, torch.float64, index_free=index_free)(image)
        assert grad.shape == image.shape
        assert abs(float(loss) - float(ref_loss)) <= 1e-9 * abs(float(ref_loss))
        assert relative_error(grad, ref_grad) <= 1e-6
    finally:
        model.float()


@pytest.mark.parametrize("stride,padding", [(2, 0), (1, 1)])
@pytest.mark.parametrize("height,width", [(9, 9), (10, 13), (17, 16)])
def test_index_free_max_pool_backward_routes_like_autograd_also_on_ties(stride, padding, height, width):
    """Inputs after a ReLU are mostly tied zeros: each window's gradient must go to the
    same one input autograd picks (the first maximum, row by row), not be split or lost."""
    generator = torch.Generator().manual_seed(height * width)
    x = torch.relu(torch.randint(-3, 3, (1, 4, height, width), generator=generator).double())  # many ties
    x.requires_grad_(True)
    y = torch.nn.functional.max_pool2d(x, 3, stride, padding)
    grad_out = torch.rand(y.shape, dtype=torch.float64, generator=generator)
    (expected,) = torch.autograd.grad(y, x, grad_out)
    pool = ComparedMaxPool(stride, padding)
    got = pool.backward(x.detach(), y.detach(), grad_out)
    assert got.shape == x.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)  # a misrouted window is off by its whole gradient (~0.5)


@pytest.fixture(scope="module")
def exported(variant_model, tmp_path_factory):
    name, model = variant_model
    path = tmp_path_factory.mktemp("onnx") / f"{name}.onnx"
    export_module(DreamGradient(model, LAYERS).eval(), path)
    return path, model


@pytest.mark.parametrize("height,width", [(75, 75), (301, 417), (224, 224)])
def test_onnx_gradient_matches_torch_autograd(exported, height, width):
    path, model = exported
    session = ort.InferenceSession(str(path), providers=[CPU])
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(height)) * 2 - 1
    ref_loss, ref_grad = autograd_reference(model, LAYERS, image)
    loss, grad = session.run(["loss", "gradient"], {"image": image.numpy(), **default_objective(session)})
    assert grad.shape == (1, 3, height, width)
    assert abs(float(loss) - float(ref_loss)) <= 1e-4 * abs(float(ref_loss))
    assert cosine(grad, ref_grad) >= 0.9999
    # fp32 autograd is itself ~1 % off the float64 truth at 301x417 with random weights
    # (ReLU/argmax flips), so the size of the error is judged against float64.
    try:
        _, exact_grad = autograd_reference(model.double(), LAYERS, image.double())
    finally:
        model.float()
    assert relative_error(grad, exact_grad) <= 1e-2


def test_full_graph_optimisation_gives_the_same_numbers(exported):
    path, _ = exported
    image = np.random.default_rng(1).uniform(-1, 1, (1, 3, 131, 157)).astype(np.float32)
    results = []
    for level in (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        session = ort.InferenceSession(str(path), options, providers=[CPU])
        results.append(session.run(["gradient"], {"image": image, **default_objective(session)})[0])
    # Fused kernels round differently; at worst a few ReLU/argmax decisions flip.
    assert cosine(results[1], results[0]) >= 0.9999
    assert relative_error(results[1], results[0]) <= 1e-2


def test_graph_has_dynamic_size_and_no_image_sized_constants(exported):
    path, _ = exported
    graph = onnx.load(str(path)).graph
    image = graph.input[0]
    dims = [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim]
    assert dims == [1, 3, "height", "width"]
    gradient = next(o for o in graph.output if o.name == "gradient")
    assert [d.dim_param or d.dim_value for d in gradient.type.tensor_type.shape.dim] == dims
    constants = list(graph.initializer) + [
        attr.t for node in graph.node if node.op_type == "Constant" for attr in node.attribute if attr.t.dims
    ]
    # Conv kernels are at most 7 wide; anything with a spatial extent of an image is a
    # baked-in constant that would pin the graph to one size.
    assert all(max(list(t.dims[2:]) or [0]) <= 7 for t in constants if len(t.dims) == 4)
    assert all(len(t.dims) <= 4 for t in constants)


def test_gradient_graph_reads_plane_offsets_from_the_shape_not_a_second_pool(exported):
    # The stock translation adds a 1x1 MaxPool over each pool's whole input only to learn
    # where each plane's indices start: 7 % of a step. Every MaxPool left is a real 3x3 one.
    path, _ = exported
    pools = [node for node in onnx.load(str(path)).graph.node if node.op_type == "MaxPool"]
    assert pools
    for node in pools:
        kernel = next(attr.ints for attr in node.attribute if attr.name == "kernel_shape")
        assert list(kernel) == [3, 3], node.name


def test_too_small_image_is_a_clear_error(small_engine):
    from livedream.errors import UserError

    with pytest.raises(UserError, match="smaller than the model's minimum 75x75"):
        small_engine.gradient(np.zeros((1, 3, 60, 90), np.float32))


# ---- the ascent a step or frame graph bakes in (gradient norm, octaves) ----------------------

NAMES = [  # (ExportRequest options, the graph's name)
    ({}, "default"),
    ({"steps_per_run": 2, "frame": True}, "default-frame2"),
    ({"steps_per_run": 1, "gradient_norm": "laplacian"}, "default-step1-laplacian"),
    ({"steps_per_run": 1, "frame": True, "octaves": 3, "octave_scale": 1.5}, "default-frame1-octaves3x1.5"),
    ({"steps_per_run": 2, "frame": True, "octaves": 2, "octave_scale": 1.3, "gradient_norm": "laplacian", "fp16": True},
     "default-fp16-frame2-octaves2x1.3-laplacian"),
    ({"steps_per_run": 1, "frame": True, "octaves": 1, "octave_scale": 1.7}, "default-frame1"),  # one octave: no scale
]


@pytest.mark.parametrize("options, name", NAMES, ids=[name for _, name in NAMES])
def test_graph_names_tell_the_ascent_apart(options, name):
    from livedream.export.graph import ExportRequest, graph_name

    assert graph_name(ExportRequest(**options)) == name


BAD_ASCENTS = [  # (ExportRequest options, what the one-line error names)
    ({"gradient_norm": "laplacian"}, "--gradient-norm laplacian needs --steps-per-run"),
    ({"steps_per_run": 1, "gradient_norm": "l2"}, "'l2' is not one of std, laplacian"),
    ({"steps_per_run": 1, "octaves": 2}, "--octaves 2 needs --frame"),
    ({"steps_per_run": 1, "frame": True, "octaves": 0}, "--octaves 0 is out of range; use 1 to 8"),
    ({"steps_per_run": 1, "frame": True, "octaves": 9}, "--octaves 9 is out of range"),
    ({"steps_per_run": 1, "frame": True, "octaves": 2, "octave_scale": 1.0}, "--octave-scale 1 is out of range"),
    ({"steps_per_run": 1, "frame": True, "octaves": 2, "octave_scale": float("nan")}, "--octave-scale nan is out"),
]


@pytest.mark.parametrize("options, message", BAD_ASCENTS, ids=[m for _, m in BAD_ASCENTS])
def test_an_ascent_no_graph_can_bake_in_is_refused_before_any_work(options, message, tmp_path):
    from livedream.errors import UserError
    from livedream.export.graph import ExportRequest, validate

    with pytest.raises(UserError, match=re.escape(message)):
        validate(ExportRequest(out_dir=tmp_path / "models", **options))
    assert not (tmp_path / "models").exists()


def test_a_manifest_entry_of_an_earlier_release_reads_as_std_and_one_octave():
    from livedream.manifest import AscentVariant, GraphInfo

    entry = {"file": "default-frame2.onnx", "layers": ["mixed3"], "layer_weights": [1.0], "weights_source": "x",
             "weights_sha256": "0", "graph_sha256": "0", "opset": 18, "dtype": "float32", "input_range": [-1, 1],
             "min_size": 75, "variant": "tf2015", "steps_per_run": 2, "kind": "frame", "channels": [288],
             "graph_format": 2}
    assert GraphInfo.from_json("default-frame2", entry).ascent == AscentVariant(2)


def test_the_live_gpu_graphs_are_named_as_export_names_them_and_serve_the_shipped_params():
    """`device_graphs` finds an exported graph by name: a name export would not write means an
    export on every start. And the frame graph of the shipped defaults serves them."""
    from livedream.export.graph import ExportRequest, graph_name
    from livedream.params import Params
    from livedream.pipeline.dreamer import live_ascent
    from livedream.runtime.exporting import device_graphs, live_gpu_graphs

    for provider in ("CUDA", "WebGPU"):
        for name, options in device_graphs(provider, live=True).items():
            assert graph_name(ExportRequest(**options)) == name
    for shipped in (Params(), Params(steps=3, octaves=3, octave_scale=1.5, gradient_norm="laplacian")):
        requests = [ExportRequest(**options) for options in live_gpu_graphs(shipped).values()]
        assert live_ascent(shipped) in [request.ascent for request in requests if request.frame]
        assert [request.gradient_norm for request in requests if not request.frame] == [shipped.gradient_norm]
