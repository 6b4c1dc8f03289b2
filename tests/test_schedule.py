"""Daily schedule: on/off boundaries (day and overnight spans), next change, validation naming the key."""

from __future__ import annotations

import datetime

import pytest

from livedream.config import ScheduleConfig, parse_config
from livedream.errors import UserError
from livedream.ops.schedule import DailySchedule


def at(hh_mm: str, day: int = 10) -> datetime.datetime:
    hours, minutes = (int(part) for part in hh_mm.split(":"))
    return datetime.datetime(2026, 3, day, hours, minutes)


def schedule(on: str, off: str, enabled: bool = True) -> DailySchedule:
    return DailySchedule.from_config(ScheduleConfig(enabled=enabled, on=on, off=off))


@pytest.mark.parametrize(
    ("moment", "expected"),
    [("00:00", False), ("08:59", False), ("09:00", True), ("12:00", True), ("20:59", True), ("21:00", False), ("23:59", False)],
)
def test_day_span_is_on_from_on_inclusive_to_off_exclusive(moment: str, expected: bool) -> None:
    assert schedule("09:00", "21:00").is_on(at(moment)) is expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [("12:00", False), ("17:59", False), ("18:00", True), ("23:59", True), ("00:00", True), ("01:59", True), ("02:00", False)],
)
def test_overnight_span_stays_on_through_midnight(moment: str, expected: bool) -> None:
    assert schedule("18:00", "02:00").is_on(at(moment)) is expected


def test_disabled_schedule_is_always_on_whatever_the_hours() -> None:
    hours = schedule("09:00", "21:00", enabled=False)
    assert all(hours.is_on(at(f"{hour:02d}:30")) for hour in range(24))
    assert hours.next_change(at("03:00")) is None


def test_default_config_has_the_schedule_disabled() -> None:
    assert DailySchedule.from_config(ScheduleConfig()).always_on


def test_next_change_is_today_or_tomorrow() -> None:
    hours = schedule("09:00", "21:00")
    assert hours.next_change(at("10:00")) == at("21:00")
    assert hours.next_change(at("22:00")) == at("09:00", day=11)
    assert hours.next_change(at("21:00")) == at("09:00", day=11)  # off at 21:00 sharp
    assert schedule("18:00", "02:00").next_change(at("23:00")) == at("02:00", day=11)


@pytest.mark.parametrize(
    ("table", "key_named"),
    [
        ({"on": "25:00"}, '[schedule] on = "25:00"'),
        ({"off": "21:60"}, '[schedule] off = "21:60"'),
        ({"on": "nine"}, '[schedule] on = "nine"'),
        ({"off": "21"}, '[schedule] off = "21"'),
        ({"on": 9}, "[schedule] on = 9 is not allowed; use a string"),
        ({"enabled": "yes"}, '[schedule] enabled = "yes" is not allowed; use true or false'),
        ({"on": "10:00", "off": "10:00"}, '[schedule] on = "10:00" and off = "10:00" are the same time'),
    ],
)
def test_bad_schedule_is_a_one_line_error_naming_the_key(table: dict, key_named: str) -> None:
    with pytest.raises(UserError) as error:
        parse_config({"schedule": table})
    message = str(error.value)
    assert key_named in message and "\n" not in message


def test_single_digit_hour_is_accepted() -> None:
    config = parse_config({"schedule": {"enabled": True, "on": "7:30", "off": "19:00"}})
    hours = DailySchedule.from_config(config.schedule)
    assert not hours.is_on(at("07:29")) and hours.is_on(at("07:30"))
