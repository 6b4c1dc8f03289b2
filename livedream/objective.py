"""What the dream amplifies, as data: weighted layers and single channels of InceptionV3.

An objective is a tuple of terms `(name, weight)`, sorted, where a name is a layer
(`"mixed4"`: the layer's mean activation) or one channel of it (`"mixed4:97"`: that
channel's mean activation, on the same scale as a whole layer). The loss is

    Σ_layers w_l · mean(act_l) + Σ_channels w_{l,c} · mean(act_{l,c})

Being plain numbers, an objective lives in `Params`, blends in a preset crossfade and
travels over OSC and MIDI like any other value; exported graphs take it as fixed-shape
inputs (`runtime.objective`), so changing it never touches a session.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from livedream.errors import UserError

Objective = tuple[tuple[str, float], ...]

# The layers an objective may name (Keras's names for InceptionV3's mixed blocks) with their
# channel counts; lower layers dream strokes and swirls, mixed4–5 eyes, mixed7+ whole objects.
LAYER_CHANNELS: dict[str, int] = {
    "mixed0": 256,
    "mixed1": 288,
    "mixed2": 288,
    "mixed3": 768,
    "mixed4": 768,
    "mixed5": 768,
    "mixed6": 768,
    "mixed7": 768,
    "mixed8": 1280,
    "mixed9": 2048,
    "mixed10": 2048,
}
LAYERS = tuple(LAYER_CHANNELS)
# The same blocks under torchvision's names, as graphs exported with them list their layers.
TORCHVISION_NAMES: dict[str, str] = dict(zip(LAYERS, (
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
    "Mixed_7a", "Mixed_7b", "Mixed_7c",
)))


def public_layer(name: str) -> str:
    """A graph's layer name in the objective's vocabulary (`Mixed_6b` → `mixed4`)."""
    return next((layer for layer, stage in TORCHVISION_NAMES.items() if stage == name), name)
DEFAULT_OBJECTIVE: Objective = (("mixed3", 1.0), ("mixed5", 1.0))  # the TF tutorial's
WEIGHT_LOW, WEIGHT_HIGH = -4.0, 4.0  # negative weights suppress a motif
EXAMPLE = "e.g. mixed4=1,mixed5:139=0.5"


def split_term(name: str) -> tuple[str, int | None]:
    """`"mixed4"` → ("mixed4", None); `"mixed4:97"` → ("mixed4", 97); or a UserError naming it."""
    layer, colon, channel = name.partition(":")
    layer = layer.strip()
    if layer not in LAYER_CHANNELS:
        raise UserError(f"objective: unknown layer {layer!r}; use one of {', '.join(LAYERS)}")
    if not colon:
        return layer, None
    count = LAYER_CHANNELS[layer]
    if not channel.strip().isdigit() or int(channel) >= count:
        raise UserError(f"objective: channel {channel.strip()!r} of {layer} is out of range; use 0..{count - 1}")
    return layer, int(channel)


def term_name(layer: str, channel: int | None) -> str:
    return layer if channel is None else f"{layer}:{channel}"


def normalised(terms: Iterable[tuple[str, Any]]) -> Objective:
    """Checked, canonical and sorted (by layer depth, then channel); zero weights dropped."""
    merged: dict[tuple[str, int | None], float] = {}
    for name, weight in terms:
        key = split_term(str(name))
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight != weight:
            raise UserError(f"objective: {term_name(*key)} = {weight!r} is not a number; {EXAMPLE}")
        if not WEIGHT_LOW <= weight <= WEIGHT_HIGH:
            raise UserError(f"objective: {term_name(*key)} = {weight} is outside {WEIGHT_LOW:g}..{WEIGHT_HIGH:g}")
        merged[key] = merged.get(key, 0.0) + float(weight)
    ordered = sorted(merged.items(), key=lambda item: (LAYERS.index(item[0][0]), -1 if item[0][1] is None else item[0][1]))
    return tuple((term_name(*key), weight) for key, weight in ordered if weight != 0.0)


def parse_visitor_objective(value: Any) -> Objective:
    """As `parse_objective`, where nothing (`""`, `{}`) means the room's objective."""
    if value in ("", {}, (), []):
        return ()
    return parse_objective(value)


# How a guide image steers the objective: each position turned toward the guide's best-matching
# feature (Google's DeepDream notebook's match), or the whole picture's mean features toward the guide's.
GUIDE_MODES = ("match", "mean")
# The layer the matched guide acts at, whatever layers the objective names: mixed5 moved the
# dream toward the guide furthest by both of the independent net's figures and to the eye,
# ahead of mixed4 (the notebook's inception_4c) and both together (README, Guide images).
GUIDE_LAYER = "mixed5"


def parse_guide_mode(value: Any) -> str:
    if value not in GUIDE_MODES:
        raise UserError(f"{value!r} is not one of {', '.join(GUIDE_MODES)}")
    return value


def parse_objective(value: Any) -> Objective:
    """From config (a table `{mixed3 = 1.0, "mixed4:97" = 0.5}`), the command line
    (`"mixed4=1,mixed5:139=0.5"`) or an objective already (`dataclasses.asdict` form)."""
    if isinstance(value, Mapping):
        terms = list(value.items())
    elif isinstance(value, str):
        terms = [_parse_pair(part) for part in value.split(",") if part.strip()]
    elif isinstance(value, (tuple, list)) and all(isinstance(t, (tuple, list)) and len(t) == 2 for t in value):
        terms = [tuple(t) for t in value]
    else:
        raise UserError(f"objective: {value!r} is not an objective; {EXAMPLE}")
    objective = normalised(terms)
    if not objective:
        raise UserError(f"objective: no layer has a non-zero weight; {EXAMPLE}")
    return objective


def _parse_pair(text: str) -> tuple[str, float]:
    name, equals, weight = text.partition("=")
    if not equals:
        return name.strip(), 1.0  # "mixed4" alone means weight 1
    try:
        return name.strip(), float(weight)
    except ValueError:
        raise UserError(f"objective: {text.strip()!r} needs a number after '='; {EXAMPLE}") from None


def with_term(objective: Objective, name: str, weight: float) -> Objective:
    """`objective` with term `name` set to `weight` (0 removes it); weight clamped to range."""
    layer, channel = split_term(name)
    key = term_name(layer, channel)
    weight = min(WEIGHT_HIGH, max(WEIGHT_LOW, float(weight)))
    return normalised([*((n, w) for n, w in objective if n != key), (key, weight)])


def weight_of(objective: Objective, name: str) -> float:
    return dict(objective).get(name, 0.0)


def blend_objectives(start: Objective, end: Objective, t: float) -> Objective:
    """Each term's weight mixed linearly (a term missing on one side has weight 0 there):
    the loss is linear in the weights, so the look morphs without a jump."""
    a, b = dict(start), dict(end)
    return normalised((name, a.get(name, 0.0) * (1.0 - t) + b.get(name, 0.0) * t) for name in {**a, **b})


def covered_by(objective: Objective, layers: tuple[str, ...]) -> bool:
    """Whether a graph of `layers` dreams `objective`: every term's layer is one of them. The
    one rule for giving way to the deep graph (live models, stills, the HUD's "(deep graph)")."""
    return all(split_term(name)[0] in layers for name, _ in objective)


def describe(objective: Objective) -> str:
    return ", ".join(f"{name}={weight:g}" for name, weight in objective) or "nothing"
