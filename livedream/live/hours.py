"""Opening hours as the live loop sees them: dark or not now, logged once per change."""

from __future__ import annotations

import datetime
import logging
from typing import Callable

from livedream.ops.schedule import DailySchedule

log = logging.getLogger(__name__)


class OpeningHours:
    """Asks the schedule once per frame; `on_open` runs when the hours begin (the carried
    dream is hours old by then)."""

    def __init__(
        self,
        schedule: DailySchedule | None,
        on_open: Callable[[], None],
        wall_clock: Callable[[], datetime.datetime] = datetime.datetime.now,
    ) -> None:
        self.schedule = schedule
        self._on_open = on_open
        self._wall_clock = wall_clock
        self.in_hours: bool | None = None  # None until the schedule is first asked
        self.dark_until: str | None = None

    def dark(self) -> bool:
        """True while the schedule says dark; each change is logged once, with the next one."""
        if self.schedule is None or self.schedule.always_on:
            return False
        wall_time = self._wall_clock()
        in_hours = self.schedule.is_on(wall_time)
        if in_hours != self.in_hours:
            upcoming = self.schedule.next_change(wall_time)
            until = f"{upcoming:%H:%M}" if upcoming is not None else "?"
            if in_hours:
                log.info("opening hours (%s): dreaming until %s", self.schedule.describe(), until)
                self._on_open()
            else:
                log.info("outside opening hours (%s): dark until %s", self.schedule.describe(), until)
            self.in_hours = in_hours
            self.dark_until = None if in_hours else until
        return not in_hours
