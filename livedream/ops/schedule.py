"""Daily opening hours: should the installation be dreaming at this moment?

`[schedule]` gives an `on` and an `off` time of day ("HH:MM", 24-hour, local time). When
`off` is earlier than `on` the span runs overnight (on = "18:00", off = "02:00" dreams
through midnight). `is_on` is a pure function of the wall-clock time, so the loop can ask
it every frame and tests need no clock. What "off" looks like (a black screen, the dream
paused) is the app's choice.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from livedream.config import ScheduleConfig, parse_clock


@dataclass(frozen=True)
class DailySchedule:
    """On from `on` until `off` every day; `always_on` when the schedule is disabled."""

    on: datetime.time
    off: datetime.time
    always_on: bool = False

    @classmethod
    def from_config(cls, cfg: ScheduleConfig) -> "DailySchedule":
        return cls(parse_clock("on", cfg.on), parse_clock("off", cfg.off), always_on=not cfg.enabled)

    def is_on(self, now: datetime.datetime) -> bool:
        """True when `now` (local wall-clock time) falls inside the opening hours. `on` is
        inclusive, `off` exclusive: at 21:00 sharp with off = "21:00" the screen is off."""
        if self.always_on:
            return True
        moment = now.time()
        if self.on < self.off:
            return self.on <= moment < self.off
        return moment >= self.on or moment < self.off  # overnight span

    def next_change(self, now: datetime.datetime) -> datetime.datetime | None:
        """When `is_on` next flips (for "dark until 09:00" in the log); None if it never does."""
        if self.always_on:
            return None
        boundary = self.off if self.is_on(now) else self.on
        candidate = datetime.datetime.combine(now.date(), boundary, tzinfo=now.tzinfo)
        if candidate <= now:
            candidate += datetime.timedelta(days=1)
        return candidate

    def describe(self) -> str:
        if self.always_on:
            return "off (runs all day)"
        overnight = " (overnight)" if self.off < self.on else ""
        return f"on {self.on:%H:%M} – off {self.off:%H:%M}{overnight}"
