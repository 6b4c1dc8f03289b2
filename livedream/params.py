"""The live dream's tunable parameters: one frozen value that control sources replace.

Keys, OSC, MIDI, presets and the sequencer never reach into a stage; they produce a new
`Params` (with `dataclasses.replace` or `Params.clamped`) and the live loop picks up the
latest one once per frame. A preset is a named `Params`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from livedream.errors import UserError
from livedream.manifest import GRADIENT_NORMS, LAPLACIAN_NORM
from livedream.objective import (
    DEFAULT_OBJECTIVE,
    GUIDE_MODES,
    LAYERS,
    WEIGHT_HIGH,
    WEIGHT_LOW,
    Objective,
    parse_guide_mode,
    parse_objective,
    parse_visitor_objective,
    split_term,
    term_name,
    weight_of,
    with_term,
)

OBJECTIVE_PREFIX = "objective/"  # live names of objective terms: "objective/mixed4", "objective/mixed4:97"
VISITOR_PREFIX = "visitor_objective/"  # and of the visitors' objective: "visitor_objective/mixed5"
# Each objective field of Params by the prefix of its terms' live names.
OBJECTIVE_FIELDS = {OBJECTIVE_PREFIX: "objective", VISITOR_PREFIX: "visitor_objective"}

# Which region the dream takes, as gains (room, visitors): a preset crossfade blends them.
WHERE: dict[str, tuple[float, float]] = {"all": (1.0, 1.0), "visitors": (0.0, 1.0), "room": (1.0, 0.0)}


@dataclass(frozen=True)
class Where:
    """How much of the dream the room and the visitors take (0..1 each): `WHERE`'s named pairs,
    or a blend between two of them on the way."""

    room: float = 1.0
    visitors: float = 1.0

    @property
    def gains(self) -> tuple[float, float]:
        return (self.room, self.visitors)

    @property
    def name(self) -> str:
        named = {gains: name for name, gains in WHERE.items()}
        return named.get(self.gains, f"room {self.room:.2f} visitors {self.visitors:.2f}")

    def next(self) -> "Where":
        """The named value after this one (a key cycles them)."""
        names = list(WHERE)
        following = names[(names.index(self.name) + 1) % len(names)] if self.name in WHERE else names[0]
        return parse_where(following)


def parse_gradient_norm(value: object) -> str:
    """`"std"` or `"laplacian"` (`manifest.GRADIENT_NORMS`): how each ascent step normalises its gradient."""
    if value not in GRADIENT_NORMS:
        raise UserError(f"{value!r} is not one of {', '.join(GRADIENT_NORMS)}")
    return str(value)


def parse_where(value: object) -> Where:
    """`"all"`, `"visitors"` or `"room"` (config, command line, OSC), or a `Where` already."""
    if isinstance(value, Where):
        return value
    if isinstance(value, dict) and set(value) == {"room", "visitors"}:  # `dataclasses.asdict` form
        return Where(float(value["room"]), float(value["visitors"]))
    if not isinstance(value, str) or value not in WHERE:
        raise UserError(f"{value!r} is not one of {', '.join(WHERE)}")
    return Where(*WHERE[value])


@dataclass(frozen=True)
class Range:
    """Allowed closed interval of a numeric parameter, used by validation and clamping."""

    low: float
    high: float

    def clamp(self, value: float) -> float:
        return min(self.high, max(self.low, value))

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Params:
    """Everything the dreamer reads per frame. Sizes are (height, width) in pixels."""

    model: str = "default"  # graph name in models/ ("default" covers mixed0–5, "deep" mixed0–10)
    # What the dream amplifies: layers and single channels with weights (`livedream.objective`).
    objective: Objective = field(default=DEFAULT_OBJECTIVE, metadata={"parse": parse_objective})
    guide: str = ""  # an image whose features the dream moves toward ("" = none)
    guide_mode: str = field(default="match", metadata={"parse": parse_guide_mode})  # `objective.GUIDE_MODES`
    # Visitors (the people the person and background models find) and the room dream apart: what each takes.
    where: Where = field(default=Where(), metadata={"parse": parse_where})
    visitor_objective: Objective = field(default=(), metadata={"parse": parse_visitor_objective})  # (): the room's
    strength: float = 0.06  # step size of one normalised ascent step
    # How a step normalises the gradient (`manifest.GRADIENT_NORMS`): std, or the Laplacian bands first.
    gradient_norm: str = field(default=LAPLACIAN_NORM, metadata={"parse": parse_gradient_norm})
    steps: int = 2  # ascent steps per octave per frame (live: a coarse octave's dream takes more, `octave_steps`)
    octaves: int = 2  # octaves of the pyramid, coarsest first (live: all in each whole-frame dream, `live.schedule`)
    octave_scale: float = 1.7
    dream_height: int = 360
    dream_width: int = 640
    # The feedback is per second, so a show looks the same at 8 fps and at 60 fps (`per_frame`).
    half_life: float = 5.0  # seconds for the carried dream to fade to half (a dream counts at most MAX_FRAME_S); 0 = restart each frame
    depth: float = 40.0  # live: grey levels of local RMS the carried dream is held under (`pipeline.depth`; a still's ~20); 0 = none
    zoom_per_s: float = 0.0  # feedback zoom per second (0.1 = 10 % in each second)
    rotate_per_s: float = 0.0  # feedback rotation, degrees per second
    shift_x_per_s: float = 0.0  # feedback translation, dream pixels per second
    shift_y_per_s: float = 0.0

    def clamped(self, **changes: float | int | str) -> tuple["Params", list[str]]:
        """Return a copy with `changes` applied, each clamped to its range, plus warnings.

        Live input (OSC, MIDI, keys) goes through here: an out-of-range value is clamped
        and reported, never raised, so a stray message cannot stop a show.
        """
        warnings: list[str] = []
        fields = {f.name: f for f in dataclasses.fields(self)}
        applied: dict[str, object] = {}
        for name, value in changes.items():
            prefix = _objective_prefix(name)
            if prefix is not None:
                target = OBJECTIVE_FIELDS[prefix]
                objective, warning = _objective_term(applied.get(target, getattr(self, target)), name, value,
                                                     prefix)
                applied[target] = objective
                warnings.extend(warning)
                continue
            if name in RENAMED:
                warnings.append(f"{name!r} was per frame; {RENAMED[name].hint()}")
                continue
            if name not in fields:
                warnings.append(f"unknown parameter {name!r}; known: {', '.join(fields)}")
                continue
            parser = fields[name].metadata.get("parse")
            if parser is not None:  # a structured value (where, an objective) parses itself
                try:
                    applied[name] = parser(value)
                except UserError as error:
                    warnings.append(f"{error}; ignored")
                continue
            kind = type(getattr(self, name))
            try:
                coerced = kind(value)
            except (TypeError, ValueError):
                warnings.append(f"{name}: {value!r} is not a {kind.__name__}; ignored")
                continue
            if isinstance(coerced, float) and coerced != coerced:  # NaN
                warnings.append(f"{name}: NaN ignored")
                continue
            allowed = PARAM_RANGES.get(name)
            if allowed is not None and coerced not in allowed:
                clamped_value = kind(allowed.clamp(coerced))
                warnings.append(
                    f"{name}: {value!r} is outside {allowed.low}..{allowed.high}; "
                    f"clamped to {clamped_value}"
                )
                coerced = clamped_value
            applied[name] = coerced
        return dataclasses.replace(self, **applied), warnings

    def changes_from(self, before: "Params") -> dict[str, object]:
        """The fields whose value here differs from `before`'s, with this side's values."""
        return {
            spec.name: getattr(self, spec.name)
            for spec in dataclasses.fields(self)
            if getattr(self, spec.name) != getattr(before, spec.name)
        }

    def differences(self, new: "Params") -> list[str]:
        """`name old → new` for each field that `new` changes, for the log."""
        return [f"{name} {getattr(self, name)} → {value}" for name, value in new.changes_from(self).items()]


def _objective_prefix(name: str) -> str | None:
    return next((prefix for prefix in OBJECTIVE_FIELDS if name.startswith(prefix)), None)


def _objective_term(objective: Objective, name: str, value: object, prefix: str) -> tuple[Objective, list[str]]:
    """`objective` with the term of `<prefix><term>` set to `value`, clamped; or a warning.
    The room's objective is never left empty; the visitors' may be (then it is the room's)."""
    term = name[len(prefix):]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return objective, [f"{name}: {value!r} is not a number; ignored"]
    try:
        changed = with_term(objective, term, float(value))
    except UserError as error:
        return objective, [f"{name}: {str(error).removeprefix('objective: ')}; ignored"]
    if not changed and prefix == OBJECTIVE_PREFIX:
        return objective, [f"{name}: {value!r} would leave no objective; ignored"]
    if not WEIGHT_LOW <= value <= WEIGHT_HIGH:
        return changed, [f"{name}: {value!r} is outside {WEIGHT_LOW:g}..{WEIGHT_HIGH:g}; clamped"]
    return changed, []


PARAM_RANGES: dict[str, Range] = {
    "strength": Range(0.0, 0.5),
    "steps": Range(0, 50),
    "octaves": Range(1, 8),
    "octave_scale": Range(1.05, 2.0),
    "dream_height": Range(75, 4320),
    "dream_width": Range(75, 7680),
    "half_life": Range(0.0, 60.0),
    "depth": Range(0.0, 255.0),
    "zoom_per_s": Range(-0.5, 1.0),
    "rotate_per_s": Range(-180.0, 180.0),
    "shift_x_per_s": Range(-500.0, 500.0),
    "shift_y_per_s": Range(-500.0, 500.0),
}

# Live names for the objective: one per layer (sliders, MIDI CCs, OSC feedback); a channel's
# `objective/mixed4:97` is accepted too.
OBJECTIVE_PARAMS = tuple(OBJECTIVE_PREFIX + layer for layer in LAYERS)
VISITOR_PARAMS = tuple(VISITOR_PREFIX + layer for layer in LAYERS)
NUMERIC_PARAMS = tuple(PARAM_RANGES)  # the Params fields OSC, MIDI, audio and the web panel may set
LIVE_PARAMS = NUMERIC_PARAMS + OBJECTIVE_PARAMS + VISITOR_PARAMS  # and both objectives' layers (MIDI CCs, learn)
# The Params fields a control sets by name (OSC strings, the web panel, a key), with their names.
CHOICE_PARAMS: dict[str, tuple[str, ...]] = {"where": tuple(WHERE), "guide_mode": GUIDE_MODES,
                                             "gradient_norm": GRADIENT_NORMS}
OBJECTIVE_RANGE = Range(WEIGHT_LOW, WEIGHT_HIGH)
OBJECTIVE_FADER = Range(0.0, WEIGHT_HIGH)  # what a fader (MIDI CC, web slider) spans: off at the bottom


def objective_term(name: str) -> str | None:
    """The canonical live name of an objective term (`objective/<layer>[:<channel>]`, or the
    visitors' `visitor_objective/…`), or None if `name` is none."""
    prefix = _objective_prefix(name)
    if prefix is None:
        return None
    try:
        return prefix + term_name(*split_term(name[len(prefix):]))
    except UserError:
        return None


def is_objective_name(name: str) -> bool:
    """Whether `name` is meant as an objective term's live name (valid or not)."""
    return _objective_prefix(name) is not None


def objective_problem(name: str) -> str:
    """Why `objective/<term>` names no term (the layer or channel, and what is allowed)."""
    prefix = _objective_prefix(name) or OBJECTIVE_PREFIX
    try:
        split_term(name[len(prefix):])
    except UserError as error:
        return str(error).removeprefix("objective: ")
    return "a valid term"


def live_range(name: str) -> Range | None:
    """The range of a live numeric name (a Params field or an objective term), None if unknown."""
    return PARAM_RANGES.get(name) or (OBJECTIVE_RANGE if objective_term(name) else None)


def fader_range(name: str) -> Range | None:
    """The span a fader covers for a live name: its range, or 0..max for an objective term."""
    return OBJECTIVE_FADER if objective_term(name) else PARAM_RANGES.get(name)


def live_value(params: Params, name: str) -> float | int:
    prefix = _objective_prefix(name)
    if prefix is None:
        return getattr(params, name)
    term = name[len(prefix):]
    return weight_of(params.visitor_objective if prefix == VISITOR_PREFIX else params.objective, term)


def objective_moves(before: Objective, after: Objective, prefix: str = OBJECTIVE_PREFIX) -> dict[str, float]:
    """The live names and weights that turn `before` into `after` (0 for a term `after` drops),
    additions first: applied in this order an objective is never left empty on the way."""
    old, new = dict(before), dict(after)
    changed = [name for name in {**old, **new} if old.get(name, 0.0) != new.get(name, 0.0)]
    changed.sort(key=lambda name: name not in new)
    return {prefix + name: new.get(name, 0.0) for name in changed}


def objective_values(params: Params) -> dict[str, float]:
    """Every layer's weight of both objectives by its live name (sliders and OSC feedback)."""
    return {name: live_value(params, name) for name in OBJECTIVE_PARAMS + VISITOR_PARAMS}


# The per-frame names of earlier releases, each with its per-second successor: a show file or
# OSC patch that still uses one gets this hint instead of a silent change of speed.
@dataclass(frozen=True)
class Renamed:
    """A per-frame name's per-second successor, what it means, and one worked conversion."""

    successor: str
    meaning: str
    example: str

    def hint(self, successor: str | None = None) -> str:
        """`use half_life, the seconds … (decay 0.9 at 20 fps ≈ half_life 0.33)`; `successor`
        names it as the place the hint is read in spells it (a command-line flag)."""
        return f"use {successor or self.successor}, {self.meaning} ({self.example})"


RENAMED: dict[str, Renamed] = {
    "decay": Renamed("half_life", "the seconds the carried dream takes to fade to half",
                     "decay 0.9 at 20 fps ≈ half_life 0.33"),
    "zoom": Renamed("zoom_per_s", "the zoom per second", "zoom 0.01 at 20 fps ≈ zoom_per_s 0.22"),
    "rotate": Renamed("rotate_per_s", "degrees per second", "rotate 0.2 at 20 fps = rotate_per_s 4"),
    "shift_x": Renamed("shift_x_per_s", "dream pixels per second", "shift_x 1 at 20 fps = shift_x_per_s 20"),
    "shift_y": Renamed("shift_y_per_s", "dream pixels per second", "shift_y 1 at 20 fps = shift_y_per_s 20"),
}

# Where nothing could be carried (the flow not trusted) a frame's fresh steps count this many
# times, so the region catches up; the host dreamer and the GPU frame graph both use it.
CATCH_UP = 3.0

# A hang must not turn into a jump: one frame never counts for more than this.
MAX_FRAME_S = 0.25
NOMINAL_FRAME_S = 1 / 20  # the frame time assumed before one is measured (the CPU's target rate)


@dataclass(frozen=True)
class Feedback:
    """One frame's zoom (fraction), rotation (degrees) and shift (pixels) of the carried detail."""

    zoom: float = 0.0
    rotate: float = 0.0
    shift_x: float = 0.0
    shift_y: float = 0.0

    @property
    def is_identity(self) -> bool:
        return self == Feedback()


@dataclass(frozen=True)
class FrameFeedback:
    """The per-second feedback of `Params` turned into one frame's worth (`per_frame`)."""

    decay: float  # share of the previous frame's detail carried into this one
    feedback: Feedback


def decay_per_frame(half_life: float, frame_s: float) -> float:
    """The share of the carried dream left after `frame_s` seconds (0 when half_life is 0)."""
    return 0.5 ** (frame_s / half_life) if half_life > 0 else 0.0


def counted_s(frame_s: float) -> float:
    """The seconds a frame of `frame_s` counts for in the feedback: at most MAX_FRAME_S."""
    return min(max(frame_s, 0.0), MAX_FRAME_S)


def per_frame(params: Params, frame_s: float) -> FrameFeedback:
    """One frame of `frame_s` seconds: decay 0.5 ** (frame_s / half_life), zoom compounded,
    rotation and shift linear, so N frames of 1/N s each add up to exactly one second."""
    frame_s = counted_s(frame_s)
    return FrameFeedback(decay_per_frame(params.half_life, frame_s), Feedback(
        zoom=(1.0 + params.zoom_per_s) ** frame_s - 1.0,
        rotate=params.rotate_per_s * frame_s,
        shift_x=params.shift_x_per_s * frame_s,
        shift_y=params.shift_y_per_s * frame_s,
    ))
