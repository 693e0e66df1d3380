"""Timers and reminders: set, list, ask how long is left, cancel; stored in the person's memory.

"Set a timer for five minutes", "set a 10 minute pasta timer", "remind me in 20 minutes to
check the oven", "how much time is left?", "what timers do I have?", "cancel the timer".
When one goes off, voxloop.alarms announces it through whatever door the person is at.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from voxloop.skills import FILLER, SkillContext, skill

if TYPE_CHECKING:
    from voxloop.memory import Timer

SECONDS = {"second": 1, "sec": 1, "minute": 60, "min": 60, "hour": 3600, "hr": 3600}
_UNIT = r"(?:hours?|hrs?|minutes?|mins?|seconds?|secs?)"
_AMOUNT = r"(?:\d+(?:\.\d+)?|an?|one)"
_PART = rf"{_AMOUNT} {_UNIT}"
DURATION = (
    rf"(?:half an hour|half a minute|(?:a )?quarter of an hour|three quarters of an hour|"
    rf"{_PART}(?:(?:,| and)? {_PART})*(?: and (?:a half|0\.5))?|{_AMOUNT} {_UNIT} and a half)"
)
_FIXED = {
    "half an hour": 1800.0,
    "half a minute": 30.0,
    "a quarter of an hour": 900.0,
    "quarter of an hour": 900.0,
    "three quarters of an hour": 2700.0,
}
TIMER_WORDS = {"timer", "timers", "countdown", "countdowns", "alarm", "alarms"}
REMINDER_WORDS = {"reminder", "reminders", "remind"}
CANCEL_WORDS = {
    "cancel", "stop", "delete", "remove", "clear", "kill", "end", "forget", "dismiss", "silence",
    "reset", "scrap", "drop", "abort", "nevermind",
}  # fmt: skip
CANCEL_PHRASES = re.compile(r"\b(?:turn|switch|shut) (?:\w+ )*off\b|\bnever mind\b")
LEFT_WORDS = {"left", "remaining", "remain", "longer", "until", "till", "before", "when"}
# A question about the time left may name no timer ("how long is left?"), so it may only be
# said with these words (and a timer's name before "timer"): "how many days are left until
# Christmas" is not about a timer.
LEFT_VOCABULARY = {
    "how", "much", "long", "longer", "many", "minutes", "seconds", "hours", "time", "left",
    "remaining", "remain", "until", "till", "before", "when", "will", "go", "goes", "going",
    "off", "ring", "rings", "end", "ends", "done", "finish", "finishes", "up", "on", "my", "the",
    "for", "of", "still", "more", "to", "be", "there", "am", "shall", "should", "wait",
}  # fmt: skip
LIST_WORDS = {"list", "show", "running", "active", "going", "set", "on", "have", "got", "any"}
# A question about the time left names time, or what runs: "what is there before" does not.
ABOUT_TIME = (
    {"time", "left", "remaining", "minutes", "seconds", "hours"} | TIMER_WORDS | REMINDER_WORDS
)
# A request about time, not timers, in these words ("how long is left") still asks the timers.
LEFT_PHRASES = re.compile(r"\b(?:how (?:much|long)|time left|time remaining|go(?:es)? off)\b")
NOT_A_TIMER_REQUEST = re.compile(r"\b(?:how (?:do|does|to|can|should)|what is an? )\b")
_REMINDER_TASK = [
    re.compile(rf"remind me (?:to|that|about) (?P<task>.+?)(?: (?:in|after) {DURATION})?$"),
    re.compile(rf"remind me (?:in|after) {DURATION},? (?:to|that|about) (?P<task>.+)$"),
    re.compile(rf"reminder (?:for|in) {DURATION} (?:to|that|about) (?P<task>.+)$"),
    re.compile(rf"reminder (?:to|that|about) (?P<task>.+?)(?: (?:in|for) {DURATION})?$"),
]
_LABEL = re.compile(r"(?:^| )(?P<label>[a-z]+) (?:timer|countdown|alarm)\b")
# "a timer for 6 minutes for the eggs" (the duration taken out first), "a timer called tea"
_NAMED = re.compile(r"\b(?:for|called|named) (?:the |my )?(?P<label>[a-z]+)$")


def parse_duration(words: str) -> float | None:
    """Seconds in a spoken duration ("1 hour and 30 minutes", "half an hour"), else None."""
    if words in _FIXED:
        return _FIXED[words]
    total, last_unit = 0.0, 0
    for amount, unit in re.findall(rf"({_AMOUNT}) ({_UNIT})", words):
        count = float(amount) if amount[0].isdigit() else 1.0
        last_unit = SECONDS[unit.rstrip("s")]
        total += count * last_unit
    if re.search(r"and (?:a half|0\.5)$", words):
        total += last_unit / 2
    return total or None


def say_duration(seconds: float) -> str:
    """'1 hour and 30 minutes', '90 seconds' -> '1 minute and 30 seconds'."""
    whole = round(seconds)
    parts = []
    for name in ("hour", "minute", "second"):
        count, whole = divmod(whole, SECONDS[name])
        if count:
            parts.append(f"{count} {name}{'s' if count != 1 else ''}")
    if not parts:
        return "less than a second"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def describe(timer: Timer) -> str:
    """How voxloop names a timer: 'your 5 minute timer', 'your pasta timer'."""
    if timer.kind == "reminder":
        return f"your reminder to {timer.label}"
    if timer.label:
        return f"your {timer.label} timer"
    return f"your timer for {say_duration(timer.seconds)}"


def alert_text(timer: Timer) -> str:
    """What voxloop says when a timer goes off."""
    if timer.kind == "reminder":
        return f"Here is your reminder: {timer.label}."
    return f"Time is up: {describe(timer)} is done."


# "Count down 30 seconds", "can you time 45 seconds": a timer said as a verb.
# "The time 5 minutes from now" is not one: the verb opens the request or follows "you".
_TIMER_VERB = re.compile(
    rf"\bcount ?down\b|(?:^|(?<=\byou )|(?<=\bplease )|(?<=\bto ))time (?={DURATION}\b)"
)


@skill("timers")
def timers(words: str, context: SkillContext) -> str | None:
    """Set, list, query and cancel the person's timers."""
    words = _TIMER_VERB.sub("countdown ", words)
    said = set(words.split())
    if NOT_A_TIMER_REQUEST.search(words):
        return None
    duration = re.search(DURATION, words)
    asks_timers = bool(said & (TIMER_WORDS | REMINDER_WORDS))
    if (said & CANCEL_WORDS or CANCEL_PHRASES.search(words)) and asks_timers and not duration:
        return _cancel(words, context)
    if (said & LEFT_WORDS or LEFT_PHRASES.search(words)) and not duration:
        return _left(words, context) if _only_about_time_left(words) else None
    if asks_timers and said & LIST_WORDS and not duration and _asks_for_several(words, said):
        return _list(context)
    if duration and said & REMINDER_WORDS:
        return _set_reminder(words, duration.group(0), context)
    if duration and said & TIMER_WORDS:
        return _set_timer(words, duration.group(0), context)
    return None


def _only_about_time_left(words: str) -> bool:
    named = {match["label"] for match in _LABEL.finditer(words)}
    said = set(words.split())
    if not (said & ABOUT_TIME or LEFT_PHRASES.search(words)):
        return False  # "What is there before?": about nothing that runs
    return said <= LEFT_VOCABULARY | TIMER_WORDS | REMINDER_WORDS | FILLER | named


def _asks_for_several(words: str, said: set[str]) -> bool:
    """'What timers do I have?', 'any timers running?': the list, not one timer."""
    return bool(said & {"timers", "reminders", "alarms", "countdowns", "any", "list", "show"})


# Said after the name, not part of it: "a timer for the eggs for 8 minutes please".
_AFTER_NAME = re.compile(
    r"(?: (?:for me|for us|for|please|thanks|thank you|now|right now|starting now|ok|okay))+$"
)


def _set_timer(words: str, duration: str, context: SkillContext) -> str:
    rest = _AFTER_NAME.sub("", " ".join(words.replace(duration, " ").split()))
    named = _NAMED.search(rest)
    label = named["label"] if named else ""
    if not label and (match := _LABEL.search(rest)):
        label = match["label"]
    return _start(context, "timer", _label(label), parse_duration(duration))


def _set_reminder(words: str, duration: str, context: SkillContext) -> str | None:
    for pattern in _REMINDER_TASK:
        if match := pattern.search(words):
            task = re.sub(r"\bmy\b", "your", match["task"].strip(" ,"))
            task = re.sub(r"\bme\b", "you", task)
            return _start(context, "reminder", task, parse_duration(duration))
    return None


NO_STORE = "I can only keep timers in a conversation that I remember; this one is not stored."


def _start(context: SkillContext, kind: str, label: str, seconds: float | None) -> str:
    if not seconds:
        return "How long should the timer run?"
    if context.memory is None or context.session is None:
        return NO_STORE
    timer = context.memory.add_timer(context.session, kind, label, seconds, context.now.timestamp())
    if kind == "reminder":
        return f"Okay, I will remind you to {label} in {say_duration(seconds)}."
    article = "an" if label[:1] in ("a", "e", "i", "o", "u") else "a"
    name = f"{article} {label} timer" if label else "a timer"
    return f"Okay, {name} for {say_duration(timer.seconds)}, starting now."


MAX_NAMED = 2  # more cancelled timers than this are counted, not named
# Words before "timer" that name no timer; filler neither ("can you time..." is no "can" timer).
_NOT_LABELS = {"new", "quick", "short", "kitchen", "my", "one", "another"} | FILLER


def _label(raw: str | None) -> str:
    label = (raw or "").strip()
    label = re.sub(r"^(?:the|my|a|an)\s+", "", label)
    return "" if label in _NOT_LABELS else label


def _running(context: SkillContext, words: str) -> list[Timer] | None:
    if context.memory is None or context.session is None:
        return None
    running = context.memory.running_timers(context.session)
    named = [t for t in running if t.label and re.search(rf"\b{re.escape(t.label)}\b", words)]
    return named or running


def _list(context: SkillContext) -> str:
    running = _running(context, "")
    if running is None:
        return NO_STORE
    if not running:
        return "You have no timers running."
    now = context.now.timestamp()
    items = [f"{describe(t)} with {say_duration(t.left(now))} left" for t in running]
    count = f"{len(running)} timer{'s' if len(running) > 1 else ''}"
    return f"You have {count}: " + "; ".join(items) + "."


def _left(words: str, context: SkillContext) -> str:
    running = _running(context, words)
    if running is None:
        return NO_STORE
    if not running:
        return "You have no timers running."
    now = context.now.timestamp()
    said = [f"{describe(t).capitalize()} has {say_duration(t.left(now))} left" for t in running]
    return ". ".join(said) + "."


def _cancel(words: str, context: SkillContext) -> str:
    running = _running(context, words)
    if running is None:
        return NO_STORE
    if not running:
        return "There is no timer to cancel."
    every = bool(set(words.split()) & {"all", "every", "timers", "reminders", "alarms"})
    named = [t for t in running if t.label and re.search(rf"\b{re.escape(t.label)}\b", words)]
    chosen = running if every else named or running[:1]  # else the one due next
    assert context.memory is not None and context.session is not None
    context.memory.cancel_timers(context.session, [t.id for t in chosen])
    if len(chosen) > MAX_NAMED:
        return f"Okay, I cancelled all {len(chosen)} of your timers."
    return f"Okay, I cancelled {' and '.join(describe(t) for t in chosen)}."
