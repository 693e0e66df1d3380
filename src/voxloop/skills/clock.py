"""The time, the date and the day of the week, in the person's time zone."""

from __future__ import annotations

import re
from datetime import datetime

from voxloop.skills import SkillContext, skill

_POLITE = (
    r"(?:(?:hey |ok |okay )?computer )?(?:please )?"
    r"(?:(?:can|could|would) you (?:please )?tell me |tell me |do you know |i wonder )?"
)
_END = r"(?: please| now| right now| at the moment| currently| today| here)*"
_TIME = re.compile(
    rf"^{_POLITE}(?:what time is it|what is the time|what time it is|the time|"
    rf"what is the current time|the current time|what time do you have|"
    rf"have you got the time|do you have the time|what time is it where i am){_END}$"
)
_DATE = re.compile(
    rf"^{_POLITE}(?:what is the date|what is today's date|what is todays date|the date|"
    rf"what date is it|what date it is|today's date|todays date|what is the date today|"
    rf"what is the day today|what day is (?:it|today)|what day it is|which day is (?:it|today)|"
    rf"what day of the week is (?:it|today)|what day of the week it is|the day of the week|"
    rf"what is the day of the week|what is today){_END}$"
)
_MONTH = re.compile(
    rf"^{_POLITE}(?:what month is it|what month it is|what is the month|which month is it)"
    rf"{_END}$"
)
_YEAR = re.compile(
    rf"^{_POLITE}(?:what year is it|what year it is|what is the year|which year is it){_END}$"
)


def say_time(moment: datetime) -> str:
    """'10:05 in the morning' style: the clock as people say it."""
    hour = moment.hour % 12 or 12
    part = "in the morning" if moment.hour < 12 else "in the afternoon"
    if moment.hour >= 18:
        part = "in the evening"
    if moment.hour == 12 and moment.minute == 0:
        return "noon"
    if moment.hour == 0 and moment.minute == 0:
        return "midnight"
    minutes = f"{moment.minute:02d}" if moment.minute else "o'clock"
    return f"{hour}:{minutes} {part}" if moment.minute else f"{hour} {minutes} {part}"


def say_date(moment: datetime) -> str:
    """'Monday, November 30, 2026'."""
    return f"{moment:%A}, {moment:%B} {moment.day}, {moment.year}"


@skill("clock")
def clock(words: str, context: SkillContext) -> str | None:
    """The time, date, weekday, month or year, when that is all the person asked."""
    now = context.now
    if _TIME.match(words):
        return f"It is {say_time(now)}."
    if _DATE.match(words):
        return f"Today is {say_date(now)}."
    if _MONTH.match(words):
        return f"It is {now:%B} {now.year}."
    if _YEAR.match(words):
        return f"It is {now.year}."
    return None
