"""`livedream channels --layer mixed4 -o sheet.png`: browse a layer's motifs (`offline.channels`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from livedream.config import DEVICE_HELP, DEVICES
from livedream.errors import UserError
from livedream.manifest import DEFAULT_MODEL
from livedream.objective import LAYER_CHANNELS, LAYERS


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "channels",
        help="a contact sheet of a layer's strongest channels, to pick motifs for an objective",
        description="Dream each of a layer's strongest channels alone and tile them, labelled layer:channel.",
    )
    parser.add_argument("--layer", required=True, help=f"one of {', '.join(LAYERS)}")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="SHEET", help="the contact sheet (.png or .jpg)")
    parser.add_argument("--count", type=int, default=12, metavar="N", help="how many channels (default: %(default)s)")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--image", type=Path, metavar="PHOTO", help="dream on this photo (default: the bundled sample)")
    start.add_argument("--noise", action="store_true", help="dream from grey noise: the motifs alone")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="graph name in models/ or an .onnx path (default: %(default)s)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help=DEVICE_HELP + " (default: %(default)s)")
    parser.set_defaults(handler=run_channels)


def run_channels(args: argparse.Namespace) -> int:
    from livedream.media.pictures import read_image
    from livedream.media.targets import picture_target
    from livedream.offline.channels import SheetJob, channel_sheet
    from livedream.offline.imageio import check_output
    from livedream.pipeline.images import SAMPLE_PHOTO

    if args.layer not in LAYER_CHANNELS:
        raise UserError(f"--layer {args.layer!r} is not a layer; use one of {', '.join(LAYERS)}")
    if not 1 <= args.count <= LAYER_CHANNELS[args.layer]:
        raise UserError(f"--count {args.count}: use 1 to {LAYER_CHANNELS[args.layer]} (the channels of {args.layer})")
    check_output(args.output, source=args.image)
    picture_target(args.output)
    source = None if args.noise else read_image(args.image or SAMPLE_PHOTO)
    channel_sheet(SheetJob(args.layer, args.output, args.count, source, args.device, model=args.model))
    return 0
