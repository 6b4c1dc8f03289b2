"""`livedream midi --list`: the MIDI inputs this machine has (for `[midi] input`)."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("midi", help="list MIDI input ports (for [midi] input)",
                                 description="List the MIDI input ports, one per line, for [midi] input.")
    parser.add_argument("--list", action="store_true", help="list the input ports (the default)")
    parser.set_defaults(handler=run_midi)


def run_midi(args: argparse.Namespace) -> int:
    from livedream.control.midi import input_port_names

    names = input_port_names()
    if not names:
        print("no MIDI input ports (plug in a controller, or start a virtual port)")
        return 1
    for name in names:
        print(name)
    return 0
