"""`livedream [run] | dream | channels | export | doctor | midi`: one parser, a module per command.

Each command module has `add_parser(commands)`, which declares its flags and sets
`handler`; the handler does the work by calling into the packages below. A `UserError`
from anywhere becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from typing import NoReturn, Sequence

from livedream.cli import channels, doctor, dream, export, midi, run
from livedream.errors import UserError
from livedream.params import RENAMED

COMMANDS = (run, dream, channels, export, doctor, midi)


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake on the command line is one line (a `UserError`), not a usage page."""

    def error(self, message: str) -> NoReturn:
        if re.search(r"unrecognized arguments:.*--decay\b", message):  # the flag of the per-frame releases
            raise UserError(f"--decay was per frame; {RENAMED['decay'].hint('--half-life S')}")
        raise UserError(f"{message}; see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="livedream",
        description="Real-time DeepDream for installations, live visuals and kiosks.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.set_defaults(handler=None)  # each command sets its own
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    try:
        parser = build_parser()
        known = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
        # `livedream` alone, or with only options, runs the live app.
        if not any(arg in known for arg in argv) and not {"-h", "--help"} & set(argv):
            argv.insert(0, "run")
        args = parser.parse_args(argv)
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
        if not args.verbose:
            _quiet_opencv()  # its decoders and camera probes print pages of their own; we say one line
        if args.handler is None:
            parser.print_help()
            return 2
        return int(args.handler(args) or 0)
    except UserError as error:
        print(f"livedream: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"livedream: interrupted after {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return 130


def _quiet_opencv() -> None:
    import cv2.utils.logging

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
