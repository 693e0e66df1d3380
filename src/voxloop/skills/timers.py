"""Timers and reminders: set, list, ask how long is left, cancel; stored in the person's memory.

"Set a timer for five minutes", "set a 10 minute pasta timer", "remind me in 20 minutes to
check the oven", "how much time is left?", "what timers do I have?", "cancel the timer".
When one goes off, voxloop.alarms announces it through whatever door the person is at.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from voxloop.skills import SkillContext, skill

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
_SETTER = (
    r"(?:(?:please |can you |could you |would you )*"
    r"(?:set|start|make|create|put on|run|give me|i need|i want|add)(?: me)? )?"
)
_SET = [
    re.compile(
        rf"^{_SETTER}(?:a |an |the |my |one )?(?:(?P<label>[a-z]+(?: [a-z]+)?) )??"
        rf"(?:timer|countdown) (?:for|of|on) (?P<duration>{DURATION})"
        rf"(?: (?:for|called|named) (?:the |my )?(?P<label2>[a-z ]+?))?(?: please| now)?$"
    ),
    re.compile(
        rf"^{_SETTER}(?:a |an |one )?(?P<duration>{DURATION.replace('s?', '')}s?) "
        rf"(?:(?P<label>[a-z]+) )?(?:timer|countdown)(?: please| now)?$"
    ),
    re.compile(rf"^(?:please )?(?:set (?:a )?timer|timer|count down) (?P<duration>{DURATION})$"),
]
_REMIND = [
    re.compile(
        rf"^(?:please )?remind me (?:in|after) (?P<duration>{DURATION}) (?:to|that|about) "
        rf"(?P<label>.+)$"
    ),
    re.compile(
        rf"^(?:please )?remind me (?:to|that|about) (?P<label>.+) in (?P<duration>{DURATION})$"
    ),
    re.compile(rf"^in (?P<duration>{DURATION}),? remind me (?:to|that|about) (?P<label>.+)$"),
    re.compile(
        rf"^{_SETTER}(?:a )?reminder (?:for|in) (?P<duration>{DURATION}) (?:to|that|about) "
        rf"(?P<label>.+)$"
    ),
]
_TIMER_WORD = r"(?:(?P<label>[a-z]+) )?(?:timers?|reminders?|countdowns?)"
_LIST = re.compile(
    r"^(?:what|which) (?:timers|reminders|timers and reminders) (?:do i have|are (?:running|set|on|"
    r"there|active)|have i (?:got|set))(?: right now| now)?$|"
    r"^(?:please )?(?:list|show me|show|tell me|read me|read out) (?:all )?(?:my |the |all )?"
    r"(?:timers|reminders|running timers|active timers)$|"
    r"^(?:do i have|are there|have i got|is there) (?:any|a) (?:timers?|reminders?)"
    r"(?: running| set| on| going| active)?$|^timers$|^my timers$"
)
_LEFT = re.compile(
    r"^(?:how (?:much|many) (?:more )?(?:time|minutes|seconds) (?:is |are |do i have )?"
    r"(?:left|remaining|to go)|how long (?:is |do i have )?(?:left|remaining|to go)|"
    r"how much longer|how long until|how long till|how long before|when (?:does|will|is)|"
    r"what is the time left|time left|how much time is on|how long is left|is the time up|"
    r"has the timer (?:gone off|finished|ended|run out))"
    r"(?: on| for| of| until| till| before)?(?: the| my)?"
    rf"(?: {_TIMER_WORD})?(?: go(?:es|ing)? off| ends?| rings?| finish(?:es)?| done| be done| due|"
    r" is up)?"
    r"(?: left| now)?$"
)
_CANCEL = re.compile(
    r"^(?:please )?(?:can you |could you )?(?:cancel|stop|delete|remove|clear|turn off|kill|end|"
    r"switch off|forget|never mind|nevermind|reset|silence|dismiss)(?: all)?(?: of)?"
    rf"(?: the| my| all| that| this)* (?:{_TIMER_WORD}|it)(?: please| now)?$"
)


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
    for name, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        count, whole = divmod(whole, size)
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


@skill("timers")
def timers(words: str, context: SkillContext) -> str | None:
    """Set, list, query and cancel the person's timers."""
    for command in (_set_timer, _set_reminder, _list, _left, _cancel):
        if (reply := command(words, context)) is not None:
            return reply
    return None


NO_STORE = "I can only keep timers in a conversation that I remember; this one is not stored."


def _set_timer(words: str, context: SkillContext) -> str | None:
    for pattern in _SET:
        if match := pattern.match(words):
            seconds = parse_duration(match["duration"])
            label = _label(match.groupdict().get("label") or match.groupdict().get("label2"))
            return _start(context, "timer", label, seconds)
    return None


def _set_reminder(words: str, context: SkillContext) -> str | None:
    for pattern in _REMIND:
        if match := pattern.match(words):
            task = re.sub(r"\bmy\b", "your", match["label"].strip())
            return _start(context, "reminder", task, parse_duration(match["duration"]))
    return None


def _start(context: SkillContext, kind: str, label: str, seconds: float | None) -> str:
    if not seconds:
        return "How long should the timer run?"
    if context.memory is None or context.session is None:
        return NO_STORE
    timer = context.memory.add_timer(context.session, kind, label, seconds, context.now.timestamp())
    if kind == "reminder":
        return f"Okay, I will remind you to {label} in {say_duration(seconds)}."
    name = f"a {label} timer" if label else "a timer"
    return f"Okay, {name} for {say_duration(timer.seconds)}, starting now."


MAX_NAMED = 2  # more cancelled timers than this are counted, not named
_NOT_LABELS = {"new", "quick", "short", "kitchen", "the", "my", "a", "one", "another"}


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


def _list(words: str, context: SkillContext) -> str | None:
    if not _LIST.match(words):
        return None
    running = _running(context, "")
    if running is None:
        return NO_STORE
    if not running:
        return "You have no timers running."
    now = context.now.timestamp()
    items = [f"{describe(t)} with {say_duration(t.left(now))} left" for t in running]
    count = f"{len(running)} timer{'s' if len(running) > 1 else ''}"
    return f"You have {count}: " + "; ".join(items) + "."


def _left(words: str, context: SkillContext) -> str | None:
    if not _LEFT.match(words):
        return None
    running = _running(context, words)
    if running is None:
        return NO_STORE
    if not running:
        return "You have no timers running."
    now = context.now.timestamp()
    said = [f"{describe(t).capitalize()} has {say_duration(t.left(now))} left" for t in running]
    return ". ".join(said) + "."


def _cancel(words: str, context: SkillContext) -> str | None:
    if not (match := _CANCEL.match(words)):
        return None
    running = _running(context, words)
    if running is None:
        return NO_STORE
    if not running:
        return "There is no timer to cancel."
    every = " all" in f" {words}" or "timers" in words or "reminders" in words
    label = match["label"]
    chosen = running if every else [t for t in running if t.label == label] or running[:1]
    if len(running) > 1 and not every and not label:
        chosen = running[:1]  # the one that would go off next
    assert context.memory is not None and context.session is not None
    context.memory.cancel_timers(context.session, [t.id for t in chosen])
    if len(chosen) > MAX_NAMED:
        return f"Okay, I cancelled all {len(chosen)} of your timers."
    return f"Okay, I cancelled {' and '.join(describe(t) for t in chosen)}."
