"""`livedream run` (also plain `livedream`): flags → config overrides → `LiveApp.run`.

Flags take text and are checked here or by the config, so every mistake is one line naming
the flag and what is allowed (exit 2), never a usage dump or a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from pathlib import Path
from typing import Any, Callable, TypeVar

from livedream.config import DEFAULT_CONFIG, DEVICE_HELP, SOURCE_KINDS, config_path_or_default
from livedream.errors import UserError
from livedream.objective import GUIDE_MODES
from livedream.params import WHERE

Number = TypeVar("Number", int, float)


def key_table() -> str:
    from livedream.pipeline.display import key_help_lines

    return "\n".join(f"  {line}" for line in key_help_lines())


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="the live installation: camera (or demo) → dream → screen (the default command)",
        description="Dream the newest camera frame, full screen, in real time. Settings come from "
        "config.toml; these flags override it.",
        epilog=f"keys while running:\n{key_table()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", metavar="PATH", default=None,
        help=f"settings file (default: ./{DEFAULT_CONFIG} if present, else built-in defaults)",
    )
    source = parser.add_argument_group("source")
    source.add_argument("--source", metavar="KIND", help=f"one of {', '.join(SOURCE_KINDS)} (auto = camera, else demo)")
    source.add_argument("--camera", metavar="N|PATH", help="camera index or device path / stream URL")
    source.add_argument("--video", metavar="PATH", help="a video file to loop (implies --source video)")
    source.add_argument("--image", metavar="PATH", help="a still image (implies --source image)")
    window = parser.add_argument_group("display")
    mode = window.add_mutually_exclusive_group()
    mode.add_argument("--windowed", dest="fullscreen", action="store_false", default=None, help="a window")
    mode.add_argument("--fullscreen", dest="fullscreen", action="store_true", default=None, help="full screen")
    window.add_argument("--display", metavar="N", help="monitor index for full screen")
    window.add_argument("--no-hud", dest="hud", action="store_false", default=None, help="start with the HUD hidden")
    window.add_argument("--no-window", dest="window", action="store_false", default=None,
                        help="no window: dream to the outputs only (NDI, Spout/Syphon, virtual camera, recording)")
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--ndi", metavar="NAME", help="publish the dream as the NDI source NAME (needs livedream[ndi])")
    outputs.add_argument("--ndi-source", metavar="NAME", help='dream an NDI feed, "MACHINE (Name)" (implies --source ndi)')
    dream = parser.add_argument_group("dream")
    dream.add_argument("--size", metavar="WxH", help="dream size, WIDTH x HEIGHT in pixels, e.g. 640x360 (the ceiling when "
                       "adaptive quality is on); the source is cropped to its aspect, never stretched, and shown sharp at its own size")
    dream.add_argument("--strength", metavar="X", help="step size of one ascent step, 0..0.5")
    dream.add_argument("--steps", metavar="N", help="ascent steps per frame, 0..50")
    dream.add_argument("--octaves", metavar="N", help="octaves per frame, 1..8")
    dream.add_argument("--half-life", metavar="S", help="seconds the carried dream takes to fade to half, 0..60 (0 = none)")
    dream.add_argument("--objective", metavar="TERMS", help="what to amplify, e.g. mixed4=1,mixed5:139=0.5 (layers mixed0..mixed10, layer:channel picks)")
    dream.add_argument("--guide", metavar="IMAGE", help="dream toward this image's features (key g: the camera's frame)")
    dream.add_argument("--where", metavar="WHO", help=f"who dreams: {', '.join(WHERE)} (visitors: the people a still camera sees; key w cycles it)")
    dream.add_argument("--visitor-objective", metavar="TERMS", help="what the visitors dream, as --objective (default: the room's)")
    dream.add_argument("--guide-mode", metavar="MODE", help=f"how the guide steers: {', '.join(GUIDE_MODES)}")
    dream.add_argument("--model", metavar="NAME|PATH", help="graph name in models/ or an .onnx file")
    dream.add_argument("--device", metavar="DEVICE", help=DEVICE_HELP)
    run = parser.add_argument_group("running")
    run.add_argument("--frames", metavar="N", help="stop after N frames")
    run.add_argument("--seconds", metavar="S", help="stop after S seconds")
    run.add_argument("--screenshot-after", metavar="N", help="save a screenshot after frame N and print its path")
    run.add_argument("--keys", action="store_true", help="print the key table and exit")
    parser.set_defaults(handler=run_live)


def run_live(args: argparse.Namespace) -> int:
    if args.keys:
        print(f"keys while running:\n{key_table()}")
        return 0
    from livedream.config import apply_overrides, load_config
    from livedream.control.hub import ControlHub
    from livedream.live.build import open_app
    from livedream.ops.logs import setup_logging
    from livedream.ops.memory import limit_malloc_arenas

    frames = _number("--frames", args.frames, int, low=1)
    seconds = _number("--seconds", args.seconds, float, low=0.001)
    screenshot_after = _number("--screenshot-after", args.screenshot_after, int, low=1)
    config = apply_overrides(load_config(config_path_or_default(None if args.config is None else Path(args.config))), **_overrides(args))
    log_file = setup_logging(config.log, args.verbose)
    limit_malloc_arenas()  # before the camera, output and control threads start
    with contextlib.closing(ControlHub(config)) as hub, open_app(
        config,
        controls=[hub],
        recall_preset=hub.select_preset,
        models=hub.preset_models(),
    ) as app:
        if screenshot_after is not None:
            app.request_screenshot(at_frame=screenshot_after)
        stats = app.run(max_frames=frames, max_seconds=seconds)
    print(stats.summary())
    print(f"  log {log_file}")
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Config overrides for the flags given (None = not given, left to the config)."""
    width, height = _size(args.size) if args.size is not None else (None, None)
    return {
        "source__kind": _source_kind(args),
        "source__camera": _camera(args.camera),
        "source__path": args.video or args.image,
        "display__fullscreen": args.fullscreen,
        "display__display": _number("--display", args.display, int),
        "display__hud": args.hud,
        "display__window": args.window,
        "ndi__enabled": True if args.ndi is not None else None,
        "ndi__name": args.ndi,
        "source__ndi_source": args.ndi_source,
        "dream__dream_width": width,
        "dream__dream_height": height,
        "dream__strength": _number("--strength", args.strength, float),
        "dream__steps": _number("--steps", args.steps, int),
        "dream__octaves": _number("--octaves", args.octaves, int),
        "dream__half_life": _number("--half-life", args.half_life, float),
        "dream__objective": args.objective,
        "dream__guide": _guide(args.guide),
        "dream__where": args.where,
        "dream__visitor_objective": args.visitor_objective,
        "dream__guide_mode": args.guide_mode,
        "dream__model": args.model,
        "model__device": args.device,
    }


def _guide(text: str | None) -> str | None:
    """The guide's path, checked now: a missing guide is a one-line error before the show opens."""
    if text is None:
        return None
    from livedream.media.pictures import read_image

    read_image(Path(text))
    return str(Path(text).resolve())


def _source_kind(args: argparse.Namespace) -> str | None:
    if args.video and args.image:
        raise UserError("--video and --image both given; choose one source")
    implied = ("video" if args.video else "image" if args.image else "ndi" if args.ndi_source
               else "camera" if args.camera else None)
    if args.source is None:
        return implied
    if implied in ("video", "image", "ndi") and args.source != implied:
        flag = "ndi-source" if implied == "ndi" else implied
        raise UserError(f"--{flag} needs --source {implied} (or no --source), not --source {args.source}")
    return args.source


def _camera(text: str | None) -> int | str | None:
    if text is None:
        return None
    return int(text) if text.strip().lstrip("-").isdigit() else text  # "-1" is a bad index, not a path


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if match is None:
        raise UserError(f"--size {text!r} is not allowed; use WIDTHxHEIGHT, e.g. 640x360")
    return int(match.group(1)), int(match.group(2))


def _number(flag: str, text: str | None, kind: Callable[[str], Number], low: float | None = None) -> Number | None:
    if text is None:
        return None
    described = "a whole number" if kind is int else "a number"
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value != value or (low is not None and value < low):
        bound = f" >= {low:g}" if low is not None else ""
        raise UserError(f"{flag} {text!r} is not allowed; use {described}{bound}")
    return value
