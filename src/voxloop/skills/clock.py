"""The time, the date and the day of the week, in the person's time zone."""

from __future__ import annotations

from datetime import datetime

from voxloop.skills import SkillContext, only_words, skill

# Each request: the words one of which it needs, and the other words it may be said with.
WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
TIME = ({"time"}, {"current", "the", "time", "clock", "tell", "have", "here", "local", "check"})
DATE = (
    {"date", "day", "today", "today's", "todays", "weekday"},
    {"of", "the", "week", "in", "on", "this", "today", "s", "or", "current", *WEEKDAYS},
)
MONTH = ({"month"}, {"of", "the", "in", "this", "current"})
YEAR = ({"year"}, {"of", "the", "in", "this", "current"})


def say_time(moment: datetime) -> str:
    """'10:05 in the morning' style: the clock as people say it."""
    if moment.hour == 12 and moment.minute == 0:
        return "noon"
    if moment.hour == 0 and moment.minute == 0:
        return "midnight"
    hour = moment.hour % 12 or 12
    part = "in the morning" if moment.hour < 12 else "in the afternoon"
    if moment.hour >= 18:
        part = "in the evening"
    return f"{hour}:{moment.minute:02d} {part}" if moment.minute else f"{hour} o'clock {part}"


def say_date(moment: datetime) -> str:
    """'Monday, November 30, 2026'."""
    return f"{moment:%A}, {moment:%B} {moment.day}, {moment.year}"


@skill("clock")
def clock(words: str, context: SkillContext) -> str | None:
    """The time, date, weekday, month or year, when that is all the person asked."""
    now = context.now
    if only_words(words, *TIME):
        return f"It is {say_time(now)}."
    if only_words(words, *DATE):
        return f"Today is {say_date(now)}."
    if only_words(words, *MONTH):
        return f"It is {now:%B} {now.year}."
    if only_words(words, *YEAR):
        return f"It is {now.year}."
    return None
