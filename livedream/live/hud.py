"""The HUD's text for one frame, from what the loop measured and what the controls report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from livedream.live.stats import SHOW_STAGES, StageTimes
from livedream.objective import covered_by, describe
from livedream.params import Params
from livedream.pipeline.frames import ENDED, is_lost

RECENT_FRAMES = 30  # the HUD's stage times are medians of this many frames


@dataclass(frozen=True)
class LoopState:
    """The loop's own state the HUD reports."""

    paused: bool
    dark_until: str | None  # set outside opening hours
    frames_skipped: int
    restarts: int



@dataclass(frozen=True)
class HudStats:
    """What the HUD shows; the app fills it once per frame."""

    fps: float = 0.0
    dream_ms: float = 0.0
    provider: str = ""
    objective: str = ""  # what the dream amplifies, and the guide
    strength: float = 0.0
    steps: int = 0
    source_state: str = ""
    extra: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        return [
            f"{self.fps:5.1f} fps shown   dream {self.dream_ms:6.1f} ms",
            f"{self.provider or '?'}   {self.objective or 'objective ?'}",
            f"strength {self.strength:.3f}   steps {self.steps}",
            f"source {self.source_state or '?'}",
            *self.extra,
        ]

def compose_hud(fps: float, dreams_per_s: float, times: StageTimes, effective: Params, quality: str | None,
                loop: LoopState, control_lines: list[str], provider: str, graph_layers: tuple[str, ...],
                source_state: str, placement: str = "", visitors: str = "") -> HudStats:
    """`fps`: frames shown per second; `dreams_per_s`: the worker's finished dreams per second;
    `placement`: why the dream runs on `provider` (`LoadedModel.placement`); `visitors`: what
    the visitor mask saw in the last dream (`Visitors.summary`)."""
    recent = times.medians(last=RECENT_FRAMES)
    extra = [
        "shown: " + "  ".join(f"{name} {recent[name]:.0f}" for name in SHOW_STAGES) + " ms",
        f"dream {effective.dream_width}x{effective.dream_height}   {dreams_per_s:.1f} dreams/s"
        f"   {recent['dream']:.0f} ms each   {recent['age'] / 1000:.2f} s old on screen",
        f"octaves {effective.octaves}   half-life {effective.half_life:.2f} s",
        where_line(effective, visitors),
    ]
    if placement:
        extra.append(f"on {provider}: {placement}")
    if quality is not None:
        extra.append(quality)
    if loop.paused:
        extra.append("PAUSED (space)")
    if loop.dark_until is not None:
        extra.append(f"dark until {loop.dark_until} (schedule)")
    if loop.frames_skipped:
        extra.append(f"engine: {loop.frames_skipped} frame(s) skipped, {loop.restarts} restart(s)")
    extra.extend(control_lines)
    return HudStats(
        fps=fps,
        dream_ms=recent["dream"],
        provider=provider,
        objective=objective_line(effective, graph_layers),
        strength=effective.strength,
        steps=effective.steps,
        source_state=source_state,
        extra=tuple(extra),
    )


def objective_line(effective: Params, graph_layers: tuple[str, ...]) -> str:
    """`objective mixed4=1 (deep graph)   guide visitor.png`: what the dream amplifies now."""
    deep = " (deep graph)" if graph_layers and not covered_by(effective.objective, graph_layers) else ""
    guide = f"   guide {Path(effective.guide).name}" if effective.guide else ""
    return f"objective {describe(effective.objective)}{deep}{guide}"


def where_line(effective: Params, visitors: str) -> str:
    """`where visitors (visitors: mixed5=1)   visitors: watching, 8 % of the picture` (key w)."""
    theirs = f" (visitors: {describe(effective.visitor_objective)})" if effective.visitor_objective else ""
    return f"where {effective.where.name}{theirs}   visitors: {visitors or '?'}"


def banner_text(source_noun: str, source_state: str, engine_state: str, late: str | None,
                anything_shown: bool) -> str | None:
    """The message over the picture: the source's fault, the engine's, or a late frame."""
    if is_lost(source_state):
        return f"{source_noun} {source_state}"
    if source_state == ENDED:
        return "the video ended"
    return engine_state or late or (None if anything_shown else f"source {source_state}…")
