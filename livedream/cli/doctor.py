"""`livedream doctor`: can this machine run the installation as configured?"""

from __future__ import annotations

import argparse
from pathlib import Path

from livedream.config import SOURCE_KINDS


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check that this machine can run the installation (GPU, model, camera, display, …)",
        description="Check providers, model files, cameras, displays, config and folders; "
        "exit code 0 only when the app can run as configured.",
    )
    parser.add_argument("--config", type=Path, default=None, help="config file (default: ./config.toml if present)")
    parser.add_argument(
        "--source", choices=SOURCE_KINDS, default=None, help="check for this source kind instead of [source] kind"
    )
    parser.set_defaults(handler=run_doctor_command)


def run_doctor_command(args: argparse.Namespace) -> int:
    from livedream.ops.doctor import run_doctor

    return run_doctor(args.config, args.source)
