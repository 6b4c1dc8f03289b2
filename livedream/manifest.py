"""Where exported graphs live and what the manifest says about them (no torch here).

`models/manifest.json` records, for each graph name: its file, layers (the objective inputs'
order) with their channel counts and default weights,
the weights source and its sha256, the graph's own sha256, opset, dtype, input range and
minimum input size. The runtime checks a graph against it before loading.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from livedream.errors import UserError
from livedream.files import file_digest, file_problem, write_atomically

DEFAULT_MODEL = "default"  # mixed0–mixed5, the default objective mixed3 + mixed5
DEEP_MODEL = "deep"  # mixed0–mixed10, for objectives that reach deeper than mixed5
POOL_BY_INDICES = "indices"  # a max pool's backward scatters to its argmax indices (CPU, CUDA)
POOL_BY_COMPARISON = "compare"  # finds each window's winner by comparison: the graph WebGPU runs whole
WEBGPU_SUFFIX = "-webgpu"  # the index-free variant of a graph: `default` → `default-webgpu`
# Shipped built (`export/sharpen.py` writes it): frame + upscaled dream detail, on the device.
SHARPEN_GRAPH = Path(__file__).resolve().parent / "assets" / "sharpen.onnx"
# Shipped built (`export/person.py` converts it from MediaPipe's TFLite): who is a person, per
# pixel. The runtime checks the file against this hash before opening it.
PERSON_GRAPH = Path(__file__).resolve().parent / "assets" / "person.onnx"
PERSON_SHA256 = "47687f5bc4ef83aecaadfd022dd81943364391ff0aa2b8e5cb680e25687ea3a0"
MANIFEST_NAME = "manifest.json"
# A graph's own metadata: its objective layers, their channel counts and default weights.
LAYERS_KEY, CHANNELS_KEY, WEIGHTS_KEY = "livedream.layers", "livedream.channels", "livedream.layer_weights"
# Every graph's objective inputs, in order (`export.backward.ObjectiveTensors` declares their
# shapes, `runtime.objective.ObjectiveInputs` fills them), then the per-frame visitor mask.
OBJECTIVE_INPUTS = ("layer_weights", "channel_weights", "visitor_weights", "region_gains", "guide_features",
                    "guide_weights")
MASK_INPUT = "mask"
# How an ascent step normalises its gradient: a variant of the step and frame graphs (the host
# path takes it per dream). std: the tutorial's; laplacian: each Laplacian-pyramid band of the
# gradient to RMS 1 first (Google's TF1 notebook), so the coarse bands draw large motifs.
STD_NORM = "std"
LAPLACIAN_NORM = "laplacian"
GRADIENT_NORMS = (STD_NORM, LAPLACIAN_NORM)
# The Laplacian pyramid's definition, for the host (`pipeline.lapnorm`) and the graphs
# (`export.backward.laplacian_normalised`) alike: 4 band levels, the 5x5 binomial kernel (these
# taps' outer product / 256), stride 2, zero padding; each band divided by max(RMS, RMS_FLOOR).
# The low-pass rest is divided by its RMS as the notebook does, then loses its per-channel mean:
# kept, the mean is a colour cast that every step pushes the same way (a still scene dreamed for
# ten minutes drifted 30 grey levels in green: tests/test_coherence_v2.py); brought to RMS 1
# without it, the rest's blotches of colour swamped the live picture (tools/look.py: 0.26 of a
# still's DeepDream at 640x360, against 0.8 at the notebook's scale).
LAP_LEVELS = 4
LAP_TAPS = (1.0, 4.0, 6.0, 4.0, 1.0)
RMS_FLOOR = 1e-30  # a band of zeros (a zero gradient: nobody to dream under where = "visitors") stays zeros
GUIDE_GRID = 12  # a guide's feature map is matched at 12x12 positions per layer: fixed shapes for CUDA graphs
# Octave sizes, for the host (`pipeline.dream.octave_sizes`) and the frame graphs alike: an
# octave's side is `side * factor // OCTAVE_ONE` with the factor `ceil(scale**octave * OCTAVE_ONE)`.
# Integer arithmetic, so torch.export keeps it symbolic and a graph of dynamic size resizes to
# exactly the host's sizes (a float product cut by int() would be baked in as a constant). The
# ceiling keeps whole products whole (200 x 1.3**2 is 338, not 337): a side up to 8K comes out as
# floor(side x scale**octave) unless that product lies within 1/2000 of a pixel below a whole one.
OCTAVE_ONE = 2**24
# The graphs' inputs and what they mean in this release: 3 = the matched guide turns each place
# toward its best cosine match (2 = visitor mask, two objectives and the guide grown along its best
# dot product; 1 = objective inputs only; 0 = an objective baked in). A graph of another format is
# exported again.
GRAPH_FORMAT = 3
EARLIER_RELEASE = "was exported by an earlier release, whose graphs take no visitor mask, second objective or matched guide"
EXPORT_HINT = "run `livedream export` (needs: pip install 'livedream[export]')"


@dataclass(frozen=True)
class GraphInfo:
    """One manifest entry."""

    name: str
    file: str
    layers: tuple[str, ...]
    layer_weights: tuple[float, ...]
    weights_source: str
    weights_sha256: str
    graph_sha256: str
    opset: int
    dtype: str  # "float32" or "float16" (the compute precision; I/O is always float32)
    input_range: tuple[float, float]
    min_size: int
    variant: str
    steps_per_run: int = 0  # 0: gradient graph (image → loss, gradient); K: K ascent steps
    kind: str = "gradient"  # "gradient", "step" (K steps per run) or "frame" (a whole live frame)
    # Each layer's channel count: the objective inputs' shapes. Empty: a graph of an earlier
    # release, whose objective was baked in; it must be exported again.
    channels: tuple[int, ...] = ()
    pool_backward: str = POOL_BY_INDICES
    graph_format: int = GRAPH_FORMAT  # of the release that exported it (an entry without one: earlier)
    # A step or frame graph's ascent, baked in (`ascent`): its gradient normalisation (one of
    # GRADIENT_NORMS) and, for a frame graph, its octaves `octave_scale` apart, coarsest first.
    gradient_norm: str = STD_NORM
    octaves: int = 1
    octave_scale: float = 1.0

    @classmethod
    def from_json(cls, name: str, entry: dict) -> "GraphInfo":
        try:
            return cls(
                name=name,
                file=entry["file"],
                layers=tuple(entry["layers"]),
                layer_weights=tuple(float(w) for w in entry["layer_weights"]),
                weights_source=entry["weights_source"],
                weights_sha256=entry["weights_sha256"],
                graph_sha256=entry["graph_sha256"],
                opset=int(entry["opset"]),
                dtype=entry["dtype"],
                input_range=tuple(entry["input_range"]),
                min_size=int(entry["min_size"]),
                variant=entry["variant"],
                steps_per_run=int(entry.get("steps_per_run", 0)),
                kind=entry.get("kind", "step" if entry.get("steps_per_run") else "gradient"),
                channels=tuple(int(c) for c in entry.get("channels", ())),
                pool_backward=entry.get("pool_backward", POOL_BY_INDICES),
                graph_format=int(entry.get("graph_format", 1 if entry.get("channels") else 0)),
                gradient_norm=entry.get("gradient_norm", STD_NORM),
                octaves=int(entry.get("octaves", 1)),
                octave_scale=float(entry.get("octave_scale", 1.0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(
                f"models/{MANIFEST_NAME}: entry {name!r} is damaged ({error}); "
                f"re-export it with `livedream export`"
            ) from None

    @property
    def ascent(self) -> "AscentVariant":
        """What one run of this step or frame graph dreams."""
        return AscentVariant.of(self.steps_per_run, self.octaves, self.octave_scale, self.gradient_norm)

    @property
    def of_this_release(self) -> bool:
        """Whether its inputs are this release's (`GRAPH_FORMAT`); else it is exported again."""
        return self.graph_format == GRAPH_FORMAT

    def to_json(self) -> dict:
        entry = asdict(self)
        del entry["name"]
        return entry


@dataclass(frozen=True)
class AscentVariant:
    """What one run of a step or frame graph dreams, baked in at export: `steps` ascent steps per
    octave, `octaves` octaves `octave_scale` apart (coarsest first; a step graph has one) and the
    gradient's normalisation. A live frame runs on a graph whose variant equals its Params'."""

    steps: int
    octaves: int = 1
    octave_scale: float = 1.0  # 1.0 with one octave, where no scale applies
    gradient_norm: str = STD_NORM

    @classmethod
    def of(cls, steps: int, octaves: int, octave_scale: float, gradient_norm: str) -> "AscentVariant":
        """The variant of these settings: with one octave every scale is the same dream."""
        return cls(steps, octaves, octave_scale if octaves > 1 else 1.0, gradient_norm)

    def name_suffix(self, frame: bool) -> str:
        """The graph name's part for it: `frame2`, `step1-laplacian`, `frame1-octaves3x1.3-laplacian`."""
        suffix = f"{'frame' if frame else 'step'}{self.steps}"
        if self.octaves > 1:
            suffix += f"-octaves{self.octaves}x{self.octave_scale:g}"
        return suffix + ("" if self.gradient_norm == STD_NORM else f"-{self.gradient_norm}")


def octave_factors(octaves: int, octave_scale: float, above: int = 0) -> tuple[int, ...]:
    """Each octave's size factor in units of 1/OCTAVE_ONE, coarsest first: `octaves` octaves at or
    below the full size (the last is it), then `above` larger ones."""
    return tuple(math.ceil(octave_scale**octave * OCTAVE_ONE) for octave in range(-(octaves - 1), above + 1))


def octave_side(side, factor: int):
    """`side` (an int, or a torch SymInt in a graph of dynamic size) at an octave's `factor`."""
    return side * factor // OCTAVE_ONE


def smallest_side(min_size: int, factor: int) -> int:
    """The smallest side whose octave at `factor` is at least `min_size`."""
    return -(-min_size * OCTAVE_ONE // factor)


def webgpu_variant(name: str) -> str:
    """The name of graph `name`'s index-free variant, which WebGPU runs whole."""
    return name + WEBGPU_SUFFIX


def default_models_dir() -> Path:
    """The repository's `models/` in a source checkout, else the user's data folder."""
    checkout = Path(__file__).resolve().parent.parent / "models"
    if checkout.is_dir():
        return checkout
    return Path(platformdirs.user_data_dir("livedream")) / "models"


def read_manifest(models_dir: Path) -> dict[str, GraphInfo]:
    path = models_dir / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: unreadable manifest ({error}); delete it and re-export") from None
    return {name: GraphInfo.from_json(name, entry) for name, entry in raw.get("graphs", {}).items()}


def write_manifest_entry(models_dir: Path, info: GraphInfo) -> None:
    """Add or replace one entry; written to a temp file and renamed, never half a file."""
    graphs = read_manifest(models_dir)
    graphs[info.name] = info
    document = {"graphs": {name: g.to_json() for name, g in sorted(graphs.items())}}
    write_atomically(models_dir / MANIFEST_NAME, json.dumps(document, indent=2).encode() + b"\n")


def find_graph(name: str, models_dir: Path, verify: bool = True) -> tuple[Path, GraphInfo]:
    """Locate graph `name` (a manifest name or an .onnx path) and check it against the manifest."""
    as_path = Path(name)
    if as_path.suffix == ".onnx":
        problem = file_problem(as_path)
        if problem is not None:
            raise UserError(f"model file {as_path} {problem}; {EXPORT_HINT} or give an exported .onnx")
        models_dir = as_path.parent
        name = as_path.stem
    graphs = read_manifest(models_dir)
    if name not in graphs and as_path.suffix == ".onnx":
        raise UserError(f"model file {as_path} is not listed in {models_dir / MANIFEST_NAME}, so it cannot be "
                        f"checked; export it with `livedream export --out {models_dir}`")
    if name not in graphs:
        known = ", ".join(graphs) or "none yet"
        raise UserError(
            f"model {name!r} is not in {models_dir / MANIFEST_NAME} (known: {known}); {EXPORT_HINT}"
        )
    info = graphs[name]
    path = models_dir / info.file
    if not path.exists():
        raise UserError(f"model file {path} is missing; {EXPORT_HINT}")
    if verify and file_digest(path) != info.graph_sha256:
        raise UserError(
            f"model file {path} does not match its manifest sha256 (changed or damaged); "
            f"re-export it with `livedream export`"
        )
    return path, info
